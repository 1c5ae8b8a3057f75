"""The training-step stages: the loader's frames/s against a cpu-preset step's, the step's FLOP/s against a
large convolution's, and the compute that shared pre-training saves (from the schedule and the step times).
"""

from __future__ import annotations

from typing import Any

from elgan_ray.bench.harness import Bench
from elgan_ray.train.timing import median_time, step_times


def conv_flops_per_s(reps: int, device: str = "cpu") -> float:
    """FLOP/s of a large 3x3 convolution (64->64 channels on 8x64x128x256): what the hardware gives."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(8, 64, 128, 256, device=device)
    w = torch.randn(64, 64, 3, 3, device=device)

    def conv() -> None:
        with torch.no_grad():
            F.conv2d(x, w, padding=1).sum().item()

    with FlopCounterMode(display=False) as counter:
        conv()
    return counter.get_total_flops() / median_time(conv, reps)


def stage_step(b: Bench) -> dict[str, Any]:
    import torch

    from elgan_ray.data.tusimple import TuSimpleDataset
    from elgan_ray.presets import preset

    cfg = preset("cpu")
    size = (cfg.data.height, cfg.data.width)
    root = b.data()
    cold = TuSimpleDataset(root, "train", *size, sigma=cfg.data.sigma, cache=False)
    n = len(cold)
    cold_fps = n / median_time(lambda: [cold[i] for i in range(n)], b.reps, warmup=0)
    warm = TuSimpleDataset(root, "train", *size, sigma=cfg.data.sigma, cache=True)
    warm_fps = n / median_time(lambda: [warm[i] for i in range(n)], b.reps)
    batch = [warm[i] for i in range(cfg.optim.batch_size)]
    images = torch.stack([f["image"] for f in batch])  # (B, 3, H, W)
    labels = torch.stack([f["label"] for f in batch])  # (B, 1, H, W)
    b.steps = step_times(cfg, images, labels, 2 if b.quick else 5, warmup=1 if b.quick else 2)
    fastest = min(b.steps[k] for k in ("pretrain_g", "gan_g", "d"))
    train_fps = cfg.optim.batch_size / fastest
    achieved = b.steps["gan_pair_flops"] / (b.steps["gan_g"] + b.steps["d"])
    peak = conv_flops_per_s(b.reps)
    b.notes["loader_over_train"] = (
        f"loader = TuSimpleDataset.__getitem__ uncached (JPEG decode, resize, render): {cold_fps:.0f} frames/s "
        f"(cached, as after the first epoch: {warm_fps:.0f}); training = batch {cfg.optim.batch_size} over the "
        f"fastest cpu-preset step ({fastest * 1e3:.0f} ms): {train_fps:.1f} frames/s; {b.threads} torch threads"
    )
    b.notes["step_flops_fraction"] = (
        f"FlopCounterMode FLOPs of one GAN G step + one D step {b.steps['gan_pair_flops'] / 1e9:.2f} GFLOP in "
        f"{(b.steps['gan_g'] + b.steps['d']) * 1e3:.0f} ms = {achieved / 1e9:.1f} GFLOP/s, over a 64->64 3x3 conv "
        f"on 8x64x128x256: {peak / 1e9:.1f} GFLOP/s; {b.threads} torch threads"
    )
    return {
        "loader_over_train": cold_fps / train_fps,
        "loader_over_train_cached": warm_fps / train_fps,
        "step_ms": {k: v * 1e3 for k, v in b.steps.items() if k != "gan_pair_flops"},
        "step_flops_fraction": achieved / peak,
    }


def sharing_ratio(flat: dict[str, Any], seeds: int, trials: int, t: dict[str, float]) -> float:
    """Step compute of a grid study with one pre-training per seed over one per trial (steps x step times)."""
    from elgan_ray.config import TrainConfig

    s = TrainConfig.from_flat(flat).schedule
    rounds, rest = divmod(s.gan_steps, s.g_steps_per_round + s.d_steps_per_round)
    gan_g = rounds * s.g_steps_per_round + min(rest, s.g_steps_per_round)
    gan = gan_g * t["gan_g"] + (s.gan_steps - gan_g) * t["d"] + s.pretrain_d_steps * t["d"]
    pre = s.pretrain_g_steps * t["pretrain_g"]
    return (seeds * pre + trials * gan) / (trials * (pre + gan))


def stage_pretrain_sharing(b: Bench) -> dict[str, Any]:
    from elgan_ray.presets import PRESETS
    from elgan_ray.study.spec import grid_points, load_spec

    if not b.steps:
        stage_step(b)
    spec = load_spec("stability")
    trials = len(list(grid_points(spec)))
    ratios = {name: sharing_ratio(PRESETS[name], spec.seeds, trials, b.steps) for name in ("smoke", "cpu", "paper")}
    b.notes["pretrain_sharing_ratio"] = (
        f"computed from the schedule: {spec.seeds} shared pre-trainings + {trials} (D pre-training + GAN) runs "
        f"over {trials} full runs, steps weighted by the measured cpu-preset step times; evaluations not "
        f"counted. Per preset: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
    )
    return {"pretrain_sharing_ratio": ratios["cpu"], "pretrain_sharing_ratio_paper": ratios["paper"]}


def stage_loader(b: Bench) -> dict[str, Any]:
    """The share of the loop's time spent waiting for batches on a first epoch (every frame decoded from its JPEG),
    with the background thread that prepares the next batch (batches.Prefetcher) and without it."""
    from elgan_ray.config import RunSettings
    from elgan_ray.data.synthetic import EMBEDDED_SIZES, embedded_dataset
    from elgan_ray.presets import preset
    from elgan_ray.train.loop import train

    root = embedded_dataset()  # the default data: a first epoch of EMBEDDED_SIZES[0] / 8 steps
    steps = 24 if b.quick else 48  # within the first epoch: every batch is decoded from its JPEGs
    cfg = preset("cpu").with_flat({"schedule.pretrain_g_steps": steps, "schedule.eval_every": 10**6})
    cfg = cfg.with_flat({"data.val_limit": 4})
    measured = {}
    for prefetch in (True, False):
        run = RunSettings(out_dir=str(b.work / f"loader_{prefetch}"), data_dir=str(root), prefetch=prefetch)
        result = train(cfg, run, phases=("pretrain_g",))
        measured[prefetch] = (result.loader_wait_seconds / result.train_seconds, result.step / result.train_seconds)
    b.notes["loader_wait_fraction"] = (
        f"cpu preset G pre-training, {steps} steps of the first epoch of the embedded set ({EMBEDDED_SIZES[0]} "
        f"training frames), time waiting for batches over loop time (which ends with one evaluation of 4 frames), "
        f"{b.threads} torch threads: with the prefetch thread {measured[True][0]:.3f} ({measured[True][1]:.2f} "
        f"steps/s), synchronous {measured[False][0]:.3f} ({measured[False][1]:.2f} steps/s)"
    )
    return {"loader_wait_fraction": measured[True][0], "loader_wait_fraction_sync": measured[False][0]}
