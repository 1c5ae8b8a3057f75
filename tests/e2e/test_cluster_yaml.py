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
    from elgan_ray.sweep.ray_session import DRIVER_RESOURCE

    assert head["resources"][DRIVER_RESOURCE] >= 1  # multi-worker trials wait on the head, holding no GPU node
    workers = [n for name, n in nodes.items() if name != config["head_node_type"]]
    assert any(w["min_workers"] == 0 and w["max_workers"] >= 1 for w in workers)  # GPU workers autoscale from 0
    assert any(w["node_config"]["InstanceType"].startswith(("g", "p")) for w in workers)
    assert any("pip install" in c and "--no-deps -e ." in c for c in config["setup_commands"])  # all in the image
    assert "~/elgan_ray" in config["file_mounts"]
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])
    # Token authentication on every node, the token copied from the laptop.
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        assert all("RAY_AUTH_MODE=token" in c for c in commands if "ray start" in c)
    # A spot worker type beside an on-demand one, the same machine; every worker runs the reclaim watcher.
    spot = [w for w in workers if w["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot"]
    on_demand = [w for w in workers if "InstanceMarketOptions" not in w["node_config"]]
    assert spot and on_demand and spot[0]["resources"] == on_demand[0]["resources"]
    assert any("elgan_ray.sweep.spot_drain" in c for c in config["worker_start_ray_commands"])
    # No EFS: results go to a storage URI, and the file says so.
    assert "efs" not in CLUSTER_YAML.read_text().lower().replace("no shared file system", "")


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
    mounts = config.pop("file_mounts")  # paths, not secrets: the cluster's token file is copied from ~/.ray
    assert not [k for k in keys(config, []) if CREDENTIAL_KEYS.search(k)]
    assert {k: v for k, v in mounts.items() if "token" in k} == {"~/.ray/auth_token": "~/.ray/auth_token"}
    assert "ssh_private_key" not in config.get("auth", {})
    text = CLUSTER_YAML.read_text()
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text)  # an AWS access key id
    assert "PRIVATE KEY" not in text
    # ...and it says where credentials come from instead.
    assert re.search(r"^# Credentials: none in this file", text, re.MULTILINE)


ROOT = CLUSTER_YAML.parent
G5_XLARGE = {"InstanceType": "g5.xlarge", "VCpuInfo": {"DefaultVCpus": 4}, "MemoryInfo": {"SizeInMiB": 16384}}
G5_XLARGE["GpuInfo"] = {
    "Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": 1, "MemoryInfo": {"SizeInMiB": 24576}}]
}
M5_XLARGE = {"InstanceType": "m5.xlarge", "VCpuInfo": {"DefaultVCpus": 4}, "MemoryInfo": {"SizeInMiB": 16384}}


def filled(monkeypatch) -> dict:
    """cluster.yaml as the AWS launcher completes it, with EC2's describe-instance-types faked (no cloud call)."""
    from ray.autoscaler._private.aws import node_provider

    monkeypatch.setattr(node_provider, "list_ec2_instances", lambda region, credentials=None: [G5_XLARGE, M5_XLARGE])
    return node_provider.AWSNodeProvider.fillout_available_node_types_resources(validated(load()))


def test_the_launcher_fills_in_what_the_declared_resources_say(monkeypatch):
    nodes = filled(monkeypatch)["available_node_types"]
    for name in ("worker.gpu", "worker.gpu.spot"):
        resources = nodes[name]["resources"]
        assert resources["CPU"] == 4 and resources["GPU"] == 1 and resources["accelerator_type:A10G"] == 1
        assert resources["memory"] > 10 * 2**30  # detected from the instance type
        declared = load()["available_node_types"][name]["resources"]
        assert {k: resources[k] for k in declared} == declared  # what the sweep reads is what Ray detects
    assert nodes["head.cpu"]["resources"]["CPU"] == 0  # declared: no trial trains on the head


