"""Fixtures of the end-to-end tests."""

import shutil
import subprocess
import sys
import time

import pytest
from bad_input import SMOKE_STEPS, run
from loopback import free_port


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dataset):
    """A finished smoke run (two evaluations, four evals.jsonl rows), trained once for this module."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = run(["elgan_ray.train", "--preset", "smoke", "--data", str(tiny_dataset), "--out", str(out), *SMOKE_STEPS])
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture
def s3_server(tmp_path):
    """moto's S3 server on a free port of 127.0.0.1, with one bucket; yields the environment that points at it."""
    port = free_port()
    moto = shutil.which("moto_server", path=str(sys.executable.rsplit("/", 1)[0]))
    server = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    try:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        deadline = time.time() + 60
        while True:
            try:
                client.create_bucket(Bucket="elgan-results")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield env, client
    finally:
        server.kill()
        server.wait()
