"""python -m elgan_ray.report results/<study>: evals.csv -> tables, figures and a row of results/index.csv.

Trials are grouped by what differs between them apart from the seed (the config columns gen_loss, disc_loss,
lambda, emb_block and cfg.* that vary across the GAN trials); seeds are the replicates of a group. The baseline
is the shared generator pre-training of each seed, scored at its last `pretrain_g` evaluation. The groups, their
order and each run's final rows come from study_frame.py, which the figures (plots.py) read too.

Written into the study folder:
  summary.csv       one row per group, Table 3 form plus F1 over seeds (the rule of each column is in `summarize`)
  final.csv         Table 1/2/4 form: final accuracy, FP, FN per method (baseline, groups) x post-processing
  pairwise.csv      bootstrap test of the difference in final accuracy between every two methods
  table.md/.tex     the three tables above, titled for the tables the study calls for (study.json)
  stability.png/.pdf, curves.png, predictions.png   (see plots.py)
Every diverged, failed or still-running trial is counted in its group and marked in the plots.
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elgan_ray import study_layout
from elgan_ray.errors import UserError, run_cli
from elgan_ray.files import atomic_write_text
from elgan_ray.study_frame import (
    BASELINE,
    MAIN_POST,
    NAMED_CONFIG,
    final_rows,
    group_order,
    varying_columns,
    with_groups,
)

REQUIRED = ("trial_id", "kind", "trial_name", "seed", "gen_loss", "disc_loss", "lambda", "emb_block")
REQUIRED += ("phase", "step", "post", "accuracy", "fp", "fn", "f1", "status")
LOSS_KEYS = ("gen", "disc", "lambda", "emb_block")  # their config keys, loss.<key> (run.json)
METRICS = ("accuracy", "fp", "fn", "f1")
STATUSES = ("ok", "diverged", "failed", "running")
N_BOOT = 10_000  # bootstrap resamples; with seed BOOT_SEED the intervals are reproducible exactly
BOOT_SEED = 0
INDEX_COLUMNS = ("study", "config_path", "description", "preset", "command", "started", "finished", "wall_s")
INDEX_COLUMNS += ("n_trials", "n_diverged", "best_group", "best_accuracy_mean")
TABLE_TITLES = {
    "baseline": "Table 1 form: accuracy, FP, FN per method and post-processing (final evaluation)",
    "embedding": "Table 4 form: per embedding block (final evaluation)",
    "lambda": "Per lambda (final evaluation)",
}


# -- reading ----------------------------------------------------------------------------------------------------


def read_evals(path: Path) -> pd.DataFrame:
    """evals.csv, checked against the sweep's contract; a bad file is a UserError naming it and the rule."""
    if not path.is_file():
        raise UserError(path, "not found: a study folder holds the evals.csv the sweep gathers")
    try:
        evals = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserError(path, f"not a readable CSV ({str(error).splitlines()[0]})") from None
    missing = [c for c in REQUIRED if c not in evals.columns]
    if missing:
        raise UserError(path, f"missing column(s) {', '.join(missing)}: every row needs {', '.join(REQUIRED)}")
    for column in ("seed", "step", *METRICS):
        if not pd.api.types.is_numeric_dtype(evals[column]):
            raise UserError(path, "must hold numbers (empty for a missing metric)", key=column)
    bad_kind = sorted(set(evals["kind"].dropna()) - {"gan", "pretrain"})
    if bad_kind or (evals["kind"] == "gan").sum() == 0:
        raise UserError(
            path, f"column 'kind' must be 'gan' or 'pretrain', with at least one 'gan' row (got {bad_kind})"
        )
    return evals


