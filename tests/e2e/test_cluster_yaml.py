"""cluster.yaml against Ray's own cluster-launcher schema, offline: no cloud calls, no credentials needed.

prepare_config merges the AWS defaults.yaml shipped with Ray (a local file) and validate_config checks the
result against ray-schema.json; neither talks to AWS (the AWS bootstrap that does is never called here).
"""

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"
# Keys that would put a secret into the file; the cloud's own mechanisms provide these.
CREDENTIAL_KEYS = re.compile(
    r"aws_access_key_id|aws_secret_access_key|aws_session_token|secret|password|token|ssh_private_key"
    r"|credentials|KeyName|gcp_credentials|private_key",
    re.IGNORECASE,
)


def load() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def validated(config: dict) -> dict:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_ray_version_of_the_private_validation_api():
    # prepare_config/validate_config are private: when Ray is upgraded, check they still exist and still
    # validate against ray-schema.json, then update this pin.
    assert ray.__version__ == "2.60.0", "Ray was upgraded: re-check ray.autoscaler._private.util's validate_config"


def test_cluster_yaml_passes_rays_schema():
    config = validated(load())
    nodes = config["available_node_types"]
    head = nodes[config["head_node_type"]]
    assert config["provider"]["type"] == "aws"
    assert head["resources"].get("GPU", 0) == 0 and head["max_workers"] == 0
    from elgan_ray.sweep.tune import DRIVER_RESOURCE

    assert head["resources"][DRIVER_RESOURCE] >= 1  # multi-worker trials wait on the head, holding no GPU node
    workers = [n for name, n in nodes.items() if name != config["head_node_type"]]
    assert any(w["min_workers"] == 0 and w["max_workers"] >= 1 for w in workers)  # GPU workers autoscale from 0
    assert any(w["node_config"]["InstanceType"].startswith(("g", "p")) for w in workers)
    assert any("pip install" in c and "-e ." in c for c in config["setup_commands"])
    assert "~/elgan_ray" in config["file_mounts"]
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.update(max_worker=4),  # a typo of max_workers
        lambda c: c["auth"].update(ssh_usr="ubuntu"),
        lambda c: c["available_node_types"]["worker.gpu"].update(min_worker=1),
        lambda c: c["available_node_types"]["worker.gpu"].update(min_workers=9),  # above the global max_workers
        lambda c: c.update(head_node_type="head.gpu"),
    ],
)
def test_a_broken_copy_fails_validation(mutate):
    config = load()
    mutate(config)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validated(config)


def test_no_credentials_in_the_file():
    def keys(node, found):
        if isinstance(node, dict):
            for key, value in node.items():
                found.append(str(key))
                keys(value, found)
        elif isinstance(node, list):
            for item in node:
                keys(item, found)
        return found

    config = load()
    assert not [k for k in keys(config, []) if CREDENTIAL_KEYS.search(k)]
    assert "ssh_private_key" not in config.get("auth", {})
    text = CLUSTER_YAML.read_text()
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text)  # an AWS access key id
    assert "PRIVATE KEY" not in text
    # ...and it says where credentials come from instead.
    assert re.search(r"^# Credentials: none in this file", text, re.MULTILINE)
