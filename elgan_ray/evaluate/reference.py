"""A straightforward per-lane port of the official TuSimple evaluator (lane.py, LaneEval): the yardstick.

It follows the official loop statement by statement, so its numbers and its error cases are the benchmark's;
`metrics.py` is the fast, vectorised version and is tested against this file. Two things differ on purpose:
sklearn's LinearRegression is replaced by the same computation in numpy (centre, then a LAPACK least-squares
solve), and where the official script would crash with a traceback (a label line that is not JSON, a
prediction line that is not an object) we raise a one-line UserError instead. Errors name the line too.

Run as `python -m elgan_ray.evaluate.reference PRED.json GT.json`, like `python -m elgan_ray.evaluate`.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np

from elgan_ray.data.labels import MAX_FILE_BYTES
from elgan_ray.errors import UserError, run_cli
from elgan_ray.files import read_regular

PIXEL_THRESH = 20
PT_THRESH = 0.85

# The official exception texts; our messages contain them verbatim.
LOAD_ERROR = "Fail to load json file of the prediction."
COUNT_ERROR = "We do not get the predictions of all the test tasks"
KEYS_ERROR = "raw_file or lanes or run_time not in some predictions."
UNKNOWN_ERROR = "Some raw_file from your predictions do not exist in the test tasks."
FORMAT_ERROR = "Format of lanes error."


def least_squares_slope(ys: np.ndarray, xs: np.ndarray) -> float:
    """Slope of x = k*y + c as sklearn's LinearRegression computes it: centre both, then lstsq (gelsd)."""
    ys = np.asarray(ys, dtype=np.float64)
    xs = np.asarray(xs, dtype=np.float64)
    # sklearn validates its input and refuses inf/NaN; inside bench that becomes a format error.
    if not (np.all(np.isfinite(ys)) and np.all(np.isfinite(xs))):
        raise ValueError("Input contains NaN or infinity.")
    yc = (ys - ys.mean())[:, None]
    xc = xs - xs.mean()
    # A zero column has rank 0: lstsq's minimum-norm answer is k = 0, as in sklearn.
    return float(np.linalg.lstsq(yc, xc, rcond=None)[0][0])


def get_angle(xs: np.ndarray, y_samples: np.ndarray) -> float:
    """Angle of a gt lane fitted on its valid points (x >= 0); 0 with fewer than two."""
    xs, ys = xs[xs >= 0], y_samples[xs >= 0]
    if len(xs) > 1:
        theta = np.arctan(least_squares_slope(ys, xs))
    else:
        theta = 0
    return theta


def line_accuracy(pred: np.ndarray, gt: np.ndarray, thresh: float) -> float:
    """Share of rows where |pred - gt| < thresh, with every negative x replaced by -100 in both."""
    pred = np.array([p if p >= 0 else -100 for p in pred])
    gt = np.array([g if g >= 0 else -100 for g in gt])
    return np.sum(np.where(np.abs(pred - gt) < thresh, 1.0, 0.0)) / len(gt)


def bench(pred: list, gt: list, y_samples: list, running_time: float) -> tuple[float, float, float]:
    """One image: (accuracy, fp, fn), exactly as LaneEval.bench."""
    if any(len(p) != len(y_samples) for p in pred):
        raise Exception(FORMAT_ERROR)
    if running_time > 200 or len(gt) + 2 < len(pred):
        return 0.0, 0.0, 1.0
    angles = [get_angle(np.array(x_gts), np.array(y_samples)) for x_gts in gt]
    threshs = [PIXEL_THRESH / np.cos(angle) for angle in angles]
    line_accs = []
    fp, fn = 0.0, 0.0
    matched = 0.0
    for x_gts, thresh in zip(gt, threshs, strict=True):
        accs = [line_accuracy(np.array(x_preds), np.array(x_gts), thresh) for x_preds in pred]
        max_acc = np.max(accs) if len(accs) > 0 else 0.0
        if max_acc < PT_THRESH:
            fn += 1
        else:
            matched += 1
        line_accs.append(max_acc)
    fp = len(pred) - matched
    if len(gt) > 4 and fn > 0:
        fn -= 1
    s = sum(line_accs)
    if len(gt) > 4:
        s -= min(line_accs)
    return (
        s / max(min(4.0, len(gt)), 1.0),
        fp / len(pred) if len(pred) > 0 else 0.0,
        fn / max(min(len(gt), 4.0), 1.0),
    )


