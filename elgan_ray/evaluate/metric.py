"""TuSimple accuracy / FP / FN, vectorised across lanes and images, equal to the official evaluator.

The official `LaneEval.bench` scores one image with Python loops over gt and predicted lanes; here every
(gt lane, predicted lane) pair of every image is one row of a 2-D array, so a whole file is a handful of
numpy operations. The rules, quirks included, are in docs/tusimple-metric.md; `reference.py` is the
plain port this module is tested against. Inputs that are not plain numbers in lists (strings, nulls,
nested lists) are rare and are handed to the reference port image by image, so they fail or pass as there.
No file I/O here; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

PIXEL_THRESH = 20.0  # px at slope 0; widened by 1 / cos(angle) for slanted gt lanes
PT_THRESH = 0.85  # a gt lane is matched when its best line accuracy reaches this
MISSING_X = -100.0  # every negative x becomes this, in predictions and labels alike
MAX_RUN_TIME = 200  # ms; slower images score (0, 0, 1)
FORMAT_ERROR = "Format of lanes error."  # the official message
_CHUNK = 1 << 18  # elements per block of work: temporaries of ~2 MiB stay in cache and reuse freed memory
_NUMBER_TYPES = (int, float, bool)
EXACT_INTEGERS = 2**53  # float64 holds every integer below this; beyond it, the official int arithmetic differs


class LaneFormatError(ValueError):
    """The official 'Format of lanes error.' for image `index` (the first one, in order, that has it)."""

    def __init__(self, index: int, detail: str):
        self.index = index
        self.detail = detail
        super().__init__(f"{FORMAT_ERROR} ({detail})")


@dataclass(frozen=True)
class LaneScores:
    """File-level TuSimple figures (fractions) and the F1 derived from FP and FN."""

    accuracy: float
    fp: float
    fn: float
    f1: float


def f1_score(fp: float, fn: float) -> float:
    """F1 from the averaged rates, as CLRNet and others quote it: P = 1 - FP, R = (1 - FP) / ((1 - FP) + FN)."""
    precision = 1.0 - fp
    denominator = precision + fn
    recall = precision / denominator if denominator != 0 else 0.0
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def result_list(accuracy_sum: float, fp_sum: float, fn_sum: float, n_labels: int) -> list[dict]:
    """The official output: sums over prediction lines divided by the number of distinct label raw_files."""
    return [
        {"name": "Accuracy", "value": float(accuracy_sum) / n_labels, "order": "desc"},
        {"name": "FP", "value": float(fp_sum) / n_labels, "order": "asc"},
        {"name": "FN", "value": float(fn_sum) / n_labels, "order": "asc"},
    ]


def sequential_sum(values: np.ndarray) -> float:
    """Left-to-right float sum, the order of the official `accuracy += a` (np.sum would pair up terms)."""
    return float(np.add.accumulate(values)[-1]) if len(values) else 0.0


def score_predictions(pred_lanes_per_image: list[list[list[float]]], labels: list[Any]) -> LaneScores:
    """Score predictions against labels (objects with raw_file, lanes, h_samples) given in the same order."""
    acc, fp, fn = bench_images(
        pred_lanes_per_image,
        [label.lanes for label in labels],
        [label.h_samples for label in labels],
        [0] * len(labels),
    )
    result = result_list(sequential_sum(acc), sequential_sum(fp), sequential_sum(fn), len({x.raw_file for x in labels}))
    accuracy, fp_rate, fn_rate = (item["value"] for item in result)
    return LaneScores(accuracy, fp_rate, fn_rate, f1_score(fp_rate, fn_rate))


@dataclass(frozen=True)
class Ragged:
    """Lanes of many images in one flat array: what a JSON reader can hand over without Python lists."""

    values: np.ndarray  # (sum of lane_len,) float64: every x, lane after lane, image after image
    lane_len: np.ndarray  # (lanes,) int64
    per_image: np.ndarray  # (images,) int64: lanes of each image

    @staticmethod
    def from_lists(images: list[list[list[float]]]) -> Ragged | None:
        """From nested lists of plain numbers; None if some value is not a number."""
        per_image = np.fromiter(map(len, images), np.int64, len(images))
        lanes = list(chain.from_iterable(images))
        lane_len = np.fromiter(map(len, lanes), np.int64, len(lanes))
        values = _as_numbers(list(chain.from_iterable(lanes)))
        return None if values is None else Ragged(values, lane_len, per_image)


def bench_images(
    pred_lanes: list[list[list[float]]],
    gt_lanes: list[list[list[float]]],
    h_samples: list[list[float]],
    run_times: list[float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image (accuracy, fp, fn) of the official bench; raises LaneFormatError for the first bad image."""
    n = len(pred_lanes)
    acc, fp, fn = np.zeros(n), np.zeros(n), np.ones(n)
    errors: dict[int, str] = {}
    plain = _plain_images(pred_lanes, gt_lanes, h_samples, run_times)
    idx = np.flatnonzero(plain)
    converted = _convert(idx, pred_lanes, gt_lanes, h_samples, run_times)
    if converted is None:  # a value somewhere is not a number: find the images that hold one
        plain[idx] = [_convert(np.array([i]), pred_lanes, gt_lanes, h_samples, run_times) is not None for i in idx]
        idx = np.flatnonzero(plain)
        converted = _convert(idx, pred_lanes, gt_lanes, h_samples, run_times)
    _bench_odd(np.flatnonzero(~plain), pred_lanes, gt_lanes, h_samples, run_times, (acc, fp, fn), errors)
    try:
        acc[idx], fp[idx], fn[idx] = bench_ragged(*converted)
    except LaneFormatError as error:
        errors[int(idx[error.index])] = error.detail
    if errors:
        first = min(errors)
        raise LaneFormatError(first, errors[first])
    return acc, fp, fn


