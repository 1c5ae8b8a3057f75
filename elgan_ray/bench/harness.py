"""What every stage of `python -m elgan_ray.bench` shares: the Bench (scratch folder, repetitions, step times),
medians of repeated timings, the machine the numbers were measured on, the log line, and the synthetic lanes
that the evaluator and the post-processing stages measure on.

Medians throughout: on a shared 2-core machine a single slow repetition says more about the neighbours than
about the code.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SMOKE_TRAIN, SMOKE_VAL = 32, 8  # frames of the bench's own dataset: the smoke preset's train/val limits


@dataclass
class Bench:
    work: Path  # scratch folder
    quick: bool
    threads: int  # torch intra-op threads for every in-process measurement
    notes: dict[str, str] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)  # cpu-preset step times, filled by stage_step

    @property
    def reps(self) -> int:
        return 3 if self.quick else 7

    def data(self) -> Path:
        """A small synthetic TuSimple-layout dataset, written once."""
        from elgan_ray.data.synthetic import write_synthetic_dataset

        root = self.work / "data"
        if not (root / "synthetic.json").is_file():
            write_synthetic_dataset(root, SMOKE_TRAIN, SMOKE_VAL, 0, seed=0, progress=False)
        return root


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine(threads: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_gb, 1), "torch_threads": threads}
    info |= {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__}
    info["load_avg_1m"] = os.getloadavg()[0]  # other work on the machine slows every number here
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    for name in ("numpy", "cv2", "ray"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    return info
