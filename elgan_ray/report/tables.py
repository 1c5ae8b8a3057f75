"""The report's tables as pure functions of a study's evals.csv rows (frame.py shapes them): Table 3 form
(`summarize`), Table 1/2/4 form with the width ratio (`final_table`), the paired comparisons against the control
with their minimal detectable effects (`pairwise`; stats.py) and D's health (`health_table`). No I/O; the report's
__init__.py reads the inputs and writes the files.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from elgan_ray.record.names import BASELINE, CONTROL, GAN, HEALTH, MAIN_POST, POSTS, STATUSES
from elgan_ray.report.frame import D_CHANCE, d_at_chance, final_rows, group_order, methods, varying_columns, with_groups
from elgan_ray.report.stats import bootstrap_ci, minimal_detectable_effect, paired_ci, unpaired_bootstrap_ci


def gan_phase_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Table 3's per-run statistics: each run's mean, variance (ddof=1) and max of its GAN-phase accuracy (percent;
    the variance in percent squared) and its number of evaluations, per post-processing; stopped trials left out.
    Indexed by (group, seed, trial_id, post); `frame` carries its groups (frame.with_groups)."""
    rows = frame[(frame["kind"] == "gan") & (frame["phase"] == "gan") & (frame["status"] != "stopped")]
    stats = rows.groupby(["group", "seed", "trial_id", "post"])["accuracy"].agg(["mean", "var", "max", "count"])
    return stats * [100, 100**2, 100, 1]


def of_post(runs: pd.DataFrame, post: str) -> pd.DataFrame:
    """gan_phase_runs' rows of one post-processing, without the post level (empty, not a KeyError, when none)."""
    return runs[runs.index.get_level_values("post") == post].droplevel("post")


def summarize(evals: pd.DataFrame) -> pd.DataFrame:
    """One row for the control (when the study has one; its config columns empty) and one per group of GAN
    trials. Percent = fraction x 100 (variance x 100^2); NaN metrics are skipped. Stopped trials (a search's
    scheduler stopped them for scoring low) are left out of every statistic: their rows would bias them.

    n_trials/n_seeds: distinct trial_id/seed; n_ok..n_stopped: trials by their final status (STATUSES).
    accuracy_mean/var/max: Table 3 as the paper computes it, over one run's training: each run's mean, variance
    (ddof=1) and max of its `gan`-phase basic++ accuracy, then the mean over the group's runs (seeds) of each;
    accuracy_mean_sd/var_sd/max_sd: the spread of those per-run figures across the runs (sd, ddof=1).
    n_evals: GAN-phase evaluations per run (the mean over runs).
    accuracy_pooled_mean/var/max: the same figures over every evaluation of every run at once, so the spread
    between seeds is in them too (what this table showed before it followed the paper).
    f1_mean/f1_std (ddof=1), n_final: each trial's final evaluation (its highest-step `gan`-phase basic++ row).
    f1_ci_low/high: bootstrap_ci of those final F1 values (percent) ordered by seed then trial_id.
    final_accuracy_mean: the mean of those final rows' accuracy.
    """
    frame = with_groups(evals)
    gan = frame[frame["kind"] == "gan"]  # GAN trials and controls
    varying = varying_columns(evals)
    trials = gan.groupby("trial_id").first()
    status = pd.crosstab(trials["group"], trials["status"]).reindex(columns=list(STATUSES), fill_value=0)
    main = gan[(gan["phase"] == "gan") & (gan["post"] == MAIN_POST) & (gan["status"] != "stopped")]
    per_run = of_post(gan_phase_runs(frame), MAIN_POST).droplevel("seed")  # (group, trial_id)
    pooled = main.groupby("group")["accuracy"].agg(["mean", "var", "max"]) * [100, 100**2, 100]
    final = final_rows(evals)
    final = final[(final["kind"] == "gan") & (final["post"] == MAIN_POST)]
    rows = []
    for group in [m for m in methods(evals) if m != BASELINE]:
        members = trials[trials["group"] == group]
        f1 = final.loc[final["group"] == group, "f1"] * 100
        config = {c: np.nan for c in varying} if group == CONTROL else members[varying].iloc[0].to_dict()
        row = {"group": group, **config}
        row |= {"n_trials": len(members), "n_seeds": members["seed"].nunique()}
        row |= {f"n_{s}": int(status.loc[group, s]) for s in STATUSES}
        runs = per_run.loc[group] if group in per_run.index.get_level_values(0) else per_run.iloc[:0]
        row["n_evals"] = runs["count"].mean()
        for stat in ("mean", "var", "max"):
            row[f"accuracy_{stat}"] = runs[stat].mean()
            row[f"accuracy_{stat}_sd"] = runs[stat].std()
        row |= {f"accuracy_pooled_{stat}": pooled[stat].get(group, np.nan) for stat in ("mean", "var", "max")}
        row |= {"n_final": int(f1.notna().sum()), "f1_mean": f1.mean(), "f1_std": f1.std()}
        row |= dict(zip(("f1_ci_low", "f1_ci_high"), bootstrap_ci(f1.to_numpy()), strict=True))
        row["final_accuracy_mean"] = final.loc[final["group"] == group, "accuracy"].mean() * 100
        rows.append(row)
    return pd.DataFrame(rows)


