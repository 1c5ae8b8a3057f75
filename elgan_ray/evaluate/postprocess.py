"""Lane probability map (training resolution) -> TuSimple lanes: x per h_sample in 1280x720 coordinates.

Two post-processors, as the EL-GAN paper describes them (Sec. 4.3; docs/fidelity.md):
- `basic`: binarise; each 8-connected component is one lane; on each sampled row its x is the mean x of its pixels.
- `basic++`: as basic, but a component that holds several separate runs of pixels on one sampled row (two
  lanes that touch, typically near the horizon) is split into that many lanes, followed row by row.
Coordinates: map pixel centres are aligned with image pixel centres, so map row r covers image y around
(r + 0.5) * 720 / H - 0.5 and map x becomes (x + 0.5) * 1280 / W - 0.5 in the image.

By default both are the paper's as it describes them: every component above the threshold is a lane. Two
filters are ours, off by default (eval.min_area, eval.max_lanes; docs/fidelity.md): `min_area` drops specks
smaller than that many map pixels, and `max_lanes` keeps only that many lanes, the biggest first. They matter
because the evaluator zeroes an image that has more than len(gt) + 2 predicted lanes, so specks cost `basic`
whole images: exactly the deficit the paper's Table 1 shows for the baseline (86.2 with basic, 94.3 with basic++).
With the filters (OUR_MIN_AREA, OUR_MAX_LANES) that deficit shrinks, so they are never on unless asked for.
"""

from __future__ import annotations

import cv2
import numpy as np

from elgan_ray.record.names import MAIN_POST, POSTS

DEFAULT_THRESHOLD = 0.5  # on the probability map: a label rendered with peak 1 is half-width at 0.5
# Our filters' values when a config asks for them (0 = off, the paper's): a lane at 128x256 has >= ~20 pixels;
# with five gt lanes the official metric forgives one miss, so a fifth lane cannot raise a score, and four keeps
# images with two gt lanes safe from the len(gt) + 2 rule.
OUR_MIN_AREA = 10
OUR_MAX_LANES = 4
MIN_OWN_ROWS = 2  # basic++ keeps a split-off lane only if it has this many sampled rows to itself
TRACK_TOLERANCE = 2.0  # map pixels between a split lane's straight course and the run it takes on the next row
MISSING = -2  # TuSimple's "no lane on this row"


def sample_rows(h_samples: list[float], height: int, image_height: int = 720) -> np.ndarray:
    """The map row nearest to each h_sample (pixel centres aligned), clipped to the map."""
    y = np.asarray(h_samples, dtype=np.float64)
    rows = np.floor((y + 0.5) * height / image_height)  # the map row whose span contains the image row
    return np.clip(rows, 0, height - 1).astype(np.intp)


def lanes_from_map(
    prob: np.ndarray,
    h_samples: list[float],
    method: str = MAIN_POST,
    threshold: float = DEFAULT_THRESHOLD,
    min_area: int = 0,
    image_height: int = 720,
    image_width: int = 1280,
    max_lanes: int = 0,
) -> list[list[int]]:
    """TuSimple lanes (one int x per h_sample, -2 where absent) from an (H, W) lane probability map; min_area and
    max_lanes 0: no filter (the paper's post-processing)."""
    if method not in POSTS:
        raise ValueError(f"unknown post-processing '{method}' (choose from {', '.join(POSTS)})")
    height, width = prob.shape
    mask = np.ascontiguousarray(prob > threshold).view(np.uint8)
    # connectedComponents + bincount is ~3x faster than cv2's WithStats variant on a 720x1280 map.
    n_labels, labels = cv2.connectedComponents(mask, connectivity=8)
    area = np.bincount(labels.ravel(), minlength=n_labels)
    keep = np.flatnonzero(area[1:] >= min_area) + 1
    if len(keep) == 0 or len(h_samples) == 0:
        return []
    lut = np.zeros(n_labels, np.int32)
    lut[keep] = np.arange(1, len(keep) + 1)
    sub = lut[labels[sample_rows(h_samples, height, image_height)]]  # (S, W): component per sampled pixel
    run_row, run_comp, run_x, run_n = _runs(sub)
    if method == "basic" or len(run_row) == 0:
        xs, weight = _mean_per_component(run_row, run_comp, run_x, run_n, len(keep), sub.shape[0])
    else:
        xs, weight = _split_components(run_row, run_comp, run_x, run_n, len(keep), sub.shape[0])
    present = ~np.isnan(xs).all(1)
    xs, weight = xs[present], weight[present]
    if 0 < max_lanes < len(xs):  # the biggest lanes are the likeliest real ones; keep their original order
        xs = xs[np.sort(np.argsort(-weight, kind="stable")[:max_lanes])]
    image_x = (xs + 0.5) * (image_width / width) - 0.5
    return np.where(np.isnan(image_x), MISSING, np.rint(image_x)).astype(np.int64).tolist()


