"""A run's validation maps, scored and kept: every post-processing's TuSimple scores of a stack of lane maps, and
the file that keeps a run's final maps for the report's seed ensembles (ensemble.py).

val_maps.npz (np.savez_compressed, written atomically by run_log.RunLog.final_maps) holds everything scoring
needs, so the report needs neither the dataset folder nor torch:
  maps        (V, H, W) uint8: the lane probability of every validation frame at the training size, p * 255
              rounded half down (ceil(255 p - 0.5)), so that q / 255 > 0.5 exactly when p > 0.5: at the default
              threshold a stored map post-processes as the run's own did
  labels      the frames' labels as JSON text: [{"raw_file", "lanes", "h_samples"}, ...], TuSimple's own fields,
              in the order of `maps`
  threshold, min_area, max_lanes   the run's eval keys, so the report post-processes as the run did. A file
              without max_lanes was written when our filters were always on (min_area 0 then meant 10, and at
              most 4 lanes were kept): `read` gives it those values, so it still scores as its run did
numpy and cv2 only (postprocess.py); no torch, no Ray.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elgan_ray.config import EvalConfig
from elgan_ray.data.labels import LaneLabel
from elgan_ray.errors import UserError
from elgan_ray.evaluate.metric import score_predictions
from elgan_ray.evaluate.postprocess import OUR_MAX_LANES, OUR_MIN_AREA, lanes_from_map
from elgan_ray.files import read_npz
from elgan_ray.record.names import POSTS

LEVELS = 255  # uint8 quantisation: p -> ceil(p * LEVELS - 0.5)
# A val_maps.npz unpacked: 2,782 frames (TuSimple's test set) at 720x1280 are 2.6 GB of uint8 maps.
MAX_BYTES = 4 << 30


@dataclass(frozen=True)
class StoredMaps:
    """One run's final validation maps as val_maps.npz keeps them."""

    maps: np.ndarray  # (V, H, W) uint8
    labels: list[LaneLabel]
    eval_cfg: EvalConfig  # the threshold and filters the run post-processed with


def score_maps(
    maps: Iterable[np.ndarray], labels: list[LaneLabel], eval_cfg: EvalConfig
) -> dict[str, dict[str, float]]:
    """post-processing -> {accuracy, fp, fn, f1}: each (H, W) probability map post-processed with every
    post-processing (at its threshold, with its filters: postprocess.py) and scored with the official TuSimple
    rules. `maps` is read once, in order (a generator of maps will do)."""
    kwargs = {"threshold": eval_cfg.threshold, "min_area": eval_cfg.min_area, "max_lanes": eval_cfg.max_lanes}
    lanes: dict[str, list] = {post: [] for post in POSTS}
    for prob, label in zip(maps, labels, strict=True):
        for post in POSTS:
            lanes[post].append(lanes_from_map(prob, label.h_samples, method=post, **kwargs))
    scores = {}
    for post in POSTS:
        result = score_predictions(lanes[post], labels)
        scores[post] = {"accuracy": result.accuracy, "fp": result.fp, "fn": result.fn, "f1": result.f1}
    return scores


def quantise(maps: np.ndarray) -> np.ndarray:
    """(V, H, W) probabilities in [0, 1] -> uint8, within half a level; NaN (a diverged generator) becomes 0.
    Halves round down: 0.5 (a pixel where G's two logits tie) stays below the default threshold, as in the run."""
    p = np.clip(np.nan_to_num(maps, nan=0.0), 0.0, 1.0).astype(np.float64)
    return np.ceil(p * LEVELS - 0.5).astype(np.uint8)


def encode(maps: np.ndarray, labels: list[LaneLabel], eval_cfg: EvalConfig) -> bytes:
    """The bytes of val_maps.npz for float maps (V, H, W) and the labels of their frames."""
    if len(maps) != len(labels):
        raise ValueError(f"{len(maps)} maps for {len(labels)} labels")
    records = [
        {"raw_file": x.raw_file, "lanes": [list(lane) for lane in x.lanes], "h_samples": list(x.h_samples)}
        for x in labels
    ]
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        maps=quantise(maps),
        labels=np.array(json.dumps(records)),  # a unicode scalar: loads without pickle
        threshold=np.float64(eval_cfg.threshold),
        min_area=np.int64(eval_cfg.min_area),
        max_lanes=np.int64(eval_cfg.max_lanes),
    )
    return buffer.getvalue()


def read(path: str | Path) -> StoredMaps:
    """A val_maps.npz; a damaged, foreign or oversized one is a UserError naming it."""
    path = Path(path)
    arrays = read_npz(path, "a run's validation maps", MAX_BYTES)
    try:
        maps, text = arrays["maps"], str(arrays["labels"])
        threshold, min_area = float(arrays["threshold"]), int(arrays["min_area"])
        if "max_lanes" in arrays:
            max_lanes = int(arrays["max_lanes"])
        else:  # written while our filters were always on (see the module docstring)
            min_area, max_lanes = min_area or OUR_MIN_AREA, OUR_MAX_LANES
        records = json.loads(text)
        labels = [LaneLabel(r["raw_file"], tuple(map(tuple, r["lanes"])), tuple(r["h_samples"])) for r in records]
    except (ValueError, KeyError, TypeError, RecursionError) as error:  # RecursionError: labels nested too deeply
        raise UserError(path, f"not a run's validation maps ({error.__class__.__name__}: {str(error)[:200]})") from None
    if maps.dtype != np.uint8 or maps.ndim != 3 or len(maps) != len(labels):
        raise UserError(path, "maps must be (V, H, W) uint8, one per label")
    try:
        eval_cfg = EvalConfig(threshold, min_area, max_lanes)
    except ValueError as error:
        raise UserError(path, f"not a run's validation maps ({error})") from None
    return StoredMaps(maps, labels, eval_cfg)
