"""The sweep's gather: <study>/evals.csv from every run's own evals.jsonl (the report's only source), with the
baselines' TensorBoard runs, previews and final maps copied in from the shared pre-trainings, so that the study
folder is complete. Where each file lies is record/layout.py's; evals.csv's columns are record/names.py's.

evals.csv's `kind` says how a run trained (`pretrain` or `gan` phases) and its `role` what it is in the
experiment (`baseline`, `control` or `gan`; study/plan.py).

Who a row is of comes from its run folder and the study's plan, never from the row (record/runs.py refuses a row
that names a run): a run folder's run.json must name the folder's run, its config must be that run's in the plan
(a search study's sampled trials: give the folder's name), and its pre-training must be the one its config has.
`study_rows` reads and checks it all without writing: what a --resume checks before Ray starts, and what the gather
then writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from elgan_ray.config import TrainConfig, without_retired
from elgan_ray.errors import UserError, quoted
from elgan_ray.files import atomic_write_text
from elgan_ray.record import layout
from elgan_ray.record.layout import PREVIEW_FILE, RUN_EVALS_FILE, VAL_MAPS_FILE
from elgan_ray.record.names import BASELINE, CONFIG_COLUMNS, CONTROL, EVALS_COLUMNS, GAN, SEED_KEY, config_column
from elgan_ray.record.runs import read_run_evals, read_run_record, read_status
from elgan_ray.study.plan import PlannedRun, baseline_name, run_name
from elgan_ray.sweep.pretrain import data_identity, is_finished, pretrain_id
from elgan_ray.sweep.settings import SweepSettings


def gather_evals(settings: SweepSettings, planned: list[PlannedRun], search: bool) -> pd.DataFrame:
    """One row per (run, evaluation, post-processing) -> <study>/evals.csv; baselines' TensorBoard runs copied in.
    `planned` are the study's runs (study/plan.py's planned_runs), `search` whether its GAN trials are sampled."""
    rows, baselines = study_rows(settings, planned, search)
    for pid, name in baselines.items():
        _copy_baseline(layout.pretrain_root(settings.results_root) / pid, settings.study_dir, name)
    columns = list(EVALS_COLUMNS)
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=columns + [c for c in frame.columns if c not in columns])
    atomic_write_text(layout.evals_file(settings.study_dir), frame.to_csv(index=False))
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


def study_rows(
    settings: SweepSettings, planned: list[PlannedRun], search: bool, warn: bool = True
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every evaluation row of the study, each with its run's identity, and the baselines' names by pre-training id;
    every run folder and row checked (a UserError names the first bad one). `warn`: about a dropped torn last line."""
    by_name = {run.name: run for run in planned}
    rows: list[dict[str, Any]] = []
    pretrains: dict[str, int] = {}
    trial_ids: dict[str, str] = {}
    for run_file in layout.run_files(settings.study_dir, layout.RUN_FILE):
        run, _ = read_run_record(run_file)
        role, config, pid = _checked_identity(run_file, run, settings, by_name, search)
        name, trial_id = run_file.parent.name, str(run["trial_id"])
        if trial_id in trial_ids:
            raise UserError(run_file, f"names the trial of runs/{trial_ids[trial_id]} too", key="trial_id")
        trial_ids[trial_id] = name
        rows += _run_rows(run_file.parent, config, "gan", role, trial_id, name, settings.varying, warn)
        if pid:
            pretrains[pid] = config[SEED_KEY]
    seeds = list(pretrains.values())
    baselines = {}
    for pid, seed in sorted(pretrains.items()):
        name = baseline_name(seed) if seeds.count(seed) == 1 else f"baseline,{pid}"
        pretrain_dir = layout.pretrain_root(settings.results_root) / pid
        rows += _run_rows(pretrain_dir, {SEED_KEY: seed}, "pretrain", BASELINE, f"pretrain_{pid}", name, (), warn)
        baselines[pid] = name
    return rows, baselines


def _checked_identity(
    path: Path, run: dict[str, Any], settings: SweepSettings, by_name: dict[str, PlannedRun], search: bool
) -> tuple[str, dict[str, Any], str | None]:
    """(role, config, pre-training id) of a run folder's run.json (read_run_record has checked that it names its
    folder's run), checked against the folder's name, the study's plan and the pre-training its config has."""
    name = path.parent.name
    role = run.get("role", GAN)  # run.json written before controls existed: a GAN trial
    if role not in (CONTROL, GAN):
        raise UserError(path, f"must be {CONTROL} or {GAN} in a run folder, got {quoted(role)}", key="role")
    config = without_retired(run.get("config", {}))
    cfg = TrainConfig.from_flat(config, source=str(path))  # every key and value a TrainConfig's
    if run_name(cfg.to_flat(), settings.varying, role) != name:
        rule = f"its config and role make the run {quoted(run_name(cfg.to_flat(), settings.varying, role))}"
        raise UserError(path, rule + ", not this folder's", key="config")
    plan = by_name.get(name)
    if plan is None and not (search and role == GAN):  # a search study's GAN trials are sampled: not in the plan
        raise UserError(path, f"the study's plan has no run {quoted(name)} (a folder of another study?)")
    if plan is not None and (plan.role != role or json.loads(json.dumps(plan.cfg.to_flat())) != config):
        raise UserError(path, f"is not the plan's {plan.role} run {quoted(name)} (its role or config differ)")
    pid = run.get("pretrain_id")
    if pid is not None and pid != pretrain_id(cfg, data_identity(settings.data_dir)):
        rule = f"names the pre-training {quoted(pid)}, not the one its config and data have"
        raise UserError(path, rule, key="pretrain_id")
    return role, config, pid


def _run_rows(
    run_dir: Path,
    config: dict[str, Any],
    kind: str,
    role: str,
    trial_id: str,
    name: str,
    varying: tuple[str, ...],
    warn: bool,
) -> list[dict[str, Any]]:
    identity = {"trial_id": trial_id, "kind": kind, "role": role, "trial_name": name, SEED_KEY: config[SEED_KEY]}
    if kind == "gan":
        identity |= {column: config[key] for key, column in CONFIG_COLUMNS.items()}
        named = (*CONFIG_COLUMNS, SEED_KEY)
        identity |= {config_column(key): config[key] for key in varying if key not in named}
    status = read_status(run_dir)["status"]
    # A row holds no identity key (record/runs.py refuses one), so nothing of a row can override its run's.
    return [identity | row | {"status": status} for row in read_run_evals(run_dir, warn=warn)]


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
