"""TuSimple's JSON-lines files (one JSON object per line), read as the official evaluator reads them, and fast.

The plain reader (read_lines, parse_lines) splits lines as text-mode `readlines` does and parses each with json,
naming the line that breaks. The fast reader (read_both) cuts the lane arrays out of the text and parses them
with numpy; it returns None for anything unusual, and the caller (evaluate.score_files) falls back to the plain
reader, so results and error messages never depend on which reader ran. Imports stay light (numpy, json).
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from elgan_ray import metrics
from elgan_ray.errors import UserError


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a missing or unreadable file is a one-line error."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(path, "file not found") from None
    except OSError as error:
        raise UserError(path, f"cannot read file ({error.strerror or error.__class__.__name__})") from None


def read_lines(path: str | Path) -> list[str]:
    """The file's lines as the official `open(f).readlines()` splits them (\\n, \\r\\n and \\r)."""
    data = read_bytes(path)
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
    except ValueError:
        pass
    finally:
        if enabled:
            gc.enable()
    for number, line in enumerate(lines, 1):  # find the line that broke, for the message
        try:
            loads(line)
        except ValueError as error:
            reason = "blank line" if not line.strip() else f"not JSON: {getattr(error, 'msg', error)}"
            raise UserError(path, f"{rule} ({reason})", line=number) from None
    raise AssertionError("unreachable: a line failed to parse and then parsed")


# ---------------------------------------------------------------------------------------------------------------
# Fast path. Parsing ~1.2 million numbers into Python objects and converting them back to arrays is most of the
# command's time, so a file whose lanes are plain JSON arrays of decimal numbers is read by numpy instead: the
# lane arrays are cut out of the text, checked against the JSON grammar and parsed exactly (an integer of at most
# 15 digits divided by a power of ten is correctly rounded, as json's own float parsing is); json.loads parses
# the rest of each line (raw_file, run_time). Anything else (an error, exponents, tabs, \r) returns None and the
# plain path (parse_lines above, in evaluate.score_files) scores the files, so results and error messages never
# depend on which path ran.

_SPAN = re.compile(rb'(?<!\\)"(lanes|h_samples)" *: *(\[[-0-9., \[\]]*\])')
_POW10 = 10.0 ** np.arange(23)  # exact in float64


def read_both(pred_data: bytes, gt_data: bytes, parallel: bool) -> tuple:
    """_read_fast of both files; with `parallel`, the label file in a forked child on the other core.

    Threads do not help here (the GIL serialises the many small steps). Forking is only safe in a process
    with a single thread, so it is used only from the command line and never when other threads exist.
    """
    if not (parallel and hasattr(os, "fork") and threading.active_count() == 1):
        return _read_fast(pred_data, need_h=False), _read_fast(gt_data, need_h=True)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: parse, send the arrays back, leave without running any exit handlers
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as out:
                out.write(pickle.dumps(_read_fast(gt_data, need_h=True), protocol=pickle.HIGHEST_PROTOCOL))
        finally:
            os._exit(0)
    os.close(write_end)
    preds = _read_fast(pred_data, need_h=False)
    with os.fdopen(read_end, "rb") as inp:
        payload = inp.read()
    os.waitpid(pid, 0)
    try:
        return preds, pickle.loads(payload)
    except Exception:  # the child failed: the plain path will read the files itself
        return preds, None