def _convert(idx: np.ndarray, pred_lanes, gt_lanes, h_samples, run_times) -> tuple | None:
    """The images idx as bench_ragged's arguments, or None if some value is not a plain number."""
    ids = idx.tolist()
    pred = Ragged.from_lists([pred_lanes[i] for i in ids])
    gt = Ragged.from_lists([gt_lanes[i] for i in ids])
    h = Ragged.from_lists([[h_samples[i]] for i in ids])
    if pred is None or gt is None or h is None:
        return None
    return pred, gt, h.values, h.lane_len, np.array([float(run_times[i]) for i in ids], dtype=np.float64)


def _plain_images(pred_lanes: list, gt_lanes: list, h_samples: list, run_times: list) -> np.ndarray:
    """Which images hold lists of lists and a numeric run_time (their values are checked by dtype later)."""

    def plain(i: int) -> bool:
        pred, gt, rt = pred_lanes[i], gt_lanes[i], run_times[i]
        return (
            type(rt) in _NUMBER_TYPES
            and (type(rt) is not int or abs(rt) < EXACT_INTEGERS)  # float(rt) must be exact for the > 200 test
            and type(pred) is list
            and type(gt) is list
            and type(h_samples[i]) is list
            and all(type(lane) is list for lane in pred)
            and all(type(lane) is list for lane in gt)
        )

    return np.fromiter(map(plain, range(len(pred_lanes))), bool, len(pred_lanes))


def _bench_odd(odd: np.ndarray, pred_lanes, gt_lanes, h_samples, run_times, out: tuple, errors: dict) -> None:
    """Images with unusual types go through the reference port, so they fail or score exactly as there."""
    if len(odd) == 0:
        return
    from elgan_ray.evaluate.reference import bench

    for i in odd.tolist():
        try:
            a, p, f = bench(pred_lanes[i], gt_lanes[i], h_samples[i], run_times[i])
            out[0][i], out[1][i], out[2][i] = a, p, f
        except BaseException as error:  # the official turns anything raised in bench into the format error
            errors[i] = f"{error.__class__.__name__}: {error}"


def _as_numbers(values: list) -> np.ndarray | None:
    """A flat list as float64, or None unless every item is an int, float or bool that float64 holds exactly."""
    if not values:
        return np.zeros(0)
    try:
        array = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        return None
    if array.dtype.kind in "iu" and len(array) and np.abs(array).max(initial=0) >= EXACT_INTEGERS:
        return None  # beyond float64's integers the official int arithmetic differs: take the careful path
    return array.astype(np.float64, copy=False)


