"""report/markdown.py: tables as the paper prints them, under the study's heading."""

from __future__ import annotations

import pandas as pd

from elgan_ray.report.markdown import pipe_table, render


def test_cells_are_printed_as_the_paper_prints_them():
    table = pd.DataFrame({"group": ["control", "g=emb"], "accuracy": [89.704, float("nan")], "fp": [0.21234, 0.1]})
    table["emb_block"] = [7.0, 3.0]
    assert pipe_table(table).splitlines() == [
        "| group | accuracy | fp | emb_block |",
        "|---|---|---|---|",
        "| control | 89.70 | 0.2123 | 7 |",
        "| g=emb | – | 0.1000 | 3 |",
    ]


def test_the_heading_names_the_study_its_cost_and_every_warning():
    tables = {name: pd.DataFrame({"group": ["control"]}) for name in ("summary", "final", "pairwise", "health")}
    study = {"study": "s", "preset": "cpu", "description": "a study", "tables": ["baseline"]}
    md, tex = render(study, tables, "10 trial-seconds", ["warning: g=emb: D at chance"])
    assert md.startswith("# s (preset cpu)\n\na study\n\nCost: 10 trial-seconds\n")
    assert "**warning: g=emb: D at chance**" in md and "## Table 1 form" in md
    assert tex.count("\\begin{tabular}") == 4
