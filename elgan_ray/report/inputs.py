"""What the report reads, checked whole before it writes anything: evals.csv (its columns and every value), each run
folder's run.json, status.json and preview.npz, study.json, and <results>/index.csv and the outputs.

A bad input is a UserError naming the file (and the line or key) and the rule. The report calls these before its
first write and the sweep (check_outputs) before its first trial, so a bad record never leaves half a report
behind, nor is found bad only after hours of trials. Pandas and numpy only: no matplotlib, no torch.
"""

from __future__ import annotations

import io
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elgan_ray.config import DISC_CHOICES, LOSS_CHOICES, MAX_HEIGHT, MAX_SEED, MAX_WIDTH
from elgan_ray.errors import UserError, quoted
from elgan_ray.files import check_writable, read_npz, read_regular
from elgan_ray.record import layout
from elgan_ray.record.names import (
    BASELINE,
    CONFIG_PREFIX,
    EVALS_COLUMNS,
    GAN,
    HEALTH,
    KINDS,
    MAIN_POST,
    METRIC_NAMES,
    METRIC_RANGES,
    NAMED_CONFIG,
    PHASES,
    POSTS,
    ROLES,
    STATUSES,
    column_key,
    is_finite_number,
)
from elgan_ray.record.runs import range_text, read_run_record, read_scores, read_study_record
from elgan_ray.report.frame import varying_columns, with_groups
from elgan_ray.report.index import read_index

# evals.csv's columns without which no table can be made (`role` is inferred from `kind` in older files).
REQUIRED_COLUMNS = tuple(column for column in EVALS_COLUMNS if column != "role")
PREVIEW_ARRAYS = ("image", "label", "prob")
MAX_EVALS_CSV_BYTES = 1 << 30  # a study of 2,000 trials of a few hundred rows each is ~200 MB
MAX_PREVIEW_BYTES = 64 << 20  # a preview.npz's arrays, uncompressed (4 frames at 720x1280 are about 40 MB)


def check_evals(path: Path, evals: pd.DataFrame) -> None:
    """Every value of evals.csv (upgraded: upgrade_evals) is one the report knows how to count:
    kind, role, phase, post, status and the losses from their lists, seeds and steps whole numbers, metrics
    in their ranges (record/names.py's METRIC_RANGES: the official FP may be below 0) or empty, lambda, emb_block
    and D's health figures finite or empty. A UserError names the CSV line (header = line 1) and the column."""
    if evals.empty:
        raise UserError(path, "no rows: the sweep gathered no evaluation (did every trial fail before its first?)")
    for column, allowed in (("kind", KINDS), ("role", ROLES), ("phase", PHASES), ("post", POSTS)):
        _first_bad(path, evals, column, ~evals[column].isin(allowed), f"must be one of {', '.join(allowed)}")
    _first_bad(path, evals, "status", ~evals["status"].isin(STATUSES), f"must be one of {', '.join(STATUSES)}")
    for column in ("trial_id", "trial_name"):
        _first_bad(path, evals, column, evals[column].isna(), "must name the run (empty)")
    for column, high in (("seed", MAX_SEED - 1), ("step", math.inf), ("phase_step", math.inf)):
        if column in evals:  # phase_step: empty in rows gathered before it existed
            values = _numbers(path, evals, column)
            whole = (values % 1 == 0) & values.between(0, high) | (values.isna() & (column == "phase_step"))
            _first_bad(path, evals, column, ~whole, f"must be a whole number {range_text(high)}")
    for column, choices in (("gen_loss", LOSS_CHOICES), ("disc_loss", DISC_CHOICES)):  # empty in baselines' rows
        allowed = evals[column].isna() | evals[column].isin(choices)
        _first_bad(path, evals, column, ~allowed, f"must be one of {', '.join(choices)} or empty")
    for column in METRIC_NAMES:  # in the ranges evals.jsonl's rows are held to, or empty (a diverged evaluation)
        low, high = METRIC_RANGES[column]
        values = _numbers(path, evals, column)
        bad = values.notna() & ~values.between(low, high)
        _first_bad(path, evals, column, bad, f"must be a number from {low:g} to {high:g}, or empty")
    for column in ["lambda", "emb_block"] + [c for c in HEALTH if c in evals]:  # empty: baselines, older rows
        values = _numbers(path, evals, column)
        _first_bad(path, evals, column, values.notna() & ~np.isfinite(values), "must be a finite number or empty")


