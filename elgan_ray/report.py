"""python -m elgan_ray.report results/<study>: evals.csv -> tables, figures and a row of results/index.csv
(the study's best group and its cost: trial-seconds, CPU- and GPU-hours reserved, wall time).

Trials are grouped by what differs between them apart from the seed (the config columns gen_loss, disc_loss,
lambda, emb_block and cfg.* that vary across the GAN trials); seeds are the replicates of a group. The baseline
is the shared generator pre-training of each seed, scored at its last `pretrain_g` evaluation. The groups, their
order and each run's final rows come from study_frame.py, which the figures (plots.py) read too; the tables
themselves are tables.py's pure functions.

Written into the study folder:
  summary.csv       one row for the control and one per group, Table 3 form plus F1 over seeds (see `summarize`)
  final.csv         Table 1/2/4 form: final accuracy, FP, FN per method (baseline, control, groups) x post-processing
  pairwise.csv      bootstrap test of the difference in final accuracy of every group against the control
  health.csv        D's health per control and group (`health_table`): does D learn, how large is its gradient
  table.md/.tex     the tables above, titled for the tables the study calls for (study.json), a line of what the
                    study cost (study_cost.py), and a warning for every group whose D ends its pre-training at chance
  ensemble.csv      seed ensembles per method x post-processing x ensemble size (ensemble.py), when runs kept maps
  stability.png/.pdf, curves.png, health.png, ensemble.png, predictions.png   (see plots.py)
Every diverged, failed, stopped or still-running trial is counted in its group and marked in the plots. Every input
(evals.csv, study.json, runs/*/run.json, status.json, preview.npz, index.csv) is read and checked before the
first file is written (report_inputs.py), so a bad one leaves the study folder and the index as they were.
"""

from __future__ import annotations

import argparse
import fcntl
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from elgan_ray import study_layout
from elgan_ray.errors import UserError, run_cli
from elgan_ray.files import atomic_write_text
from elgan_ray.report_inputs import (
    check_evals,
    check_outputs,
    config_cell,
    is_number_column,
    load_previews,
    read_index,
    read_run_record,
    read_study_record,
)
from elgan_ray.study_cost import INDEX_COLUMNS as COST_COLUMNS
from elgan_ray.study_cost import StudyCost, study_cost
from elgan_ray.study_frame import (
    NAMED_CONFIG,
    group_order,
    varying_columns,
    with_roles,
)
from elgan_ray.tables import chance_warnings, final_table, health_table, pairwise, summarize
from elgan_ray.trial_plan import BASELINE, CONTROL, GAN

REQUIRED = ("trial_id", "kind", "trial_name", "seed", "gen_loss", "disc_loss", "lambda", "emb_block")
REQUIRED += ("phase", "step", "post", "accuracy", "fp", "fn", "f1", "status")
LOSS_KEYS = ("gen", "disc", "lambda", "emb_block")  # their config keys, loss.<key> (run.json)
INDEX_COLUMNS = ("study", "config_path", "description", "preset", "command", "started", "finished", "wall_s")
INDEX_COLUMNS += ("n_trials", "n_diverged", "best_group", "best_accuracy_mean")
INDEX_COLUMNS += COST_COLUMNS  # what the study's training cost (study_cost.py)
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
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise UserError(path, f"not a readable CSV ({str(error).splitlines()[0]})") from None
    missing = [c for c in REQUIRED if c not in evals.columns]
    if missing:
        raise UserError(path, f"missing column(s) {', '.join(missing)}: every row needs {', '.join(REQUIRED)}")
    evals = with_roles(evals)
    check_evals(path, evals)
    evals = evals.astype({"trial_id": str, "trial_name": str})  # ids of digits alone too: a silent run's are text
    if not (evals["role"] == GAN).any():
        raise UserError(path, "no 'gan' rows (column 'role'): the study has no GAN trial to report", key="role")
    return evals


