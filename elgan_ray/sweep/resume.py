"""What makes a study the study it is, and what `--resume` checks before Ray starts: the same study, and a record of
its own runs that can be read.

study.json records the study's definition: the SHA-256 of the study file's bytes and of its base's, the preset, a
digest of the base config they make (the preset with the study's fixed keys: it moves with the code's defaults too),
the data (as a shared pre-training's id names it) and each trial's resources (what decides how a run computes:
threads and DDP workers). A --resume whose definition differs in anything is refused in one line that lists the
differences: Tune's restored Tuners would run the old study's trials under the new name (a value added to a
scientific key never run, a preset relabelled). A user who wants more values starts a new study.

A study.json of an older sweep has no definition: its preset and resources are compared, the rest cannot be.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from elgan_ray.errors import UserError, quoted
from elgan_ray.record import layout
from elgan_ray.study.plan import PlannedRun
from elgan_ray.study.spec import SweepSpec, is_search
from elgan_ray.sweep.gather import study_rows
from elgan_ray.sweep.pretrain import data_identity
from elgan_ray.sweep.settings import SweepSettings

# The definition's keys, as a refusal names them.
WHAT = {
    "study_file": "the study file",
    "base_file": "its base",
    "preset": "the preset",
    "config": "the base config (preset and fixed keys)",
    "data": "the data",
    "resources": "a trial's resources",
}
DIGESTS = ("study_file", "base_file", "config")  # shown shortened


def definition(spec: SweepSpec, preset: str, settings: SweepSettings) -> dict[str, Any]:
    """What defines the study (study.json's `definition`)."""
    config = hashlib.sha256(json.dumps(settings.base_flat, sort_keys=True).encode()).hexdigest()
    resources = {
        "cpu": settings.cpus_per_worker,
        "gpu": settings.gpus_per_worker,
        "workers": settings.workers_per_trial,
    }
    found = {"study_file": spec.digests.get("study_file"), "base_file": spec.digests.get("base_file")}
    return found | {
        "preset": preset,
        "config": config,
        "data": data_identity(settings.data_dir),
        "resources": resources,
    }


def check_same_study(record: dict[str, Any], now: dict[str, Any], study_dir: Path) -> None:
    """UserError (study.json) listing every difference between the recorded definition and `now`'s."""
    recorded = record.get("definition")
    if not isinstance(recorded, dict):  # an older sweep's study.json
        recorded = {key: record[key] for key in ("preset", "resources") if record.get(key) is not None}
    changes = [
        _change(key, recorded[key], now.get(key)) for key in WHAT if key in recorded and recorded[key] != now.get(key)
    ]
    if changes:
        rule = f"--resume continues the same study, and this one differs: {'; '.join(changes)}. Run it as a new study "
        rule += "(another --results, or a study file of another name), or resume with what it was started with"
        raise UserError(layout.study_file(study_dir), rule)


def check_record(spec: SweepSpec, settings: SweepSettings, planned: list[PlannedRun]) -> None:
    """Every run folder of the study (run.json, status.json, evals.jsonl) and every pre-training it started from
    read and checked, as the gather will read them after the trials: a damaged or foreign record is found now, in one
    line, before Ray starts and before study.json is written again."""
    study_rows(settings, planned, is_search(spec), warn=False)


def _change(key: str, was: Any, now: Any) -> str:
    if key in DIGESTS:
        was, now = (str(v)[:12] if v else v for v in (was, now))
        return f"{WHAT[key]} changed (sha256 {was} -> {now})"
    return f"{WHAT[key]} was {quoted(was)}, now {quoted(now)}"
