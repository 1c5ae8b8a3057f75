"""Fault injection: a training process killed with SIGKILL, an interrupted checkpoint write, a diverged trial
inside a sweep, a synth stopped half way, an unreadable pre-training lock."""

import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from studies import sweep_command, sweep_env, write_study

from elgan_ray import files
from elgan_ray import lock as lock_module
from elgan_ray.presets import preset
from elgan_ray.record.runs import read_run_evals, write_status
from elgan_ray.sweep import pretrain
from elgan_ray.train.checkpoint import save_checkpoint

TRAIN = [sys.executable, "-m", "elgan_ray.train", "--preset", "smoke"]


def test_killed_training_process_resumes_to_the_same_rows(tmp_path, tiny_dataset):
    common = ["--data", str(tiny_dataset), "schedule.gan_steps=24"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    subprocess.run([*TRAIN, *common, "--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen([*TRAIN, *common, "--out", str(killed)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(read_run_evals(killed)) < 6:  # three evaluations written
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(read_run_evals(killed)) < len(read_run_evals(tmp_path / "whole"))  # it really stopped half way
    subprocess.run([*TRAIN, *common, "--out", str(killed)], check=True, env=env, capture_output=True)
    assert read_run_evals(killed) == read_run_evals(tmp_path / "whole")


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
    status = evals[evals.role == "gan"].groupby("cfg.optim.lr_d").status.first()
    assert status.loc[1.0e-3] == "ok" and status.loc[1.0e30] == "diverged"
    summary = pd.read_csv(folder / "summary.csv")
    assert summary.n_diverged.sum() == 1


def synth_command(out, n_train):
    command = [sys.executable, "-m", "elgan_ray.data", "synth", "--out", str(out), "--train", str(n_train)]
    return command + ["--val", "0", "--test", "0", "-q"]


def staging_folders(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".partial"))


def started_staging(process, parent, timeout=60):
    """Wait until the synth process has a staging folder with a frame in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(any(p.rglob("*.jpg")) for p in parent.glob(".*.partial")):
            return True
        time.sleep(0.05)
    return False


def test_sigterm_during_synth_leaves_no_staging_folder(tmp_path):
    """Issue 13, defect 18: SIGTERM left a hidden `.DIR.xxxx.partial` folder that no later run removed."""
    process = subprocess.Popen(synth_command(tmp_path / "set", 400), stderr=subprocess.PIPE, text=True)
    assert started_staging(process, tmp_path), process.stderr.read() if process.poll() is not None else "no staging"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no set, no staging folder


def test_a_staging_folder_of_a_killed_synth_is_removed_by_the_next(tmp_path):
    """SIGKILL leaves no chance to clean up: the next synth of the same folder removes what the dead one left."""
    process = subprocess.Popen(synth_command(tmp_path / "set", 400), stderr=subprocess.DEVNULL)
    assert started_staging(process, tmp_path)
    process.kill()
    process.wait()
    assert len(staging_folders(tmp_path)) == 1
    foreign = tmp_path / ".set.not-ours.partial"  # no owner file: not provably this program's, so it stays
    foreign.mkdir()
    done = subprocess.run(synth_command(tmp_path / "set", 1), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert staging_folders(tmp_path) == [foreign.name]


def test_an_unreadable_pretraining_lock_is_stale_after_the_timeout(tmp_path, monkeypatch):
    """Issue 13, defect 5: an empty or garbage lock (a write that failed on a full disk) was never judged stale,
    and every trial waited for it forever."""
    cfg = preset("smoke")
    pid = pretrain.pretrain_id(cfg, pretrain.data_identity(None))
    root = tmp_path / "_pretrain"  # <results>/_pretrain/<id>.lock, the layout the README documents
    root.mkdir()
    calls = []

    def finish(cfg, settings, phases):  # stands in for the pre-training: publishes a finished run
        calls.append(settings.out_dir)
        os.makedirs(settings.out_dir, exist_ok=True)
        write_status(settings.out_dir, {"status": "ok"})

    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) > 20:
            raise TimeoutError("waited for a lock that nobody holds")

    monkeypatch.setattr(pretrain.time, "sleep", sleep)
    for content in (b"", b"\x00\xff garbage", f"{socket.gethostname()} not-a-pid".encode()):
        lock = root / f"{pid}.lock"
        lock.write_bytes(content)
        old = time.time() - lock_module.STALE_SECONDS - 5
        os.utime(lock, (old, old))
        final = pretrain.ensure_pretrained(cfg, tmp_path, None, run=finish, poll_seconds=0)
        assert pretrain.is_finished(final) and not lock.exists()
        (final / "status.json").unlink()  # the next content starts from scratch
    assert len(calls) == 3

    lock.write_bytes(b"")  # a fresh unreadable lock is being written right now: it is waited for
    sleeps.clear()
    with pytest.raises(TimeoutError):
        pretrain.ensure_pretrained(cfg, tmp_path, None, run=finish, poll_seconds=0)
