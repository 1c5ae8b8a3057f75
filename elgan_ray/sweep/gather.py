"""The sweep's gather: <study>/evals.csv from every run's own evals.jsonl (the report's only source), with the
baselines' TensorBoard runs, previews and final maps copied in from the shared pre-trainings, so that the study
folder is complete. Where each file lies is record/layout.py's; evals.csv's columns are record/names.py's.

evals.csv's `kind` says how a run trained (`pretrain` or `gan` phases) and its `role` what it is in the
experiment (`baseline`, `control` or `gan`; study/plan.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from elgan_ray.errors import UserError
from elgan_ray.files import atomic_write_text
from elgan_ray.record import layout
from elgan_ray.record.layout import PREVIEW_FILE, RUN_EVALS_FILE, VAL_MAPS_FILE
from elgan_ray.record.names import BASELINE, CONFIG_COLUMNS, CONTROL, EVALS_COLUMNS, GAN, SEED_KEY, config_column
from elgan_ray.record.runs import read_run_evals, read_run_record, read_status
from elgan_ray.study.plan import PlannedRun, baseline_name
from elgan_ray.sweep.pretrain import is_finished


def gather_evals(study_dir: Path, results_root: Path, varying: tuple[str, ...]) -> pd.DataFrame:
    """One row per (run, evaluation, post-processing) -> <study>/evals.csv; baselines' TensorBoard runs copied in."""
    rows: list[dict[str, Any]] = []
    pretrains: dict[str, int] = {}
    for run_file in layout.run_files(study_dir, layout.RUN_FILE):
        run, _ = read_run_record(run_file)
        role = run.get("role", GAN)  # run.json written before controls existed: a GAN trial
        rows += _run_rows(run_file.parent, run, "gan", role, run["trial_id"], run["trial_name"], varying)
        if run.get("pretrain_id"):
            pretrains[run["pretrain_id"]] = run["config"][SEED_KEY]
    seeds = list(pretrains.values())
    for pid, seed in sorted(pretrains.items()):
        pretrain_dir = layout.pretrain_root(results_root) / pid
        name = baseline_name(seed) if seeds.count(seed) == 1 else f"baseline,{pid}"
        run = {"config": {SEED_KEY: seed}}
        rows += _run_rows(pretrain_dir, run, "pretrain", BASELINE, f"pretrain_{pid}", name, varying)
        _copy_baseline(pretrain_dir, study_dir, name)
    columns = list(EVALS_COLUMNS)
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=columns + [c for c in frame.columns if c not in columns])
    atomic_write_text(layout.evals_file(study_dir), frame.to_csv(index=False))
    return frame


def check_complete(study_dir: Path, results_root: Path, runs: list[PlannedRun], searched: bool) -> None:
    """UserError naming every planned run whose record the driver does not find after the study: no run.json, or
    no status (its process was lost and never restarted), and every baseline of a finished run without its
    pre-training. Never a report that silently covers fewer runs than the plan (a node whose results the driver
    cannot see, a worker lost for good). A search study's GAN trials are counted, their names being Optuna's."""
    found: dict[str, tuple[str, str, str | None]] = {}
    for run_file in layout.run_files(study_dir, layout.RUN_FILE):
        run, status = read_run_record(run_file)
        found[run_file.parent.name] = (run.get("role", GAN), status, run.get("pretrain_id"))
    ended = {name: role for name, (role, status, _) in found.items() if status != "running"}
    missing = [run.name for run in runs if (run.role == CONTROL or not searched) and run.name not in ended]
    if searched:
        planned = sum(run.role == GAN for run in runs)
        short = planned - sum(role == GAN for role in ended.values())
        if short > 0:
            missing.append(f"{short} of the {planned} GAN trials")
    started = {pid for _, status, pid in found.values() if pid and status in ("ok", "diverged", "stopped")}
    pretrain_root = layout.pretrain_root(results_root)
    missing += [f"baseline {pid}" for pid in sorted(started) if not is_finished(pretrain_root / pid)]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        rule = f"{len(missing)} planned run(s) have no record here: {shown}. Their trials wrote where this driver "
        rule += "cannot read (a node that does not see --results?) or were lost; fix that and run again with --resume"
        raise UserError(study_dir, rule)


def _run_rows(
    run_dir: Path, run: dict[str, Any], kind: str, role: str, trial_id: str, name: str, varying: tuple[str, ...]
) -> list[dict[str, Any]]:
    config = run["config"]
    identity = {"trial_id": trial_id, "kind": kind, "role": role, "trial_name": name, SEED_KEY: config[SEED_KEY]}
    if kind == "gan":
        identity |= {column: config[key] for key, column in CONFIG_COLUMNS.items()}
        named = (*CONFIG_COLUMNS, SEED_KEY)
        identity |= {config_column(key): config[key] for key in varying if key not in named}
    status = read_status(run_dir)["status"]
    return [identity | row | {"status": status} for row in read_run_evals(run_dir)]


def _copy_baseline(pretrain_dir: Path, study_dir: Path, name: str) -> None:
    """The study's own copy of a shared pre-training's TensorBoard run, preview and final maps, so the study folder
    is complete."""
    tb_dir, run_dir = layout.tb_dir(study_dir, name), layout.run_dir(study_dir, name)
    tb_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    for event_file in pretrain_dir.glob("events.out.tfevents.*"):
        shutil.copy2(event_file, tb_dir / event_file.name)
    copied = (PREVIEW_FILE, RUN_EVALS_FILE, VAL_MAPS_FILE)
    copied += tuple(f(split) for f in (layout.predictions_file, layout.scores_file) for split in ("test", "val"))
    for name_ in copied:
        if (pretrain_dir / name_).exists():
            shutil.copy2(pretrain_dir / name_, run_dir / name_)
