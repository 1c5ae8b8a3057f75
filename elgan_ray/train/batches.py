"""The training batches: which frames each step trains on, and a loader that prepares the next step's batch while
the current step runs.

A batch is a pure function of (seed, step) (`batch_of_step`), so a resumed run and every DDP rank draw exactly
the batches an uninterrupted single-process run draws, whoever prepares them and when. `Prefetcher` prepares
batch step + 1 in one background thread while step trains: JPEG decoding, resizing (cv2) and the numpy
conversions release the GIL, so on the first epoch, before the dataset's cache holds every frame, the loop no
longer waits for them. A thread rather than DataLoader worker processes (README, Performance: measured): the
frames are cached once, in the training process, instead of once per worker, and no batch is pickled.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache

import torch

from elgan_ray.data.tusimple import TuSimpleDataset

Batch = tuple[torch.Tensor, torch.Tensor]  # images (b, 3, H, W) and label maps (b, 1, H, W), on the CPU


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """The frames of the global batch of `step`: epochs are permutations of the n frames, a pure function of
    (seed, epoch), and the batches run through them back to back."""
    indices = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, n)
        indices.append(_epoch_order(n, seed, epoch)[offset])
    return indices


@lru_cache(maxsize=4)  # a batch spans one or two epochs (more only if it is larger than the data), asked for by
# the prefetch thread and the loop
def _epoch_order(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    return tuple(torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist())


def batch_of_step(
    dataset: TuSimpleDataset,
    n: int,
    step: int,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world: int = 1,
    pin: bool = False,
) -> Batch:
    """This rank's slice of the global batch of `step`, as CPU tensors; `pin` (for a GPU): in page-locked memory,
    so that the copy to the device does not wait for the CPU."""
    mine = batch_indices(n, step, batch_size, seed)[rank::world]
    frames = [dataset[i] for i in mine]
    images = torch.stack([f["image"] for f in frames])  # (b, 3, H, W)
    labels = torch.stack([f["label"] for f in frames])  # (b, 1, H, W)
    if pin:
        images, labels = images.pin_memory(), labels.pin_memory()
    return images, labels


class Prefetcher:
    """load(step) for successive steps, each prepared in a background thread while the step before it runs.

    get(step) returns exactly what load(step) returns (or raises what it raises), so records do not depend on
    whether prefetching is on; `wait_seconds` adds up the time get() blocked, the loop's wait for its data.
    """

    def __init__(self, load, first_step: int, enabled: bool = True):
        self._load = load
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="elgan-batches") if enabled else None
        self._next: tuple[int, Future] | None = None
        if self._pool is not None:
            self._next = (first_step, self._pool.submit(load, first_step))
        self.wait_seconds = 0.0

    def get(self, step: int) -> Batch:
        start = time.perf_counter()
        try:
            if self._pool is None:
                return self._load(step)
            ahead, self._next = self._next, None
            if ahead is not None and ahead[0] != step:  # not the step prepared (a jump): load it here
                ahead[1].cancel()
                ahead = None
            self._next = (step + 1, self._pool.submit(self._load, step + 1))  # queued behind this step's
            return ahead[1].result() if ahead is not None else self._load(step)
        finally:
            self.wait_seconds += time.perf_counter() - start

    def close(self) -> None:
        """Stop the thread (the batch it may be preparing is dropped, and so is its error)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
