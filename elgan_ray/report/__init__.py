"""The report: a study folder's evals.csv -> tables, figures and a row of results/index.csv (the study's best group
by its metric, and its cost: trial-seconds, CPU- and GPU-hours reserved, wall time). `python -m elgan_ray.report`.

Trials are grouped by what differs between them apart from the seed (the config columns gen_loss, disc_loss,
lambda, emb_block and cfg.* that vary across the GAN trials); seeds are the replicates of a group. The baseline
is the shared generator pre-training of each seed, scored at its last `pretrain_g` evaluation. The groups, their
order and each run's final rows come from frame.py, which the figures (plots.py) read too; the tables themselves
are tables.py's pure functions, and markdown.py renders them.

Written into the study folder:
  summary.csv       one row for the control and one per group: Table 3 as the paper computes it (within each run,
                    averaged over seeds, with the spread across seeds), the pooled figures, F1 over seeds
  final.csv         Table 1/2/4 form: final accuracy, FP, FN and line width ratio per method x post-processing
  pairwise.csv      every group against the control of the same seed (and the control against the baseline): the
                    paired difference of final accuracy and of the width ratio, its interval, the minimal
                    detectable effect (tables.pairwise, stats.py)
  health.csv        D's health per control and group (`health_table`): does D learn, how large is its gradient
  table.md/.tex     the tables above, titled for the tables the study calls for (study.json), a line of what the
                    study cost (cost.py), a warning for every group whose D ends its pre-training at chance, the
                    comparisons in words, and the paper's tables beside ours (paper.py)
  ensemble.csv      seed ensembles per method x post-processing x ensemble size (ensemble.py), when runs kept maps
  stability.png/.pdf, curves.png, health.png, widths.png, ensemble.png, predictions.png   (see plots.py)
The modules, in the order the report uses them:
  inputs.py       evals.csv, study.json, run.json, previews and the outputs, read and checked before any write
  frame.py        groups of trials, their order, each run's final evaluation
  tables.py       Table 1/3/4 forms, the paired comparisons against the control, D's health: pure functions
  stats.py        intervals (exact sign-flip, bootstrap) and the minimal detectable effect
  paper.py        the paper's numbers, and ours beside them table by table
  markdown.py     the tables as table.md and table.tex
  ensemble.py     seed ensembles from the runs' final maps
  plots.py        the figures
  cost.py         what the runs cost
  index.py        results/index.csv under its lock
  __main__.py     python -m elgan_ray.report

Every diverged, failed, stopped or still-running trial is counted in its group and marked in the plots. Every input
(evals.csv, study.json, runs/*/run.json, status.json, preview.npz, index.csv) is read and checked before the
first file is written (inputs.py), so a bad one leaves the study folder and the index as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from elgan_ray.errors import UserError
from elgan_ray.files import publish_files, staging_directory
from elgan_ray.record import layout
from elgan_ray.record.names import CONTROL
from elgan_ray.report.cost import study_cost
from elgan_ray.report.frame import group_order, with_groups
from elgan_ray.report.index import update_index
from elgan_ray.report.inputs import (
    check_outputs,
    load_previews,
    read_study,
    read_study_evals,
    seen_in_training,
    test_scores,
    with_silent_runs,
)
from elgan_ray.report.markdown import render
from elgan_ray.report.paper import beside_the_paper, what_differs
from elgan_ray.report.tables import best_group, chance_warnings, final_table, health_table, pairwise, summarize

__all__ = ["check_outputs", "write_report"]  # the sweep checks the report's outputs before its first trial


def seed_ensembles(study_dir: Path, evals: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """ensemble.csv's table (empty when no run kept its final maps; every run's maps read and checked), and the
    (group, Spread) whose uncertainty predictions.png shows: the GAN group with the most accurate ensemble, else
    the control."""
    from elgan_ray.report import ensemble  # post-processing (cv2) only for the ensembles

    table, spreads = ensemble.study_ensembles(study_dir, evals)
    if table.empty:
        return table, None
    group = ensemble.most_accurate(table, group_order(evals)) or ensemble.most_accurate(table, [CONTROL])
    return table, None if group is None else (group, spreads[group])


def write_report(study_dir: Path, results_root: Path | None = None) -> tuple[dict[str, Path], list[str]]:
    """Tables, figures and the index row of one study folder; returns what it wrote, by name, and a warning line
    for every group whose D ends its pre-training at chance (table.md carries them too).

    The report is written all or nothing: every file into a staging folder, then index.csv's row, then the files
    moved in by renames (files.publish_files). A write error (a full disk, a file-size limit) is one UserError
    saying that the previous report is whole, which it is."""
    study_dir = Path(study_dir)
    results_root = Path(results_root or layout.results_root_of(study_dir))
    # Every input read and checked, and every output known writable, before the first write.
    evals = read_study_evals(layout.evals_file(study_dir))
    study = read_study(study_dir, evals)
    evals = with_silent_runs(evals, study_dir)
    previews = load_previews(study_dir)
    cost = study_cost(study_dir, results_root, study)
    check_outputs(study_dir, results_root)
    ensembles, spread = seed_ensembles(study_dir, evals)  # scores every ensemble: last, after the cheap checks

    from elgan_ray.report import plots  # matplotlib only once the inputs are known to be good

    tables = {"summary": summarize(evals), "final": final_table(evals), "pairwise": pairwise(evals)}
    tables["health"] = health_table(evals)
    if not ensembles.empty:
        tables["ensemble"] = ensembles
    test = test_scores(study_dir, evals)
    if len(test):
        tables["test"] = test
    warnings = chance_warnings(evals)
    if seen_in_training(study_dir):
        warnings.append(
            "note: runs trained on every labelled sequence (data.train_split: trainval): their validation figures "
            "are of frames seen in training, not validation figures; the test set's scores are the study's result"
        )
    paper = beside_the_paper(study, with_groups(evals), tables)
    staging = staging_directory(study_dir / layout.REPORT_STAGING)
    try:
        for name, table in tables.items():
            (staging / f"{name}.csv").write_text(table.to_csv(index=False))
        md, tex = render(study, tables, cost.line(), warnings, paper, what_differs(study))
        (staging / "table.md").write_text(md)
        (staging / "table.tex").write_text(tex)
        title = f"{study['study']} (preset {study['preset']})"
        figures = plots.write_figures(staging, title, evals, tables["summary"], previews, ensembles, spread)
        names = [f"{name}.csv" for name in tables] + ["table.md", "table.tex", *figures]
        index = update_index(results_root, study, tables["summary"], best_group(evals, study["metric"]), cost)
        publish_files(staging, study_dir, names, stale=layout.REPORT_FILES)
    except OSError as error:
        rule = f"the report could not be written ({error.strerror or error}): the previous report is as it was"
        raise UserError(study_dir, rule) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: study_dir / name for name in names} | {"index.csv": index}, warnings