def _runs(sub: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of one component along each sampled row: (row, component, mean x, pixels), in raster order."""
    rows, width = sub.shape
    flat = sub.ravel()
    on = flat != 0
    start = on.copy()
    start[1:] &= flat[1:] != flat[:-1]
    start[::width] = on[::width]  # a run never continues from the previous row
    pix = np.flatnonzero(on)
    run_of = np.cumsum(start)[pix] - 1  # (pixels,) run index of each lane pixel
    first = np.flatnonzero(start)
    n = np.bincount(run_of, minlength=len(first)).astype(np.float64)
    mean_x = np.bincount(run_of, weights=(pix % width).astype(np.float64), minlength=len(first)) / np.maximum(n, 1)
    return first // width, flat[first].astype(np.intp), mean_x, n


def _mean_per_component(run_row, run_comp, run_x, run_n, n_comp: int, n_rows: int):
    """basic: per component and sampled row, the mean x of all its pixels there; NaN where it has none."""
    key = (run_comp - 1) * n_rows + run_row
    total = np.bincount(key, weights=run_x * run_n, minlength=n_comp * n_rows)
    count = np.bincount(key, weights=run_n, minlength=n_comp * n_rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        xs = (total / count).reshape(n_comp, n_rows)
    return xs, count.reshape(n_comp, n_rows).sum(1)


def _split_components(run_row, run_comp, run_x, run_n, n_comp: int, n_rows: int):
    """basic++: components with one run per sampled row are as in basic; the others are split and tracked."""
    per_row = np.bincount((run_comp - 1) * n_rows + run_row, minlength=n_comp * n_rows).reshape(n_comp, n_rows)
    most = per_row.max(1)
    xs, weight = _mean_per_component(run_row, run_comp, run_x, run_n, n_comp, n_rows)
    lanes, weights = [xs[most <= 1]], [weight[most <= 1]]
    for comp in (np.flatnonzero(most > 1) + 1).tolist():  # rare: a few touching lanes per map at most
        sel = run_comp == comp
        tracks, own = _track(run_row[sel], run_x[sel], run_n[sel], int(most[comp - 1]), n_rows)
        lanes.append(tracks)
        weights.append(own)
    return np.concatenate(lanes), np.concatenate(weights)


def _track(rows: np.ndarray, x: np.ndarray, n: np.ndarray, k: int, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Split one component into k lanes by following its runs from the lowest row that has k of them.

    On rows with k runs the lanes take them left to right (lanes do not cross). On rows with fewer, each lane
    continues its own straight course and takes the run there, if one lies within TRACK_TOLERANCE pixels;
    where lanes share a run (they merge towards the horizon) each keeps its predicted x, clipped to that
    run's pixels, and a lane with no run near its course has ended. A split-off lane with fewer than
    MIN_OWN_ROWS rows to itself is a spur, not a lane, and is dropped.
    Plain Python on purpose: a handful of lanes and runs per row, where numpy calls would cost more.
    """
    bounds = np.searchsorted(rows, np.arange(n_rows + 1)).tolist()  # runs come in row order
    xl, nl = x.tolist(), n.tolist()
    by_row = [(xl[lo:hi], nl[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    start = max(r for r in range(n_rows) if len(by_row[r][0]) == k)
    xs = np.full((k, n_rows), np.nan)
    taken = np.full((k, n_rows), -1)
    weight = np.zeros(k)
    for order in (range(start, n_rows), range(start - 1, -1, -1)):  # down from the start, then up
        # Each lane's placed (row, x) in this direction, latest last; None once it has ended.
        seen: list[list | None] = [[] if order.start == start else [(start, xs[t, start])] for t in range(k)]
        for r in order:
            run_x, run_n = by_row[r]
            if not run_x:
                continue
            if len(run_x) == k:
                picks, est = list(range(k)), list(run_x)
                seen = [h or [] for h in seen]
            else:
                guesses = [_course(h, r) for h in seen]
                picks = [_nearest_run(g, run_x, run_n) for g in guesses]
                est = [None if j < 0 else run_x[j] for j in picks]
                for t, j in enumerate(picks):
                    if j >= 0 and picks.count(j) > 1:  # merged lanes: keep to the course within the run
                        half = (run_n[j] - 1) / 2
                        est[t] = min(max(guesses[t], run_x[j] - half), run_x[j] + half)
            for t, (j, value) in enumerate(zip(picks, est, strict=True)):
                if value is None:
                    seen[t] = None
                    continue
                xs[t, r], taken[t, r] = value, j
                weight[t] += run_n[j]
                seen[t] = seen[t][-1:] + [(r, value)]
    # A row is a lane's own when no other lane took the same run there.
    shared = (taken[:, None, :] == taken[None, :, :]).sum(1) > 1
    own_rows = ((taken >= 0) & ~shared).sum(1)
    keep = own_rows >= MIN_OWN_ROWS
    if not keep.any():
        keep[np.argmax(weight)] = True
    return xs[keep], weight[keep]


def _course(seen: list | None, row: int) -> float | None:
    """A lane's x at `row`, continued in a straight line from its last two placed rows (None: it has ended)."""
    if not seen:
        return None
    (r1, x1), (r0, x0) = seen[-1], seen[-2] if len(seen) > 1 else seen[-1]
    return x1 if r1 == r0 else x1 + (x1 - x0) * (row - r1) / (r1 - r0)


def _nearest_run(guess: float | None, run_x: list[float], run_n: list[float]) -> int:
    """Index of the run nearest to guess (distance to its pixels), or -1 if none is within TRACK_TOLERANCE."""
    if guess is None:
        return -1
    gaps = [abs(guess - cx) - (cn - 1) / 2 for cx, cn in zip(run_x, run_n, strict=True)]
    best = min(range(len(gaps)), key=gaps.__getitem__)
    return best if gaps[best] <= TRACK_TOLERANCE else -1
