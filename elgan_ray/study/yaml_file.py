"""Reading a study file (search_spaces/*.yaml): found by name or path, at most MAX_STUDY_BYTES of UTF-8, as plain
YAML (plain_yaml.py: no anchors or aliases, bounded nesting), with the line each key is written on.

Every way a file can be bad is a UserError naming it (and the line, where there is one): missing, unreadable,
too large, not UTF-8 (the line of the first bad byte), not YAML, not a mapping, a key written twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from elgan_ray.errors import UserError
from elgan_ray.files import read_regular, regular_file_rule
from elgan_ray.plain_yaml import load_plain_node

MAX_STUDY_BYTES = 64 * 1024  # a study file, and its base (the shipped ones are about 1 KB)


def is_file(path: Path) -> bool:
    """path.is_file(), False for a path that cannot be a file's at all."""
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def find_study_file(name_or_path: str, search_dir: Path) -> Path:
    """search_dir/<name>.yaml for a name, else the path itself; a UserError listing the studies when it is none."""
    text = str(name_or_path)
    if "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(text)
    else:
        path = search_dir / f"{text}.yaml"
    if not is_file(path):
        rule = regular_file_rule(path)
        if rule and not rule.endswith("not found"):  # there, but a FIFO, a folder, out of reach: said as such
            raise UserError(path, rule)
        known = sorted(p.stem for p in search_dir.glob("*.yaml") if p.stem != "base") if search_dir.is_dir() else []
        raise UserError(path, f"no such study file (studies in {search_dir}: {', '.join(known) or 'none'})")
    return path


def read_study_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int], str]:
    """The YAML mapping (plain_yaml: no anchors or aliases, of at most MAX_STUDY_BYTES of UTF-8), the 1-based
    line of each top-level key and each key one level down, and the SHA-256 of the file's bytes (what the study is,
    for --resume)."""
    raw = read_regular(path, MAX_STUDY_BYTES, "study file")  # a FIFO is refused, not waited on
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        rule = f"not UTF-8 text (byte 0x{raw[error.start]:02x}): save the file as UTF-8"
        raise UserError(path, rule, line=line) from None
    try:
        node, data = load_plain_node(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise UserError(path, f"not valid YAML: {error.problem or error}", line=line) from None
    except yaml.YAMLError as error:
        raise UserError(path, f"not valid YAML: {error}") from None
    except ValueError as error:  # PyYAML's int() past Python's 4300 digits, its date() of 2024-13-45
        raise UserError(path, f"not valid YAML: a value that cannot be read ({error})") from None
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise UserError(path, "must be a YAML mapping of study keys")
    lines: dict[tuple[str, ...], int] = {}
    for key_node, value_node in node.value:
        top = (str(key_node.value),)
        if top in lines:
            raise UserError(path, "written twice", line=key_node.start_mark.line + 1, key=top[0])
        lines[top] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.MappingNode):
            for sub_node, _ in value_node.value:
                sub = (*top, str(sub_node.value))
                if sub in lines:
                    raise UserError(path, f"written twice in {top[0]}", line=sub_node.start_mark.line + 1, key=sub[1])
                lines[sub] = sub_node.start_mark.line + 1
    return data, lines, hashlib.sha256(raw).hexdigest()