def read_study(study_dir: Path, evals: pd.DataFrame) -> dict[str, Any]:
    """study.json, or what can be inferred without it (the folder name, the table forms from what varies)."""
    path = study_layout.study_file(study_dir)
    record = read_study_record(path) if path.exists() else {}
    started = datetime.fromtimestamp(study_layout.evals_file(study_dir).stat().st_mtime, timezone.utc)
    inferred = {"study": study_dir.name, "description": "", "config_path": "", "preset": "unknown", "command": ""}
    inferred |= {"started": started.isoformat(timespec="seconds"), "finished": None, "wall_s": None}
    varying = varying_columns(evals)
    tables = ["stability"] + [t for t, c in (("embedding", "emb_block"), ("lambda", "lambda")) if c in varying]
    inferred["tables"] = tables + ([BASELINE] if (evals["role"] == BASELINE).any() else [])
    return inferred | {k: v for k, v in record.items() if v is not None or k not in inferred}


def with_silent_runs(evals: pd.DataFrame, study_dir: Path) -> pd.DataFrame:
    """evals plus one metric-less row per GAN run that has a runs/*/run.json but no evaluation row (a trial that
    failed or diverged before its first evaluation), so that it is counted in its group, not dropped."""
    rows = []
    keys = {column: f"loss.{key}" for column, key in zip(NAMED_CONFIG, LOSS_KEYS, strict=True)}
    keys |= {column: column[4:] for column in evals if column.startswith("cfg.")}  # config column -> config key
    for path in study_layout.run_files(study_dir, study_layout.RUN_FILE):
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


def _sections(study: dict[str, Any], tables: dict[str, pd.DataFrame]) -> list[tuple[str, pd.DataFrame]]:
    """(title, table) pairs of table.md/.tex: Table 3 form, the final-evaluation form the study calls for, the
    tests against the control, D's health."""
    forms = [TABLE_TITLES[t] for t in study.get("tables", []) if t in TABLE_TITLES]
    final_title = "; ".join(forms) or "Final evaluation: accuracy, FP, FN per method and post-processing"
    return [
        (
            "Table 3 form: validation accuracy (%) over every GAN-phase evaluation, basic++; F1 (%) over seeds",
            tables["summary"],
        ),
        (
            final_title + " (baseline = shared generator pre-training; control = the same GAN phase at lambda 0)",
            tables["final"],
        ),
        (
            "Pairwise: difference in mean final basic++ accuracy (%), 95% bootstrap interval; real = excludes 0",
            tables["pairwise"],
        ),
        ("D's health: patch accuracy, embedding distance, adversarial vs fit gradient at G's output", tables["health"]),
    ]


