"""The label-map stages: basic++ post-processing of a map at the training size and at 720p, and rendering a
label map, on frames of the synthetic lanes (harness.lanes).
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from elgan_ray.bench.harness import Bench
from elgan_ray.data.labels import H_SAMPLES
from elgan_ray.train.timing import frame_lanes, median_time


def _label_frames(n: int) -> list[list[list[int]]]:
    """n frames of 4 lanes (x per h_sample, -2 where absent), as the evaluator's labels."""
    rng = np.random.default_rng(2)
    return [[xs.tolist() for xs in frame_lanes(rng)] for _ in range(n)]


def stage_postprocess(b: Bench) -> dict[str, Any]:
    from elgan_ray.data.labels import render_lane_map
    from elgan_ray.evaluate.postprocess import lanes_from_map

    rng = np.random.default_rng(3)
    out: dict[str, Any] = {}
    for key, (h, w) in (("postprocess_ms_train_size", (128, 256)), ("postprocess_ms_720p", (720, 1280))):
        # A network-like map: the rendered label (sigma scaled with the size), plus noise and some specks.
        maps = []
        for lanes in _label_frames(8):
            m = render_lane_map(lanes, H_SAMPLES, h, w, sigma=w / 256)
            m = np.clip(m * rng.uniform(0.7, 1.0) + rng.normal(0, 0.08, m.shape), 0, 1).astype(np.float32)
            maps.append(m)
        per_map = [median_time(lambda m=m: lanes_from_map(m, H_SAMPLES, "basic++"), b.reps * 3) for m in maps]
        out[key] = statistics.median(per_map) * 1e3
    b.notes["postprocess"] = "basic++ on 8 rendered 4-lane maps with noise; median over maps of per-map medians"
    return out


def stage_render(b: Bench) -> dict[str, Any]:
    from elgan_ray.data.labels import render_lane_map

    per_frame = [
        median_time(lambda lanes=lanes: render_lane_map(lanes, H_SAMPLES, 128, 256, 1.0), b.reps * 5)
        for lanes in _label_frames(8)
    ]
    b.notes["render"] = "render_lane_map of 4 lanes at 128x256, sigma 1; median over 8 frames"
    return {"render_ms": statistics.median(per_frame) * 1e3}
