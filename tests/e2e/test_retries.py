"""What a sweep retries: a lost process (here a Ray Train worker killed mid-run) is restarted and resumes; an
exception raised by our own code (here a damaged pre-training in the cache) fails its trial once, not 3 x 3 times."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from studies import sweep_command, sweep_env, write_study
from test_sweep import processes_named

from elgan_ray.presets import preset
from elgan_ray.study.spec import load_spec
from elgan_ray.sweep.pretrain import data_identity, pretrain_id


def rows(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.glob("**/evals.jsonl"))


@pytest.mark.ray
def test_a_lost_worker_is_retried_and_an_error_of_our_code_is_not(tmp_path, tiny_dataset):
    study = write_study(tmp_path, "retries", {}, seeds=2, fixed={"optim.batch_size": 4})
    results = tmp_path / "results"
    # Seed 0's pre-training, as the cache holds it: finished, but its checkpoint is not one. Every run of seed 0
    # starts from it, and loading it raises a UserError in the Train workers: the same error at every attempt.
    base = preset("smoke").with_flat(load_spec(study).fixed)
    damaged = results / "_pretrain" / pretrain_id(base.with_flat({"seed": 0}), data_identity(str(tiny_dataset)))
    damaged.mkdir(parents=True)
    (damaged / "status.json").write_text('{"status": "ok"}\n')
    (damaged / "checkpoint.pt").write_bytes(b"not a checkpoint")

    log = (tmp_path / "sweep.log").open("w")
    command = sweep_command(study, results, tiny_dataset, "--workers-per-trial", "2")
    driver = subprocess.Popen(command, env=sweep_env(), start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        # Seed 1's runs train on two Ray Train workers; kill one of them once they have evaluated.
        deadline = time.time() + 600
        workers = []
        while time.time() < deadline and not (rows(results / "_pretrain") and workers):
            time.sleep(0.2)
            workers = processes_named(driver.pid, b"ray::RayTrainWorker")
        assert workers, "no Train worker to kill"
        os.kill(workers[0], signal.SIGKILL)
        assert driver.wait(timeout=900) == 0
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    output = (tmp_path / "sweep.log").read_text()
    evals = pd.read_csv(results / "retries" / "evals.csv")
    for name in ("control,seed=1", "seed=1"):  # restarted where needed, each run complete: 3 evaluations x 2 posts
        assert (evals.trial_name == name).sum() == 6 and set(evals[evals.trial_name == name].status) == {"ok"}, name
    for name in ("control,seed=0", "seed=0"):  # tried once: failed, with the error that would come again
        status = json.loads((results / "retries" / "runs" / name / "status.json").read_text())
        assert status["status"] == "failed" and "not a readable checkpoint" in status["error"], name
        assert output.count(f" {name}: failed, not retried") == 1, output[-3000:]  # " ": not control,seed=0