def bench_ragged(
    pred: Ragged, gt: Ragged, h_values: np.ndarray, h_len: np.ndarray, run_times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image (accuracy, fp, fn) from flat arrays (the vectorised core); LaneFormatError for the first bad image."""
    n = len(run_times)
    acc, fp, fn = np.zeros(n), np.zeros(n), np.ones(n)  # (0, 0, 1): what a skipped image scores
    errors: dict[int, str] = {}
    n_pred, n_gt = pred.per_image, gt.per_image
    pred_img, gt_img = np.repeat(np.arange(n), n_pred), np.repeat(np.arange(n), n_gt)

    # 1. Every predicted lane must have one x per h_sample (checked before anything else).
    bad_pred = np.bincount(pred_img, pred.lane_len != h_len[pred_img], n) > 0
    for i in np.flatnonzero(bad_pred).tolist():
        errors[i] = f"a predicted lane's length is not len(h_samples) = {h_len[i]}"

    # 2. Too slow, or more than len(gt) + 2 predictions: (0, 0, 1) without looking at the lanes.
    live = ~bad_pred & ~(run_times > MAX_RUN_TIME) & (n_pred <= n_gt + 2)  # NaN run_time is evaluated, as there

    # 3. A gt lane of another length fails in the official angle fit: the same format error.
    bad_gt = live & (np.bincount(gt_img, gt.lane_len != h_len[gt_img], n) > 0)
    for i in np.flatnonzero(bad_gt).tolist():
        errors[i] = f"a gt lane's length is not len(h_samples) = {h_len[i]}"
    live &= ~bad_gt

    # Images with the same number of h_samples share (lanes, rows) matrices; files have one or two such numbers.
    pred_off = np.cumsum(pred.lane_len) - pred.lane_len
    gt_off = np.cumsum(gt.lane_len) - gt.lane_len
    h_off = np.cumsum(h_len) - h_len
    first_gt, first_pred = np.cumsum(n_gt) - n_gt, np.cumsum(n_pred) - n_pred
    for rows in np.unique(h_len[live]).tolist():
        group = np.flatnonzero(live & (h_len == rows))
        step = max(1, _CHUNK // (8 * max(rows, 1)))  # images per block: keeps temporaries small and reused
        for img in (group[lo : lo + step] for lo in range(0, len(group), step)):
            gt_m = _lane_matrix(gt.values, gt_off[concat_ranges(first_gt[img], n_gt[img])], rows)  # (Lg, rows)
            read = np.where(n_gt[img] > 0, n_pred[img], 0)  # predicted lanes are only read against a gt lane
            pred_m = _lane_matrix(pred.values, pred_off[concat_ranges(first_pred[img], read)], rows)  # (Lp, rows)
            h_m = _lane_matrix(h_values, h_off[img], rows)  # (m, rows)
            _bench_group(img, n_pred[img], n_gt[img], rows, gt_m, pred_m, h_m, (acc, fp, fn), errors)
    if errors:
        first = min(errors)
        raise LaneFormatError(first, errors[first])
    return acc, fp, fn


def _lane_matrix(values: np.ndarray, offsets: np.ndarray, rows: int) -> np.ndarray:
    """(lanes, rows): the `rows` values from each offset; a view when they lie back to back (lanes in file order)."""
    if len(offsets) and (np.diff(offsets) == rows).all():
        return values[offsets[0] : offsets[0] + len(offsets) * rows].reshape(len(offsets), rows)
    return values[offsets[:, None] + np.arange(rows)]


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated arange(start, start + length) for each pair, without a Python loop."""
    ends = np.cumsum(lengths)
    return np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - lengths - starts, lengths)


