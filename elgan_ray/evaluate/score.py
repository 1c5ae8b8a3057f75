"""Scoring a prediction file against a label file exactly as TuSimple's official benchmark does, and the oracle
(a split's labels rendered as maps, post-processed and scored against themselves). The command is __main__.py.

Bad input is a UserError naming the file, the line and the rule, with the official wording. The files are read
by jsonl.py (msgspec for ordinary files, json where anything is unusual), within
bounds checked before any parsing: a line of at most 1 MiB, a file of at most 64 MiB, an --oracle size of at most
720x1280 (a TuSimple frame). --per-image is checked before any work: never one of the input files, and a path
that can be written. Imports stay light (numpy, msgspec, json): no torch, no ray, no cv2 unless --oracle asks for
it, so the command starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from elgan_ray.config import TrainConfig
from elgan_ray.errors import UserError
from elgan_ray.evaluate import metric
from elgan_ray.evaluate.jsonl import Label, Prediction, check_bounds, parse_lines, read_bounded, read_bytes, read_fast

# The official exception texts, quoted in our messages so they can be searched for.
LOAD_ERROR = "Fail to load json file of the prediction."
COUNT_ERROR = "We do not get the predictions of all the test tasks"
KEYS_ERROR = "raw_file or lanes or run_time not in some predictions."
UNKNOWN_ERROR = "Some raw_file from your predictions do not exist in the test tasks."
PRED_KEYS = ("raw_file", "lanes", "run_time")


@dataclass(frozen=True)
class FileScores:
    """A scored prediction file: per prediction line, and the official list."""

    raw_files: list[Any]
    accuracy: np.ndarray  # (n_pred_lines,)
    fp: np.ndarray
    fn: np.ndarray
    result: list[dict]


def index_labels(gt_path: str | Path, labels: list[Any]) -> dict[Any, tuple[int, dict]]:
    """raw_file -> (line number, label); where a raw_file repeats, the later line wins, as in the official dict."""
    by_file: dict[Any, tuple[int, dict]] = {}
    for number, label in enumerate(labels, 1):
        if not isinstance(label, dict) or "raw_file" not in label:
            raise UserError(gt_path, "label line has no raw_file", line=number, key="raw_file")
        try:
            by_file[label["raw_file"]] = (number, label)
        except TypeError:
            raise UserError(gt_path, "raw_file must be a string", line=number, key="raw_file") from None
    return by_file


def score_files(pred_path: str | Path, gt_path: str | Path) -> FileScores:
    """Validate and score a prediction file against a label file, in the official order of checks.

    Both files are held to the size bounds first (jsonl.check_bounds); a label file that cannot be read
    is reported after the prediction file's own errors, as the official reads the predictions first.
    """
    pred_data = read_bounded(pred_path)
    try:
        gt_data = read_bytes(gt_path)
    except UserError:
        gt_data = None  # the plain path reads it again, after the predictions, and reports it there
    if gt_data is not None:
        check_bounds(gt_path, gt_data)  # unlike an unreadable file, too long a line is refused before any parsing
        fast = _score_fast(pred_data, gt_data)
        if fast is not None:
            return fast
    preds = parse_lines(pred_path, LOAD_ERROR, pred_data)
    del pred_data  # the parsed lines are what the plain path holds on to
    labels = parse_lines(gt_path, "label line is not valid JSON", gt_data)
    del gt_data
    if len(preds) != len(labels):
        rule = f"{COUNT_ERROR} ({len(preds)} prediction lines, {len(labels)} label lines)"
        raise UserError(pred_path, rule, line=min(len(preds), len(labels)) + 1)
    by_file = index_labels(gt_path, labels)
    if not by_file:  # the official divides by zero here
        raise UserError(gt_path, "no labels (empty file)")

    # Per line in order: keys, known raw_file, label complete. The first failure is held back until the
    # lines before it have been benched, since a format error on an earlier line is reported first.
    raw_files, pred_lanes, run_times, gt_lanes, h_samples = [], [], [], [], []
    pending: UserError | None = None
    for number, pred in enumerate(preds, 1):
        pending = _check_line(pred_path, gt_path, number, pred, by_file)
        if pending is not None:
            break
        label = by_file[pred["raw_file"]][1]
        raw_files.append(pred["raw_file"])
        pred_lanes.append(pred["lanes"])
        run_times.append(pred["run_time"])
        gt_lanes.append(label["lanes"])
        h_samples.append(label["h_samples"])
    try:
        acc, fp, fn = metric.bench_images(pred_lanes, gt_lanes, h_samples, run_times)
    except metric.LaneFormatError as error:
        raise UserError(pred_path, f"{metric.FORMAT_ERROR} ({error.detail})", line=error.index + 1) from None
    if pending is not None:
        raise pending
    sums = (metric.sequential_sum(acc), metric.sequential_sum(fp), metric.sequential_sum(fn))
    return FileScores(raw_files, acc, fp, fn, metric.result_list(*sums, len(by_file)))


def _check_line(pred_path, gt_path, number: int, pred: Any, by_file: dict) -> UserError | None:
    """The official per-line checks before bench: keys present, raw_file known (plus: the label has its keys)."""
    if not isinstance(pred, dict):
        return UserError(pred_path, f"{KEYS_ERROR} (the line is not a JSON object)", line=number)
    for key in PRED_KEYS:
        if key not in pred:
            return UserError(pred_path, KEYS_ERROR, line=number, key=key)
    try:
        entry = by_file.get(pred["raw_file"])
    except TypeError:  # unhashable: a list or an object cannot be a label's raw_file
        entry = None
    if entry is None:
        return UserError(pred_path, f"{UNKNOWN_ERROR} ({pred['raw_file']!r})", line=number, key="raw_file")
    for key in ("lanes", "h_samples"):
        if key not in entry[1]:
            return UserError(gt_path, f"label has no {key}", line=entry[0], key=key)
    return None


# -- the fast path: ordinary files as arrays (jsonl.read_fast); None, and score_files takes the plain path --


def _score_fast(pred_data: bytes, gt_data: bytes) -> FileScores | None:
    """score_files for clean, ordinary files; None for anything the plain path must handle."""
    preds = read_fast(pred_data, Prediction)
    labels = read_fast(gt_data, Label) if preds is not None else None
    if preds is None or labels is None or len(preds.raw_files) != len(labels.raw_files) or not labels.raw_files:
        return None
    label_of = {raw_file: i for i, raw_file in enumerate(labels.raw_files)}  # the later line wins, as in a dict
    try:
        which = np.fromiter(map(label_of.__getitem__, preds.raw_files), np.int64, len(preds.raw_files))
    except KeyError:  # an unknown raw_file: the plain path names it
        return None
    gt = _take(labels.lanes, which)
    h = _take(labels.rows, labels.rows_of_line[which])
    try:
        acc, fp, fn = metric.bench_ragged(preds.lanes, gt, h.values, h.lane_len, preds.run_times)
    except metric.LaneFormatError:
        return None
    sums = (metric.sequential_sum(acc), metric.sequential_sum(fp), metric.sequential_sum(fn))
    return FileScores(preds.raw_files, acc, fp, fn, metric.result_list(*sums, len(label_of)))


def _take(ragged: metric.Ragged, images: np.ndarray) -> metric.Ragged:
    """The lanes of `images` (indices, repeats allowed), in that order."""
    if len(images) == len(ragged.per_image) and (images == np.arange(len(images))).all():
        return ragged  # every image, in order: predictions usually come in the label file's order
    first_lane = np.cumsum(ragged.per_image) - ragged.per_image
    per_image = ragged.per_image[images]
    lanes = metric.concat_ranges(first_lane[images], per_image)
    first_value = np.cumsum(ragged.lane_len) - ragged.lane_len
    lane_len = ragged.lane_len[lanes]
    return metric.Ragged(ragged.values[metric.concat_ranges(first_value[lanes], lane_len)], lane_len, per_image)


def oracle_result(data_dir: str | Path, split: str, post: str, cfg: TrainConfig) -> list[dict]:
    """Render a split's labels as maps at cfg's training size and label sigma, post-process them as cfg's runs do
    (threshold and filters, cfg.eval) and score them against themselves: the ceiling of that post-processing."""
    try:  # only --oracle needs cv2 and the label renderer
        from elgan_ray.data.labels import load_split, render_lane_map
        from elgan_ray.evaluate.postprocess import lanes_from_map
    except ImportError as error:
        raise UserError("--oracle", f"needs the label renderer and cv2 ({error})") from None

    labels = load_split(data_dir, split, check_images=False)
    if not labels:
        raise UserError(data_dir, f"split '{split}' has no labels")
    height, width, sigma = cfg.data.height, cfg.data.width, cfg.data.sigma
    kwargs = {"threshold": cfg.eval.threshold, "min_area": cfg.eval.min_area, "max_lanes": cfg.eval.max_lanes}
    preds = [
        lanes_from_map(render_lane_map(x.lanes, x.h_samples, height, width, sigma), x.h_samples, post, **kwargs)
        for x in labels
    ]
    acc, fp, fn = metric.bench_images(
        preds, [x.lanes for x in labels], [x.h_samples for x in labels], [0] * len(labels)
    )
    sums = (metric.sequential_sum(acc), metric.sequential_sum(fp), metric.sequential_sum(fn))
    return metric.result_list(*sums, len({x.raw_file for x in labels}))
