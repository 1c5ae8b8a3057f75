"""The training batches (batches.py): a prefetched loop writes the record a synchronous one writes."""

import threading
import time

import pytest

from elgan_ray.batches import Prefetcher, batch_indices
from elgan_ray.config import RunSettings
from elgan_ray.errors import UserError
from elgan_ray.presets import preset
from elgan_ray.run_log import read_evals, read_status
from elgan_ray.train_loop import train

SHORT = {"schedule.pretrain_g_steps": 6, "schedule.pretrain_d_steps": 4, "schedule.gan_steps": 6}
SHORT |= {"schedule.eval_every": 2, "data.val_limit": 4}


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
    assert read_evals(tmp_path / "prefetch") == read_evals(tmp_path / "sync")
    assert fast.loader_wait_seconds < slow.loader_wait_seconds
    assert read_status(tmp_path / "prefetch")["loader_wait_seconds"] == fast.loader_wait_seconds
