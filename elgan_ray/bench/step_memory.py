"""The paper_memory stage: how much one paper-preset training step adds to a process's peak memory on CPU.

The figure is the growth of the peak resident set (VmHWM) over one GAN G step and one D step of fresh models at
720x1280, batch 1, float32, channels_last as train() runs them: what a frame costs beyond the models, their
optimisers and the data. It is measured in a spawned process, so that no earlier stage's peak hides it.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from elgan_ray.bench.harness import Bench

KEYS = ("paper_peak_mib_per_frame_cpu",)
PRESET = "paper"
BATCH = 1  # frames: at the paper's batch of 8 the naive models needed 67 GiB
STATUS = Path("/proc/self/status")


def peak_growth(preset_name: str, threads: int, batch: int = BATCH, size: tuple[int, int] | None = None) -> dict:
    """In this process: MiB by which the peak RSS grows over one GAN G step + one D step of fresh models of the
    preset (at `size`, default the preset's), and the two steps' seconds."""
    import torch

    from elgan_ray.presets import preset
    from elgan_ray.train.timing import training_steps

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = preset(preset_name)
    h, w = size or (cfg.data.height, cfg.data.width)
    images, labels = torch.rand(batch, 3, h, w), (torch.rand(batch, 1, h, w) > 0.97).float()
    steps = training_steps(cfg, images, labels)
    before = _reset_peak_mib()
    started = time.perf_counter()
    steps["gan_g"]()
    between = time.perf_counter()
    steps["d"]()
    return {
        "growth_mib": _peak_mib() - before,
        "gan_g_s": between - started,
        "d_s": time.perf_counter() - between,
    }


def stage_paper_memory(b: Bench) -> dict[str, Any]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        measured = pool.submit(peak_growth, PRESET, b.threads).result()
    b.notes["paper_peak_mib_per_frame_cpu"] = (
        f"growth of the peak RSS (VmHWM) over one GAN G step ({measured['gan_g_s']:.0f} s) + one D step "
        f"({measured['d_s']:.0f} s) of fresh {PRESET}-preset models at its full size, batch {BATCH}, float32, "
        f"channels_last, in a spawned process, {b.threads} torch threads; measured once in --quick too (a peak "
        f"needs no repetitions, and the stage takes about as long as those two steps)"
    )
    return {"paper_peak_mib_per_frame_cpu": measured["growth_mib"] / BATCH}


def _reset_peak_mib() -> float:
    """The RSS now, with the peak reset to it where Linux allows (otherwise the peak so far, which it bounds)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    return _peak_mib()


def _peak_mib() -> float:
    """This process's peak RSS so far, in MiB."""
    if STATUS.is_file():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
