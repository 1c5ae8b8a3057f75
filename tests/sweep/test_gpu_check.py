"""gpu_check.py: GPUs asked for where there are none are refused, never waited for or replaced by the CPU: the
sweep command locally (exit 2, one line, within seconds, nothing written), a trial or Train worker elsewhere
(an error naming the node)."""

import os
import socket
import subprocess
import sys
import time

import pytest
import torch

from elgan_ray.config import RunSettings
from elgan_ray.presets import preset
from elgan_ray.sweep import gpu_check
from elgan_ray.sweep import tune as tune_runner
from elgan_ray.sweep.settings import SweepSettings

MORE_THAN_HERE = torch.cuda.device_count() + 1  # what this machine lacks, with or without a GPU


def test_sweep_asking_for_missing_gpus_exits_2_in_one_line_before_writing(tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "elgan_ray.sweep", "stability", "--preset", "smoke", "--results", str(results)]
    started = time.monotonic()
    done = subprocess.run(
        command + ["--gpus-per-worker", str(MORE_THAN_HERE)], capture_output=True, text=True, timeout=120
    )
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --gpus-per-worker: each trial needs"), lines
    assert "wait for them for ever" in lines[0] and done.stdout == ""
    assert seconds < 30, seconds  # a torch import, no Ray start (about 3 s on 2 busy cores)
    assert not results.exists()


def test_a_study_asking_for_missing_gpus_names_its_resources(tmp_path):
    from studies import write_study

    study = write_study(tmp_path, "gpus", {}, seeds=1, resources={"gpu": MORE_THAN_HERE})
    command = [sys.executable, "-m", "elgan_ray.sweep", str(study), "--preset", "smoke", "--results", str(tmp_path)]
    done = subprocess.run(command + ["--workers-per-trial", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert f"{study}: key 'resources.gpu': each trial needs" in done.stderr


def test_local_shortfall_counts_every_worker_of_a_trial(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert gpu_check.local_shortfall("gpu", 0) is None and gpu_check.local_shortfall("gpu", 2) is None
    assert "needs 3 GPU(s) but torch sees 2" in gpu_check.local_shortfall("gpu", 3)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert gpu_check.local_shortfall("gpu", 0.25) is None  # a quarter of the one GPU: trials share it
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert "needs 0.25 GPU(s) but torch sees 0" in gpu_check.local_shortfall("gpu", 0.25)
    cpus = gpu_check.local_cpus()
    assert 1 <= cpus <= (os.cpu_count() or 1)
    assert gpu_check.local_shortfall("cpu", cpus) is None
    assert f"needs {cpus + 1:g} CPU(s) but a local Ray has {cpus:g} here" in gpu_check.local_shortfall("cpu", cpus + 1)


def test_a_run_given_a_gpu_without_cuda_fails_naming_the_node(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    gpu_check.require_cuda(0)  # no GPU asked for: the CPU is right
    with pytest.raises(gpu_check.NoCudaError, match=f"node .*{socket.gethostname()}.*refusing to train on CPU"):
        gpu_check.require_cuda(1)
    # The trial's runner refuses before any training (it would otherwise have run on the CPU).
    settings = SweepSettings(
        "s", str(tmp_path), {}, ("seed",), None, workers_per_trial=1, cpus_per_worker=1, gpus_per_worker=1
    )
    run = tune_runner._runner(settings)
    with pytest.raises(gpu_check.NoCudaError):
        run(preset("smoke"), RunSettings(out_dir=str(tmp_path / "run")), ("pretrain_g",))
    assert not (tmp_path / "run").exists()
