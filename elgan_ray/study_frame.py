"""evals.csv rows shaped for the report: groups of trials, their order, and each run's final evaluation.

Trials are grouped by what differs between them apart from the seed (the config columns gen_loss, disc_loss,
lambda, emb_block and cfg.* that vary across the GAN trials); seeds are the replicates of a group. The baseline
is the shared generator pre-training of each seed (its rows have kind `pretrain`). Pure pandas, no I/O: the
tables (report.py) and the figures (plots.py) both read the study through these functions.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

NAMED_CONFIG = ("gen_loss", "disc_loss", "lambda", "emb_block")
SHORT_NAMES = {"gen_loss": "g", "disc_loss": "d", "lambda": "lambda", "emb_block": "emb"}
MAIN_POST = "basic++"  # the post-processing of every headline number, as in Table 3
BASELINE = "baseline"


def varying_columns(evals: pd.DataFrame) -> list[str]:
    """Config columns whose value differs between GAN trials: they define the groups."""
    columns = [c for c in NAMED_CONFIG if c in evals] + sorted(c for c in evals if c.startswith("cfg."))
    per_trial = evals[evals["kind"] == "gan"].groupby("trial_id")[columns].first()
    return [c for c in columns if per_trial[c].nunique(dropna=False) > 1]


def _label(values: dict[str, Any]) -> str:
    parts = []
    for column, value in values.items():
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # emb_block is read as float because pretrain rows leave it empty
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{SHORT_NAMES.get(column, column.rsplit('.', 1)[-1])}={text}")
    return ",".join(parts)


def with_groups(evals: pd.DataFrame) -> pd.DataFrame:
    """evals plus a `group` column: the label of the varying config values, BASELINE for pre-training rows."""
    varying = varying_columns(evals)
    if varying:  # label each distinct combination once (NaN included), then map it onto the rows
        codes = evals.groupby(varying, dropna=False, sort=False).ngroup()
        names = {codes[i]: _label(evals.loc[i, varying].to_dict()) for i in codes.drop_duplicates().index}
        labels = codes.map(names)
    else:  # one group: name it as the paper does when it is the paper's method
        labels = pd.Series("EL-GAN" if set(evals["gen_loss"].dropna()) == {"emb"} else "GAN", index=evals.index)
    return evals.assign(group=labels.where(evals["kind"] == "gan", BASELINE))


def group_order(evals: pd.DataFrame) -> list[str]:
    """Group labels sorted by their config values (numbers as numbers)."""
    varying = varying_columns(evals)
    gan = with_groups(evals)[lambda d: d["kind"] == "gan"]
    return (
        list(gan.sort_values(varying, kind="stable")["group"].drop_duplicates()) if varying else [gan["group"].iloc[0]]
    )


def final_rows(evals: pd.DataFrame) -> pd.DataFrame:
    """Each run's final evaluation per post-processing: GAN trials' last `gan` row, baselines' last `pretrain_g` row."""
    frame = with_groups(evals)
    wanted = ((frame["kind"] == "gan") & (frame["phase"] == "gan")) | (
        (frame["kind"] == "pretrain") & (frame["phase"] == "pretrain_g")
    )
    frame = frame[wanted].sort_values(["trial_id", "post", "step"], kind="stable")
    return frame.groupby(["trial_id", "post"]).tail(1).sort_values(["group", "seed", "trial_id", "post"])