def final_table(evals: pd.DataFrame) -> pd.DataFrame:
    """Table 1/2/4 form: per method (baseline first) and post-processing, the mean over runs of the final
    evaluation: accuracy in percent (and its std over runs), FP and FN as fractions (as the paper prints them), and
    width_ratio, the predicted lines' mean width over the labels' (train/validation.py; Fig. 4's claim is thinner,
    label-like lines: 1 is a label's width)."""
    final = final_rows(evals)
    final = final.assign(width_ratio=_width_ratio(final))
    table = final.groupby(["group", "post"]).agg(
        accuracy=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        fp=("fp", "mean"),
        fn=("fn", "mean"),
        width_ratio=("width_ratio", "mean"),
    )
    table[["accuracy", "accuracy_std"]] *= 100
    table["n_runs"] = final.groupby(["group", "post"])["trial_id"].nunique()
    order = methods(evals)
    return table.reset_index().sort_values(
        ["group", "post"], key=lambda s: s.map(order.index) if s.name == "group" else s
    )


def _width_ratio(rows: pd.DataFrame) -> pd.Series:
    """line_width / label_width of each row (NaN where a record has no widths, or no predicted line at all)."""
    if not {"line_width", "label_width"} <= set(rows):
        return pd.Series(np.nan, index=rows.index)
    return (rows["line_width"] / rows["label_width"]).where(rows["line_width"] > 0)


def comparisons(evals: pd.DataFrame) -> list[tuple[str, str]]:
    """(a, b) pairs the pairwise table tests: every GAN group against the control (same steps, no adversary),
    and the control against the baseline (what the extra fit steps alone did). A study without controls
    (evals.csv gathered before they existed) compares every two methods, baseline included."""
    present = methods(evals)
    if CONTROL not in present:
        return list(itertools.combinations(present, 2))
    pairs = [(group, CONTROL) for group in group_order(evals)]
    return pairs + ([(CONTROL, BASELINE)] if BASELINE in present else [])


PAIRWISE_COLUMNS = ("a", "b", "measure", "post", "paired", "n_a", "n_b", "n_pairs", "mean_a", "mean_b", "diff")
PAIRWISE_COLUMNS += ("sd_diff", "ci_low", "ci_high", "method", "real", "mde")
MAPS = "maps"  # the `post` of a comparison of the maps themselves (the width ratio), before any post-processing