def read_study(study_dir: Path, evals: pd.DataFrame) -> dict[str, Any]:
    """study.json, or what can be inferred without it (the folder name, the table forms from what varies)."""
    path = study_layout.study_file(study_dir)
    record = _read_json(path) if path.exists() else {}
    started = datetime.fromtimestamp(study_layout.evals_file(study_dir).stat().st_mtime, timezone.utc)
    inferred = {"study": study_dir.name, "description": "", "config_path": "", "preset": "unknown", "command": ""}
    inferred |= {"started": started.isoformat(timespec="seconds"), "finished": None, "wall_s": None}
    varying = varying_columns(evals)
    tables = ["stability"] + [t for t, c in (("embedding", "emb_block"), ("lambda", "lambda")) if c in varying]
    inferred["tables"] = tables + ([BASELINE] if (evals["kind"] == "pretrain").any() else [])
    return inferred | {k: v for k, v in record.items() if v is not None or k not in inferred}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(path, f"not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise UserError(path, "must hold one JSON object")
    return record


def with_silent_runs(evals: pd.DataFrame, study_dir: Path) -> pd.DataFrame:
    """evals plus one metric-less row per GAN run that has a runs/*/run.json but no evaluation row (a trial that
    failed or diverged before its first evaluation), so that it is counted in its group, not dropped."""
    rows = []
    for path in study_layout.run_files(study_dir, study_layout.RUN_FILE):
        run = _read_json(path)
        if str(run.get("trial_id")) in set(evals["trial_id"].astype(str)):
            continue
        config = run.get("config", {})
        status_path = path.parent / study_layout.STATUS_FILE
        status = _read_json(status_path).get("status", "failed") if status_path.exists() else "running"
        row = {"trial_id": run.get("trial_id"), "kind": "gan", "trial_name": run.get("trial_name", path.parent.name)}
        row |= {"seed": config.get("seed"), "status": status}
        row |= {column: config.get(f"loss.{key}") for column, key in zip(NAMED_CONFIG, LOSS_KEYS, strict=True)}
        row |= {c: config.get(c[4:]) for c in evals if c.startswith("cfg.")}
        rows.append(row)
    return pd.concat([evals, pd.DataFrame(rows)], ignore_index=True) if rows else evals


# -- tables (pure) -----------------------------------------------------------------------------------------------


def _resampled_means(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N_BOOT bootstrap means: values[rng.integers(0, n, (N_BOOT, n))].mean(axis=1)."""
    return values[rng.integers(0, len(values), (N_BOOT, len(values)))].mean(axis=1)


def bootstrap_ci(values: np.ndarray, seed: int = BOOT_SEED) -> tuple[float, float]:
    """95% percentile interval (np.percentile's default, linear) of the mean of the non-NaN values; NaN below 2."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:  # one value resamples to itself: an interval of width 0 would claim certainty
        return float("nan"), float("nan")
    low, high = np.percentile(_resampled_means(values, np.random.default_rng(seed)), [2.5, 97.5])
    return float(low), float(high)


def summarize(evals: pd.DataFrame) -> pd.DataFrame:
    """One row per group of GAN trials. Percent = fraction x 100 (variance x 100^2); NaN metrics are skipped.

    n_trials/n_seeds: distinct trial_id/seed; n_ok..n_running: trials by their final status.
    accuracy_mean/var/max, n_evals: every `gan`-phase, basic++ row of the group's trials (var ddof=1).
    f1_mean/f1_std (ddof=1), n_final: each trial's final evaluation (its highest-step `gan`-phase basic++ row).
    f1_ci_low/high: bootstrap_ci of those final F1 values (percent) ordered by seed then trial_id.
    final_accuracy_mean: the mean of those final rows' accuracy.
    """
    frame = with_groups(evals)
    gan = frame[frame["kind"] == "gan"]
    varying = varying_columns(evals)
    trials = gan.groupby("trial_id").first()
    status = pd.crosstab(trials["group"], trials["status"]).reindex(columns=list(STATUSES), fill_value=0)
    main = gan[(gan["phase"] == "gan") & (gan["post"] == MAIN_POST)]
    accuracy = main.groupby("group")["accuracy"].agg(["mean", "var", "max", "count"])
    final = final_rows(evals)
    final = final[(final["kind"] == "gan") & (final["post"] == MAIN_POST)]
    rows = []
    for group in group_order(evals):
        members = trials[trials["group"] == group]
        f1 = final.loc[final["group"] == group, "f1"] * 100
        row = {"group": group, **members[varying].iloc[0].to_dict()}
        row |= {"n_trials": len(members), "n_seeds": members["seed"].nunique()}
        row |= {f"n_{s}": int(status.loc[group, s]) for s in STATUSES}
        stats = accuracy.reindex([group]).iloc[0]
        row |= {"n_evals": int(np.nan_to_num(stats["count"])), "accuracy_mean": stats["mean"] * 100}
        row |= {"accuracy_var": stats["var"] * 100**2, "accuracy_max": stats["max"] * 100}
        row |= {"n_final": int(f1.notna().sum()), "f1_mean": f1.mean(), "f1_std": f1.std()}
        row |= dict(zip(("f1_ci_low", "f1_ci_high"), bootstrap_ci(f1.to_numpy()), strict=True))
        row["final_accuracy_mean"] = final.loc[final["group"] == group, "accuracy"].mean() * 100
        rows.append(row)
    return pd.DataFrame(rows)


def final_table(evals: pd.DataFrame) -> pd.DataFrame:
    """Table 1/2/4 form: per method (baseline first) and post-processing, the mean over runs of the final
    evaluation: accuracy in percent (and its std over runs), FP and FN as fractions (as the paper prints them)."""
    final = final_rows(evals)
    table = final.groupby(["group", "post"]).agg(
        accuracy=("accuracy", "mean"), accuracy_std=("accuracy", "std"), fp=("fp", "mean"), fn=("fn", "mean")
    )
    table[["accuracy", "accuracy_std"]] *= 100
    table["n_runs"] = final.groupby(["group", "post"])["trial_id"].nunique()
    order = [BASELINE] + group_order(evals)
    return table.reset_index().sort_values(
        ["group", "post"], key=lambda s: s.map(order.index) if s.name == "group" else s
    )


def pairwise(evals: pd.DataFrame) -> pd.DataFrame:
    """Every two methods: bootstrap of the difference of mean final basic++ accuracy (percent) over runs.

    Each side is resampled on its own (rng seed BOOT_SEED, N_BOOT times); the difference is `real` when the 95%
    interval excludes 0. With fewer than 2 runs on a side there is no test (real is empty)."""
    final = final_rows(evals)
    final = final[final["post"] == MAIN_POST]
    groups = [BASELINE] + group_order(evals)
    samples = {g: final.loc[final["group"] == g, "accuracy"].dropna().to_numpy() * 100 for g in groups}
    rows = []
    for a, b in itertools.combinations([g for g, v in samples.items() if len(v)], 2):
        x, y = samples[a], samples[b]
        row = {"a": a, "b": b, "n_a": len(x), "n_b": len(y), "mean_a": x.mean(), "mean_b": y.mean()}
        row |= {"diff": x.mean() - y.mean(), "ci_low": np.nan, "ci_high": np.nan, "real": pd.NA}
        if len(x) > 1 and len(y) > 1:
            rng = np.random.default_rng(BOOT_SEED)  # a then b, from one generator
            diffs = _resampled_means(x, rng) - _resampled_means(y, rng)
            row["ci_low"], row["ci_high"] = np.percentile(diffs, [2.5, 97.5])
            row["real"] = bool(row["ci_low"] > 0 or row["ci_high"] < 0)
        rows.append(row)
    return pd.DataFrame(rows, columns=["a", "b", "n_a", "n_b", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "real"])


# -- writing ----------------------------------------------------------------------------------------------------


def _cell(value: Any, digits: int | None) -> str:
    if pd.isna(value):
        return "–"
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """Cells as the paper prints them: percent to 2 decimals, FP/FN to 4, config values short, '–' for NaN."""
    metric = [c for c in table if pd.api.types.is_float_dtype(table[c]) and c not in NAMED_CONFIG and "." not in c]
    digits = {c: 4 if c in ("fp", "fn") else 2 for c in metric}
    return table.apply(lambda column: column.map(lambda v: _cell(v, digits.get(column.name))))


def _markdown(table: pd.DataFrame) -> str:
    # DataFrame.to_markdown needs tabulate, which is not a dependency; a pipe table is three lines of code.
    shown = _shown(table)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]) + "\n"


def _sections(study: dict[str, Any], summary: pd.DataFrame, final: pd.DataFrame, tests: pd.DataFrame):
    """(title, table) pairs of table.md/.tex: Table 3 form, the final-evaluation form the study calls for, tests."""
    forms = [TABLE_TITLES[t] for t in study.get("tables", []) if t in TABLE_TITLES]
    final_title = "; ".join(forms) or "Final evaluation: accuracy, FP, FN per method and post-processing"
    return [
        ("Table 3 form: validation accuracy (%) over every GAN-phase evaluation, basic++; F1 (%) over seeds", summary),
        (final_title + " (baseline = shared generator pre-training)", final),
        ("Pairwise: difference in mean final basic++ accuracy (%), 95% bootstrap interval; real = excludes 0", tests),
    ]


def write_tables(study_dir: Path, study: dict[str, Any], evals: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Path]]:
    """summary.csv, final.csv, pairwise.csv, table.md and table.tex; returns the summary and the paths."""
    summary, final, tests = summarize(evals), final_table(evals), pairwise(evals)
    paths = {f"{name}.csv": study_dir / f"{name}.csv" for name in ("summary", "final", "pairwise")}
    for path, table in zip(paths.values(), (summary, final, tests), strict=True):
        atomic_write_text(path, table.to_csv(index=False))
    about = study.get("description") or "(no study.json: study, preset and table forms inferred from evals.csv)"
    heading = f"# {study['study']} (preset {study['preset']})\n\n{about}\n"
    sections = _sections(study, summary, final, tests)
    md = heading + "".join(f"\n## {title}\n\n{_markdown(table)}" for title, table in sections)
    tex = "".join(
        f"% {title}\n" + _shown(table).to_latex(index=False, caption=f"{study['study']}: {title}") + "\n"
        for title, table in sections
    )
    paths |= {"table.md": study_dir / "table.md", "table.tex": study_dir / "table.tex"}
    atomic_write_text(paths["table.md"], md)
    atomic_write_text(paths["table.tex"], tex)
    return summary, paths