def test_the_autoscaler_launches_gpu_workers_for_a_study_s_trials(monkeypatch):
    from functools import partial

    from ray.autoscaler._private.node_provider_availability_tracker import NodeAvailabilitySummary
    from ray.autoscaler._private.resource_demand_scheduler import _default_utilization_scorer, get_nodes_for

    # The scorer the autoscaler uses, with every node type available (no launch failure recorded).
    scorer = partial(_default_utilization_scorer, node_availability_summary=NodeAvailabilitySummary({}))

    config = filled(monkeypatch)
    types = config["available_node_types"]
    trials = [{"CPU": 4, "GPU": 1}] * 20  # the stability study, one GPU worker per trial (docs/cluster.md)
    launch, waiting = get_nodes_for(types, {}, config["head_node_type"], config["max_workers"], trials, scorer)
    assert sum(launch.values()) == config["max_workers"] and "head.cpu" not in launch
    assert set(launch) <= {"worker.gpu", "worker.gpu.spot"} and len(waiting) == 20 - config["max_workers"]
    # A worker that no node type can hold launches nothing, and waits for ever: the sweep refuses it instead.
    launch, waiting = get_nodes_for(types, {}, config["head_node_type"], 6, [{"CPU": 8, "GPU": 1}], scorer)
    assert not launch and waiting == [{"CPU": 8, "GPU": 1}]


def test_the_sweep_bounds_its_trials_by_the_node_types_and_refuses_what_none_holds(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from elgan_ray.errors import UserError
    from elgan_ray.sweep.shared import cluster_capacity

    bootstrap = tmp_path / "ray_bootstrap_config.yaml"  # what `ray up` leaves on the head
    bootstrap.write_text(yaml.safe_dump(filled(monkeypatch)))
    gpu_trials = SimpleNamespace(cpus_per_worker=4, gpus_per_worker=1, workers_per_trial=1)
    assert cluster_capacity(gpu_trials, str(bootstrap)) == 6  # 2 on-demand + 4 spot nodes, one trial each
    assert (
        cluster_capacity(SimpleNamespace(cpus_per_worker=4, gpus_per_worker=1, workers_per_trial=2), str(bootstrap))
        == 3
    )
    with pytest.raises(UserError, match=r"a trial needs 1 worker\(s\) of \{'CPU': 8, 'GPU': 1\}.*hold none"):
        cluster_capacity(SimpleNamespace(cpus_per_worker=8, gpus_per_worker=1, workers_per_trial=1), str(bootstrap))


def lock() -> dict[str, str]:
    lines = (ROOT / "requirements" / "lock.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    assert all(len(pin) == 2 for pin in pins), "every line of the lock is name==version"
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_the_project_image_is_the_lock_on_ray_s_gpu_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pins = lock()
    image = re.search(r"^FROM rayproject/ray:(\S+)-py(\d)(\d+)-gpu$", dockerfile, re.MULTILINE)
    assert image and image.group(1) == pins["ray"] == ray.__version__  # Ray's image is the Ray we pin
    assert f"torch=={pins['torch']} " in dockerfile and "-r /tmp/lock.txt" in dockerfile
    assert "COPY requirements/lock.txt /tmp/lock.txt" in dockerfile
    tag = re.search(r"docker build -t (\S+) \.", dockerfile).group(1)
    assert tag == f"elgan-ray:{pins['ray']}-torch{pins['torch']}-cu128"
    config = load()
    assert config["docker"]["image"] == tag  # every node runs it: no head_image, no worker_image
    assert not {"head_image", "worker_image"} & set(config["docker"])
    assert not any(n.get("docker") for n in config["available_node_types"].values())
    # Every dependency the project declares is in the lock; the project's own pins agree with it.
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = pyproject[pyproject.index("dependencies = [") : pyproject.index("]", pyproject.index("dependencies = ["))]
    for requirement in re.findall(r'"([^"]+)"', block):
        name = re.split(r"[\[=<>]", requirement)[0].lower()
        assert name in pins, name
        if "==" in requirement:
            assert requirement.split("==")[1] == pins[name], requirement


def test_every_node_type_names_the_same_gpu_ami():
    amis = {n["node_config"].get("ImageId") for n in load()["available_node_types"].values()}
    assert len(amis) == 1 and re.fullmatch(r"ami-[0-9a-f]{17}", amis.pop())
    assert "base-oss-nvidia-driver-gpu-ubuntu-22.04" in CLUSTER_YAML.read_text()  # the family, and how to refresh


def test_the_cluster_extra_gives_the_launcher_and_the_job_client():
    """`pip install -e ".[cluster]"` (which `make test` installs through the dev extra): ray up needs boto3 at launch,
    ray job submit the dashboard client of ray[default]."""
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    for command in (["up", "--help"], ["job", "submit", "--help"]):
        done = subprocess.run([str(bin_dir / "ray"), *command], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Usage: ray" in done.stdout, done.stderr[-2000:]
    import boto3  # noqa: F401  (the AWS node provider's client)
    import ray.dashboard.modules.job.cli  # noqa: F401  (ray job submit)