def is_number_column(column: pd.Series) -> bool:
    """Numbers (ints or floats, NaN for empty cells), not bools."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _numbers(path: Path, evals: pd.DataFrame, column: str) -> pd.Series:
    if not is_number_column(evals[column]):
        raise UserError(path, "must hold numbers (empty for a missing metric)", key=column)
    return evals[column].astype(float)


def _first_bad(path: Path, evals: pd.DataFrame, column: str, bad: pd.Series, rule: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = evals[column].iloc[row]
        value = value.item() if isinstance(value, np.generic) else value  # quoted as 'inf', not np.float64(inf)
        raise UserError(path, f"{rule}, got {quoted(value)}", line=row + 2, key=column)


def config_cell(path: Path, key: str, value: Any, column: pd.Series) -> Any:
    """A silent run's config value (its run.json's) as a cell of evals.csv's `column`: a number where the column
    holds numbers (a UserError naming run.json where it is none), else text (a list as the sweep's CSV writes it),
    so that a column holds one kind of value and sorts."""
    if value is None:
        return None
    if is_number_column(column):
        if not is_finite_number(value):
            rule = f"must be a number, as evals.csv's column {quoted(column.name)} holds, got {quoted(value)}"
            raise UserError(path, rule, key=f"config.{key}")
        return value
    return str(value)


def load_previews(study_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every runs/*/preview.npz, keyed by its trial_name (the npz's own key, else the folder name), each checked:
    `image` (N, H, W, 3) uint8, `label` and `prob` (N, H, W) floats, 1 <= N, H <= 720, W <= 1280."""
    previews = {}
    for path in layout.run_files(study_dir, layout.PREVIEW_FILE):
        arrays = read_npz(path, "a readable preview", MAX_PREVIEW_BYTES)
        missing = [name for name in PREVIEW_ARRAYS if name not in arrays]
        if missing:
            raise UserError(path, f"missing the array(s) {', '.join(missing)} of a preview")
        image, label, prob = (arrays[name] for name in PREVIEW_ARRAYS)
        shape_ok = label.ndim == 3 and len(label) >= 1 and label.shape[1] <= MAX_HEIGHT and label.shape[2] <= MAX_WIDTH
        shape_ok = shape_ok and prob.shape == label.shape and image.shape == (*label.shape, 3)
        types_ok = image.dtype == np.uint8 and label.dtype.kind == "f" and prob.dtype.kind == "f"
        if not (shape_ok and types_ok):
            shapes = ", ".join(f"{name} {arrays[name].shape} {arrays[name].dtype}" for name in PREVIEW_ARRAYS)
            wanted = "image (N, H, W, 3) uint8, label and prob (N, H, W) floats"
            raise UserError(path, f"not a preview: {wanted} ({shapes})")
        name = str(arrays.pop("trial_name", path.parent.name))
        previews[name] = arrays
    return previews


def check_outputs(study_dir: Path, results_root: Path) -> None:
    """The report's outputs can be written: the study folder, each report file in it, index.csv and its lock."""
    check_writable(study_dir, "folder")
    for name in layout.REPORT_FILES:
        check_writable(study_dir / name, "file")
    read_index(layout.index_file(results_root))  # writable (its folder too), and readable
    check_writable(layout.index_lock(results_root), "file")


def read_study_evals(path: Path) -> pd.DataFrame:
    """evals.csv, checked against the sweep's contract; a bad file is a UserError naming it and the rule."""
    if not os.path.lexists(path):
        raise UserError(path, "not found: a study folder holds the evals.csv the sweep gathers")
    data = read_regular(path, MAX_EVALS_CSV_BYTES, "evals.csv")  # a FIFO or a device is refused, as such
    try:
        evals = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise UserError(path, f"not a readable CSV ({str(error).splitlines()[0]})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in evals.columns]
    if missing:
        raise UserError(path, f"missing column(s) {', '.join(missing)}: every row needs {', '.join(REQUIRED_COLUMNS)}")
    evals = upgrade_evals(evals)
    check_evals(path, evals)
    evals = evals.astype({"trial_id": str, "trial_name": str})  # ids of digits alone too: a silent run's are text
    if not (evals["role"] == GAN).any():
        raise UserError(path, "no 'gan' rows (column 'role'): the study has no GAN trial to report", key="role")
    return evals


def upgrade_evals(evals: pd.DataFrame) -> pd.DataFrame:
    """An older evals.csv as the current record version reads (record/names.py's RECORD_VERSION): one gathered
    before controls existed gets its `role` from `kind`. Rows gathered before phase_step and D's health figures
    existed keep those cells empty, which the tables and figures read as absent."""
    if "role" not in evals:
        evals = evals.assign(role=evals["kind"].map({"pretrain": BASELINE, "gan": GAN}))
    return evals


def read_study(study_dir: Path, evals: pd.DataFrame) -> dict[str, Any]:
    """study.json, or what can be inferred without it (the folder name, the table forms from what varies); an older
    record's missing keys take what its sweep did (record_version 1; metric: basic++ accuracy, maximised)."""
    path = layout.study_file(study_dir)
    record = read_study_record(path) if path.exists() else {}
    started = datetime.fromtimestamp(layout.evals_file(study_dir).stat().st_mtime, timezone.utc)
    inferred = {"study": study_dir.name, "description": "", "config_path": "", "preset": "unknown", "command": ""}
    inferred |= {"started": started.isoformat(timespec="seconds"), "finished": None, "wall_s": None}
    inferred |= {"record_version": 1, "metric": {"name": "accuracy", "post": MAIN_POST, "mode": "max"}}
    varying = varying_columns(evals)
    tables = ["stability"] + [t for t, c in (("embedding", "emb_block"), ("lambda", "lambda")) if c in varying]
    inferred["tables"] = tables + ([BASELINE] if (evals["role"] == BASELINE).any() else [])
    return inferred | {k: v for k, v in record.items() if v is not None or k not in inferred}


def with_silent_runs(evals: pd.DataFrame, study_dir: Path) -> pd.DataFrame:
    """evals plus one metric-less row per GAN run that has a runs/*/run.json but no evaluation row (a trial that
    failed or diverged before its first evaluation), so that it is counted in its group, not dropped."""
    rows = []
    columns = [*NAMED_CONFIG, *(column for column in evals if column.startswith(CONFIG_PREFIX))]
    keys = {column: column_key(column) for column in columns}  # config column -> config key
    for path in layout.run_files(study_dir, layout.RUN_FILE):
        run, status = read_run_record(path)
        if str(run["trial_id"]) in set(evals["trial_id"]):
            continue
        config = run.get("config", {})
        row = {"trial_id": str(run["trial_id"]), "kind": "gan", "role": run.get("role", GAN)}
        row |= {"trial_name": run.get("trial_name", path.parent.name)}
        row |= {"seed": config.get("seed"), "status": status}
        row |= {column: config_cell(path, key, config.get(key), evals[column]) for column, key in keys.items()}
        rows.append(row)
    if not rows:
        return evals
    frame = pd.concat([evals, pd.DataFrame(rows)], ignore_index=True)
    # A text column read from the CSV may hold bools too (True, False and empty): one kind per column, so it sorts.
    text = [column for column in keys if not is_number_column(evals[column])]
    return frame.assign(**{c: frame[c].map(lambda v: v if pd.isna(v) else str(v)) for c in text})


def test_scores(study_dir: Path, evals: pd.DataFrame) -> pd.DataFrame:
    """The test set's scores of the study's runs (runs/*/scores_test.json, written by the sweep's --predict test),
    per method: accuracy (%), FP, FN averaged over its runs; empty when no run predicted the test set."""
    groups = with_groups(evals).groupby("trial_name")["group"].first()
    rows = []
    for path in layout.run_files(study_dir, layout.scores_file("test")):
        scores = read_scores(path)
        group = groups.get(path.parent.name)
        if group is None:
            raise UserError(path, "belongs to no run of evals.csv: the scores of a run the study does not hold")
        rows.append({"group": group, "post": scores["post"]} | {k: scores[k] for k in ("accuracy", "fp", "fn")})
    if not rows:
        return pd.DataFrame(columns=["method", "group", "post", "n_runs", "accuracy", "fp", "fn"])
    frame = pd.DataFrame(rows)
    table = frame.groupby(["group", "post"]).agg(n_runs=("accuracy", "size"), accuracy=("accuracy", "mean"))
    table = table.join(frame.groupby(["group", "post"])[["fp", "fn"]].mean()).reset_index()
    table["accuracy"] *= 100
    configs = evals[evals["role"] == GAN].pipe(with_groups).groupby("group")[["gen_loss", "disc_loss"]].first()
    el_gan = {g for g in configs.index if tuple(configs.loc[g]) == ("emb", "ce")}
    table.insert(0, "method", table["group"].map(lambda g: "EL-GAN" if g in el_gan else g))
    return table


def seen_in_training(study_dir: Path) -> bool:
    """Whether a run of the study trained on the validation sequence too (data.train_split: trainval): its
    validation figures are then of frames it saw in training."""
    return any(
        read_run_record(path)[0].get("config", {}).get("data.train_split") == "trainval"
        for path in layout.run_files(study_dir, layout.RUN_FILE)
    )
