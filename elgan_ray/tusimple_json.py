"""TuSimple's JSON-lines files (one JSON object per line), read as the official evaluator reads them, and fast.

Two readers. The fast one (read_fast) decodes each line with msgspec, a JSON library written in C, straight into
the fields the metric reads (typed: a string raw_file, lists of lists of numbers), and hands the numbers over as
flat arrays (metrics.Ragged); it returns None for anything unusual, and the caller (evaluate.score_files) then
scores the files with the plain reader, so results and error messages never depend on which reader ran. The
plain one (read_lines, parse_lines) splits lines as text-mode `readlines` does and parses each with json, the
official's own parser, naming the line that breaks. Both stop first at the size bounds (check_bounds): a real
TuSimple line is a few KB, and a line of millions of numbers would need gigabytes as Python objects.
Imports stay light (numpy, msgspec, json).
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from elgan_ray import metrics
from elgan_ray.errors import UserError

# A TuSimple line is 2-5 KB (56 rows x 4-6 lanes); the test set's label file is ~8 MB. The bounds leave room for
# 200x longer lines and files 8x the largest real one, and keep any file's parsed size to a few hundred MB.
MAX_LINE_BYTES = 1 << 20
MAX_FILE_BYTES = 64 << 20
EXACT = 2**53  # float64 holds every integer below this; beyond it, the official int arithmetic differs


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a missing, unreadable or over-large file is a one-line error."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(size + 1) if size <= MAX_FILE_BYTES else b""
            if len(data) > size:  # it grew while being read (or has no size, as /proc files): read on, up to the bound
                data += handle.read(MAX_FILE_BYTES + 1 - len(data))
            size = max(size, len(data))
            if size > MAX_FILE_BYTES:
                raise UserError(path, f"{size:,} bytes (at most {MAX_FILE_BYTES:,}: a TuSimple file is a few MB)")
            return data
    except FileNotFoundError:
        raise UserError(path, "file not found") from None
    except OSError as error:  # a folder, no permission (on the file or a folder above it), an I/O error
        raise UserError(path, f"cannot read file ({error.strerror or error.__class__.__name__})") from None


def check_bounds(path: str | Path, data: bytes) -> None:
    """UserError naming the first line longer than MAX_LINE_BYTES, lines split as readlines splits them."""
    if len(data) <= MAX_LINE_BYTES:
        return
    if b"\r" in data:  # \r\n and \r end lines too (universal newlines)
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = data.split(b"\n")
    if max(map(len, lines)) <= MAX_LINE_BYTES:
        return
    number, line = next((n, line) for n, line in enumerate(lines, 1) if len(line) > MAX_LINE_BYTES)
    rule = f"a line of {len(line):,} bytes (at most {MAX_LINE_BYTES:,}: a TuSimple line is a few KB)"
    raise UserError(path, rule, line=number)


def read_lines(path: str | Path) -> list[str]:
    """The file's lines as the official `open(f).readlines()` splits them (\\n, \\r\\n and \\r)."""
    data = read_bytes(path)
    check_bounds(path, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(path, "not UTF-8 text", line=data[: error.start].count(b"\n") + 1) from None
    # Universal newlines, as text-mode readlines: \r\n and \r end lines too (str.splitlines would split more).
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":  # a final newline ends the last line; it does not start a blank one
        lines.pop()
    return lines


def parse_lines(path: str | Path, rule: str) -> list[Any]:
    """Every line parsed as JSON; a blank or broken line is an error naming its number."""
    lines = read_lines(path)
    loads = json.loads
    # Parsing builds ~10^6 small objects and no cycles; the cyclic GC would rescan them again and again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return [loads(line) for line in lines]
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's stack (the official crashes)
        pass
    finally:
        if enabled:
            gc.enable()
    for number, line in enumerate(lines, 1):  # find the line that broke, for the message
        try:
            loads(line)
        except RecursionError:
            raise UserError(path, f"{rule} (nested too deeply)", line=number) from None
        except ValueError as error:
            reason = "blank line" if not line.strip() else f"not JSON: {getattr(error, 'msg', error)}"
            raise UserError(path, f"{rule} ({reason})", line=number) from None
    raise AssertionError("unreachable: a line failed to parse and then parsed")


# ---------------------------------------------------------------------------------------------------------------
# Fast path. A line decodes only if it is one JSON object whose fields the metric reads have the ordinary types;
# its other fields are skipped but still checked as JSON (a prediction's h_samples must parse, as in the
# official). msgspec refuses everything json refuses (tests/test_evaluate_cli.py fuzzes it) and gives the same
# doubles. What it accepts differently goes to the plain path: \r (readlines ends lines there, msgspec does not),
# bytes that are not UTF-8 (msgspec lets them pass in skipped fields), integers above 2**53 (json keeps them exact,
# a typed float rounds them). What it refuses and json accepts (NaN and Infinity literals, numbers beyond 1e308,
# lone surrogate escapes) fails the decode, and goes there too.


class Prediction(msgspec.Struct):
    """What the metric reads of a prediction line."""

    raw_file: str
    lanes: list[list[float]]
    run_time: float


class Label(msgspec.Struct):
    """What the metric reads of a label line; h_samples stay text until read_fast has seen which rows occur."""

    raw_file: str
    lanes: list[list[float]]
    h_samples: msgspec.Raw  # every line of a TuSimple file has the same 56 rows: each distinct text is read once


_DECODERS = {Prediction: msgspec.json.Decoder(Prediction), Label: msgspec.json.Decoder(Label)}
_ROWS = msgspec.json.Decoder(list[float])
_CHUNK = 512  # lines decoded before their numbers become arrays: the Python objects of a file never all coexist


@dataclass(frozen=True)
class FastFile:
    """A file read by read_fast: per line its raw_file and lanes; its run_time (predictions) or h_samples (labels:
    the distinct h_samples lists, one per image of `rows`, and which of them each line has)."""

    raw_files: list[str]
    lanes: metrics.Ragged
    run_times: np.ndarray | None = None  # (lines,) float64
    rows: metrics.Ragged | None = None  # (distinct lists,) one lane each
    rows_of_line: np.ndarray | None = None  # (lines,) int64 indices into rows


def read_fast(data: bytes, kind: type[Prediction] | type[Label]) -> FastFile | None:
    """An ordinary prediction or label file, decoded by msgspec into arrays; None if anything is unusual."""
    if not data or b"\r" in data or not (data.isascii() or _is_utf8(data)):
        return None
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    enabled = gc.isenabled()
    gc.disable()  # decoding makes ~10^6 objects and no cycles: collections would rescan them again and again
    try:
        return _decode_lines(lines, kind)
    except (msgspec.MsgspecError, RecursionError):  # not JSON, not an object, a field missing or of another type
        return None
    finally:
        if enabled:
            gc.enable()


def _decode_lines(lines: list[bytes], kind: type[Prediction] | type[Label]) -> FastFile | None:
    decode = _DECODERS[kind].decode
    raw_files: list[str] = []
    lanes, run_times, row_texts = [], [], []
    for lo in range(0, len(lines), _CHUNK):
        objs = [decode(line) for line in lines[lo : lo + _CHUNK]]
        raw_files += [obj.raw_file for obj in objs]
        lanes.append(_ragged([obj.lanes for obj in objs]))
        if kind is Prediction:
            run_times.append(np.fromiter([obj.run_time for obj in objs], np.float64, len(objs)))
        else:
            row_texts += [bytes(obj.h_samples) for obj in objs]
    out = FastFile(raw_files, _concat(lanes))
    numbers = [out.lanes.values]
    if kind is Prediction:
        out = replace(out, run_times=np.concatenate(run_times) if run_times else np.zeros(0))
        numbers.append(out.run_times)
    else:
        index: dict[bytes, int] = {}
        rows_of_line = np.fromiter((index.setdefault(t, len(index)) for t in row_texts), np.int64, len(row_texts))
        out = replace(out, rows=_ragged([[_ROWS.decode(t)] for t in index]), rows_of_line=rows_of_line)
        numbers.append(out.rows.values)
    if any(len(v) and not np.abs(v).max() < EXACT for v in numbers):
        return None  # inf from a huge exponent, or an integer json would keep exact: the plain path decides
    return out


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _ragged(images: list[list[list[float]]]) -> metrics.Ragged:
    """Lanes of some images as one flat array of values with their lengths (no per-value Python work)."""
    per_image = np.fromiter(map(len, images), np.int64, len(images))
    lanes = list(chain.from_iterable(images))
    lane_len = np.fromiter(map(len, lanes), np.int64, len(lanes))
    values = np.fromiter(chain.from_iterable(lanes), np.float64, int(lane_len.sum()))
    return metrics.Ragged(values, lane_len, per_image)


def _concat(parts: list[metrics.Ragged]) -> metrics.Ragged:
    if not parts:
        return metrics.Ragged(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(parts) == 1:
        return parts[0]
    return metrics.Ragged(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("values", "lane_len", "per_image"))
    )
