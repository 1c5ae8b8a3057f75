"""How long a training step and a piece of work take, here: what the dry run's estimate and the bench both time.
Torch is imported inside training_steps and step_times only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from elgan_ray.data.labels import H_SAMPLES


def median_time(fn: Callable[[], Any], reps: int, warmup: int = 1) -> float:
    """Median wall seconds of `fn()` over `reps` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def frame_lanes(rng: np.random.Generator) -> list[np.ndarray]:
    """4 gently curved lanes of one frame, x per h_sample in 1280x720 pixels, -2 where absent."""
    y = np.asarray(H_SAMPLES, np.float64)
    t = (y - y[0]) / (y[-1] - y[0])  # 0 at the top row, 1 at the bottom
    bend = rng.normal(0, 60)
    lanes = []
    for j in range(4):
        base = 640 + (j - 1.5) * rng.uniform(120, 160)  # x at the top of the lane
        xs = base + (j - 1.5) * 420 * t + bend * t**2
        xs = np.where((xs < 0) | (xs >= 1280), -2, np.rint(xs)).astype(int)
        xs[: rng.integers(0, 12)] = -2  # lanes start below the horizon
        lanes.append(xs)
    return lanes


def training_steps(cfg, images, labels, device: str = "cpu") -> dict[str, Callable[[], dict[str, float]]]:
    """One call per kind of training step (pretrain_g, gan_g, d), each one optimiser step of fresh models set up as
    train() sets them up: channels_last models and frames, its optimisers, the precision of cfg.optim.amp."""
    import torch

    from elgan_ray.models import build_discriminator, build_generator
    from elgan_ray.train.loop import d_step, g_step

    g = build_generator(cfg.generator).to(device, memory_format=torch.channels_last)
    d = build_discriminator(cfg.discriminator).to(device, memory_format=torch.channels_last)
    # The optimisers of train(): their update is part of a step's cost.
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.optim.lr_g, weight_decay=cfg.optim.weight_decay)
    opt_d = torch.optim.SGD(
        d.parameters(), lr=cfg.optim.lr_d, momentum=cfg.optim.momentum_d, weight_decay=cfg.optim.weight_decay
    )
    images, labels = images.to(device).contiguous(memory_format=torch.channels_last), labels.to(device)
    return {  # every step ends in .item(), which waits for a GPU
        "pretrain_g": lambda: g_step(g, d, opt_g, images, labels, cfg, False),
        "gan_g": lambda: g_step(g, d, opt_g, images, labels, cfg, True),
        "d": lambda: d_step(g, d, opt_d, images, labels, cfg),
    }


def step_times(
    cfg, images, labels, reps: int, device: str = "cpu", warmup: int = 1, count_flops: bool = True
) -> dict[str, float]:
    """Median seconds of each kind of training step, and (count_flops) the FLOPs of one GAN G step + one D step."""
    from torch.utils.flop_counter import FlopCounterMode

    steps = training_steps(cfg, images, labels, device)
    times = {name: median_time(fn, reps, warmup) for name, fn in steps.items()}
    if not count_flops:
        return times
    with FlopCounterMode(display=False) as counter:
        steps["gan_g"]()
        steps["d"]()
    return times | {"gan_pair_flops": float(counter.get_total_flops())}
