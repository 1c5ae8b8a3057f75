"""What a sweep retries, on two Ray Train workers per trial with the results on S3 (moto's server on 127.0.0.1): a lost
process (a Train worker killed mid-run) is restarted and resumes; an exception raised by our own code (a damaged
pre-training in the cache) fails its trial once, not 3 x 3 times."""

import io
import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from loopback import s3_keys, s3_text
from studies import ray_processes, sweep_command, sweep_env, write_study

from elgan_ray.presets import preset
from elgan_ray.study.spec import load_spec
from elgan_ray.sweep.pretrain import data_identity, pretrain_id


@pytest.mark.ray
def test_a_lost_worker_is_retried_and_an_error_of_our_code_is_not(tmp_path, tiny_dataset, s3_server):
    s3_env, client = s3_server
    study = write_study(tmp_path, "retries", {}, seeds=2, fixed={"optim.batch_size": 4})
    # Seed 0's pre-training, as the store holds it: finished, but its checkpoint is not one. Every run of seed 0
    # starts from it, and loading it raises a UserError in the Train workers: the same error at every attempt.
    base = preset("smoke").with_flat(load_spec(study).fixed)
    damaged = f"r/_pretrain/{pretrain_id(base.with_flat({'seed': 0}), data_identity(str(tiny_dataset)))}"
    client.put_object(Bucket="elgan-results", Key=f"{damaged}/checkpoint.pt", Body=b"not a checkpoint")
    client.put_object(Bucket="elgan-results", Key=f"{damaged}/status.json", Body=b'{"status": "ok"}\n')

    log = (tmp_path / "sweep.log").open("w")
    command = sweep_command(study, "s3://elgan-results/r", tiny_dataset, "--workers-per-trial", "2")
    env = sweep_env() | s3_env
    driver = subprocess.Popen(command, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        # Seed 1's runs train on two Ray Train workers; kill one of them once its pre-training has evaluated.
        deadline, workers = time.time() + 600, []
        while time.time() < deadline and not ([k for k in s3_keys(client, "r/_pretrain/") if "jsonl" in k] and workers):
            time.sleep(0.5)
            workers = ray_processes(driver.pid, b"ray::RayTrainWorker")
        assert workers, "no Train worker to kill"
        os.kill(workers[0], signal.SIGKILL)
        assert driver.wait(timeout=900) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    output = (tmp_path / "sweep.log").read_text()
    evals = pd.read_csv(io.StringIO(s3_text(client, "r/retries/evals.csv")))
    for name in ("control,seed=1", "seed=1"):  # restarted where needed, each run complete: 3 evaluations x 2 posts
        assert (evals.trial_name == name).sum() == 6 and set(evals[evals.trial_name == name].status) == {"ok"}, name
        assert json.loads(s3_text(client, f"r/retries/runs/{name}/status.json"))["workers"] == 2
    for name in ("control,seed=0", "seed=0"):  # tried once: failed, with the error that would come again
        status = json.loads(s3_text(client, f"r/retries/runs/{name}/status.json"))
        assert status["status"] == "failed" and "not a readable checkpoint" in status["error"], name
        assert output.count(f" {name}: failed, not retried") == 1, output[-3000:]  # " ": not control,seed=0