def _bench_group(img, n_pred, n_gt, rows: int, gt, pred, h, out: tuple, errors: dict) -> None:
    """Score live images that all have `rows` h_samples: gt (Lg, rows), pred (Lp, rows), h (m, rows)."""
    ids = img.tolist()
    with_gt = n_gt > 0
    out_acc, out_fp, out_fn = out
    m = len(ids)
    gt_img = np.repeat(np.arange(m), n_gt)  # image of each gt lane, (Lg,)

    # Slope of x = k*y + c over each gt lane's valid points, in closed form: shifted to the lane's first
    # valid point so integer labels give exact sums and a correctly rounded k (sklearn's lstsq agrees to ~1 ulp).
    valid = gt >= 0  # NaN is not valid, as in the official `xs >= 0`
    y = h[gt_img]  # (Lg, rows)
    count = valid.sum(1)
    x0 = y0 = np.zeros((len(gt), 1))
    if rows:  # with no h_samples there is nothing to shift (or fit)
        first = valid.argmax(1)[:, None]
        x0, y0 = np.take_along_axis(gt, first, 1), np.take_along_axis(y, first, 1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        dx = np.where(valid, gt - x0, 0.0)
        dy = np.where(valid, y - y0, 0.0)
        sx, sy = dx.sum(1), dy.sum(1)
        num = count * (dx * dy).sum(1) - sx * sy
        den = count * (dy * dy).sum(1) - sy * sy
        fit = (count >= 2) & (den != 0)
        k = np.where(fit, num / np.where(fit, den, 1.0), 0.0)
    # sklearn refuses inf/NaN in the points it fits: the official then reports a format error.
    if not (np.isfinite(gt).all() and np.isfinite(h).all()):  # rare: most files hold only finite numbers
        unfit = (count >= 2) & (valid & ~(np.isfinite(gt) & np.isfinite(y))).any(1)
        for j in np.unique(gt_img[unfit]).tolist():
            errors[ids[j]] = "a gt lane holds a non-finite value"
    thresh = PIXEL_THRESH / np.cos(np.arctan(k))  # (Lg,)

    gt_x = np.where(valid, gt, MISSING_X)
    pred_x = np.where(pred >= 0, pred, MISSING_X)
    gt_start = np.concatenate(([0], np.cumsum(n_gt)[:-1]))
    pred_start = np.concatenate(([0], np.cumsum(np.where(with_gt, n_pred, 0))[:-1]))
    best = _best_line_accuracy(gt_x, pred_x, thresh, gt_start, pred_start, n_gt, n_pred, rows)
    missed = best < PT_THRESH  # NaN counts as matched, as in the official `max_acc < 0.85`
    n_missed = np.bincount(gt_img, missed.astype(np.float64), m)
    matched = n_gt - n_missed
    many = n_gt > 4  # five or more gt lanes: one miss is forgiven and the worst lane is dropped
    n_missed = np.where(many & (n_missed > 0), n_missed - 1, n_missed)
    total = np.bincount(gt_img, best, m)  # sums each image's lanes left to right, like sum(line_accs)
    if many.any():
        lowest = np.zeros(m)
        lowest[n_gt > 0] = np.minimum.reduceat(best, gt_start[n_gt > 0])
        total = np.where(many, total - lowest, total)
    denom = np.maximum(np.minimum(4.0, n_gt), 1.0)
    out_acc[img] = total / denom
    with np.errstate(invalid="ignore", divide="ignore"):
        out_fp[img] = np.where(n_pred > 0, (n_pred - matched) / np.maximum(n_pred, 1), 0.0)
    out_fn[img] = n_missed / denom


def _best_line_accuracy(gt_x, pred_x, thresh, gt_start, pred_start, n_gt, n_pred, rows: int) -> np.ndarray:
    """Each gt lane's best line accuracy over its image's predicted lanes (0 with none), per gt lane (Lg,).

    Images with the same numbers of gt and predicted lanes are stacked and compared by broadcasting,
    (images, G, P, rows) at a time, in blocks small enough to keep the temporaries at a few MiB.
    """
    best = np.zeros(len(gt_x))
    below = np.less
    small = _as_small_integers(gt_x, pred_x)
    if small is not None:
        # Integer x (every label, most predictions): |p - g| is an integer d, and d < t <=> d <= ceil(t) - 1 for
        # any real t (NaN: never), so the (images, G, P, rows) arrays can be int16, a quarter of the memory traffic.
        gt_x, pred_x = small
        with np.errstate(invalid="ignore"):
            thresh = np.where(np.isnan(thresh), -1, np.minimum(np.ceil(thresh) - 1, _INT16_MAX)).astype(np.int16)
        below = np.less_equal
    shapes = n_gt * (int(n_pred.max(initial=0)) + 1) + n_pred
    for shape in np.unique(shapes[(n_gt > 0) & (n_pred > 0)]).tolist():
        sel = np.flatnonzero(shapes == shape)
        g_n, p_n = int(n_gt[sel[0]]), int(n_pred[sel[0]])
        step = max(1, _CHUNK // (g_n * p_n * max(rows, 1)))
        for lo in range(0, len(sel), step):
            part = sel[lo : lo + step]
            g_idx = gt_start[part, None] + np.arange(g_n)  # (ms, G)
            p_idx = pred_start[part, None] + np.arange(p_n)  # (ms, P)
            diff = pred_x[p_idx][:, None] - gt_x[g_idx][:, :, None]  # (ms, G, P, rows)
            np.abs(diff, out=diff)
            close = below(diff, thresh[g_idx][:, :, None, None])
            count = close.sum(-1, dtype=np.int32).max(-1)  # best count of correct rows, (ms, G)
            with np.errstate(invalid="ignore", divide="ignore"):
                best[g_idx] = count / rows  # = max of count / len(gt); NaN when rows == 0, as there
    return best


_INT16_MAX = 2**15 - 1
_SMALL = 2**14  # |x| below this: the difference of two x fits int16


def _as_small_integers(*arrays: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """The arrays as int16 if every value is an integer of magnitude below _SMALL (NaN and inf are not), else None.

    A value the cast cannot hold (a fraction, NaN, inf, beyond int16) comes back as another number, so one
    comparison with the original checks them all."""
    with np.errstate(invalid="ignore"):
        small = tuple(a.astype(np.int16) for a in arrays)
    for a, s in zip(arrays, small, strict=True):
        if s.size and not (s.min() > -_SMALL and s.max() < _SMALL and np.array_equal(s, a)):
            return None
    return small
