"""The report's tables as text: table.md (pipe tables) and table.tex (LaTeX), each titled for the paper's table
whose form it takes, under a heading with the study's description, cost and warnings. Pure functions of the
tables (tables.py) and study.json; report/__init__.py writes the files.
"""

from __future__ import annotations

from typing import Any

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


def render(
    study: dict[str, Any], tables: dict[str, pd.DataFrame], cost_line: str, warnings: list[str]
) -> tuple[str, str]:
    """(table.md, table.tex) of a study: a heading (study, preset, description, cost, warnings), then each section."""
    about = study.get("description") or "(no study.json: study, preset and table forms inferred from evals.csv)"
    heading = f"# {study['study']} (preset {study['preset']})\n\n{about}\n\nCost: {cost_line}\n"
    heading += "".join(f"\n**{line}**\n" for line in warnings)
    sections = _sections(study, tables)
    md = heading + "".join(f"\n## {title}\n\n{pipe_table(table)}" for title, table in sections)
    tex = "".join(
        f"% {title}\n" + _shown(table).to_latex(index=False, caption=f"{study['study']}: {title}") + "\n"
        for title, table in sections
    )
    return md, tex
