"""What the sweep writes into a study's folder: run names, each run's identity file (run.json), study.json,
and evals.csv gathered from every run's own evals.jsonl, with the baselines' TensorBoard runs and previews
copied in from the shared pre-trainings. Where each of them lies is study_layout.py's.

evals.csv's `kind` says how a run trained (`pretrain` or `gan` phases) and its `role` what it is in the
experiment (`baseline`, `control` or `gan`; trial_plan.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from elgan_ray import study_layout
from elgan_ray.files import atomic_write_text
from elgan_ray.run_log import EVALS_NAME, PREVIEW_NAME, read_evals
from elgan_ray.run_status import read_status
from elgan_ray.trial_plan import BASELINE, CONTROL, GAN, LAMBDA_KEY, is_adversary_key
from elgan_ray.val_maps import VAL_MAPS_NAME

# Short names for the keys the paper's tables are about; any other varying key keeps its last part.
SHORT_NAMES = {"loss.gen": "g", "loss.disc": "d", "loss.lambda": "lambda", "loss.emb_block": "emb", "seed": "seed"}
NAMED_COLUMNS = {
    "loss.gen": "gen_loss",
    "loss.disc": "disc_loss",
    "loss.lambda": "lambda",
    "loss.emb_block": "emb_block",
}


def run_name(flat: dict[str, Any], varying: tuple[str, ...], role: str = GAN) -> str:
    """A trial's name from what differs between trials, e.g. 'g=emb,d=ce,seed=3'; a control's from what differs
    between controls, e.g. 'control,seed=3' (it shares no name with a GAN trial)."""
    parts = [CONTROL] if role == CONTROL else []
    for key in varying:
        if role == CONTROL and (is_adversary_key(key) or key == LAMBDA_KEY):
            continue
        value = flat[key]
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{SHORT_NAMES.get(key, key.rsplit('.', 1)[-1])}={text}")
    return ",".join(parts)


def baseline_name(seed: int) -> str:
    return f"baseline,seed={seed}"


def write_run_file(out_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(out_dir / study_layout.RUN_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n")


def write_study_record(study_dir: Path, record: dict[str, Any]) -> None:
    """study.json (the sweep's record of the study: its command, start, end, wall time and resources)."""
    atomic_write_text(study_layout.study_file(study_dir), json.dumps(record, indent=1) + "\n")


def gather_evals(study_dir: Path, results_root: Path, varying: tuple[str, ...]) -> pd.DataFrame:
    """One row per (run, evaluation, post-processing) -> <study>/evals.csv; baselines' TensorBoard runs copied in."""
    rows: list[dict[str, Any]] = []
    pretrains: dict[str, int] = {}
    for run_file in study_layout.run_files(study_dir, study_layout.RUN_FILE):
        run = json.loads(run_file.read_text())
        role = run.get("role", GAN)  # run.json written before controls existed: a GAN trial
        rows += _run_rows(run_file.parent, run, "gan", role, run["trial_id"], run["trial_name"], varying)
        if run.get("pretrain_id"):
            pretrains[run["pretrain_id"]] = run["config"]["seed"]
    seeds = list(pretrains.values())
    for pid, seed in sorted(pretrains.items()):
        pretrain_dir = study_layout.pretrain_root(results_root) / pid
        name = baseline_name(seed) if seeds.count(seed) == 1 else f"baseline,{pid}"
        run = {"config": {"seed": seed}}
        rows += _run_rows(pretrain_dir, run, "pretrain", BASELINE, f"pretrain_{pid}", name, varying)
        _copy_baseline(pretrain_dir, study_dir, name)
    columns = ["trial_id", "kind", "role", "trial_name", "seed", "gen_loss", "disc_loss", "lambda", "emb_block"]
    columns += ["phase", "step", "post", "accuracy", "fp", "fn", "f1", "status"]
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=columns + [c for c in frame.columns if c not in columns])
    atomic_write_text(study_layout.evals_file(study_dir), frame.to_csv(index=False))
    return frame


def _run_rows(
    run_dir: Path, run: dict[str, Any], kind: str, role: str, trial_id: str, name: str, varying: tuple[str, ...]
) -> list[dict[str, Any]]:
    config = run["config"]
    identity = {"trial_id": trial_id, "kind": kind, "role": role, "trial_name": name, "seed": config["seed"]}
    if kind == "gan":
        identity |= {column: config[key] for key, column in NAMED_COLUMNS.items()}
        identity |= {f"cfg.{key}": config[key] for key in varying if key not in NAMED_COLUMNS and key != "seed"}
    status = read_status(run_dir)["status"]
    return [identity | row | {"status": status} for row in read_evals(run_dir)]


def _copy_baseline(pretrain_dir: Path, study_dir: Path, name: str) -> None:
    """The study's own copy of a shared pre-training's TensorBoard run, preview and final maps, so the study folder
    is complete."""
    tb_dir, run_dir = study_layout.tb_dir(study_dir, name), study_layout.run_dir(study_dir, name)
    tb_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    for event_file in pretrain_dir.glob("events.out.tfevents.*"):
        shutil.copy2(event_file, tb_dir / event_file.name)
    for name_ in (PREVIEW_NAME, EVALS_NAME, VAL_MAPS_NAME):
        if (pretrain_dir / name_).exists():
            shutil.copy2(pretrain_dir / name_, run_dir / name_)
