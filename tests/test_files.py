"""files.py: every record and input read as a bounded regular file, never waited on or read without end; the checks
of a full disk; a staged set of files swapped in."""

import errno
import os
import threading

import numpy as np
import pytest

from elgan_ray.errors import UserError
from elgan_ray.files import (
    disk_full,
    publish_files,
    read_json_object,
    read_npz,
    read_regular,
    regular_file_rule,
    staging_directory,
)


def test_a_regular_file_is_read_whole_and_within_its_bound(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 100)
    assert read_regular(path, 100) == b"x" * 100
    with pytest.raises(UserError, match=r"a.txt: 101 bytes: larger than 100 bytes, more than any record holds"):
        path.write_bytes(b"x" * 101)
        read_regular(path, 100, "record")
    assert read_regular("/proc/self/status", 1 << 20).startswith(b"Name:")  # a file that tells no size


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda p: os.mkfifo(p), "not a regular file (a FIFO)"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file (a device)"),
        (lambda p: p.mkdir(), "not a regular file (a folder)"),
        (lambda p: None, "record not found"),
        (lambda p: p.symlink_to(p.parent / "nowhere"), "record not found"),
    ],
    ids=["fifo", "device", "folder", "missing", "dangling-link"],
)
def test_what_is_no_regular_file_is_refused_as_such_without_blocking(tmp_path, make, rule):
    path = tmp_path / "x"
    make(path)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_refusal(path)), daemon=True)
    reader.start()
    reader.join(timeout=30)  # a FIFO opened the usual way would wait here for a writer for ever
    assert outcome == [f"{path}: {rule}"]
    assert regular_file_rule(path, "record") == rule


def _refusal(path):
    try:
        read_regular(path, 1 << 20, "record")
    except UserError as error:
        return str(error)
    return "read"


def test_an_npz_that_links_to_a_device_is_refused_before_zipfile_reads_it(tmp_path):
    """Issue 25, D7: zipfile's search for the archive's end read /dev/zero until memory ran out."""
    path = tmp_path / "preview.npz"
    path.symlink_to("/dev/zero")
    with pytest.raises(UserError, match="preview.npz: not a regular file"):
        read_npz(path, "a preview", 1 << 20)
    good = tmp_path / "good.npz"
    np.savez_compressed(good, a=np.arange(3))
    assert read_npz(good, "arrays", 1 << 20)["a"].tolist() == [0, 1, 2]


def test_json_nested_too_deeply_is_not_valid_json(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="run.json: not valid JSON"):
        read_json_object(path)


def test_a_full_disk_is_known_by_its_error_or_by_its_free_space(tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as error:
            raise EOFError("Ran out of input") from error  # a library that lost the OSError on the way
    except EOFError as wrapped:
        assert disk_full(wrapped, tmp_path)
    assert not disk_full(ValueError("other"), tmp_path)  # pytest's temporary folder has room


def test_a_staged_set_of_files_replaces_the_previous_one(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("a.csv", "old.png", "keep.txt"):
        (folder / name).write_text("old")
    staging = staging_directory(folder / "report")
    (staging / "a.csv").write_text("new")
    publish_files(staging, folder, ["a.csv"], stale=("a.csv", "old.png"))
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"a.csv": "new", "keep.txt": "old"}
    assert not staging.exists()
