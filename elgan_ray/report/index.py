"""<results>/index.csv: one row per study run (its description, command, best group and cost), read and checked
before the sweep's first trial and the report's first write, and updated under a lock when a report is written.
"""

from __future__ import annotations

import fcntl
import io
from pathlib import Path
from typing import Any

import pandas as pd

from elgan_ray.errors import UserError
from elgan_ray.files import atomic_write_text, check_writable, read_regular
from elgan_ray.record import layout
from elgan_ray.report.cost import INDEX_COLUMNS as COST_COLUMNS
from elgan_ray.report.cost import StudyCost

MAX_INDEX_BYTES = 64 << 20  # one row per study run: a few hundred bytes each


def read_index(path: Path) -> pd.DataFrame | None:
    """<results>/index.csv (None when there is none yet): UTF-8 CSV with the columns `study` and `started`."""
    check_writable(path, "file")
    if not path.exists():
        return None
    raw = read_regular(path, MAX_INDEX_BYTES, "index.csv")  # a FIFO is refused, not waited on
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


# One row per study run: what ran (study.json), its trials, its best GAN group by the study's metric (best_metric,
# e.g. "f1 basic max", and the group's mean over runs of it at their final evaluation), and what it cost (cost.py).
INDEX_COLUMNS = ("study", "config_path", "description", "preset", "command", "started", "finished", "wall_s")
INDEX_COLUMNS += ("n_trials", "n_diverged", "best_metric", "best_group", "best_mean")
INDEX_COLUMNS += COST_COLUMNS


def update_index(
    results_root: Path, study: dict[str, Any], summary: pd.DataFrame, best: tuple[str | None, float], cost: StudyCost
) -> Path:
    """Add or replace this study run's row (key: study + started) in <results>/index.csv; `best` is the best GAN
    group by the study's metric and its mean (tables.best_group)."""
    path = layout.index_file(results_root)
    metric = study["metric"]
    row = {k: study.get(k) for k in INDEX_COLUMNS[:8]}
    row |= {"n_trials": int(summary["n_trials"].sum()), "n_diverged": int(summary["n_diverged"].sum())}
    row |= {"best_metric": f"{metric['name']} {metric['post']} {metric['mode']}", "best_group": best[0]}
    row |= {"best_mean": None if best[0] is None else round(float(best[1]), 4)}
    row |= cost.index_columns()
    results_root.mkdir(parents=True, exist_ok=True)
    # Two sweeps may finish at once: the lock makes their read-modify-write of the index one after the other.
    with open(layout.index_lock(results_root), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = read_index(path)
        if index is None:
            index = pd.DataFrame(columns=list(INDEX_COLUMNS))
        else:
            index = index[~((index["study"] == row["study"]) & (index["started"] == row["started"]))]
        index = pd.concat([index, pd.DataFrame([row])], ignore_index=True) if len(index) else pd.DataFrame([row])
        atomic_write_text(path, index.sort_values("started", kind="stable").to_csv(index=False))
    return path