def _read_fast(data: bytes, need_h: bool) -> tuple[list[dict], metrics.Ragged, metrics.Ragged] | None:
    """(line objects without their arrays, lanes per line, h_samples per line) or None if not ordinary."""
    if b"\r" in data or b"\t" in data or not data.endswith(b"\n"):
        return None
    n_lines = data.count(b"\n")
    placeholder = "span-" + os.urandom(8).hex()  # a value no file can contain: marks where an array was cut out
    quoted = f'"{placeholder}"'.encode()
    parts = _SPAN.split(data)  # [text, key, array, text, key, array, ..., text]: the C loop does the cutting
    keys, arrays = parts[1::3], parts[2::3]
    spans = {key: [a for k, a in zip(keys, arrays, strict=True) if k == key] for key in (b"lanes", b"h_samples")}
    stand_in = {key: b'"' + key + b'": ' + quoted for key in spans}
    pieces = [stand_in[key] for key in keys]  # each match, key included, becomes "key": "placeholder"
    pieces = [x for pair in zip(parts[0::3], pieces + [b""], strict=True) for x in pair]
    try:
        lines = b"".join(pieces).decode("utf-8").split("\n")[:-1]
        objs = [json.loads(line) for line in lines]
    except ValueError:
        return None
    keys = ("lanes", "h_samples") if need_h else ("lanes",)
    counts = {key: 0 for key in ("lanes", "h_samples")}
    for obj in objs:
        if type(obj) is not dict:
            return None
        for key in counts:  # every array cut out must be a top-level value, once per line
            value = obj.get(key)
            if value == placeholder:
                counts[key] += 1
            elif key in keys or value is not None or key in obj:
                return None
    if counts["lanes"] != len(spans[b"lanes"]) or counts["h_samples"] != len(spans[b"h_samples"]):
        return None
    if counts["lanes"] != n_lines or (need_h and counts["h_samples"] != n_lines):
        return None
    # A prediction's h_samples is ignored but must still be valid JSON, so every cut-out array is parsed.
    lanes, h = _parse_chunked(spans[b"lanes"], nested=True), _parse_chunked(spans[b"h_samples"], nested=False)
    if lanes is None or h is None:
        return None
    return objs, lanes, h


def _parse_chunked(spans: list[bytes], nested: bool, chunk: int = 256) -> metrics.Ragged | None:
    """_parse_arrays over blocks of spans: small temporaries stay in cache and reuse the same memory."""
    parts = []
    for lo in range(0, len(spans), chunk):
        part = _parse_arrays(spans[lo : lo + chunk], nested)
        if part is None:
            return None
        parts.append(part)
    if not parts:
        return metrics.Ragged(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return metrics.Ragged(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("values", "lane_len", "per_image"))
    )


# Symbol codes for the grammar check: 0 other, 1 '[', 2 ']', 3 ',', 4 end of an array (newline), 5 a number.
_CODE = np.zeros(256, np.int64)
_CODE[[ord("["), ord("]"), ord(","), ord("\n")]] = [1, 2, 3, 4]
_CODE[[ord(c) for c in "-.0123456789"]] = 5
_DEPTH_STEP = np.array([0, 1, -1, 0, 0, 0], np.int64)


def _grammar(nested: bool) -> np.ndarray:
    """Allowed (symbol, next symbol, depth after symbol) triples of `[[n, ...], ...]` (or `[n, ...]`) arrays."""
    inner = 2 if nested else 1
    table = np.zeros((6, 6, 4), bool)
    table[4, 1, 0] = True  # an array starts
    table[1, 2, :] = True  # [] (empty)
    table[1, 5, inner] = table[3, 5, inner] = True  # a number after '[' or ',' at the inner depth
    table[5, 3, inner] = table[5, 2, inner] = True  # a number is followed by ',' or ']'
    table[2, 4, 0] = True  # the outer ']' ends the array
    if nested:
        table[1, 1, 1] = table[3, 1, 1] = True  # an inner array after the outer '[' or a ','
        table[2, 3, 1] = table[2, 2, 1] = True  # after an inner ']': ',' or the outer ']'
    return table.ravel()


_GRAMMAR = {nested: _grammar(nested) for nested in (False, True)}


