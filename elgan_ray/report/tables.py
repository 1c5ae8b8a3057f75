"""The report's tables as pure functions of a study's evals.csv rows (frame.py shapes them): Table 3 form
(`summarize`), Table 1/2/4 form (`final_table`), the bootstrap tests against the control (`pairwise`) and D's
health (`health_table`). No I/O; report.py reads the inputs and writes the files.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from elgan_ray.record.names import BASELINE, CONTROL, GAN, HEALTH, MAIN_POST, STATUSES
from elgan_ray.report.frame import D_CHANCE, d_at_chance, final_rows, group_order, methods, varying_columns, with_groups

N_BOOT = 10_000  # bootstrap resamples; with seed BOOT_SEED the intervals are reproducible exactly
BOOT_SEED = 0


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
    """One row for the control (when the study has one; its config columns empty) and one per group of GAN
    trials. Percent = fraction x 100 (variance x 100^2); NaN metrics are skipped.

    n_trials/n_seeds: distinct trial_id/seed; n_ok..n_stopped: trials by their final status (STATUSES).
    accuracy_mean/var/max, n_evals: every `gan`-phase, basic++ row of the group's trials (var ddof=1), stopped
    trials left out: the scheduler stopped them for scoring low, so their rows would bias the statistics.
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
    accuracy = main.groupby("group")["accuracy"].agg(["mean", "var", "max", "count"])
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
    order = methods(evals)
    return table.reset_index().sort_values(
        ["group", "post"], key=lambda s: s.map(order.index) if s.name == "group" else s
    )


def comparisons(evals: pd.DataFrame) -> list[tuple[str, str]]:
    """(a, b) pairs the pairwise table tests: every GAN group against the control (same steps, no adversary),
    and the control against the baseline (what the extra fit steps alone did). A study without controls
    (evals.csv gathered before they existed) compares every two methods, baseline included."""
    present = methods(evals)
    if CONTROL not in present:
        return list(itertools.combinations(present, 2))
    pairs = [(group, CONTROL) for group in group_order(evals)]
    return pairs + ([(CONTROL, BASELINE)] if BASELINE in present else [])


def pairwise(evals: pd.DataFrame) -> pd.DataFrame:
    """The comparisons' bootstrap of the difference of mean final basic++ accuracy (percent) over runs.

    Each side is resampled on its own (rng seed BOOT_SEED, N_BOOT times); the difference is `real` when the 95%
    interval excludes 0. With fewer than 2 runs on a side there is no test (real is empty)."""
    final = final_rows(evals)
    final = final[final["post"] == MAIN_POST]
    samples = {g: final.loc[final["group"] == g, "accuracy"].dropna().to_numpy() * 100 for g in methods(evals)}
    rows = []
    for a, b in [(a, b) for a, b in comparisons(evals) if len(samples[a]) and len(samples[b])]:
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
