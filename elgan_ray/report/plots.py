"""The report's figures: Fig. 5 (F-score stability over seeds), accuracy curves beside the fit-only control,
D's health over training, and prediction panels (Fig. 4/6).

Every figure's title names the study and preset; diverged, failed and running trials are drawn in their own
colour and marker (STATUS_STYLE), never left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: the report runs on headless nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from elgan_ray.record.names import BASELINE, CONTROL, MAIN_POST  # noqa: E402
from elgan_ray.report.frame import final_rows, gan_steps, group_order, methods, with_groups
from elgan_ray.report.inputs import load_previews  # noqa: E402

STATUS_STYLE = {  # marker and colour of a trial's final point by its status
    "ok": ("o", "0.35"),
    "diverged": ("X", "tab:red"),
    "failed": ("s", "tab:purple"),
    "running": ("^", "tab:orange"),
    "stopped": ("v", "tab:cyan"),  # stopped early by a search's scheduler: left out of Fig. 5, counted in its tick
}
N_FRAMES = 3  # validation frames in predictions.png
DPI = 120


def write_figures(
    study_dir: Path,
    title: str,
    evals: pd.DataFrame,
    summary: pd.DataFrame,
    previews: dict | None = None,
    ensembles: pd.DataFrame | None = None,
    spread: tuple[str, Any] | None = None,
) -> dict[str, Path]:
    """stability.png/.pdf, curves.png, health.png (when evals.csv has D's health), widths.png (when it has line
    widths), ensemble.png (when runs kept
    maps) and predictions.png (when previews exist: `previews`, else inputs.load_previews of study_dir) in
    study_dir; `spread` (group, ensemble.Spread) adds its uncertainty column to predictions.png."""
    written = {}
    if ensembles is not None and len(ensembles):
        written["ensemble.png"] = _save(ensemble_figure(title, evals, ensembles), study_dir / "ensemble.png")
    fig = stability_figure(title, evals, summary)
    for ext in ("png", "pdf"):
        written[f"stability.{ext}"] = _save(fig, study_dir / f"stability.{ext}")
    written["curves.png"] = _save(curves_figure(title, evals), study_dir / "curves.png")
    fig = health_figure(title, evals)
    if fig is not None:
        written["health.png"] = _save(fig, study_dir / "health.png")
    fig = widths_figure(title, evals)
    if fig is not None:
        written["widths.png"] = _save(fig, study_dir / "widths.png")
    fig = predictions_figure(title, evals, study_dir, previews, spread)
    if fig is not None:
        written["predictions.png"] = _save(fig, study_dir / "predictions.png")
    plt.close("all")
    return written


def _save(fig: plt.Figure, path: Path) -> Path:
    # Through a temporary sibling and a rename, like files.atomic_write_bytes: a reader never sees half a figure.
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    tmp.replace(path)
    return path


def stability_figure(title: str, evals: pd.DataFrame, summary: pd.DataFrame) -> plt.Figure:
    """Fig. 5: per group, the mean final validation F-score with +-1 std bar over seeds, and each seed's point
    (trials stopped early by a scheduler have no final score and are left out; the group's tick counts them)."""
    final = final_rows(evals)
    f1 = final[(final["kind"] == "gan") & (final["post"] == MAIN_POST)].set_index("trial_id")["f1"] * 100
    trials = with_groups(evals)[lambda d: d["kind"] == "gan"].groupby("trial_id")[["group", "seed", "status"]].first()
    trials = trials[trials["status"] != "stopped"]
    groups = list(summary["group"])
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(groups) + 2), 4.4))
    x = np.arange(len(groups))
    ax.errorbar(x, summary["f1_mean"], yerr=summary["f1_std"].fillna(0), fmt="D", color="tab:blue", ms=8, capsize=8)
    ax.plot([], [], "D-", color="tab:blue", label="mean ± std over seeds")  # one legend entry for the bars
    seen = set()
    for (group, status), members in trials.sort_values("seed").groupby(["group", "status"], sort=False):
        marker, colour = STATUS_STYLE.get(status, STATUS_STYLE["failed"])
        value = f1.reindex(members.index).to_numpy()
        # A seed with no final score (NaN, or never evaluated) is drawn below the axis floor, still visible.
        y = np.where(np.isfinite(value), value, -4.0)
        spread = np.linspace(-0.08, 0.08, len(y)) if len(y) > 1 else np.zeros(1)  # seeds side by side
        label = (
            None
            if status in seen
            else (f"{status} seed" if status == "ok" else f"{status} seed (at -4: no final score)")
        )
        seen.add(status)
        ax.scatter(groups.index(group) + 0.25 + spread, y, marker=marker, color=colour, s=28, alpha=0.8, label=label)
    ticks = []
    for _, row in summary.iterrows():
        bad = "".join(f", {row[f'n_{s}']} {s}" for s in STATUS_STYLE if s != "ok" and row[f"n_{s}"])
        ticks.append(f"{row['group']}\n{row['n_final']}/{row['n_trials']} scored{bad}")
    ax.set_xticks(x, ticks, fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    scored = f1.reindex(trials.index)
    spread = summary["f1_std"].fillna(0)
    bottom, top = (
        min(scored.min(), (summary["f1_mean"] - spread).min()),
        max(scored.max(), (summary["f1_mean"] + spread).max()),
    )
    bottom = bottom - 0.1 * (top - bottom) - 2 if scored.notna().all() else -8
    if bottom < 10:  # the paper's full range, room below 0 for seeds without a score
        bottom, top = -8, 100
    ax.set_ylim(bottom, min(105, top + 5))
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("configuration group (seeds with a final score / trials)")
    ax.set_ylabel(f"final validation F-score (%), {MAIN_POST}")
    ax.set_title(f"{title}\nTraining stability (Fig. 5): final validation F-score over seeds", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def widths_figure(title: str, evals: pd.DataFrame) -> plt.Figure | None:
    """Fig. 4 in numbers: per method, each run's final line width over its labels' (1 = as thin as a label), with
    the method's mean; None when the record has no widths."""
    final = final_rows(evals)
    final = final[final["post"] == MAIN_POST]
    if not {"line_width", "label_width"} <= set(final) or final["line_width"].isna().all():
        return None
    ratio = (final["line_width"] / final["label_width"]).where(final["line_width"] > 0)
    order = methods(evals)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(order), 3.2))
    for x, method in enumerate(order):
        values = ratio[final["group"] == method].dropna()
        ax.scatter(np.full(len(values), x), values, color="0.45", s=14, zorder=3)
        if len(values):
            ax.plot([x - 0.3, x + 0.3], [values.mean()] * 2, color="tab:blue", lw=2)
    ax.axhline(1.0, color="tab:green", ls=":", lw=1, label="label width")
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("final line width / label width")
    ax.set_title(f"{title}: line width (Fig. 4: thinner, label-like lines)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def _method_colours(evals: pd.DataFrame) -> dict[str, Any]:
    """A colour per control and GAN group: the control black, the groups tab10 in their order."""
    colours = plt.get_cmap("tab10")
    return {CONTROL: "black"} | {group: colours(i) for i, group in enumerate(group_order(evals))}


def curves_figure(title: str, evals: pd.DataFrame) -> plt.Figure:
    """Validation accuracy (basic++) against GAN step per group and for the control (lambda 0, same steps): mean
    over seeds, band min..max over seeds."""
    frame = with_groups(evals)
    frame = frame[frame["post"] == MAIN_POST].assign(gan_step=gan_steps)
    gan = frame[(frame["kind"] == "gan") & (frame["phase"] == "gan")]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = _method_colours(evals)
    for group in [m for m in methods(evals) if m != BASELINE]:
        rows = gan[gan["group"] == group]
        by_step = (rows["accuracy"] * 100).groupby(rows["gan_step"]).agg(["mean", "min", "max"])
        style = "s--" if group == CONTROL else "o-"
        label = "control (lambda 0)" if group == CONTROL else group
        ax.plot(by_step.index, by_step["mean"], style, color=colours[group], lw=2, ms=3, label=label)
        ax.fill_between(by_step.index, by_step["min"], by_step["max"], color=colours[group], alpha=0.12, lw=0)
        for _, trial in rows[rows["status"] != "ok"].groupby("trial_id"):  # where each bad run ended, marked
            status = trial["status"].iloc[0]
            marker, colour = STATUS_STYLE.get(status, STATUS_STYLE["failed"])
            last = trial.dropna(subset=["accuracy"]).tail(1)
            ax.plot(trial["gan_step"], trial["accuracy"] * 100, color=colours[group], lw=0.8, ls=":")
            if len(last):
                ax.scatter(
                    last["gan_step"],
                    last["accuracy"] * 100,
                    marker=marker,
                    color=colour,
                    s=60,
                    zorder=4,
                    label=f"{status}: last score of {trial['trial_name'].iloc[0]}" if status != "stopped" else None,
                )
    if (gan["status"] == "stopped").any():  # one legend entry for them all: a search may stop most of its trials
        marker, colour = STATUS_STYLE["stopped"]
        ax.scatter([], [], marker=marker, color=colour, s=60, label="stopped early by the scheduler: last score")
    base = final_rows(evals)
    base = base[(base["group"] == BASELINE) & (base["post"] == MAIN_POST)]["accuracy"] * 100
    if len(base):
        ax.axhline(base.mean(), color="black", ls="--", lw=1, label=f"baseline (pre-trained G, n={len(base)})")
    ax.set_xlabel("step of the GAN phase")
    ax.set_ylabel(f"validation accuracy (%), {MAIN_POST}")
    ax.set_title(f"{title}\nValidation accuracy during GAN training: mean over seeds, band = min..max", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def ensemble_figure(title: str, evals: pd.DataFrame, ensembles: pd.DataFrame) -> plt.Figure:
    """Seed ensembles (ensemble.csv): final validation accuracy of the mean map of a method's first k seeds against
    k, per post-processing, beside the mean accuracy of the same k seeds scored one by one (dashed)."""
    posts = list(dict.fromkeys(ensembles["post"]))
    fig, axes = plt.subplots(
        1, len(posts), figsize=(5.2 * len(posts), 4.2), squeeze=False, sharey=True, layout="constrained"
    )
    colours = _method_colours(evals) | {BASELINE: "0.55"}
    for ax, post in zip(axes[0], posts, strict=True):
        for group, rows in ensembles[ensembles["post"] == post].groupby("group", sort=False):
            colour = colours.get(group, "tab:gray")
            ax.plot(rows["n_models"], rows["accuracy"] * 100, "o-", color=colour, lw=2, ms=4, label=group)
            ax.plot(rows["n_models"], rows["member_accuracy_mean"] * 100, "--", color=colour, lw=1)
        ax.plot([], [], "k--", lw=1, label="single-seed mean of the same seeds")
        ax.set_xticks(sorted(set(ensembles["n_models"])))
        ax.set_xlabel("ensemble size: seeds averaged, in seed order")
        ax.set_title(post, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("final validation accuracy (%)")
    axes[0, -1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"{title}\nSeed ensembles: the mean probability map of k seeds, post-processed, scored", fontsize=10)
    return fig


HEALTH_PANELS = (  # (column, axis label, reference line)
    ("d_acc_real", "D patch accuracy on labels", 0.5),
    ("d_acc_fake", "D patch accuracy on predictions", 0.5),
    ("emb_distance", "embedding distance, label vs prediction", None),
    ("adv_fit_grad_ratio", "|lambda dL_adv| / |dL_fit| at G's output", 1.0),
    ("adv_fit_grad_cos", "cosine(dL_adv, dL_fit)", 0.0),
)


def health_figure(title: str, evals: pd.DataFrame) -> plt.Figure | None:
    """D's health per control and group over the D pre-training (negative steps) and the GAN phase: mean over
    seeds. None when evals.csv carries no health figures."""
    if not {column for column, _, _ in HEALTH_PANELS} <= set(evals):
        return None
    frame = with_groups(evals)
    frame = frame[(frame["post"] == MAIN_POST) & (frame["kind"] == "gan")].assign(gan_step=gan_steps)
    colours = _method_colours(evals)
    fig, axes = plt.subplots(
        1, len(HEALTH_PANELS), figsize=(4.2 * len(HEALTH_PANELS), 3.8), squeeze=False, layout="constrained"
    )
    for ax, (column, label, reference) in zip(axes[0], HEALTH_PANELS, strict=True):
        for group in [m for m in methods(evals) if m != BASELINE]:
            rows = frame[frame["group"] == group]
            mean = rows[column].groupby(rows["gan_step"]).mean()
            style = "s--" if group == CONTROL else "o-"
            ax.plot(mean.index, mean.to_numpy(), style, color=colours[group], lw=1.5, ms=2.5, label=group)
        if reference is not None:
            ax.axhline(reference, color="0.5", lw=0.8, ls=":")
        if column == "emb_distance":
            ax.set_yscale("symlog", linthresh=0.01)  # a healthy D's ~1 and an unbounded one's 10^6 in one panel
        if column == "adv_fit_grad_ratio":
            ax.set_yscale("symlog", linthresh=0.01)  # 0 (the control) and 20x in one panel
            ax.set_ylim(bottom=0)
        ax.axvline(0, color="0.7", lw=0.8)  # the D pre-training ends, the GAN phase begins
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step of the GAN phase (D pre-training < 0)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"{title}: is D learning, and what does its gradient do to G? (mean over seeds)", fontsize=10)
    return fig


def _representatives(evals: pd.DataFrame, previews: dict) -> list[tuple[str, str]]:
    """(column title, trial_name): the baseline, then per group its lowest-seed trial that has a preview."""
    trials = with_groups(evals).groupby("trial_name")[["group", "seed", "status"]].first().reset_index()
    trials = trials[trials["trial_name"].isin(previews)].sort_values(["seed", "trial_name"])
    chosen = []
    for group in methods(evals):
        members = trials[trials["group"] == group]
        if len(members):
            trial = members.iloc[0]
            status = "" if trial["status"] == "ok" else f" [{trial['status']}]"
            chosen.append((f"{group}{status}\n{trial['trial_name']}", trial["trial_name"]))
    return chosen


def predictions_figure(
    title: str,
    evals: pd.DataFrame,
    study_dir: Path,
    previews: dict | None = None,
    spread: tuple[str, Any] | None = None,
) -> plt.Figure | None:
    """Fig. 4/6 form: per frame, a raw row (probability maps) and a basic++ row (lanes drawn on the frame), from
    `previews` (inputs.load_previews), else the study folder's. With `spread` (group, ensemble.Spread), a
    last column: the per-pixel std of the group's seeds (raw row) and the lanes of their mean map (basic++ row)."""
    previews = load_previews(study_dir) if previews is None else previews
    chosen = _representatives(evals, previews)
    if not chosen:
        return None
    try:
        from elgan_ray.evaluate.postprocess import lanes_from_map
    except ImportError:  # the post-processed row needs postprocess.py; the raw row does not
        lanes_from_map = None
    first = previews[chosen[0][1]]
    n_frames = min(N_FRAMES, *(len(previews[name]["prob"]) for _, name in chosen))
    if spread is not None:
        n_frames = min(n_frames, len(spread[1].std))
    height, width = first["label"].shape[1:]
    h_samples = first.get("h_samples")
    if h_samples is None:
        from elgan_ray.data.labels import H_SAMPLES as h_samples
    rows_per_frame = 2 if lanes_from_map else 1
    n_cols = 2 + len(chosen) + (spread is not None)
    size = 2.4
    fig, axes = plt.subplots(
        n_frames * rows_per_frame,
        n_cols,
        squeeze=False,
        figsize=(n_cols * size + 0.6, n_frames * rows_per_frame * size * height / width + 1.2),
        layout="constrained",  # leaves room for the shared colour bar
    )
    for f in range(n_frames):
        image, label = first["image"][f], first["label"][f]
        panels = [("frame", image, None), ("label", label, label)]
        panels += [(col, previews[name]["prob"][f], previews[name]["prob"][f]) for col, name in chosen]
        if spread is not None:  # the ensemble's uncertainty: its std (0 .. 0.5 for maps in [0, 1]), its mean's lanes
            group, seeds = spread
            col = f"uncertainty, {group}:\nstd over {seeds.n_models} seeds; mean's lanes"
            panels.append((col, seeds.std[f], seeds.mean[f]))
        for c, (col, raw, prob) in enumerate(panels):
            ax = axes[f * rows_per_frame, c]
            if spread is not None and c == n_cols - 1:
                spread_shown = ax.imshow(raw, cmap="viridis", vmin=0, vmax=0.5)
            else:
                shown = ax.imshow(raw, cmap="magma", vmin=0, vmax=1) if raw.ndim == 2 else ax.imshow(raw)
            if f == 0:
                ax.set_title(col, fontsize=8)
            if lanes_from_map:
                ax = axes[f * rows_per_frame + 1, c]
                ax.imshow(image)
                if prob is not None:
                    lanes = lanes_from_map(
                        np.nan_to_num(prob),
                        list(h_samples),
                        method=MAIN_POST,
                        threshold=0.5,
                        image_height=720,
                        image_width=1280,
                    )
                    _draw_lanes(ax, lanes, h_samples, height, width)
        axes[f * rows_per_frame, 0].set_ylabel(f"frame {f}\nraw", fontsize=8)
        if lanes_from_map:
            axes[f * rows_per_frame + 1, 0].set_ylabel(f"frame {f}\n{MAIN_POST}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    note = "" if lanes_from_map else " (post-processed row skipped: elgan_ray.evaluate.postprocess unavailable)"
    fig.suptitle(f"{title}: validation predictions, raw probability and {MAIN_POST} lanes{note}", fontsize=10)
    probability_axes = axes if spread is None else axes[:, :-1]
    fig.colorbar(shown, ax=probability_axes, shrink=0.4, label="lane probability (raw rows)")
    if spread is not None:
        fig.colorbar(spread_shown, ax=axes[:, -1], shrink=0.4, label="std across seeds")
    return fig


def _draw_lanes(ax: plt.Axes, lanes: list[list[int]], h_samples, height: int, width: int) -> None:
    """TuSimple lanes (x in 1280x720, -2 absent) scaled onto a (height, width) panel, one colour per lane."""
    y = (np.asarray(h_samples, float) + 0.5) * height / 720 - 0.5
    for i, lane in enumerate(lanes):
        x = np.asarray(lane, float)
        x = np.where(x < 0, np.nan, (x + 0.5) * width / 1280 - 0.5)
        ax.plot(x, y, color=plt.get_cmap("tab10")(i % 10), lw=1.5)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
