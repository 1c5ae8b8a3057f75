# -- data (elgan_ray.data): fixtures named data_* --------------------------------------------------
import pytest as _data_pytest


@_data_pytest.fixture(scope="session")
def data_tiny(tmp_path_factory):
    """A tiny synthetic TuSimple-layout dataset (4 train, 2 val, 2 test frames), written once per session."""
    from elgan_ray.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "tiny", 4, 2, 2, seed=0, progress=False)


# -- training and sweeps: a dataset big enough for a few smoke steps and evaluations ------------------
@_data_pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """16 train, 8 val, 4 test synthetic frames, written once per session."""
    from elgan_ray.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(
        tmp_path_factory.mktemp("tiny") / "data", n_train=16, n_val=8, n_test=4, seed=0, progress=False
    )


# -- object storage: moto's S3-compatible server on 127.0.0.1 ------------------------------------------------------
@_data_pytest.fixture
def s3_server(tmp_path):
    """moto's S3 server on a free port of 127.0.0.1, with one bucket; yields the environment that points at it."""
    import shutil
    import subprocess
    import sys
    import time

    from loopback import free_port

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
