"""TuSimple's JSON-lines files (one JSON object per line), read as the official evaluator reads them, and fast.

Two readers. The fast one (read_fast) decodes each line with msgspec, a JSON library written in C, into the fields
the metric reads (a string raw_file, the lanes as checked JSON text), reads the lanes' numbers from that text in
bulk with numpy (whole pixels) or as typed lists, and hands them over as flat arrays (metric.Ragged); it returns
None for anything unusual, and the caller (evaluate.score_files) then scores the files with the plain reader, so
results and error messages never depend on which reader ran. The plain one (read_lines, parse_lines) splits lines
as text-mode `readlines` does and parses each with json, the official's own parser, naming the line that breaks.
Both stop first at the size bounds (check_bounds): a real TuSimple line is a few KB, and a line of millions of
numbers would need gigabytes as Python objects.
Imports stay light (numpy, msgspec, json).
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from elgan_ray.data.labels import MAX_FILE_BYTES, MAX_LINE_BYTES  # the dataset reader's bounds, the same files
from elgan_ray.errors import UserError
from elgan_ray.evaluate import metric
from elgan_ray.files import read_regular


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a missing, unreadable, over-large or not regular file (a FIFO) is a one-line error."""
    return read_regular(path, MAX_FILE_BYTES, "TuSimple file")


def check_bounds(path: str | Path, data: bytes) -> None:
    """UserError naming the first line longer than MAX_LINE_BYTES, lines split as readlines splits them."""
    if len(data) <= MAX_LINE_BYTES:
        return
    if b"\r" in data:  # \r\n and \r end lines too (universal newlines)
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # The line starting at `start` is within the bound iff a newline ends it in the next MAX_LINE_BYTES + 1 bytes;
    # the lines before the last such newline are shorter still, so the scan jumps there (a few steps a file).
    start = 0
    while len(data) - start > MAX_LINE_BYTES:
        last_newline = data.rfind(b"\n", start, start + MAX_LINE_BYTES + 1)
        if last_newline < 0:
            end = data.find(b"\n", start)
            length = (end if end >= 0 else len(data)) - start
            rule = f"a line of {length:,} bytes (at most {MAX_LINE_BYTES:,}: a TuSimple line is a few KB)"
            raise UserError(path, rule, line=data.count(b"\n", 0, start) + 1)
        start = last_newline + 1


def read_bounded(path: str | Path) -> bytes:
    """The file's bytes, held to both size bounds (read_bytes, check_bounds)."""
    data = read_bytes(path)
    check_bounds(path, data)
    return data


def read_lines(path: str | Path, data: bytes | None = None) -> list[str]:
    """The file's lines as the official `open(f).readlines()` splits them (\\n, \\r\\n and \\r); `data`: its bytes,
    if already read and held to the bounds."""
    data = read_bounded(path) if data is None else data
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


def parse_lines(path: str | Path, rule: str, data: bytes | None = None) -> list[Any]:
    """Every line parsed as JSON; a blank or broken line is an error naming its number (`data` as in read_lines)."""
    lines = read_lines(path, data)
    loads = json.loads
    parsed = []
    # Parsing builds ~10^6 small objects and no cycles; the cyclic GC would rescan them again and again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        # One pass, each line parsed at the same stack depth: how deep json may nest depends on that depth.
        for number, line in enumerate(lines, 1):
            try:
                parsed.append(loads(line))
            except RecursionError:  # nested deeper than Python's stack allows (the official crashes)
                raise UserError(path, f"{rule} (nested too deeply)", line=number) from None
            except ValueError as error:
                reason = "blank line" if not line.strip() else f"not JSON: {getattr(error, 'msg', error)}"
                raise UserError(path, f"{rule} ({reason})", line=number) from None
    finally:
        if enabled:
            gc.enable()
    return parsed


# ---------------------------------------------------------------------------------------------------------------
# Fast path. A line decodes only if it is one JSON object whose fields the metric reads have the ordinary types;
# its other fields are skipped but still checked as JSON (a prediction's h_samples must parse, as in the
# official). msgspec refuses everything json refuses (tests/test_evaluate_cli.py fuzzes it) and gives the same
# doubles. What it accepts differently goes to the plain path: \r (readlines ends lines there, msgspec does not),
# bytes that are not UTF-8 (msgspec lets them pass in skipped fields), integers above 2**53 (json keeps them exact,
# a typed float rounds them). What it refuses and json accepts (NaN and Infinity literals, numbers beyond 1e308,
# lone surrogate escapes) fails the decode, and goes there too. So does a file with a line that may nest deeper
# than MAX_FAST_NESTING: msgspec and json both stop at Python's recursion limit, but not at the same depth, so
# near it one would accept a line the other refuses (a duplicate key's first value is skipped, never typed).
#
# Lanes stay JSON text (msgspec.Raw, checked as JSON but not turned into objects): made into Python numbers and
# then into an array, they cost three quarters of the reading. Whole-pixel lanes (every label, most predictions)
# are read from that text by numpy in bulk (_whole_pixel_lanes); any other lanes are decoded as typed lists.


