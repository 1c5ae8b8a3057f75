"""The readers and writers of the record's JSON files, one each, used by every stage that touches them:

  evals.jsonl   a run's evaluations, one row per evaluation and post-processing (appended by train/run_log.py)
  status.json   how a run's last process left it (`status`: ok, diverged, failed, stopped; `running` while there
                is none) and its figures (train_seconds, loader_wait_seconds, workers, ...)
  run.json      a sweep run's identity: trial id and name, role, config, the pre-training it started from
  study.json    the sweep's record of a study: its command, preset, start, end, wall time and resources

Where each lies is layout.py's. JSON only: no torch, no TensorBoard, no pandas.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from elgan_ray.config import MAX_SEED
from elgan_ray.errors import UserError, quoted
from elgan_ray.files import atomic_write_text, read_json_object, read_regular
from elgan_ray.record import layout
from elgan_ray.record.names import (
    HEALTH,
    LOSSES,
    METRIC_RANGES,
    PHASES,
    POSTS,
    RESOURCE_RANGES,
    ROLES,
    STATUSES,
    is_finite_number,
    resource_rule,
)

MAX_EVALS_BYTES = 256 << 20  # one run's evals.jsonl: ~600 bytes a row, so about 400,000 rows
# An evaluation row of evals.jsonl (train/run_log.py writes it): every key it may hold, and what each holds. Rows
# written before phase_step, the losses or D's health existed lack those keys. Who a row is of (run name, role, trial
# id, seed) is no key of it: that is its run folder's and its plan's (sweep/gather.py), so a row that names a run is
# refused, like any key not listed here.
ROW_CHOICES = {"phase": PHASES, "post": POSTS}  # required
ROW_WHOLE = ("step", "phase_step")  # whole numbers >= 0; step required
ROW_RANGES = METRIC_RANGES | {"line_width": (0.0, math.inf), "label_width": (0.0, math.inf)}  # in range, or null
ROW_FINITE = LOSSES + HEALTH  # finite numbers, or null
ROW_KEYS = (*ROW_CHOICES, *ROW_WHOLE, *ROW_RANGES, *ROW_FINITE)


def read_status(out_dir: str | Path) -> dict[str, Any]:
    """status.json of a run ({"status": "running"} while there is none); a damaged one is a UserError."""
    path = Path(out_dir) / layout.STATUS_FILE
    if not os.path.lexists(path):  # a dangling link is no missing record: read_json_object says what it is
        return {"status": "running"}
    status = read_json_object(path)
    if "status" not in status:
        raise UserError(path, "has no 'status': a status record says how its run ended")
    if not isinstance(status["status"], str):
        raise UserError(path, f"must be text, got {quoted(status['status'])}", key="status")
    return status


def write_status(out_dir: str | Path, status: dict[str, Any]) -> None:
    atomic_write_text(Path(out_dir) / layout.STATUS_FILE, json.dumps(status, indent=1, sort_keys=True) + "\n")


def record_files(out_dir: str | Path) -> list[str]:
    """The files of a run's record in `out_dir` that a new run would replace: status.json, and evals.jsonl when it
    holds anything (a run writes an empty one before its first evaluation)."""
    out_dir = Path(out_dir)
    found = [layout.STATUS_FILE] if os.path.lexists(out_dir / layout.STATUS_FILE) else []
    evals = out_dir / layout.RUN_EVALS_FILE
    if os.path.lexists(evals) and not (evals.is_file() and evals.stat().st_size == 0):
        found.insert(0, layout.RUN_EVALS_FILE)
    return found


def read_run_evals(out_dir: str | Path, warn: bool = True) -> list[dict[str, Any]]:
    """The rows of a run's evals.jsonl, every one checked; a UserError names the file and line of a bad one.

    Rows are appended whole, each ending with a newline, so only the last line can be torn (a crash in the
    middle of an append): a last line without its newline that is not a complete row is dropped with a
    warning on stderr (unless `warn` is False). Any other bad line is an error: a record is never silently
    shortened.
    """
    path = Path(out_dir) / layout.RUN_EVALS_FILE
    if not os.path.lexists(path):
        return []
    lines = read_regular(path, MAX_EVALS_BYTES, "evals.jsonl").split(b"\n")
    torn = lines.pop()  # b"" after a final newline, else a last line that was never finished
    rows = [_eval_row(path, n, line) for n, line in enumerate(lines, start=1)]
    if torn:
        try:
            rows.append(_eval_row(path, len(lines) + 1, torn))
        except UserError:
            if warn:
                where = f"{path}:{len(lines) + 1}"
                print(f"warning: {where}: dropped a torn last line (a write was interrupted)", file=sys.stderr)
    return rows


def _eval_row(path: Path, n: int, line: bytes) -> dict[str, Any]:
    """One line of evals.jsonl as a row, or UserError naming the line (and key) and the rule it breaks."""
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(path, "not UTF-8 text", line=n) from None
    except RecursionError:
        raise UserError(path, "not JSON (nested too deeply): every line is one evaluation row", line=n) from None
    except ValueError as error:
        reason = "blank line" if not line.strip() else f"not JSON ({getattr(error, 'msg', 'unreadable')})"
        raise UserError(path, f"{reason}: every line is one evaluation row", line=n) from None
    if not isinstance(row, dict) or any(key not in row for key in ("step", *ROW_CHOICES)):
        raise UserError(path, "an evaluation row is a JSON object with an integer step, a phase and a post", line=n)
    for key, value in row.items():
        rule = row_rule(key, value)
        if rule:
            raise UserError(path, rule if key not in ROW_KEYS else f"{rule}, got {quoted(value)}", line=n, key=key)
    return row


def row_rule(key: str, value: Any) -> str | None:
    """Why `value` is not what an evaluation row's `key` holds (ROW_KEYS), or None when it is."""
    if key in ROW_CHOICES:
        ok = isinstance(value, str) and value in ROW_CHOICES[key]
        return None if ok else f"must be one of {', '.join(ROW_CHOICES[key])}"
    if key in ROW_WHOLE:
        whole = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if whole else "must be a whole number >= 0"
    if key in ROW_RANGES:
        low, high = ROW_RANGES[key]
        inside = value is None or (is_finite_number(value) and low <= value <= high)
        span = f">= {low:g}" if math.isinf(high) else f"from {low:g} to {high:g}"
        return None if inside else f"must be a number {span}, or null"
    if key in ROW_FINITE:
        return None if value is None or is_finite_number(value) else "must be a finite number, or null"
    return "is no key of an evaluation row: a row holds what was measured, and the run it is of is its folder's"


