"""The training batches (batches.py) and the GPU-ready step on CPU: a prefetched loop writes the record a synchronous
one writes, bf16 autocast tracks float32 and resumes exactly."""

import threading
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from elgan_ray.config import RunSettings
from elgan_ray.errors import UserError
from elgan_ray.presets import preset
from elgan_ray.record.runs import read_run_evals, read_status
from elgan_ray.train.batches import Prefetcher, batch_indices
from elgan_ray.train.loop import check_precision, train

SHORT = {"schedule.pretrain_g_steps": 6, "schedule.pretrain_d_steps": 4, "schedule.gan_steps": 6}
SHORT |= {"schedule.eval_every": 2, "data.val_limit": 4}
# bf16 keeps 8 bits of mantissa: over these 16 steps the losses of the smoke preset stay within 0.3% of float32's
# (measured); the test allows 2%.
BF16_REL_TOL = 0.02


def settings(tmp_path, name, dataset, **extra):
    return RunSettings(out_dir=str(tmp_path / name), data_dir=str(dataset), run_name=name, **extra)


def test_epochs_are_permutations_and_batches_run_through_them():
    n, size = 10, 4
    drawn = [i for step in range(5) for i in batch_indices(n, step, size, seed=3)]
    assert sorted(drawn[:10]) == list(range(10)) and sorted(drawn[10:20]) == list(range(10))
    assert batch_indices(n, 2, size, seed=3) == batch_indices(n, 2, size, seed=3)
    assert batch_indices(n, 0, size, seed=3) != batch_indices(n, 0, size, seed=4)


def test_prefetcher_gives_what_load_gives_in_a_background_thread():
    threads = []

    def load(step):
        threads.append(threading.current_thread())
        time.sleep(0.01)
        if step == 3:
            raise UserError("frame.jpg", "damaged image")
        return step * 10

    with Prefetcher(load, first_step=0) as batches:
        assert [batches.get(s) for s in range(3)] == [0, 10, 20]
        with pytest.raises(UserError, match="damaged"):  # the error of step 3, when step 3 asks for it
            batches.get(3)
        assert batches.get(7) == 70  # a jump (not the step prepared): loaded on the spot
    assert threading.main_thread() not in threads[:3]
    off = Prefetcher(load, first_step=0, enabled=False)
    assert off.get(2) == 20 and off.wait_seconds >= 0.01


def test_a_prefetched_loop_writes_the_record_of_a_synchronous_one(tmp_path, tiny_dataset):
    cfg = preset("smoke").with_flat(SHORT)
    fast = train(cfg, settings(tmp_path, "prefetch", tiny_dataset))
    slow = train(cfg, settings(tmp_path, "sync", tiny_dataset, prefetch=False))
    assert read_run_evals(tmp_path / "prefetch") == read_run_evals(tmp_path / "sync")
    assert fast.loader_wait_seconds < slow.loader_wait_seconds
    assert read_status(tmp_path / "prefetch")["loader_wait_seconds"] == fast.loader_wait_seconds


def test_bf16_losses_track_float32(tmp_path, tiny_dataset):
    rows = {}
    for amp in ("fp32", "bf16"):
        train(preset("smoke").with_flat(SHORT | {"optim.amp": amp}), settings(tmp_path, amp, tiny_dataset))
        rows[amp] = [r for r in read_run_evals(tmp_path / amp) if r["post"] == "basic++"]
    assert [r["step"] for r in rows["fp32"]] == [r["step"] for r in rows["bf16"]]
    compared = 0
    for a, b in zip(rows["fp32"], rows["bf16"], strict=True):
        for key in ("loss_g", "loss_fit", "loss_d"):
            if a.get(key) is not None:
                assert b[key] == pytest.approx(a[key], rel=BF16_REL_TOL), (a["step"], key)
                compared += 1
    assert compared >= 10


class Interrupt(Exception):
    pass


def test_a_bf16_run_resumes_exactly(tmp_path, tiny_dataset):
    cfg = preset("smoke").with_flat(SHORT | {"optim.amp": "bf16"})
    train(cfg, settings(tmp_path, "whole", tiny_dataset))
    seen = []

    def crash_after_fourth_evaluation(step, metrics):
        seen.append(step)
        if len(seen) == 4:  # in D's pre-training: G, D and both optimisers are restored
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, settings(tmp_path, "resumed", tiny_dataset), report=crash_after_fourth_evaluation)
    train(cfg, settings(tmp_path, "resumed", tiny_dataset))
    assert read_run_evals(tmp_path / "resumed") == read_run_evals(tmp_path / "whole")


def background_threads() -> set[threading.Thread]:
    """The live threads a run starts: the prefetcher's, and tensorboardX's event writer's."""
    writer = "_EventLoggerThread"
    return {t for t in threading.enumerate() if t.name.startswith("elgan-batches") or type(t).__name__ == writer}


def test_a_stopped_run_leaves_no_batch_thread_and_keeps_its_events(tmp_path, tiny_dataset):
    """Tune stops a trial by raising in report and reuses its process: the prefetch thread must end with the run,
    and the TensorBoard events written so far must reach the disk."""

    def stop(step, metrics):
        raise Interrupt

    before = background_threads()
    with pytest.raises(Interrupt) as stopped:  # held, as Ray holds an error it reports: the run's frame lives on
        train(preset("smoke").with_flat(SHORT), settings(tmp_path, "stopped", tiny_dataset), report=stop)
    assert background_threads() <= before
    assert stopped.traceback
    events = EventAccumulator(str(tmp_path / "stopped"), size_guidance={"scalars": 0}).Reload()
    assert events.Scalars("val/accuracy")[0].step == SHORT["schedule.eval_every"]


def test_bf16_is_refused_where_autocast_cannot_run_it():
    check_precision("bf16", torch.device("cpu"))
    check_precision("fp32", torch.device("meta"))
    with pytest.raises(UserError, match="optim.amp"):
        check_precision("bf16", torch.device("meta"))


def test_amp_is_a_checked_config_key():
    with pytest.raises(UserError, match="optim.amp"):
        preset("smoke").with_flat({"optim.amp": "fp16"})