class Prediction(msgspec.Struct):
    """What the metric reads of a prediction line (lanes as JSON text)."""

    raw_file: str
    lanes: msgspec.Raw
    run_time: float


class Label(msgspec.Struct):
    """What the metric reads of a label line; h_samples stay text until read_fast has seen which rows occur."""

    raw_file: str
    lanes: msgspec.Raw
    h_samples: msgspec.Raw  # every line of a TuSimple file has the same 56 rows: each distinct text is read once


_DECODERS = {Prediction: msgspec.json.Decoder(Prediction), Label: msgspec.json.Decoder(Label)}
_LANES = msgspec.json.Decoder(list[list[float]])
_ROWS = msgspec.json.Decoder(list[float])
# Images whose lanes are read at once: the bulk reader's arrays stay small enough to be reused between chunks, and
# a file's lanes never all exist as Python objects. score_files on the bench's test-set-sized files, ms by chunk:
# 128: 72, 256: 70, 512: 67, 1024: 69-73, 2048: 94, all at once: 75.
_CHUNK = 512


@dataclass(frozen=True)
class FastFile:
    """A file read by read_fast: per line its raw_file and lanes; its run_time (predictions) or h_samples (labels:
    the distinct h_samples lists, one per image of `rows`, and which of them each line has)."""

    raw_files: list[str]
    lanes: metric.Ragged
    run_times: np.ndarray | None = None  # (lines,) float64
    rows: metric.Ragged | None = None  # (distinct lists,) one lane each
    rows_of_line: np.ndarray | None = None  # (lines,) int64 indices into rows


def read_fast(data: bytes, kind: type[Prediction] | type[Label]) -> FastFile | None:
    """An ordinary prediction or label file, decoded by msgspec into arrays; None if anything is unusual."""
    if not data or b"\r" in data or not (data.isascii() or _is_utf8(data)):
        return None
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if _may_nest_deeply(data, lines):
        return None
    enabled = gc.isenabled()
    gc.disable()  # decoding makes ~10^5 objects and no cycles: collections would rescan them again and again
    try:
        return _decode_lines(lines, kind)
    except (msgspec.MsgspecError, RecursionError):  # not JSON, not an object, a field missing or of another type
        return None
    finally:
        if enabled:
            gc.enable()


MAX_FAST_NESTING = 64  # a TuSimple line nests 3 deep and opens 6-8 lists; json's own limit is near 1,000
_LIST, _OBJECT = np.uint8(ord("[")), np.uint8(ord("{"))


def _may_nest_deeply(data: bytes, lines: list[bytes]) -> bool:
    """Whether some line holds more than MAX_FAST_NESTING opening brackets (in strings too): only such a line can
    nest deeper than that."""
    chars = np.frombuffer(data, np.uint8)
    openers = np.flatnonzero((chars == _LIST) | (chars == _OBJECT))
    if len(openers) <= MAX_FAST_NESTING:
        return False
    line_ends = np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines)) + 1)  # + 1: the newline
    per_line = np.bincount(np.searchsorted(line_ends, openers, side="right"), minlength=len(lines) + 1)
    return bool(per_line.max() > MAX_FAST_NESTING)


def _decode_lines(lines: list[bytes], kind: type[Prediction] | type[Label]) -> FastFile | None:
    decode = _DECODERS[kind].decode
    objs = [decode(line) for line in lines]
    raw_lanes = [obj.lanes for obj in objs]
    parts = [_read_lanes(raw_lanes[lo : lo + _CHUNK]) for lo in range(0, len(lines), _CHUNK)]
    if any(part is None for part in parts):
        return None
    out = FastFile([obj.raw_file for obj in objs], _concat(parts))
    if kind is Prediction:
        run_times = np.fromiter([obj.run_time for obj in objs], np.float64, len(objs))
        return replace(out, run_times=run_times) if _exact(run_times) else None
    row_texts = [bytes(obj.h_samples) for obj in objs]
    index = {text: i for i, text in enumerate(dict.fromkeys(row_texts))}  # distinct texts, in order
    rows_of_line = np.fromiter(map(index.__getitem__, row_texts), np.int64, len(row_texts))
    rows = _exact_ragged([[_ROWS.decode(t)] for t in index])
    return replace(out, rows=rows, rows_of_line=rows_of_line) if rows is not None else None