def read_json_lines(path: str, what: str) -> list:
    """Every line of a file parsed as JSON (text mode, so \\r\\n and \\r end lines as in the official); the file
    read as every input is (files.read_regular: a regular file within the evaluator's bound, a FIFO refused)."""
    data = read_regular(path, MAX_FILE_BYTES, "TuSimple file")
    try:
        lines = io.StringIO(data.decode("utf-8"), newline=None).readlines()
    except UnicodeDecodeError as error:
        raise UserError(path, f"cannot read {what} file ({error.__class__.__name__})") from None
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            parsed.append(json.loads(line))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json parses (the official crashes)
            rule = LOAD_ERROR if what == "prediction" else "label line is not valid JSON"
            raise UserError(path, rule, line=number) from None
    return parsed


def bench_one_submit(pred_file: str, gt_file: str) -> tuple[str, list[tuple[float, float, float]]]:
    """The whole file: the official JSON string and the per-image (accuracy, fp, fn) of each prediction line."""
    json_pred = read_json_lines(pred_file, "prediction")
    json_gt = read_json_lines(gt_file, "label")
    if len(json_gt) != len(json_pred):
        raise UserError(pred_file, COUNT_ERROR, line=min(len(json_gt), len(json_pred)) + 1)
    gts, gt_lines = {}, {}
    for number, label in enumerate(json_gt, 1):
        if not isinstance(label, dict) or "raw_file" not in label:
            raise UserError(gt_file, "label has no raw_file", line=number, key="raw_file")
        try:
            gts[label["raw_file"]] = label
            gt_lines[label["raw_file"]] = number
        except TypeError:
            raise UserError(gt_file, "raw_file is not a string", line=number, key="raw_file") from None
    accuracy, fp, fn = 0.0, 0.0, 0.0
    per_image = []
    for number, pred in enumerate(json_pred, 1):
        if not isinstance(pred, dict):
            raise UserError(pred_file, KEYS_ERROR, line=number)
        for key in ("raw_file", "lanes", "run_time"):
            if key not in pred:
                raise UserError(pred_file, KEYS_ERROR, line=number, key=key)
        raw_file, pred_lanes, run_time = pred["raw_file"], pred["lanes"], pred["run_time"]
        try:
            known = raw_file in gts
        except TypeError:  # unhashable: it cannot be a label's raw_file
            known = False
        if not known:
            raise UserError(pred_file, UNKNOWN_ERROR, line=number, key="raw_file")
        gt = gts[raw_file]
        for key in ("lanes", "h_samples"):
            if key not in gt:
                raise UserError(gt_file, f"label has no {key}", line=gt_lines[raw_file], key=key)
        gt_lanes, y_samples = gt["lanes"], gt["h_samples"]
        try:
            a, p, n = bench(pred_lanes, gt_lanes, y_samples, run_time)
        except BaseException:
            raise UserError(pred_file, FORMAT_ERROR, line=number) from None
        per_image.append((a, p, n))
        accuracy += a
        fp += p
        fn += n
    num = len(gts)
    if num == 0:  # the official divides by zero here
        raise UserError(gt_file, "no labels (empty file)")
    result = json.dumps(
        [
            {"name": "Accuracy", "value": accuracy / num, "order": "desc"},
            {"name": "FP", "value": fp / num, "order": "asc"},
            {"name": "FN", "value": fn / num, "order": "asc"},
        ]
    )
    return result, per_image


def main(argv: list[str] | None = None) -> int:
    """`python -m elgan_ray.evaluate.reference PRED GT`: print the official result line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise UserError("elgan_ray.evaluate.reference", "Invalid input arguments (usage: PRED.json GT.json)")
    print(bench_one_submit(args[0], args[1])[0])
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
