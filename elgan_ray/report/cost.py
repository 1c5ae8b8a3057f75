"""What a study cost, from the records its runs leave: trial-seconds of training, CPU- and GPU-hours reserved.

Every run counts: the controls and GAN trials (runs/*/status.json) and each shared generator pre-training they
started from (run.json's pretrain_id -> <results>/_pretrain/<id>/status.json), once, also when another study
computed it first, so that the figure is what the study's results cost, whatever the cache held. A run's time is
its `train_seconds`, the training loop's time in its last process (set-up, and loop time before a restart, are
not in it). Reserved hours are that time x the CPUs and GPUs a trial of the study held (study.json `resources`:
per worker, times the workers of a trial; a pre-training runs inside the trial that needed it, with its
resources). A run with no recorded time (failed, stopped by a scheduler, still running) is counted apart.

The wall time is study.json's `wall_s` (from Ray's start to the gathered evals.csv). Reads JSON only: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elgan_ray.errors import UserError, quoted
from elgan_ray.files import read_json_object
from elgan_ray.record import layout
from elgan_ray.record.names import is_finite_number
from elgan_ray.record.runs import read_status

SECONDS_PER_HOUR = 3600.0
INDEX_COLUMNS = ("trial_seconds", "cpu_hours", "gpu_hours")  # StudyCost.index_columns


@dataclass(frozen=True)
class StudyCost:
    runs: int  # runs with a recorded time: controls, GAN trials and the pre-trainings they share
    untimed: int  # runs without one (failed, stopped, running): not in the figures below
    trial_seconds: float  # the runs' training time, added up
    cpu_hours: float | None  # trial_seconds x CPUs per trial (None: study.json records no resources)
    gpu_hours: float | None
    wall_seconds: float | None  # study.json's wall_s

    def index_columns(self) -> dict[str, Any]:
        """The cost columns of results/index.csv (INDEX_COLUMNS; its wall_s is the wall time)."""
        hours = {name: getattr(self, name) for name in ("cpu_hours", "gpu_hours")}
        rounded = {name: None if value is None else round(value, 4) for name, value in hours.items()}
        return {"trial_seconds": round(self.trial_seconds, 1)} | rounded

    def line(self) -> str:
        """One line for table.md."""
        text = f"{self.trial_seconds:,.0f} trial-seconds of training over {self.runs} runs"
        if self.cpu_hours is not None:
            text += f"; reserved {self.cpu_hours:.3g} CPU-hours and {self.gpu_hours:.3g} GPU-hours"
        if self.wall_seconds is not None:
            text += f"; {self.wall_seconds:,.0f} s wall time"
        if self.untimed:
            text += f" ({self.untimed} run(s) without a recorded time, not counted)"
        return text


def trial_resources(study: dict[str, Any]) -> tuple[float, float] | None:
    """(CPUs, GPUs) a trial of the study held, from study.json's `resources` (None in a record without them)."""
    resources = study.get("resources")
    if not resources:
        return None
    return resources["cpu"] * resources["workers"], resources["gpu"] * resources["workers"]


def study_cost(study_dir: Path, results_root: Path, study: dict[str, Any]) -> StudyCost:
    """The cost of one study folder's runs (study: its checked study.json, record/runs.py's read_study_record)."""
    seconds, pretrains = [], set()
    for path in layout.run_files(study_dir, layout.RUN_FILE):
        seconds.append(_train_seconds(path.parent))
        pid = read_json_object(path).get("pretrain_id")
        if isinstance(pid, str) and pid:
            pretrains.add(pid)
    root = layout.pretrain_root(results_root)
    seconds += [_train_seconds(root / pid) for pid in sorted(pretrains)]
    timed = [s for s in seconds if s is not None]
    total = sum(timed)
    held = trial_resources(study)
    cpu_hours, gpu_hours = (None, None) if held is None else (total * h / SECONDS_PER_HOUR for h in held)
    return StudyCost(len(timed), len(seconds) - len(timed), total, cpu_hours, gpu_hours, study.get("wall_s"))


def _train_seconds(run_dir: Path) -> float | None:
    """A run's train_seconds (None while it runs, or without a time); a UserError when it is no time."""
    value = read_status(run_dir).get("train_seconds")
    if value is not None and not (is_finite_number(value) and value >= 0):
        rule = f"must be a number of seconds >= 0, got {quoted(value)}"
        raise UserError(run_dir / layout.STATUS_FILE, rule, key="train_seconds")
    return value
