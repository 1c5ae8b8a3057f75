"""Shared pre-training: computed once, published whole, and a dead owner's lock does not block others."""

import socket
import subprocess
import sys
import time
from pathlib import Path

from elgan_ray.config import RunSettings
from elgan_ray.presets import preset
from elgan_ray.record.layout import PRETRAIN_DIR
from elgan_ray.sweep.pretrain import ensure_pretrained, is_finished, pretrain_id
from elgan_ray.train.loop import train

FAST = {"schedule.pretrain_g_steps": 2, "schedule.eval_every": 1, "data.val_limit": 2, "data.train_limit": 4}


def counting_runner(calls):
    def run(cfg, run_settings: RunSettings, phases, init_generator=None):
        calls.append(Path(run_settings.out_dir).name)
        train(cfg, run_settings, phases=phases, init_generator=init_generator)

    return run


def test_pretraining_is_computed_once_and_published_whole(tmp_path, tiny_dataset):
    cfg = preset("smoke").with_flat(FAST)
    calls = []
    first = ensure_pretrained(cfg, tmp_path, str(tiny_dataset), run=counting_runner(calls))
    second = ensure_pretrained(cfg, tmp_path, str(tiny_dataset), run=counting_runner(calls))
    assert first == second and is_finished(first) and len(calls) == 1
    assert (first / "checkpoint.pt").exists()
    assert sorted(p.name for p in (tmp_path / PRETRAIN_DIR).iterdir()) == [first.name]  # no staging, no lock
    other_seed = ensure_pretrained(cfg.with_flat({"seed": 1}), tmp_path, str(tiny_dataset), run=counting_runner(calls))
    assert other_seed != first and len(calls) == 2


def test_gan_keys_do_not_change_the_pretraining_id():
    cfg = preset("smoke")
    same = cfg.with_flat({"loss.gen": "ce", "loss.disc": "emb", "loss.lambda": 3.0, "optim.lr_d": 0.5})
    assert pretrain_id(cfg, "d") == pretrain_id(same, "d")
    assert pretrain_id(cfg, "d") != pretrain_id(cfg.with_flat({"optim.lr_g": 0.5}), "d")
    assert pretrain_id(cfg, "d") != pretrain_id(cfg, "other data")


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, tiny_dataset):
    cfg = preset("smoke").with_flat(FAST)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = pretrain_id(cfg, str(Path(tiny_dataset).resolve()))
    lock = tmp_path / PRETRAIN_DIR / f"{pid}.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(f"{socket.gethostname()} {dead.stdout.strip()}\n")
    calls = []
    done = ensure_pretrained(cfg, tmp_path, str(tiny_dataset), run=counting_runner(calls), poll_seconds=0.1)
    assert is_finished(done) and calls and not lock.exists()


def test_a_lock_whose_node_is_dead_is_taken_over_at_once_and_one_on_a_live_node_is_waited_for(
    tmp_path, tiny_dataset, monkeypatch
):
    import pytest

    from elgan_ray.sweep import pretrain

    cfg = preset("smoke").with_flat(FAST)
    lock = tmp_path / PRETRAIN_DIR / f"{pretrain_id(cfg, str(Path(tiny_dataset).resolve()))}.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(f"another-host 4242 {time.time():.6f} 0a1b2c3d live-node\n")  # fresh: its age says nothing yet
    waits = []

    def sleep(seconds):  # the loop's wait for a held lock
        waits.append(seconds)
        if len(waits) > 3:
            raise TimeoutError("waiting, as it should for a live node's lock")

    with monkeypatch.context() as patched:
        patched.setattr(pretrain.time, "sleep", sleep)
        with pytest.raises(TimeoutError):
            ensure_pretrained(cfg, tmp_path, str(tiny_dataset), run=counting_runner([]), node_alive=lambda n: True)
    lock.write_text(f"another-host 4242 {time.time():.6f} 0a1b2c3d dead-node\n")
    calls = []
    done = ensure_pretrained(
        cfg, tmp_path, str(tiny_dataset), run=counting_runner(calls), node="me", node_alive=lambda n: n != "dead-node"
    )
    assert is_finished(done) and len(calls) == 1 and not lock.exists()
