"""TuSimple label files: strict reading, splits by sequence, and rendering polylines as training maps.

The on-disk layout (the real benchmark's, which the synthetic generator copies):
    ROOT/clips/<sequence>/<id>/20.jpg     1280x720 frames
    ROOT/label_data_<sequence>.json       training labels; label_data_0601.json is the validation sequence
    ROOT/test_label.json                  test labels
Each label file holds one JSON object per line: {"raw_file", "lanes", "h_samples"}, raw_file relative to
ROOT, one x per h_sample for every lane, and a negative x (the data uses -2) where the lane is absent.
A dataset never reads outside its folder: raw_file must be a relative path without '..'. Coordinates are
bounded (|x| and h_samples up to COORDINATE_LIMIT pixels), so no later arithmetic overflows. A label file is a
regular file of at most MAX_FILE_BYTES, read one line (of at most MAX_LINE_BYTES) at a time: a file's lines are
never all held at once, and a bad line (a frame that is missing included) is refused as soon as it is read.

No torch here: the evaluator imports this module and must start fast.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from elgan_ray.config import IMAGE_HEIGHT, IMAGE_WIDTH
from elgan_ray.errors import UserError
from elgan_ray.files import open_regular, regular_file_rule

H_SAMPLES = tuple(range(160, 711, 10))  # the test set's 56 rows; the synthetic set uses them everywhere
VALIDATION_SEQUENCE = "0601"  # TuSimple's held-out training sequence, the paper's validation set
# trainval: every labelled sequence, the validation one included, as the paper trains its test-set models (Table 2).
SPLITS = ("train", "val", "test", "trainval")
GAUSSIAN_REACH = 4.0  # sigmas: the rendered Gaussian is cut to 0 beyond this (exp(-8) ~ 3e-4)
COORDINATE_LIMIT = 100_000  # pixels: |x| and h_samples beyond this are no frame's coordinates (frames are 1280x720)
# A TuSimple line is 2-5 KB (56 rows x 4-6 lanes); the test set's label file is ~8 MB. The bounds (the evaluator's
# too: evaluate/jsonl.py) leave room for 200x longer lines and files 8x the largest real one.
MAX_LINE_BYTES = 1 << 20
MAX_FILE_BYTES = 64 << 20


@dataclass(frozen=True)
class LaneLabel:
    """One labelled frame: x of each lane at each h_sample (image pixels), -2 where the lane is absent."""

    raw_file: str
    lanes: tuple[tuple[int, ...], ...]
    h_samples: tuple[int, ...]


# -- reading ---------------------------------------------------------------------------------------


def read_label_file(path: str | Path) -> list[LaneLabel]:
    """Every line of a label file, in order; the first violation raises UserError(path, rule, line)."""
    return [label for _, label in iter_label_file(path)]


def iter_label_file(path: str | Path) -> Iterator[tuple[int, LaneLabel]]:
    """(line number, label) for each line of a label file, read and checked one line at a time.

    Lines end as the official evaluator's readlines ends them (\n, \r\n or \r); the file is a regular file of
    at most MAX_FILE_BYTES (files.open_regular: a FIFO or a device is refused, never waited on or read without end)
    and each line at most MAX_LINE_BYTES long (counted in characters)."""
    path = Path(path)
    with open_regular(path, MAX_FILE_BYTES, "label file") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline=None)
        n = 0
        while True:
            try:
                line = text.readline(MAX_LINE_BYTES + 1)
            except UnicodeDecodeError:
                raise UserError(path, "not UTF-8 text", line=n + 1) from None
            except OSError as error:
                raise UserError(path, f"cannot read label file ({error.__class__.__name__})") from None
            if not line:
                break
            n += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith("\n"):
                rule = f"a line longer than {MAX_LINE_BYTES:,} characters (a TuSimple line is a few KB)"
                raise UserError(path, rule, line=n)
            yield n, _parse_line(path, n, line.rstrip("\n"))
    if n == 0:
        raise UserError(path, "label file is empty")


def _parse_line(path: Path, n: int, line: str) -> LaneLabel:
    """One JSON line -> LaneLabel, or UserError naming the line and the rule it breaks."""
    if not line.strip():
        raise UserError(path, "blank line (every line must be one JSON object)", line=n)
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as error:
        raise UserError(path, f"malformed JSON ({error.msg} at column {error.colno})", line=n) from None
    except RecursionError:  # nested deeper than Python's stack allows
        raise UserError(path, "malformed JSON (nested too deeply)", line=n) from None
    except ValueError:  # an integer of more than 4300 digits
        raise UserError(path, "malformed JSON (a number too long to read)", line=n) from None
    if not isinstance(obj, dict):
        raise UserError(path, "a label line must be a JSON object", line=n)
    for key in ("raw_file", "lanes", "h_samples"):
        if key not in obj:
            raise UserError(path, f"missing key '{key}'", line=n)
    raw_file, lanes, h_samples = obj["raw_file"], obj["lanes"], obj["h_samples"]
    if not isinstance(raw_file, str) or not raw_file:
        raise UserError(path, "'raw_file' must be a non-empty string", line=n)
    if not _inside(raw_file):
        raise UserError(path, "'raw_file' must be a relative path inside the dataset folder (no '..')", line=n)
    if not _int_list(h_samples) or not h_samples:
        raise UserError(path, "'h_samples' must be a non-empty list of integers", line=n)
    if not all(0 <= h <= COORDINATE_LIMIT for h in h_samples):
        raise UserError(path, f"'h_samples' must be rows in [0, {COORDINATE_LIMIT}]", line=n)
    if any(b <= a for a, b in zip(h_samples, h_samples[1:], strict=False)):
        raise UserError(path, "'h_samples' must increase strictly", line=n)
    if not isinstance(lanes, list) or not all(_int_list(lane) for lane in lanes):
        raise UserError(path, "'lanes' must be a list of lists of integers", line=n)
    for i, lane in enumerate(lanes):
        if len(lane) != len(h_samples):
            rule = f"lane {i} has {len(lane)} x values but there are {len(h_samples)} h_samples"
            raise UserError(path, rule, line=n)
        if not all(-COORDINATE_LIMIT <= x <= COORDINATE_LIMIT for x in lane):
            raise UserError(path, f"lane {i} has an x beyond +-{COORDINATE_LIMIT} pixels", line=n)
    return LaneLabel(raw_file, tuple(tuple(lane) for lane in lanes), tuple(h_samples))


def _inside(raw_file: str) -> bool:
    """A relative path that stays inside the folder it is relative to (checked on the text, not the disk)."""
    path = PurePosixPath(raw_file)
    return "\x00" not in raw_file and not path.is_absolute() and ".." not in path.parts


def _int_list(value: object) -> bool:
    # bool is an int subclass in Python, but `true` is no pixel coordinate.
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def split_label_files(root: str | Path, split: str) -> list[Path]:
    """The label files of a split: train = label_data_*.json but the validation sequence; val; test; trainval =
    every label_data_*.json."""
    root = Path(root)
    if split not in SPLITS:
        raise UserError(root, f"unknown split '{split}' (choose from {', '.join(SPLITS)})")
    if not root.is_dir():
        raise UserError(root, "data folder not found")
    val_name = f"label_data_{VALIDATION_SEQUENCE}.json"
    if split in ("train", "trainval"):
        files = sorted(p for p in root.glob("label_data_*.json") if split == "trainval" or p.name != val_name)
        if not files:
            raise UserError(root, f"no training label files (label_data_*.json other than {val_name})")
        return files
    path = root / (val_name if split == "val" else "test_label.json")
    rule = regular_file_rule(path)
    if rule:
        raise UserError(path, f"label file of split '{split}' not found" if rule.endswith("not found") else rule)
    return [path]


def load_split(root: str | Path, split: str, check_images: bool = True) -> list[LaneLabel]:
    """Every label of a split, file by file; with check_images, each raw_file must be a regular file under root,
    checked as its line is read."""
    root = Path(root)
    labels = []
    for path in split_label_files(root, split):
        for n, label in iter_label_file(path):
            rule = regular_file_rule(root / label.raw_file, "image") if check_images else None
            if rule:
                rule = f"not found under {root}" if rule.endswith("not found") else rule
                raise UserError(path, f"image '{label.raw_file}' {rule}", line=n)
            labels.append(label)
    return labels


# -- rendering -------------------------------------------------------------------------------------


def render_lane_map(
    lanes: list | tuple,
    h_samples: list | tuple,
    height: int,
    width: int,
    sigma: float = 1.0,
    image_height: int = IMAGE_HEIGHT,
    image_width: int = IMAGE_WIDTH,
) -> np.ndarray:
    """The training label: each lane as a Gaussian ridge (sigma px, peak 1 on the line), (height, width) float32.

    Lanes are in image pixels and are scaled to the map with pixel centres aligned (as postprocess.py
    reads them back). Each run of present points is one smooth curve (a cubic Hermite spline through the
    points, x as a function of y); absent points (x < 0) end a run, so gaps are never bridged. A pixel
    holds exp(-d^2 / 2 sigma^2), d its distance to the curve: on its row, to the curve's tangent line there;
    beyond a run's end, to the end point. Vectorised over lanes and rows; about 0.1 ms at 128x256.
    """
    out = np.zeros(height * width, np.float32)
    xs = np.asarray(lanes, np.float64).reshape(-1, len(h_samples))  # (L, S)
    if xs.size == 0:
        return out.reshape(height, width)
    valid = xs >= 0
    sx, sy = width / image_width, height / image_height
    mx = (xs + 0.5) * sx - 0.5  # (L, S) map coordinates, pixel centres aligned
    my = (np.asarray(h_samples, np.float64) + 0.5) * sy - 0.5  # (S,)
    rows, xc, yc, slope, side = _curve_rows(mx, my, valid, height, reach=GAUSSIAN_REACH * sigma)
    if rows.size == 0:
        return out.reshape(height, width)
    norm = np.sqrt(1.0 + slope**2)  # length of the tangent (dx/dy, 1)
    # Columns within reach of the tangent line: a slanted line is wider along the row by `norm`.
    half = int(np.ceil(GAUSSIAN_REACH * sigma * min(float(norm.max()), width)))
    cols = np.rint(xc).astype(np.int64)[:, None] + np.arange(-half, half + 1)  # (N, K)
    dx = cols - xc[:, None]  # (N, K)
    dy = (rows - yc)[:, None]  # (N, 1): 0 on the curve's own rows, beyond an end on cap rows
    perp = (dx - dy * slope[:, None]) / norm[:, None]  # distance to the tangent line
    along = np.maximum((dx * slope[:, None] + dy) / norm[:, None] * side[:, None], 0.0)  # past the end
    value = np.exp(-(perp**2 + along**2) / (2.0 * sigma**2)).astype(np.float32)
    inside = (cols >= 0) & (cols < width)
    index = (rows.astype(np.int64)[:, None] * width + cols)[inside]
    np.maximum.at(out, index, value[inside])  # lanes overlap near the horizon: keep the stronger
    return out.reshape(height, width)


def _curve_rows(mx: np.ndarray, my: np.ndarray, valid: np.ndarray, height: int, reach: float):
    """For each lane and map row, where the lane's curve is on that row: inside a run, and past its ends.

    Returns flat arrays over the (lane, row) pairs that have a curve nearby: the row, the curve's x and y
    (y is the row itself inside a run, the end point's y past an end), dx/dy there, and side (0 inside a
    run, +1 below a run's lower end, -1 above its upper end, within `reach` rows). A row can appear up to
    three times per lane (inside one run, below the previous run, above the next one).
    """
    n_lanes, n_samples = mx.shape
    idx = np.arange(n_samples)
    has_next = np.zeros_like(valid)
    has_next[:, :-1] = valid[:, :-1] & valid[:, 1:]
    has_prev = np.zeros_like(valid)
    has_prev[:, 1:] = has_next[:, :-1]
    # Tangents dx/dy by finite differences within a run: one-sided at its ends, 0 for a lone point.
    prev, nxt = idx - has_prev, idx + has_next  # (L, S) neighbour indices, self at a run's end
    lane = np.arange(n_lanes)[:, None]
    dy = my[nxt] - my[prev]
    tangent = (mx[lane, nxt] - mx[lane, prev]) / np.where(dy != 0, dy, np.inf)

    r = np.arange(height, dtype=np.float64)  # (H,)
    above = np.searchsorted(my, r, side="right")  # (H,) samples with y <= row
    # Inside runs: row r lies in interval (j, j+1) and both of its points are present.
    j = np.clip(above - 1, 0, max(n_samples - 2, 0))
    j1 = np.minimum(j + 1, n_samples - 1)
    h = np.where(j1 > j, my[j1] - my[j], 1.0)
    t = (r - my[j]) / h  # (H,)
    inside = has_next[:, j] & ((r >= my[0]) & (r < my[-1]))  # (L, H)
    x0, x1 = mx[:, j], mx[:, j1]
    m0, m1 = tangent[:, j] * h, tangent[:, j1] * h
    t2, t3 = t * t, t * t * t  # cubic Hermite basis, and its derivative (d/dt, / h for dx/dy)
    x_in = (2 * t3 - 3 * t2 + 1) * x0 + (t3 - 2 * t2 + t) * m0 + (3 * t2 - 2 * t3) * x1 + (t3 - t2) * m1
    s_in = ((6 * t2 - 6 * t) * (x0 - x1) + (3 * t2 - 4 * t + 1) * m0 + (3 * t2 - 2 * t) * m1) / h

    # Below a run's lower end: the latest end at or above the row; above a run's start: the next start.
    ends = np.maximum.accumulate(np.where(valid & ~has_next, idx, -1), axis=1)  # (L, S) last end <= k
    starts = np.minimum.accumulate(np.where(valid & ~has_prev, idx, n_samples)[:, ::-1], axis=1)[:, ::-1]
    e = ends[:, np.maximum(above - 1, 0)] if n_samples else ends  # (L, H)
    e_ok = (above > 0) & (e >= 0)
    e = np.maximum(e, 0)
    e_ok &= r - my[e] <= reach
    b = starts[:, np.minimum(above, n_samples - 1)]
    b_ok = (above < n_samples) & (b < n_samples)
    b = np.minimum(b, n_samples - 1)
    b_ok &= my[b] - r <= reach

    rows = np.broadcast_to(r, (n_lanes, height))
    lane_hw = np.broadcast_to(lane, (n_lanes, height))
    pick = (inside, e_ok, b_ok)
    return (
        np.concatenate([rows[m] for m in pick]),
        np.concatenate([x_in[inside], mx[lane_hw[e_ok], e[e_ok]], mx[lane_hw[b_ok], b[b_ok]]]),
        np.concatenate([r[np.nonzero(inside)[1]], my[e[e_ok]], my[b[b_ok]]]),
        np.concatenate([s_in[inside], tangent[lane_hw[e_ok], e[e_ok]], tangent[lane_hw[b_ok], b[b_ok]]]),
        np.concatenate([np.zeros(int(inside.sum())), np.ones(int(e_ok.sum())), -np.ones(int(b_ok.sum()))]),
    )
