"""evals.csv rows shaped for the report: groups of trials, their order, and each run's final evaluation.

Every run has a role (study/plan.py): `baseline` (the shared generator pre-training of its seed, kind
`pretrain`), `control` (the fit-only run, lambda 0, one per seed) or `gan`. GAN trials are grouped by what
differs between them apart from the seed (the config columns gen_loss, disc_loss, lambda, emb_block and cfg.*
that vary across the GAN trials); seeds are the replicates of a group. The methods a table compares are the
baseline, the control and the GAN groups, in that order. Pure pandas, no I/O: the tables (tables.py) and the
figures (plots.py) both read the study through these functions.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from elgan_ray.record.names import BASELINE, CONFIG_PREFIX, CONTROL, GAN, MAIN_POST, NAMED_CONFIG, column_key, label

D_CHANCE = 0.6  # a D whose mean patch accuracy ends its pre-training at or below this has learnt nothing useful


def varying_columns(evals: pd.DataFrame) -> list[str]:
    """Config columns whose value differs between GAN trials: they define the groups."""
    columns = [c for c in NAMED_CONFIG if c in evals] + sorted(c for c in evals if c.startswith(CONFIG_PREFIX))
    per_trial = evals[evals["role"] == GAN].groupby("trial_id")[columns].first()
    return [c for c in columns if per_trial[c].nunique(dropna=False) > 1]


def _label(values: dict[str, Any]) -> str:
    """A group's label from its config columns' values, as its runs are named (record/names.py's label)."""
    # An integer key reads as float from a column whose baseline rows are empty (emb_block 7.0): shown as 7.
    whole = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()}
    return label({column_key(column): value for column, value in whole.items()})


def with_groups(evals: pd.DataFrame) -> pd.DataFrame:
    """evals plus a `group` column: a GAN trial's label of the varying config values, else its role (BASELINE,
    CONTROL)."""
    varying = varying_columns(evals)
    if varying:  # label each distinct combination once (NaN included), then map it onto the rows
        codes = evals.groupby(varying, dropna=False, sort=False).ngroup()
        names = {codes[i]: _label(evals.loc[i, varying].to_dict()) for i in codes.drop_duplicates().index}
        labels = codes.map(names)
    else:  # one group: name it as the paper does when it is the paper's method
        labels = pd.Series("EL-GAN" if set(evals["gen_loss"].dropna()) == {"emb"} else "GAN", index=evals.index)
    return evals.assign(group=labels.where(evals["role"] == GAN, evals["role"]))


def group_order(evals: pd.DataFrame) -> list[str]:
    """The GAN groups' labels sorted by their config values (numbers as numbers)."""
    varying = varying_columns(evals)
    gan = with_groups(evals)[lambda d: d["role"] == GAN]
    return (
        list(gan.sort_values(varying, kind="stable")["group"].drop_duplicates()) if varying else [gan["group"].iloc[0]]
    )


def methods(evals: pd.DataFrame) -> list[str]:
    """What the tables compare, in order: the baseline and the control where the study has them, the GAN groups."""
    present = set(evals["role"])
    return [role for role in (BASELINE, CONTROL) if role in present] + group_order(evals)


def final_rows(evals: pd.DataFrame) -> pd.DataFrame:
    """Each run's final evaluation per post-processing: GAN trials' and controls' last `gan` row, baselines' last
    `pretrain_g` row. A run its scheduler stopped (status `stopped`) has none: its last row is not final."""
    frame = with_groups(evals)
    wanted = ((frame["kind"] == "gan") & (frame["phase"] == "gan")) | (
        (frame["kind"] == "pretrain") & (frame["phase"] == "pretrain_g")
    )
    wanted &= frame["status"] != "stopped"
    frame = frame[wanted].sort_values(["trial_id", "post", "step"], kind="stable")
    return frame.groupby(["trial_id", "post"]).tail(1).sort_values(["group", "seed", "trial_id", "post"])


def d_at_chance(evals: pd.DataFrame) -> pd.DataFrame:
    """Per group (controls included) whose D ends its pre-training at chance: the mean over the group's runs of
    (d_acc_real + d_acc_fake) / 2 at each run's last `pretrain_d` evaluation, where that is <= D_CHANCE.
    Columns group, d_acc, n_runs; empty when every D learnt (or no row carries the figures).

    Only Ds trained by the patch loss (eq. 2, disc_loss `ce`; empty in a control's rows) are judged: under an
    embedding loss (eq. 5 and its bounded form) D's patch classifier gets no gradient and stays at chance by
    construction; its health is the embedding distance."""
    frame = with_groups(evals)
    if not {"d_acc_real", "d_acc_fake"} <= set(frame):
        return pd.DataFrame(columns=["group", "d_acc", "n_runs"])
    patch_loss = frame["disc_loss"].isna() | (frame["disc_loss"] == "ce") if "disc_loss" in frame else True
    rows = frame[(frame["phase"] == "pretrain_d") & (frame["post"] == MAIN_POST) & patch_loss]
    rows = rows.sort_values("step", kind="stable")
    last = rows.groupby("trial_id").tail(1).assign(d_acc=lambda d: (d["d_acc_real"] + d["d_acc_fake"]) / 2)
    table = last.groupby("group", sort=False).agg(d_acc=("d_acc", "mean"), n_runs=("trial_id", "nunique"))
    return table[table["d_acc"] <= D_CHANCE].reset_index()


def gan_steps(frame: pd.DataFrame) -> pd.Series:
    """Each row's step counted from the start of its run's GAN phase: the GAN phase's own steps, and the D
    pre-training's at negative steps (it ends at 0). Runs whose G pre-trainings stopped at different steps
    (patience) line up on it. Rows without `phase_step` (gathered before it existed) keep their global step."""
    if "phase_step" not in frame:
        return frame["step"]
    d_length = frame[frame["phase"] == "pretrain_d"].groupby("trial_id")["phase_step"].max()
    offset = frame["trial_id"].map(d_length).fillna(0)
    return frame["phase_step"].where(frame["phase"] == "gan", frame["phase_step"] - offset)