def write_tables(
    study_dir: Path, study: dict[str, Any], evals: pd.DataFrame, cost: StudyCost
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """summary.csv, final.csv, pairwise.csv, health.csv, table.md and table.tex; returns the summary and the paths."""
    tables = {"summary": summarize(evals), "final": final_table(evals), "pairwise": pairwise(evals)}
    tables["health"] = health_table(evals)
    paths = {f"{name}.csv": study_dir / f"{name}.csv" for name in tables}
    for name, table in tables.items():
        atomic_write_text(paths[f"{name}.csv"], table.to_csv(index=False))
    about = study.get("description") or "(no study.json: study, preset and table forms inferred from evals.csv)"
    heading = f"# {study['study']} (preset {study['preset']})\n\n{about}\n\nCost: {cost.line()}\n"
    heading += "".join(f"\n**{line}**\n" for line in chance_warnings(evals))
    sections = _sections(study, tables)
    md = heading + "".join(f"\n## {title}\n\n{_markdown(table)}" for title, table in sections)
    tex = "".join(
        f"% {title}\n" + _shown(table).to_latex(index=False, caption=f"{study['study']}: {title}") + "\n"
        for title, table in sections
    )
    paths |= {"table.md": study_dir / "table.md", "table.tex": study_dir / "table.tex"}
    atomic_write_text(paths["table.md"], md)
    atomic_write_text(paths["table.tex"], tex)
    return tables["summary"], paths


def update_index(results_root: Path, study: dict[str, Any], summary: pd.DataFrame, cost: StudyCost) -> Path:
    """Add or replace this study run's row (key: study + started) in <results>/index.csv."""
    path = study_layout.index_file(results_root)
    groups = summary[summary["group"] != CONTROL]  # the best method of the study, not its reference
    best = groups.loc[groups["accuracy_mean"].idxmax()] if groups["accuracy_mean"].notna().any() else None
    row = {k: study.get(k) for k in INDEX_COLUMNS[:8]}
    row |= {"n_trials": int(summary["n_trials"].sum()), "n_diverged": int(summary["n_diverged"].sum())}
    row |= {"best_group": None if best is None else best["group"]}
    row |= {"best_accuracy_mean": None if best is None else round(float(best["accuracy_mean"]), 4)}
    row |= cost.index_columns()
    results_root.mkdir(parents=True, exist_ok=True)
    # Two sweeps may finish at once: the lock makes their read-modify-write of the index one after the other.
    with open(study_layout.index_lock(results_root), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = read_index(path)
        if index is None:
            index = pd.DataFrame(columns=list(INDEX_COLUMNS))
        else:
            index = index[~((index["study"] == row["study"]) & (index["started"] == row["started"]))]
        index = pd.concat([index, pd.DataFrame([row])], ignore_index=True) if len(index) else pd.DataFrame([row])
        atomic_write_text(path, index.sort_values("started", kind="stable").to_csv(index=False))
    return path


def seed_ensembles(study_dir: Path, evals: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """ensemble.csv's table (empty when no run kept its final maps; every run's maps read and checked), and the
    (group, Spread) whose uncertainty predictions.png shows: the GAN group with the most accurate ensemble, else
    the control."""
    from elgan_ray import ensemble  # post-processing (cv2) only for the ensembles

    table, spreads = ensemble.study_ensembles(study_dir, evals)
    if table.empty:
        return table, None
    group = ensemble.most_accurate(table, group_order(evals)) or ensemble.most_accurate(table, [CONTROL])
    return table, None if group is None else (group, spreads[group])


def write_report(study_dir: Path, results_root: Path | None = None) -> dict[str, Path]:
    """Tables, figures and the index row of one study folder; returns what it wrote, by name."""
    study_dir = Path(study_dir)
    results_root = Path(results_root or study_layout.results_root_of(study_dir))
    # Every input read and checked, and every output known writable, before the first write.
    evals = read_evals(study_layout.evals_file(study_dir))
    study = read_study(study_dir, evals)
    evals = with_silent_runs(evals, study_dir)
    previews = load_previews(study_dir)
    cost = study_cost(study_dir, results_root, study)
    check_outputs(study_dir, results_root)
    ensembles, spread = seed_ensembles(study_dir, evals)  # scores every ensemble: last, after the cheap checks

    from elgan_ray import plots  # matplotlib only once the inputs are known to be good

    summary, written = write_tables(study_dir, study, evals, cost)
    if not ensembles.empty:
        written["ensemble.csv"] = study_dir / "ensemble.csv"
        atomic_write_text(written["ensemble.csv"], ensembles.to_csv(index=False))
    title = f"{study['study']} (preset {study['preset']})"
    written |= plots.write_figures(study_dir, title, evals, summary, previews, ensembles, spread)
    written["index.csv"] = update_index(results_root, study, summary, cost)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.report",
        description="Tables (summary.csv, final.csv, pairwise.csv, health.csv, ensemble.csv, table.md, table.tex) and "
        "figures (stability, curves, health, ensemble, predictions) of a study folder from its evals.csv; adds the "
        "study run's row to <results>/index.csv.",
    )
    parser.add_argument("study_dir", type=Path, help="results/<study>: the folder holding evals.csv")
    parser.add_argument("--results", type=Path, help="where index.csv lives (default: the study folder's parent)")
    args = parser.parse_args(argv)
    for name, path in write_report(args.study_dir, args.results).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
