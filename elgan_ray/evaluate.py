"""`python -m elgan_ray.evaluate PRED.json GT.json`: the official TuSimple result line, per-image scores, F1.

stdout gets exactly what the benchmark prints, `[{"name": "Accuracy", ...}, {"name": "FP", ...}, {"name": "FN", ...}]`;
a readable summary with F1 goes to stderr. Bad input stops with one line naming the file, the line and the
rule (with the official wording). `--oracle DATA_DIR` scores the labels themselves after rendering them as
maps at the training size and post-processing them: the ceiling a post-processor leaves at that resolution.

The files are read by tusimple_json.py (msgspec for ordinary files, json where anything is unusual), within
bounds checked before any parsing: a line of at most 1 MiB, a file of at most 64 MiB, an --oracle size of at most
720x1280 (a TuSimple frame). --per-image is checked before any work: never one of the input files, and a path
that can be written. Imports stay light (numpy, msgspec, json): no torch, no ray, no cv2 unless --oracle asks for
it, so the command starts fast.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from elgan_ray import metrics
from elgan_ray.config import TrainConfig
from elgan_ray.data.labels import IMAGE_HEIGHT, IMAGE_WIDTH
from elgan_ray.errors import UserError, quoted, run_cli
from elgan_ray.tusimple_json import Label, Prediction, check_bounds, parse_lines, read_bounded, read_bytes, read_fast

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

    Both files are held to the size bounds first (tusimple_json.check_bounds); a label file that cannot be read
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
        acc, fp, fn = metrics.bench_images(pred_lanes, gt_lanes, h_samples, run_times)
    except metrics.LaneFormatError as error:
        raise UserError(pred_path, f"{metrics.FORMAT_ERROR} ({error.detail})", line=error.index + 1) from None
    if pending is not None:
        raise pending
    sums = (metrics.sequential_sum(acc), metrics.sequential_sum(fp), metrics.sequential_sum(fn))
    return FileScores(raw_files, acc, fp, fn, metrics.result_list(*sums, len(by_file)))


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


# -- the fast path: ordinary files as arrays (tusimple_json.read_fast); None, and score_files takes the plain path --


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
        acc, fp, fn = metrics.bench_ragged(preds.lanes, gt, h.values, h.lane_len, preds.run_times)
    except metrics.LaneFormatError:
        return None
    sums = (metrics.sequential_sum(acc), metrics.sequential_sum(fp), metrics.sequential_sum(fn))
    return FileScores(preds.raw_files, acc, fp, fn, metrics.result_list(*sums, len(label_of)))


def _take(ragged: metrics.Ragged, images: np.ndarray) -> metrics.Ragged:
    """The lanes of `images` (indices, repeats allowed), in that order."""
    if len(images) == len(ragged.per_image) and (images == np.arange(len(images))).all():
        return ragged  # every image, in order: predictions usually come in the label file's order
    first_lane = np.cumsum(ragged.per_image) - ragged.per_image
    per_image = ragged.per_image[images]
    lanes = metrics.concat_ranges(first_lane[images], per_image)
    first_value = np.cumsum(ragged.lane_len) - ragged.lane_len
    lane_len = ragged.lane_len[lanes]
    return metrics.Ragged(ragged.values[metrics.concat_ranges(first_value[lanes], lane_len)], lane_len, per_image)


def oracle_result(data_dir: str | Path, split: str, post: str, cfg: TrainConfig) -> list[dict]:
    """Render a split's labels as maps at cfg's training size and label sigma, post-process them as cfg's runs do
    (threshold and filters, cfg.eval) and score them against themselves: the ceiling of that post-processing."""
    try:  # only --oracle needs cv2 and the label renderer
        from elgan_ray.data.labels import load_split, render_lane_map
        from elgan_ray.postprocess import lanes_from_map
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
    acc, fp, fn = metrics.bench_images(
        preds, [x.lanes for x in labels], [x.h_samples for x in labels], [0] * len(labels)
    )
    sums = (metrics.sequential_sum(acc), metrics.sequential_sum(fp), metrics.sequential_sum(fn))
    return metrics.result_list(*sums, len({x.raw_file for x in labels}))


def parse_size(text: str) -> tuple[int, int]:
    """'128x256' -> (128, 256)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 6 and int(p) > 0 for p in parts):
        raise UserError("--size", f"{quoted(text)} is not HxW with positive integers, e.g. 128x256")
    size = int(parts[0]), int(parts[1])
    if size[0] > IMAGE_HEIGHT or size[1] > IMAGE_WIDTH:  # --oracle renders no map larger than a TuSimple frame
        raise UserError("--size", f"{text} is larger than a TuSimple frame (at most {IMAGE_HEIGHT}x{IMAGE_WIDTH})")
    return size


