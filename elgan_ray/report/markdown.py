"""The report's tables as text: table.md (pipe tables) and table.tex (LaTeX), each titled for the paper's table
whose form it takes, under a heading with the study's description, cost and warnings. Pure functions of the
tables (tables.py) and study.json; report/__init__.py writes the files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from elgan_ray.record.names import NAMED_CONFIG

TABLE_TITLES = {
    "baseline": "Table 1 form: accuracy, FP, FN per method and post-processing (final evaluation)",
    "embedding": "Table 4 form: per embedding block (final evaluation)",
    "lambda": "Per lambda (final evaluation)",
}


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


def pipe_table(table: pd.DataFrame) -> str:
    # DataFrame.to_markdown needs tabulate, which is not a dependency; a pipe table is three lines of code.
    shown = _shown(table)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]) + "\n"


def _sections(study: dict[str, Any], tables: dict[str, pd.DataFrame]) -> list[tuple[str, pd.DataFrame]]:
    """(title, table) pairs of table.md/.tex: Table 3 form, the final-evaluation form the study calls for, the
    paired comparisons against the control, D's health, and the test set's scores when the study has them."""
    forms = [TABLE_TITLES[t] for t in study.get("tables", []) if t in TABLE_TITLES]
    final_title = "; ".join(forms) or "Final evaluation: accuracy, FP, FN per method and post-processing"
    sections = [
        (
            "Table 3 form, as the paper computes it: validation accuracy (%) over each run's GAN-phase evaluations, "
            "basic++ (accuracy_mean/var/max: the mean over seeds of each run's own figure; _sd: their spread across "
            "seeds; accuracy_pooled_*: every evaluation of every seed at once); F1 (%) of the final evaluations",
            tables["summary"],
        ),
        (
            final_title + " (baseline = shared generator pre-training; control = the same GAN phase at lambda 0; "
            "width_ratio = predicted line width / label width, 1 is label-thin)",
            tables["final"],
        ),
        (
            "Paired comparisons with the control of the same seed: final accuracy (%) and width ratio per "
            "post-processing; diff = mean per-seed difference a - b, 95 % interval (exact sign-flip up to 10 pairs, "
            "else paired bootstrap), real = it excludes 0, mde = the smallest difference this study detects with "
            "80 % power",
            tables["pairwise"],
        ),
        ("D's health: patch accuracy, embedding distance, adversarial vs fit gradient at G's output", tables["health"]),
    ]
    if "test" in tables and len(tables["test"]):
        sections.append(("Test set (predict's submission files, scored by the evaluator)", tables["test"]))
    return sections


def in_words(pairwise: pd.DataFrame) -> list[str]:
    """One sentence per comparison of final accuracy and of Table 3's statistics over the GAN phase: the difference,
    its interval, and the smallest effect the study could have detected, so that a 'no difference' is read with its
    power beside it."""
    lines = []
    if "measure" not in pairwise:
        return lines
    what = {"accuracy": "final accuracy", "phase_mean": "mean accuracy over the GAN phase (Table 3's statistic)"}
    what["phase_var"] = "variance of accuracy over the GAN phase (Table 3's statistic; points squared)"
    for row in pairwise[pairwise["measure"].isin(list(what))].itertuples():
        interval = "no interval (one run a side)"
        if pd.notna(row.ci_low):
            low, high = (
                f"{v:+.2f}" if np.isfinite(v) else ("-inf" if v < 0 else "+inf") for v in (row.ci_low, row.ci_high)
            )
            interval = f"95 % interval ({low}, {high}), {row.method}"
            if not np.isfinite(row.ci_low):
                interval += f": {row.n_pairs} pairs cannot reach 5 % in an exact two-sided test"
        text = f"{row.a} - {row.b}, {what[row.measure]}, {row.post}: {row.diff:+.2f}, {interval}"
        if pd.notna(row.mde):
            text += (
                f"; the smallest difference this study could detect (80 % power, {row.n_pairs} pairs): {row.mde:.2f}"
            )
        lines.append(text + ".")
    return lines


def render(
    study: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    cost_line: str,
    warnings: list[str],
    paper: list[tuple[str, pd.DataFrame]] = (),
    paper_note: str = "",
) -> tuple[str, str]:
    """(table.md, table.tex) of a study: a heading (study, preset, description, cost, warnings), each section, the
    comparisons in words, and the paper's tables beside ours (paper.py) with a note on what differs."""
    about = study.get("description") or "(no study.json: study, preset and table forms inferred from evals.csv)"
    heading = f"# {study['study']} (preset {study['preset']})\n\n{about}\n\nCost: {cost_line}\n"
    heading += "".join(f"\n**{line}**\n" for line in warnings)
    sections = _sections(study, tables) + list(paper)
    md = heading + "".join(f"\n## {title}\n\n{pipe_table(table)}" for title, table in sections)
    words = in_words(tables["pairwise"])
    if words:
        md += "\n## The comparisons in words\n\n" + "".join(f"- {line}\n" for line in words)
    if paper:
        md += f"\n{paper_note}\n"
    tex = "".join(
        f"% {title}\n" + _shown(table).to_latex(index=False, caption=f"{study['study']}: {title}") + "\n"
        for title, table in sections
    )
    return md, tex
