"""Fault injection: a training process killed with SIGKILL, an interrupted checkpoint write, a diverged trial
inside a sweep."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from studies import sweep_command, sweep_env, write_study

from elgan_ray import files
from elgan_ray.checkpoint import save_checkpoint
from elgan_ray.run_log import read_evals

TRAIN = [sys.executable, "-m", "elgan_ray.train", "--preset", "smoke"]


def test_killed_training_process_resumes_to_the_same_rows(tmp_path, tiny_dataset):
    common = ["--data", str(tiny_dataset), "schedule.gan_steps=24"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    subprocess.run([*TRAIN, *common, "--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen([*TRAIN, *common, "--out", str(killed)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(read_evals(killed)) < 6:  # three evaluations written
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(read_evals(killed)) < len(read_evals(tmp_path / "whole"))  # it really stopped half way
    subprocess.run([*TRAIN, *common, "--out", str(killed)], check=True, env=env, capture_output=True)
    assert read_evals(killed) == read_evals(tmp_path / "whole")


def test_interrupted_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"config": {"seed": 1}, "generator": {}, "step": 1})

    def crash(*args):
        raise KeyboardInterrupt  # the process is stopped between writing and renaming

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"config": {"seed": 1}, "generator": {}, "step": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1  # (not a whole checkpoint: load_checkpoint refuses it)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


@pytest.mark.ray
def test_a_diverged_trial_is_recorded_and_the_sweep_finishes(tmp_path, tiny_dataset):
    study = write_study(tmp_path, "diverging", {"optim.lr_d": [1.0e-3, 1.0e30]}, seeds=1)  # one sane, one absurd
    command = sweep_command(study, tmp_path / "results", tiny_dataset)
    done = subprocess.run(command, env=sweep_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "results" / "diverging"
    evals = pd.read_csv(folder / "evals.csv")
    status = evals[evals.kind == "gan"].groupby("cfg.optim.lr_d").status.first()
    assert status.loc[1.0e-3] == "ok" and status.loc[1.0e30] == "diverged"
    summary = pd.read_csv(folder / "summary.csv")
    assert summary.n_diverged.sum() == 1
