"""Fixtures of the end-to-end tests."""

import os
import signal
import subprocess
import time
from types import SimpleNamespace

import pytest
from bad_input import SMOKE_STEPS, run
from studies import sweep_command, sweep_env, tiny_study_file


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dataset):
    """A finished smoke run (two evaluations, four evals.jsonl rows), trained once for this module."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = run(["elgan_ray.train", "--preset", "smoke", "--data", str(tiny_dataset), "--out", str(out), *SMOKE_STEPS])
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, tiny_dataset):
    """A finished tiny study, swept once per session the way issue 25's D1 and D11 start it: two sweeps of it into one
    results folder a second apart, both with RAY_ADDRESS pointing at nothing. `sweeps` are their (pid, returncode,
    stderr), `results` the folder (tests copy it), `study` the study file."""
    root = tmp_path_factory.mktemp("tiny_study")
    study, results = tiny_study_file(root), root / "results"
    env = sweep_env() | {"RAY_ADDRESS": "127.0.0.1:1"}
    processes = []
    for _ in range(2):
        processes.append(
            subprocess.Popen(
                sweep_command(study, results, tiny_dataset),
                env=env,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )
        time.sleep(1)
    sweeps = []
    try:
        for process in processes:
            _, err = process.communicate(timeout=900)
            sweeps.append((process.pid, process.returncode, err))
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    return SimpleNamespace(study=study, results=results, sweeps=sweeps, data=tiny_dataset)
