"""The GPU stage: the paper-preset training step on a CUDA device (null, with a note, where there is none)."""

from __future__ import annotations

from typing import Any

from elgan_ray.bench.harness import Bench
from elgan_ray.bench.step import step_times


def stage_gpu(b: Bench) -> dict[str, Any]:
    import torch

    from elgan_ray.presets import preset

    if not torch.cuda.is_available():
        b.notes["gpu"] = "no CUDA device on this machine: GPU figures not measured"
        return {"gpu_paper_step_ms": None, "ddp_2_over_1_gpu": None}
    cfg = preset("paper")
    images = torch.rand(cfg.optim.batch_size, 3, cfg.data.height, cfg.data.width)
    labels = torch.rand(cfg.optim.batch_size, 1, cfg.data.height, cfg.data.width)
    times = step_times(cfg, images, labels, b.reps, device="cuda")
    b.notes["gpu"] = f"paper preset on {torch.cuda.get_device_name(0)}; DDP on GPUs needs 2 devices"
    ddp = None  # one lent GPU here; 2-GPU DDP is measured where torch.cuda.device_count() >= 2
    return {
        "gpu_paper_step_ms": {k: v * 1e3 for k, v in times.items() if k != "gan_pair_flops"},
        "ddp_2_over_1_gpu": ddp,
    }