def pairwise(evals: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of final accuracy (percent), of Table 3's statistics over a run's GAN phase (`phase_mean`,
    `phase_var`: each run's mean and variance of accuracy, percent, over its GAN-phase evaluations, as summarize
    computes them) and of the width ratio, after basic and after basic++. The phase statistics exist for runs with
    a GAN phase (a GAN group against its control; the baseline has none).

    Paired by seed where both sides have runs of the same seeds (a GAN group and its control, the control and the
    baseline): diff is the mean of the per-seed differences a - b, its interval stats.paired_ci's (exact sign-flip
    for up to 10 pairs, else paired bootstrap), sd_diff their sd and mde the smallest mean difference a study of
    n_pairs pairs detects with 80 % power (stats.minimal_detectable_effect). Otherwise (a study without controls)
    unpaired: the difference of the means, each side bootstrapped on its own, no mde. `real`: the interval
    excludes 0; empty without an interval."""
    final = final_rows(evals)
    final = final.assign(width_ratio=_width_ratio(final), accuracy=final["accuracy"] * 100)
    rows = []
    # Accuracy after each post-processing; the width ratio once, as the maps have it (post-processing is after).
    measures = [(m, post) for post in POSTS for m in ("accuracy", "phase_mean", "phase_var")] + [("width_ratio", MAPS)]
    per_run = gan_phase_runs(with_groups(evals))
    for measure, post in measures:
        if measure.startswith("phase_"):
            runs = of_post(per_run, post)[measure.removeprefix("phase_")]
            per_seed = runs.groupby(["group", "seed"]).mean()  # a search group's samples: one per seed
        else:
            rows_of_post = final[final["post"] == (MAIN_POST if post == MAPS else post)]
            per_seed = rows_of_post.groupby(["group", "seed"])[measure].mean()  # a search group's samples: one per seed
        for a, b in comparisons(evals):
            x = per_seed.get(a, pd.Series(dtype=float)).dropna()
            y = per_seed.get(b, pd.Series(dtype=float)).dropna()
            if len(x) and len(y):
                figures = _compare(x, y, paired=CONTROL in (a, b))
                rows.append({"a": a, "b": b, "measure": measure, "post": post} | figures)
    return pd.DataFrame(rows, columns=list(PAIRWISE_COLUMNS))


def _compare(x: pd.Series, y: pd.Series, paired: bool) -> dict:
    """The figures of one comparison of per-seed values x (a) and y (b)."""
    row = {"n_a": len(x), "n_b": len(y), "mean_a": x.mean(), "mean_b": y.mean()}
    seeds = x.index.intersection(y.index)
    if paired and len(seeds):
        d = (x[seeds] - y[seeds]).to_numpy()
        low, high, method = paired_ci(d) if len(d) > 1 else (np.nan, np.nan, "")
        sd = float(np.std(d, ddof=1)) if len(d) > 1 else np.nan
        row |= {"paired": True, "n_pairs": len(d), "diff": d.mean(), "sd_diff": sd, "ci_low": low, "ci_high": high}
        row |= {"method": method, "mde": minimal_detectable_effect(sd, len(d))}
    else:
        low, high = unpaired_bootstrap_ci(x.to_numpy(), y.to_numpy())
        row |= {"paired": False, "n_pairs": 0, "diff": x.mean() - y.mean(), "sd_diff": np.nan}
        row |= {"ci_low": low, "ci_high": high, "method": "bootstrap" if np.isfinite(low) else "", "mde": np.nan}
    row["real"] = bool(row["ci_low"] > 0 or row["ci_high"] < 0) if not np.isnan(row["ci_low"]) else pd.NA
    return row


def health_table(evals: pd.DataFrame) -> pd.DataFrame:
    """Is each method's experiment healthy? Per control and GAN group (health.py's figures, basic++ rows):

    d_acc_end_of_pretraining: mean over runs of (d_acc_real + d_acc_fake) / 2 at the last `pretrain_d` row;
    d_acc_real, d_acc_fake, emb_distance, grad_cos: means over every `gan`-phase row of the group's runs;
    grad_ratio_median: the median of adv_fit_grad_ratio over those rows (a mean would follow its outliers).
    Empty when evals.csv carries no health figures (gathered before they existed)."""
    columns = ["group", "d_acc_end_of_pretraining", "d_acc_real", "d_acc_fake", "emb_distance"]
    columns += ["grad_ratio_median", "grad_cos"]
    if not set(HEALTH) <= set(evals):
        return pd.DataFrame(columns=columns)
    frame = with_groups(evals)
    frame = frame[(frame["kind"] == "gan") & (frame["post"] == MAIN_POST)]
    pretrain_end = frame[frame["phase"] == "pretrain_d"].sort_values("step", kind="stable").groupby("trial_id").tail(1)
    pretrain_end = pretrain_end.assign(d_acc=(pretrain_end["d_acc_real"] + pretrain_end["d_acc_fake"]) / 2)
    gan = frame[frame["phase"] == "gan"]
    rows = []
    for group in [m for m in methods(evals) if m != BASELINE]:
        rows_of = gan[gan["group"] == group]
        row = {
            "group": group,
            "d_acc_end_of_pretraining": pretrain_end.loc[pretrain_end["group"] == group, "d_acc"].mean(),
        }
        row |= {name: rows_of[name].mean() for name in ("d_acc_real", "d_acc_fake", "emb_distance")}
        row |= {
            "grad_ratio_median": rows_of["adv_fit_grad_ratio"].median(),
            "grad_cos": rows_of["adv_fit_grad_cos"].mean(),
        }
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def chance_warnings(evals: pd.DataFrame) -> list[str]:
    """One line per group whose D ends its pre-training at chance: its GAN phase does not test the method."""
    return [
        f"warning: {row.group}: D ends its pre-training at chance (mean patch accuracy {row.d_acc:.2f} <= "
        f"{D_CHANCE} over {row.n_runs} runs): its GAN phase does not test the method"
        for row in d_at_chance(evals).itertuples()
    ]


def best_group(evals: pd.DataFrame, metric: dict[str, str]) -> tuple[str | None, float]:
    """The GAN group whose runs' final `metric["name"]` after `metric["post"]` is best on average (max or min, by
    metric["mode"]), and that mean (a fraction, as evals.csv holds it); (None, NaN) when no group has a value. The
    control is the reference of the study, never its best."""
    final = final_rows(evals)
    final = final[(final["role"] == GAN) & (final["post"] == metric["post"])]
    means = final.groupby("group")[metric["name"]].mean().dropna()
    if means.empty:
        return None, float("nan")
    group = means.idxmax() if metric["mode"] == "max" else means.idxmin()
    return str(group), float(means[group])