def write_run_record(out_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(out_dir / layout.RUN_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n")


def write_study_record(study_dir: Path, record: dict[str, Any]) -> None:
    """study.json (the sweep's record of the study: its command, start, end, wall time and resources)."""
    atomic_write_text(layout.study_file(study_dir), json.dumps(record, indent=1) + "\n")


def range_text(high: float) -> str:
    """The rule of a whole number from 0 to `high` (inf: no upper bound), as an error message words it."""
    return ">= 0" if math.isinf(high) else f"from 0 to {high:,.0f}"


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
    if run.get("trial_name", path.parent.name) != path.parent.name:  # a run's name is its folder's
        rule = f"names the run {quoted(run['trial_name'])}, but it lies in the folder of {quoted(path.parent.name)}"
        raise UserError(path, rule, key="trial_name")
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
        rule = f"must be a whole number {range_text(MAX_SEED - 1)}, got {quoted(seed)}"
        raise UserError(path, rule, key="config.seed")
    status = read_status(path.parent)["status"]
    if status not in STATUSES:
        status_path = path.parent / layout.STATUS_FILE
        raise UserError(status_path, f"must be one of {', '.join(STATUSES)}, got {quoted(status)}", key="status")
    return run, status


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or is_finite_number(value)


SCORE_KEYS = ("accuracy", "fp", "fn", "f1")


def write_scores(path: Path, scores: dict[str, Any]) -> None:
    """scores_<split>.json: the official scores of a run's submission file (predict/)."""
    atomic_write_text(path, json.dumps(scores, indent=1, sort_keys=True) + "\n")


def read_scores(path: Path) -> dict[str, Any]:
    """A run's scores_<split>.json, checked: its split and post-processing named, every score a finite number."""
    scores = read_json_object(path)
    for key in ("split", "post"):
        if not isinstance(scores.get(key), str):
            raise UserError(path, f"must name the {key}, got {quoted(scores.get(key))}", key=key)
    for key in SCORE_KEYS:
        if not is_finite_number(scores.get(key)):
            raise UserError(path, f"must be a finite number, got {quoted(scores.get(key))}", key=key)
    return scores