def _read_lanes(raw_lanes: list[msgspec.Raw]) -> metric.Ragged | None:
    """Lanes texts as arrays: in bulk if whole pixels, else decoded as lists of lists of numbers (and
    msgspec.ValidationError for any other JSON value); None if a number is not one _exact allows."""
    lanes = _whole_pixel_lanes(raw_lanes)  # integers of at most 15 digits: exact
    return lanes if lanes is not None else _exact_ragged([_LANES.decode(raw) for raw in raw_lanes])


def _exact_ragged(images: list[list[list[float]]]) -> metric.Ragged | None:
    """msgspec's lists of floats as arrays; None if a number is one _exact leaves to the plain path."""
    ragged = metric.Ragged.from_lists(images)
    return ragged if ragged is not None and _exact(ragged.values) else None


def _exact(values: np.ndarray) -> bool:
    """False for inf (a huge exponent) or an integer json would keep exact and float64 rounds: the plain path
    decides those."""
    return not len(values) or np.abs(values).max() < metric.EXACT_INTEGERS


# How _whole_pixel_lanes reads a byte (a bytes.translate table): a digit its value, minus 0 (both inside a
# number), a blank or comma _BLANK, brackets _OPEN and _CLOSE; the low four bits are a digit's value and 0 for
# every other byte. Nothing outside _WHOLE_PIXEL_BYTES reaches the table.
_BLANK, _OPEN, _CLOSE = 16, 32, 48
_WHOLE_PIXEL_BYTES = b"0123456789-[], \t"
_CODE = bytes(
    byte - 48 if 48 <= byte <= 57 else {ord("-"): 0, ord("["): _OPEN, ord("]"): _CLOSE}.get(byte, _BLANK)
    for byte in range(256)
)
_MINUS = np.uint8(ord("-"))
_MAX_DIGITS = 15  # integers below 10**15 are exact in float64, as json's ints are


def _whole_pixel_lanes(raw_lanes: list[msgspec.Raw]) -> metric.Ragged | None:
    """Lanes texts that are lists of lists of integers (each valid JSON: msgspec has checked it), read in bulk;
    None for anything else (a decimal point, an exponent, a lane that is not a list, over 15 digits).

    With only digits, minus, brackets, commas and blanks in valid JSON, the brackets' depths give the structure
    and every maximal run of digits and minus is one integer: -?(0|[1-9][0-9]*)."""
    text = b" " + b" ".join(raw_lanes) + b" "  # blanks around: every number has a non-number byte on each side
    if text.translate(None, _WHOLE_PIXEL_BYTES):
        return None
    code = np.frombuffer(text.translate(_CODE), np.uint8)
    brackets = np.flatnonzero(code >= _OPEN)
    opens = code[brackets] == _OPEN
    depth = np.cumsum(np.where(opens, 1, -1))  # depth after each bracket
    image_open, image_close = brackets[opens & (depth == 1)], brackets[~opens & (depth == 0)]
    if depth.max(initial=0) > 2 or len(image_open) != len(raw_lanes):  # deeper lists, or a value not a list
        return None
    lane_open, lane_close = brackets[opens & (depth == 2)], brackets[~opens & (depth == 1)]
    in_number = code < _BLANK
    edges = np.flatnonzero(in_number[1:] != in_number[:-1]) + 1  # a number's first byte, then the byte after it
    starts, ends = edges[::2], edges[1::2]
    lane_len = np.searchsorted(starts, lane_close) - np.searchsorted(starts, lane_open)
    if lane_len.sum() != len(starts):  # a number outside every lane: directly in the list of lanes
        return None
    negative = np.frombuffer(text, np.uint8)[starts] == _MINUS
    before_digits = starts + negative - 1  # the byte before a number's first digit: minus, blank or [, worth 0
    width = int((ends - before_digits).max(initial=1)) - 1
    if width > _MAX_DIGITS:
        return None
    digit = code & 15
    values = np.zeros(len(starts))
    position = ends.copy()
    for place in range(width):  # the units, then the tens, ... of every number; shorter ones add the 0 before them
        np.maximum(position - 1, before_digits, out=position)
        values += digit[position] * 10.0**place
    np.negative(values, out=values, where=negative)
    per_image = np.searchsorted(lane_open, image_close) - np.searchsorted(lane_open, image_open)
    return metric.Ragged(values, lane_len, per_image)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _concat(parts: list[metric.Ragged]) -> metric.Ragged:
    if not parts:
        return metric.Ragged(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(parts) == 1:
        return parts[0]
    return metric.Ragged(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("values", "lane_len", "per_image")))