def update_index(results_root: Path, study: dict[str, Any], summary: pd.DataFrame) -> Path:
    """Add or replace this study run's row (key: study + started) in <results>/index.csv."""
    path = study_layout.index_file(results_root)
    best = summary.loc[summary["accuracy_mean"].idxmax()] if summary["accuracy_mean"].notna().any() else None
    row = {k: study.get(k) for k in INDEX_COLUMNS[:8]}
    row |= {"n_trials": int(summary["n_trials"].sum()), "n_diverged": int(summary["n_diverged"].sum())}
    row |= {"best_group": None if best is None else best["group"]}
    row |= {"best_accuracy_mean": None if best is None else round(float(best["accuracy_mean"]), 4)}
    results_root.mkdir(parents=True, exist_ok=True)
    # Two sweeps may finish at once: the lock makes their read-modify-write of the index one after the other.
    with open(study_layout.index_lock(results_root), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = pd.DataFrame(columns=list(INDEX_COLUMNS))
        if path.exists() and path.stat().st_size:
            try:
                index = pd.read_csv(path, dtype={"started": str, "study": str})
            except pd.errors.ParserError as error:
                raise UserError(path, f"not a readable CSV ({str(error).splitlines()[0]})") from None
            if not {"study", "started"} <= set(index.columns):
                raise UserError(path, "needs the columns 'study' and 'started' (one row per study run)")
            index = index[~((index["study"] == row["study"]) & (index["started"] == row["started"]))]
        index = pd.concat([index, pd.DataFrame([row])], ignore_index=True) if len(index) else pd.DataFrame([row])
        atomic_write_text(path, index.sort_values("started", kind="stable").to_csv(index=False))
    return path


def write_report(study_dir: Path, results_root: Path | None = None) -> dict[str, Path]:
    """Tables, figures and the index row of one study folder; returns what it wrote, by name."""
    from elgan_ray import plots  # matplotlib only once the inputs are known to be good

    study_dir = Path(study_dir)
    evals = read_evals(study_layout.evals_file(study_dir))
    study = read_study(study_dir, evals)
    evals = with_silent_runs(evals, study_dir)
    summary, written = write_tables(study_dir, study, evals)
    title = f"{study['study']} (preset {study['preset']})"
    written |= plots.write_figures(study_dir, title, evals, summary)
    written["index.csv"] = update_index(Path(results_root or study_layout.results_root_of(study_dir)), study, summary)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.report",
        description="Tables (summary.csv, final.csv, pairwise.csv, table.md, table.tex) and figures (stability, "
        "curves, predictions) of a study folder from its evals.csv; adds the study run's row to <results>/index.csv.",
    )
    parser.add_argument("study_dir", type=Path, help="results/<study>: the folder holding evals.csv")
    parser.add_argument("--results", type=Path, help="where index.csv lives (default: the study folder's parent)")
    args = parser.parse_args(argv)
    for name, path in write_report(args.study_dir, args.results).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
