"""What the report reads besides evals.csv's columns, checked whole before it writes anything: evals.csv's values,
each run folder's run.json, status.json and preview.npz, study.json, and <results>/index.csv and the outputs.

A bad input is a UserError naming the file (and the line or key) and the rule. The report (report.py) calls these
before its first write and the sweep (sweep.py) before its first trial, so a bad record never leaves half a
report behind, nor is found bad only after hours of trials. Pandas and numpy only: no matplotlib, no torch.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elgan_ray import study_layout
from elgan_ray.config import LOSS_CHOICES, MAX_HEIGHT, MAX_WIDTH
from elgan_ray.errors import UserError, quoted
from elgan_ray.files import check_writable, read_json_object, read_npz
from elgan_ray.run_status import read_status
from elgan_ray.study_frame import HEALTH
from elgan_ray.study_spec import METRIC_NAMES, POSTS, RESOURCE_RANGES, is_finite_number, resource_rule
from elgan_ray.tables import STATUSES
from elgan_ray.trial_plan import ROLES

PHASES = ("pretrain_g", "pretrain_d", "gan")  # = train_loop.PHASES (not imported: it pulls in torch)
KINDS = ("gan", "pretrain")
PREVIEW_ARRAYS = ("image", "label", "prob")
MAX_PREVIEW_BYTES = 64 << 20  # a preview.npz's arrays, uncompressed (4 frames at 720x1280 are about 40 MB)
MAX_SEED = 2**32  # = config's seed range [0, 2**32)


def check_evals(path: Path, evals: pd.DataFrame) -> None:
    """Every value of evals.csv (with its `role`, study_frame.with_roles) is one the report knows how to count:
    kind, role, phase, post, status and the losses from their lists, seeds and steps whole numbers, metrics
    fractions or empty, lambda, emb_block and D's health figures finite or empty. A UserError names the CSV line
    (header = line 1) and the column."""
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
            _first_bad(path, evals, column, ~whole, f"must be a whole number {_range_text(high)}")
    for column in ("gen_loss", "disc_loss"):  # empty in the baselines' rows
        allowed = evals[column].isna() | evals[column].isin(LOSS_CHOICES)
        _first_bad(path, evals, column, ~allowed, f"must be one of {', '.join(LOSS_CHOICES)} or empty")
    for column in METRIC_NAMES:  # fractions in [0, 1], or empty (a diverged or unscored evaluation)
        values = _numbers(path, evals, column)
        _first_bad(path, evals, column, values.notna() & ~values.between(0, 1), "must be in [0, 1] or empty")
    for column in ["lambda", "emb_block"] + [c for c in HEALTH if c in evals]:  # empty: baselines, older rows
        values = _numbers(path, evals, column)
        _first_bad(path, evals, column, values.notna() & ~np.isfinite(values), "must be a finite number or empty")


def is_number_column(column: pd.Series) -> bool:
    """Numbers (ints or floats, NaN for empty cells), not bools."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _range_text(high: float) -> str:
    return ">= 0" if math.isinf(high) else f"from 0 to {high:,.0f}"


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


STUDY_TEXT = ("study", "description", "config_path", "preset", "command", "started", "finished")


def read_study_record(path: Path) -> dict[str, Any]:
    """study.json (written by the sweep): text where the report prints text, a list of table names."""
    record = read_json_object(path)
    for key in STUDY_TEXT:
        if record.get(key) is not None and not isinstance(record[key], str):
            raise UserError(path, f"must be text or null, got {quoted(record[key])}", key=key)
    if record.get("wall_s") is not None and not is_finite_number(record["wall_s"]):
        raise UserError(path, f"must be a number of seconds or null, got {quoted(record['wall_s'])}", key="wall_s")
    tables = record.get("tables", [])
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        raise UserError(path, f"must be a list of table names, got {quoted(tables)}", key="tables")
    resources = record.get("resources")  # a trial's, as a study file's `resources`; absent in older records
    if resources is not None:
        if not isinstance(resources, dict) or set(resources) != set(RESOURCE_RANGES):
            rule = f"must map {', '.join(RESOURCE_RANGES)} to a trial's resources, got {quoted(resources)}"
            raise UserError(path, rule, key="resources")
        for key, value in resources.items():
            if resource_rule(key, value):
                raise UserError(path, f"{resource_rule(key, value)}, got {quoted(value)}", key=f"resources.{key}")
    return record


def read_run_record(path: Path) -> tuple[dict[str, Any], str]:
    """A run folder's run.json, checked, and the run's status (its status.json's; `running` without one)."""
    run = read_json_object(path)
    if not isinstance(run.get("trial_id"), (str, int)) or isinstance(run.get("trial_id"), bool):
        raise UserError(path, f"must name the run's trial, got {quoted(run.get('trial_id'))}", key="trial_id")
    if not isinstance(run.get("trial_name", ""), str):
        raise UserError(path, f"must be text, got {quoted(run['trial_name'])}", key="trial_name")
    if run.get("role", ROLES[-1]) not in ROLES:
        raise UserError(path, f"must be one of {', '.join(ROLES)}, got {quoted(run['role'])}", key="role")
    config = run.get("config", {})
    if not isinstance(config, dict):
        raise UserError(path, f"must be a mapping of config keys to values, got {quoted(config)}", key="config")
    for key, value in config.items():  # a config's values: scalars, and tuples of them (generator.down_layers)
        if not all(_is_plain(v) for v in (value if isinstance(value, list) else [value])):
            raise UserError(path, f"must be a plain value or a list of them, got {quoted(value)}", key=f"config.{key}")
    seed = config.get("seed")
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < MAX_SEED):
        rule = f"must be a whole number {_range_text(MAX_SEED - 1)}, got {quoted(seed)}"
        raise UserError(path, rule, key="config.seed")
    status = read_status(path.parent)["status"]
    if status not in STATUSES:
        status_path = path.parent / study_layout.STATUS_FILE
        raise UserError(status_path, f"must be one of {', '.join(STATUSES)}, got {quoted(status)}", key="status")
    return run, status


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


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or is_finite_number(value)


def load_previews(study_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every runs/*/preview.npz, keyed by its trial_name (the npz's own key, else the folder name), each checked:
    `image` (N, H, W, 3) uint8, `label` and `prob` (N, H, W) floats, 1 <= N, H <= 720, W <= 1280."""
    previews = {}
    for path in study_layout.run_files(study_dir, study_layout.PREVIEW_FILE):
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


def read_index(path: Path) -> pd.DataFrame | None:
    """<results>/index.csv (None when there is none yet): UTF-8 CSV with the columns `study` and `started`."""
    check_writable(path, "file")
    if not path.exists():
        return None
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UserError(path, f"cannot be read ({error.strerror or error.__class__.__name__})") from None
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise UserError(path, f"not UTF-8 text (byte 0x{raw[error.start]:02x})", line=line) from None
    try:
        index = pd.read_csv(io.StringIO(text), dtype={"started": str, "study": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(path, f"not a readable CSV ({str(error).splitlines()[0]})") from None
    if not {"study", "started"} <= set(index.columns):
        raise UserError(path, "needs the columns 'study' and 'started' (one row per study run)")
    return index


def check_outputs(study_dir: Path, results_root: Path) -> None:
    """The report's outputs can be written: the study folder, each report file in it, index.csv and its lock."""
    check_writable(study_dir, "folder")
    for name in study_layout.REPORT_FILES:
        check_writable(study_dir / name, "file")
    read_index(study_layout.index_file(results_root))  # writable (its folder too), and readable
    check_writable(study_layout.index_lock(results_root), "file")
