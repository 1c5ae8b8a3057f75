"""The paper's numbers (Ghafoorian et al., EL-GAN, 2018), and our study's numbers beside them, table by table.

Every table of ours that answers one of the paper's gets the paper's row beside it, so that neither agreement nor
disagreement is claimed without both numbers in view. The paper's figures are on the real TuSimple set at
720x1280 with its published set-up; ours on whatever data and preset the study ran (table.md says which), so they
compare in form unless the study ran the `paper` preset on TuSimple. Accuracy in percent, FP and FN as fractions,
as the paper prints them. Pure pandas: no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from elgan_ray.record.names import CONFIG_COLUMNS, GAN, LAMBDA_KEY, MAIN_POST

# Table 1, validation set (sequence 0601, 409 frames; trained on the other three sequences, 3,217 frames):
# (method, post-processing) -> (accuracy %, FP, FN).
TABLE_1 = {
    ("baseline", "basic"): (86.2, 0.089, 0.213),
    ("baseline", "basic++"): (94.3, 0.084, 0.070),
    ("EL-GAN", "basic"): (93.3, 0.061, 0.104),
    ("EL-GAN", "basic++"): (94.9, 0.059, 0.067),
}
# Table 2, test set (2,782 frames; trained on all four labelled sequences, 3,626 frames), basic++.
TABLE_2 = {"EL-GAN": (96.39, 0.0412, 0.0336), "baseline": (94.54, 0.0733, 0.0476)}
# Table 3, validation accuracy statistics over training iterations (every 10k) of one run: (generator loss,
# discriminator loss) -> (mean %, variance, max %).
TABLE_3 = {
    ("ce", "ce"): (33.84, 511.71, 58.11),
    ("ce", "emb"): (0.00, 0.00, 0.02),
    ("emb", "ce"): (93.97, 0.459, 94.65),
    ("emb", "emb"): (94.17, 0.429, 94.98),
}
# Table 4, the embedding taken after dense block 3, 5 or 7 (basic++, validation set): (accuracy %, FP, FN).
TABLE_4 = {3: (93.91, 0.1013, 0.1060), 5: (94.01, 0.0733, 0.0878), 7: (94.94, 0.0592, 0.0673)}
TITLES = {
    1: "Beside the paper's Table 1 (validation set 0601: accuracy %, FP, FN per method and post-processing)",
    2: "Beside the paper's Table 2 (test set, basic++: accuracy %, FP, FN)",
    3: "Beside the paper's Table 3 (validation accuracy % over the GAN phase of one run: mean, variance, max)",
    4: "Beside the paper's Table 4 (the embedding after dense block 3, 5 or 7; basic++: accuracy %, FP, FN)",
}
# Which of the paper's tables a study's `tables` answer.
ANSWERS = {"stability": (3,), "losses": (3,), "baseline": (1,), "embedding": (4,), "lambda": ()}


def group_configs(evals: pd.DataFrame) -> pd.DataFrame:
    """Per GAN group (with_groups' labels) its loss combination, lambda and embedding block."""
    gan = evals[evals["role"] == GAN]
    columns = [CONFIG_COLUMNS[k] for k in ("loss.gen", "loss.disc", LAMBDA_KEY, "loss.emb_block")]
    return gan.groupby("group")[columns].first()


def table_3(summary: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """Our within-run statistics per loss combination (the summary's accuracy_mean/var/max, basic++), beside the
    paper's row for the same combination; a combination the paper has no row for shows '–' on its side."""
    rows = []
    for _, ours in summary.iterrows():
        if ours["group"] not in configs.index:
            continue  # the control: the paper has none
        gen, disc = configs.loc[ours["group"], ["gen_loss", "disc_loss"]]
        paper = TABLE_3.get((gen, disc), (np.nan,) * 3)
        rows.append(
            {"group": ours["group"], "generator": gen, "discriminator": disc}
            | {f"ours_{s}": ours[f"accuracy_{s}"] for s in ("mean", "var", "max")}
            | dict(zip(("paper_mean", "paper_var", "paper_max"), paper, strict=True))
        )
    return pd.DataFrame(rows)


def table_1(final: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """Our final baseline, control and EL-GAN (the generator's embedding loss with a cross-entropy D) rows per
    post-processing, beside the paper's (which has no control)."""
    el_gan = [g for g in configs.index if tuple(configs.loc[g, ["gen_loss", "disc_loss"]]) == ("emb", "ce")]
    named = {"baseline": "baseline", "control": "control"} | {g: "EL-GAN" for g in el_gan}
    rows = []
    for _, ours in final[final["group"].isin(named)].iterrows():
        paper = TABLE_1.get((named[ours["group"]], ours["post"]), (np.nan,) * 3)
        rows.append(
            {"method": named[ours["group"]], "group": ours["group"], "post": ours["post"]}
            | {"ours_accuracy": ours["accuracy"], "ours_fp": ours["fp"], "ours_fn": ours["fn"]}
            | dict(zip(("paper_accuracy", "paper_fp", "paper_fn"), paper, strict=True))
        )
    return pd.DataFrame(rows)


def table_4(final: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """Our final basic++ row per embedding block, beside the paper's."""
    rows = []
    main = final[(final["post"] == MAIN_POST) & final["group"].isin(configs.index)]
    for _, ours in main.iterrows():
        block = int(configs.loc[ours["group"], "emb_block"])
        paper = TABLE_4.get(block, (np.nan,) * 3)
        rows.append(
            {"group": ours["group"], "block": block}
            | {"ours_accuracy": ours["accuracy"], "ours_fp": ours["fp"], "ours_fn": ours["fn"]}
            | dict(zip(("paper_accuracy", "paper_fp", "paper_fn"), paper, strict=True))
        )
    return pd.DataFrame(rows)


def table_2(test_scores: pd.DataFrame) -> pd.DataFrame:
    """Our test-set scores (the predict step's, per method, basic++ or as predicted) beside the paper's Table 2."""
    rows = []
    for _, ours in test_scores.iterrows():
        paper = TABLE_2.get(ours["method"], (np.nan,) * 3)
        rows.append(
            {"method": ours["method"], "group": ours["group"], "post": ours["post"], "n_runs": ours["n_runs"]}
            | {"ours_accuracy": ours["accuracy"], "ours_fp": ours["fp"], "ours_fn": ours["fn"]}
            | dict(zip(("paper_accuracy", "paper_fp", "paper_fn"), paper, strict=True))
        )
    return pd.DataFrame(rows)


def beside_the_paper(
    study: dict[str, Any], evals: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> list[tuple[str, pd.DataFrame]]:
    """(title, table) of every paper table the study answers (its `tables`, study.json), ours beside the paper's;
    Table 2's when the study has test-set scores (tables["test"])."""
    configs = group_configs(evals)
    answered = sorted({n for name in study.get("tables", []) for n in ANSWERS.get(name, ())})
    build = {
        1: lambda: table_1(tables["final"], configs),
        3: lambda: table_3(tables["summary"], configs),
        4: lambda: table_4(tables["final"], configs),
    }
    sections = [(TITLES[n], build[n]()) for n in answered]
    if "test" in tables and len(tables["test"]):
        sections.append((TITLES[2], table_2(tables["test"])))
    return [(title, table) for title, table in sections if len(table)]


def what_differs(study: dict[str, Any]) -> str:
    """One line on what separates our numbers from the paper's."""
    ours = f"preset {study.get('preset', 'unknown')}"
    command = study.get("command") or ""
    data = "the data given with --data" if "--data" in command else "the embedded synthetic set"
    return (
        f"Ours: {ours} on {data}; the paper's: the real TuSimple set at 720x1280, its published set-up (the "
        "`paper` preset, docs/fidelity.md). Unless this study ran the paper preset on TuSimple, the two compare "
        "in form (which method is ahead, how stable), not in value."
    )
