"""Seed ensembles, free from every study: per method, the mean of its seeds' final validation maps, scored.

Every run keeps its final evaluation's maps (val_maps.npz, evaluate/maps.py). For each method of a study (the
baseline where its pre-trainings kept maps, the control, every GAN group) the report averages the maps of the
method's first k seeds, k = 1..n in seed order, post-processes the mean map with basic and basic++ and scores it
with the TuSimple evaluator (val_maps.score_maps, the loop's own scoring). Only runs that ended `ok` take part:
a diverged, failed, stopped or unfinished run has no final maps worth averaging. The per-pixel standard
deviation across a method's seeds is the ensemble's uncertainty (the paper's Sec. 6.3 suggests an ensemble of
EL-GANs to re-introduce it); predictions.png shows it for a few frames.

ensemble.csv, one row per method x post-processing x ensemble size:
  group, post, n_models     the method (frame.py's group), the post-processing, k
  accuracy, fp, fn, f1      the scores of the mean of the first k seeds' maps (fractions, as evals.csv)
  member_accuracy_mean      the mean accuracy of those k seeds' maps scored one by one: the single-seed mean
                            an ensemble of k is compared with (k = 1: the seed itself)
  seeds                     the seeds averaged, space-separated
Numbers come from the uint8 maps, so a single seed's accuracy can differ from its evals.csv row only where a
pixel sat at exactly the threshold. numpy, pandas and cv2; no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from elgan_ray.config import EvalConfig
from elgan_ray.data.labels import LaneLabel
from elgan_ray.errors import UserError
from elgan_ray.evaluate.maps import LEVELS, StoredMaps, read, score_maps
from elgan_ray.record import layout
from elgan_ray.record.names import MAIN_POST
from elgan_ray.report.frame import methods, with_groups

COLUMNS = ("group", "post", "n_models", "accuracy", "fp", "fn", "f1", "member_accuracy_mean", "seeds")
SPREAD_FRAMES = 3  # validation frames whose per-pixel spread across seeds is kept for predictions.png


@dataclass(frozen=True)
class Spread:
    """A method's first validation frames across its seeds: the ensemble's mean map and the per-pixel std."""

    mean: np.ndarray  # (F, H, W) float32, the mean of the n seeds' maps
    std: np.ndarray  # (F, H, W) float32, population std (ddof 0) across the n seeds
    n_models: int


def ensemble_scores(maps_by_seed: Iterable[np.ndarray], labels: list[LaneLabel], eval_cfg: EvalConfig) -> list[dict]:
    """Rows n_models, post, accuracy, fp, fn, f1, member_accuracy_mean for ensembles of the first k of
    `maps_by_seed` ((V, H, W) uint8 each, read one at a time), k = 1..n: the mean map of the k is scored."""
    rows, total, member_accuracy = [], None, {}
    for k, maps in enumerate(maps_by_seed, start=1):
        total = maps.astype(np.uint16) if total is None else total + maps  # uint16 holds 257 summed uint8 maps
        alone = score_maps((frame / LEVELS for frame in maps), labels, eval_cfg)
        for post, scores in alone.items():
            member_accuracy.setdefault(post, []).append(scores["accuracy"])
        mean = score_maps((frame / (LEVELS * k) for frame in total), labels, eval_cfg) if k > 1 else alone
        for post, scores in mean.items():
            rows.append({"n_models": k, "post": post, **scores})
            rows[-1]["member_accuracy_mean"] = float(np.mean(member_accuracy[post]))
    return rows


def study_ensembles(study_dir: Path, evals: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Spread]]:
    """ensemble.csv's table for a study folder (empty when no run kept maps), and each method's Spread."""
    trials = with_groups(evals).groupby("trial_name", sort=False)[["group", "seed", "status"]].first().reset_index()
    trials = trials[trials["status"] == "ok"].sort_values(["seed", "trial_name"], kind="stable")
    rows, spreads = [], {}
    for method in methods(evals):
        members = trials[trials["group"] == method]
        paths = [layout.run_dir(study_dir, name) / layout.VAL_MAPS_FILE for name in members["trial_name"]]
        kept = [(int(seed), path) for seed, path in zip(members["seed"], paths, strict=True) if path.is_file()]
        if not kept:
            continue
        first = read(kept[0][1])
        frames: list[np.ndarray] = []  # each seed's first frames, filled as the seeds' maps are read
        maps = _seeds_maps([path for _, path in kept], first, frames)
        for row in ensemble_scores(maps, first.labels, first.eval_cfg):
            row["seeds"] = " ".join(str(seed) for seed, _ in kept[: row["n_models"]])
            rows.append({"group": method, **row})
        stack = np.stack(frames)  # (n, F, H, W)
        spreads[method] = Spread(stack.mean(0).astype(np.float32), stack.std(0).astype(np.float32), len(frames))
    order = {method: i for i, method in enumerate(methods(evals))}
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table = table.sort_values(
        ["group", "post", "n_models"], key=lambda s: s.map(order) if s.name == "group" else s, kind="stable"
    )
    return table.reset_index(drop=True), spreads


def _seeds_maps(paths: list[Path], first: StoredMaps, frames: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Each run's uint8 maps in turn (one in memory at a time), checked to be of the same frames as the first's;
    their first SPREAD_FRAMES frames (as probabilities) are appended to `frames`."""
    for path in paths:
        stored = first if path == paths[0] else read(path)
        if stored.labels != first.labels or stored.maps.shape != first.maps.shape:
            raise UserError(path, f"not the validation frames of {paths[0]}: an ensemble averages maps of one set")
        frames.append(stored.maps[:SPREAD_FRAMES] / LEVELS)
        yield stored.maps


def most_accurate(table: pd.DataFrame, candidates: list[str]) -> str | None:
    """Of `candidates` with an ensemble of at least 2 seeds, the one whose largest ensemble scores best (basic++)."""
    rows = table[(table["post"] == MAIN_POST) & table["group"].isin(candidates) & (table["n_models"] > 1)]
    if rows.empty:
        return None
    largest = rows.sort_values("n_models", kind="stable").groupby("group").tail(1)
    return str(largest.sort_values("accuracy", kind="stable")["group"].iloc[-1])