def _parse_arrays(spans: list[bytes], nested: bool) -> metrics.Ragged | None:
    """JSON arrays of numbers (nested: arrays of such arrays) as a Ragged, or None if any is not exactly that."""
    buf = b"\n" + b"\n".join(spans) + b"\n"
    b = np.frombuffer(buf, np.uint8)
    is_tok = (b >= 45) & (b <= 57) & (b != 47)  # '-', '.', digits
    tok_start = is_tok.copy()
    tok_start[1:] &= ~is_tok[:-1]
    tok_end = is_tok[:-1] & ~is_tok[1:]
    # One symbol per number, bracket, comma and array end; spaces only separate symbols.
    sym = _CODE[b[np.flatnonzero(tok_start | (~is_tok & (b != 32)))]]
    depth = np.cumsum(_DEPTH_STEP[sym])  # depth after each symbol
    index = (sym[:-1] * 6 + sym[1:]) * 4 + np.clip(depth[:-1], 0, 3)
    if not _GRAMMAR[nested][index].all():
        return None
    values = _parse_numbers(b, np.flatnonzero(tok_start), np.flatnonzero(tok_end) + 1, buf.count(b"-"), b"." in buf)
    if values is None:
        return None
    # Lanes open with '[' at the inner depth, arrays end with a newline: numbers per lane, lanes per array.
    inner = 2 if nested else 1
    opens = (sym == 1) & (depth == inner)
    lane_of_num = np.cumsum(opens)[sym == 5] - 1
    lane_len = np.bincount(lane_of_num, minlength=int(opens.sum())).astype(np.int64)
    per_span = np.bincount(np.cumsum(sym == 4)[opens] - 1, minlength=len(spans)).astype(np.int64)
    return metrics.Ragged(values, lane_len, per_span)


def _parse_numbers(b: np.ndarray, starts: np.ndarray, ends: np.ndarray, minus: int, dots: bool) -> np.ndarray | None:
    """Exact float64 of each token b[start:end] if all are JSON numbers -?(0|[1-9][0-9]*)(.[0-9]+)?, else None.

    Tokens are laid right-aligned in an (n, L) matrix; the digits make an integer N below 10^15 (exact in
    float64) and the value is N / 10^k with k fraction digits: one correctly rounded division, the same double
    that json's float parsing gives.
    """
    lens = ends - starts
    width = int(lens.max(initial=1))
    if width > 17:  # 15 digits, '-' and '.': longer numbers go through json
        return None
    neg = b[starts] == 45
    if int(neg.sum()) != minus:  # a '-' anywhere but in front of a number
        return None
    cols = np.arange(width)
    first = width - lens  # first column of each token
    lead = first + neg  # column of its first digit
    # Right-aligned (n, width) characters: row i ends where token i ends (the buffer starts with >= 1 newline,
    # and is padded here so that every window starts inside it).
    padded = np.concatenate((np.full(width, 10, np.uint8), b))
    chars = np.lib.stride_tricks.sliding_window_view(padded, width)[ends]
    in_tok = cols >= first[:, None]
    digit = chars - 48  # uint8: '-' and '.' wrap to large values
    is_digit = in_tok & (digit <= 9)
    if dots:
        is_dot = in_tok & (chars == 46)
        has_dot = is_dot.any(1)
        dot_col = np.where(has_dot, is_dot.argmax(1), -1)
        if (is_dot.sum(1) > 1).any() or (has_dot & ((dot_col <= lead) | (dot_col >= width - 1))).any():
            return None  # "1.2.3", ".5", "-.5", "5."
        int_len = np.where(has_dot, dot_col - lead, lens - neg)
        n_digits = lens - neg - has_dot
    else:
        int_len = n_digits = lens - neg
    # Tokens hold only digits, '-' and '.'; with '-' and '.' placed as checked, the rest are digits.
    if (n_digits < 1).any() or (n_digits > 15).any():  # a lone '-', or too many digits to be exact
        return None
    if ((int_len > 1) & (b[starts + neg] == 48)).any():  # "01"
        return None
    values = np.where(is_digit, digit, 0).astype(np.float64)
    if not dots:
        number = values @ _POW10[width - 1 - cols]  # integer sums below 2^53: exact in any order
    else:
        power = (width - 1 - cols)[None, :] - (cols[None, :] < dot_col[:, None])  # the '.' takes no power
        number = (values * _POW10[np.maximum(power, 0)]).sum(1)
        number = number / _POW10[np.where(has_dot, width - 1 - dot_col, 0)]
    return np.where(neg, -number, number)
