"""The GPU stage: the paper-preset G+D step at 720x1280 on a CUDA device, in float32 and bf16 autocast, against the
device's dense bf16 peak; in bf16 also its peak memory per frame and the five kinds of GPU work it spends most
time on; and DDP on 2 GPUs against 1 where there are 2. Null, with a note, where there is no GPU.
"""

from __future__ import annotations

from typing import Any

from elgan_ray.bench.harness import Bench
from elgan_ray.bench.work_kinds import profile_kinds
from elgan_ray.config import AMP_CHOICES
from elgan_ray.train.timing import step_times, training_steps

PRECISIONS = AMP_CHOICES
FIGURES = ("step_ms", "images_per_s", "tflops", "peak_fraction")  # each measured in both precisions
KEYS = tuple(f"gpu_{figure}_{amp}" for figure in FIGURES for amp in PRECISIONS)
KEYS += ("gpu_peak_gib_per_frame_bf16", "gpu_top_kinds_bf16", "ddp_2_over_1_gpu")
# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, by a part of the name torch
# reports. The more specific names first: "H100 PCIe" before "H100", "L40" before "L4".
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0))
BF16_PEAK_TFLOPS += (("L40S", 362.0), ("L40", 181.0), ("L4", 121.0))


def bf16_peak_tflops(device_name: str) -> float | None:
    """The device's dense bf16 peak, None for a device not in BF16_PEAK_TFLOPS."""
    return next((peak for part, peak in BF16_PEAK_TFLOPS if part in device_name), None)


def stage_gpu(b: Bench) -> dict[str, Any]:
    import torch

    from elgan_ray.presets import preset

    if not torch.cuda.is_available():
        b.notes["gpu"] = "no CUDA device on this machine: GPU figures not measured"
        return dict.fromkeys(KEYS)
    torch.backends.cudnn.benchmark = True  # as train() on CUDA (RunSettings.cudnn_benchmark)
    name = torch.cuda.get_device_name(0)
    peak = bf16_peak_tflops(name)
    measured: dict[str, Any] = {}
    for amp in PRECISIONS:
        cfg = preset("paper").with_flat({"optim.amp": amp})
        batch, size = cfg.optim.batch_size, (cfg.data.height, cfg.data.width)
        images, labels = torch.rand(batch, 3, *size), (torch.rand(batch, 1, *size) > 0.9).float()
        times = step_times(cfg, images, labels, b.reps, device="cuda", warmup=2)
        pair = times["gan_g"] + times["d"]  # one G step of the GAN phase and one D step
        measured[f"gpu_step_ms_{amp}"] = pair * 1e3
        measured[f"gpu_images_per_s_{amp}"] = batch / pair
        achieved = times["gan_pair_flops"] / pair / 1e12  # FLOPs counted by torch's FlopCounterMode
        measured[f"gpu_tflops_{amp}"] = achieved
        measured[f"gpu_peak_fraction_{amp}"] = None if peak is None else achieved / peak
        b.notes[f"gpu_{amp}"] = "step ms by kind: " + ", ".join(
            f"{k} {v * 1e3:.1f}" for k, v in times.items() if k != "gan_pair_flops"
        )
    measured |= _memory_and_kinds(preset("paper").with_flat({"optim.amp": "bf16"}), images, labels)
    measured["ddp_2_over_1_gpu"] = _ddp_on_two(b) if torch.cuda.device_count() >= 2 else None
    b.notes["gpu"] = (
        f"paper preset, batch {batch} at {size[0]}x{size[1]} on {name}: a GAN G step plus a D step, channels_last, "
        f"cudnn.benchmark; images/s = batch / that pair's time; peak_fraction over the dense bf16 peak "
        + (f"{peak:g} TFLOP/s" if peak else "(unknown for this device: null)")
        + ("" if torch.cuda.device_count() >= 2 else "; ddp_2_over_1_gpu needs 2 GPUs (null)")
    )
    b.notes["gpu_peak_gib_per_frame_bf16"] = (
        "torch.cuda.max_memory_allocated over one GAN G step + one D step (after one untimed pair), models, "
        "optimiser states and frames included, over the batch"
    )
    b.notes["gpu_top_kinds_bf16"] = (
        "torch.profiler over one GAN G step + one D step: GPU kernel time grouped by name into kinds "
        "(bench/work_kinds.py), each kind's share of all kernel time, the five largest"
    )
    return measured


def _memory_and_kinds(cfg, images, labels) -> dict[str, Any]:
    """The bf16 G+D pair's peak GPU memory per frame and its top kinds of GPU work, on fresh models."""
    import torch

    steps = training_steps(cfg, images, labels, device="cuda")
    pair = (steps["gan_g"], steps["d"])
    for step in pair:  # cuDNN's algorithm search and the optimiser states come with the first pair
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    for step in pair:
        step()
    peak = torch.cuda.max_memory_allocated() / 2**30 / len(images)
    return {"gpu_peak_gib_per_frame_bf16": peak, "gpu_top_kinds_bf16": profile_kinds(pair, "cuda")}


def _ddp_on_two(b: Bench) -> float:
    """Samples/s of paper-preset G pre-training on 2 GPUs (Ray Train, NCCL) over 1."""
    from elgan_ray.bench.ray_stages import ddp_rates
    from elgan_ray.presets import preset

    steps = 10 if b.quick else 30
    cfg = preset("paper").with_flat({"schedule.pretrain_g_steps": steps, "schedule.eval_every": 10**6})
    rate = ddp_rates(b, cfg.with_flat({"data.val_limit": 4}), gpus_per_worker=1)
    b.notes["ddp_2_over_1_gpu"] = (
        f"paper preset G pre-training, {steps} steps; samples/s 1 GPU {rate[1]:.1f}, 2 {rate[2]:.1f}"
    )
    return rate[2] / rate[1]