def check_output(path: str, inputs: tuple[str, str]) -> None:
    """--per-image: a path that can be written, and neither input file (it would be replaced by the scores)."""
    from elgan_ray.files import check_writable

    for given, what in zip(inputs, ("prediction", "label"), strict=True):
        try:
            same = os.path.samefile(path, given)
        except OSError:  # one of them does not exist (yet): compare where they would be
            same = os.path.realpath(path) == os.path.realpath(given)
        if same:
            raise UserError("--per-image", f"{quoted(path)} is the {what} file: it would be overwritten")
    check_writable(path, "file")


def summary(result: list[dict]) -> str:
    """One readable line: the three official figures and F1 (spec: P = 1 - FP, R = (1 - FP) / (1 - FP + FN))."""
    acc, fp, fn = (item["value"] for item in result)
    return f"accuracy {acc:.4f}  FP {fp:.4f}  FN {fn:.4f}  F1 {metrics.f1_score(fp, fn):.4f}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.evaluate",
        description="TuSimple evaluation, identical to the official benchmark (specs/tusimple-metric.md).",
    )
    parser.add_argument("pred", nargs="?", help="prediction file: one JSON object per line")
    parser.add_argument("gt", nargs="?", help="label file: one JSON object per line")
    parser.add_argument("--per-image", metavar="OUT.jsonl", help="also write raw_file, accuracy, fp, fn per line")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    parser.add_argument("--oracle", metavar="DATA_DIR", help="score the post-processed labels of a split instead")
    parser.add_argument("--split", default="val", help="split for --oracle (default: val)")
    parser.add_argument("--post", default="basic++", choices=("basic", "basic++"), help="post-processing for --oracle")
    oracle = parser.add_argument_group("--oracle's training set-up (default: the cpu preset's; flags override it)")
    oracle.add_argument("--preset", default="cpu", help="take size, label sigma and eval keys from this preset")
    oracle.add_argument("--size", help="map size HxW (data.height x data.width)")
    oracle.add_argument("--sigma", type=float, help="label line width in training pixels (data.sigma)")
    oracle.add_argument("--min-area", type=int, help="our speck filter in training pixels (eval.min_area; 0: off)")
    oracle.add_argument("--max-lanes", type=int, help="our cap on lanes per frame (eval.max_lanes; 0: off)")
    return parser


def oracle_config(args: argparse.Namespace) -> TrainConfig:
    """The preset with --size, --sigma, --min-area and --max-lanes over it, each checked as a config key."""
    from elgan_ray.presets import preset

    flat: dict[str, Any] = {}
    if args.size is not None:
        flat["data.height"], flat["data.width"] = parse_size(args.size)
    for flag, key in (("sigma", "data.sigma"), ("min_area", "eval.min_area"), ("max_lanes", "eval.max_lanes")):
        if getattr(args, flag) is not None:
            flat[key] = getattr(args, flag)
    return preset(args.preset).with_flat(flat, source="--oracle")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, score, print the official list (stdout) and a summary (stderr)."""
    enabled = gc.isenabled()
    gc.disable()  # the parsed files hold no cycles; a collection over them would cost more than the scoring
    try:
        return _main(argv)
    finally:
        if enabled:
            gc.enable()


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.oracle is not None:
        if args.pred or args.gt or args.per_image:
            raise UserError("evaluate", "--oracle takes no prediction or label files")
        cfg = oracle_config(args)  # before the labels are read: a bad size or key is refused without any work
        result = oracle_result(args.oracle, args.split, args.post, cfg)
        print(json.dumps(result))
        if not args.quiet:
            setup = f"{cfg.data.height}x{cfg.data.width}, sigma {cfg.data.sigma:g}"
            setup += f", min_area {cfg.eval.min_area}, max_lanes {cfg.eval.max_lanes}"
            print(f"oracle ceiling of {args.post} at {setup}: {summary(result)}", file=sys.stderr)
        return 0
    if args.pred is None or args.gt is None:
        raise UserError("evaluate", "give PRED.json GT.json, or --oracle DATA_DIR")
    if args.per_image:
        check_output(args.per_image, (args.pred, args.gt))
    scores = score_files(args.pred, args.gt)
    if args.per_image:
        from elgan_ray.files import atomic_write_text

        rows = zip(scores.raw_files, scores.accuracy.tolist(), scores.fp.tolist(), scores.fn.tolist(), strict=True)
        text = "".join(json.dumps({"raw_file": r, "accuracy": a, "fp": p, "fn": n}) + "\n" for r, a, p, n in rows)
        atomic_write_text(args.per_image, text)
    print(json.dumps(scores.result))
    if not args.quiet:
        print(f"{summary(scores.result)}  ({len(scores.raw_files)} predictions)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    status = run_cli(main)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: freeing the million parsed JSON objects one by one takes longer than
    # scoring them. Output is flushed and --per-image was written atomically, so nothing is lost.
    os._exit(status)
