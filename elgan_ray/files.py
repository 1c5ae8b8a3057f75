"""Atomic writes: a reader, a crash or a concurrent trial never sees a half-written file or folder; and the
checks at the edges of every command: an output that can be written, a JSON record or an npz input that can be
read.

Files and folders written here get the modes an ordinary open() or mkdir() gives them: 0o666 and 0o777
less the umask (0644 and 0755 under the usual umask 022), so a colleague, TensorBoard or a service can read
a shared dataset or results folder exactly as the user's umask allows. Temporary siblings are hidden
(`.NAME.<random>.tmp`, `.NAME.<random>.partial`) and removed on failure, Ctrl-C and SIGTERM; a staging
folder left by a process killed outright (SIGKILL, a lost node) is removed by the next write of the same
folder on the same host, which recognises it by the owner file inside it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from elgan_ray.errors import UserError

STAGING_SUFFIX = ".partial"
OWNER_FILE = ".elgan_ray_staging"  # inside a staging folder: "host pid" of the process that fills it
_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)


def _temporary_name(path: Path, suffix: str) -> Path:
    return path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write data to path through a temporary sibling and a rename, so path is either old or new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _temporary_name(path, ".tmp")
        try:
            fd = os.open(tmp, _CREATE, 0o666)  # like open(): the umask decides the mode (mkstemp's is 0600)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Text version of atomic_write_bytes (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def staging_directory(final: str | Path) -> Path:
    """A new, empty staging folder beside `final` (`.NAME.<random>.partial`), marked as this process's.

    First removes the staging folders of `final` that a dead process of this host left behind.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(final)
    while True:
        staging = _temporary_name(final, STAGING_SUFFIX)
        try:
            staging.mkdir(0o777)  # like mkdir: the umask decides the mode (mkdtemp's is 0700)
            break
        except FileExistsError:
            continue
    (staging / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    return staging


def publish_staging(staging: Path, final: Path) -> None:
    """Rename a filled staging folder to `final` (which must not exist): readers see all of it or nothing."""
    (staging / OWNER_FILE).unlink(missing_ok=True)
    os.rename(staging, final)


def remove_stale_staging(final: str | Path) -> list[Path]:
    """Remove the staging folders of `final` whose owner is a dead process on this host; returns them.

    A folder without a readable owner file, or owned by a live process or another host, is left alone:
    this never deletes what it cannot prove this program wrote and abandoned.
    """
    final = Path(final)
    removed = []
    for candidate in final.parent.glob(f".{final.name}.*{STAGING_SUFFIX}"):
        if candidate.is_symlink() or not candidate.is_dir():
            continue
        try:
            host, pid = (candidate / OWNER_FILE).read_text().split()
            owner = int(pid)
        except (OSError, ValueError):
            continue
        if host == socket.gethostname() and not _alive(owner):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or not a pid we can ask about): assume it is alive
    return True


@contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yield a staging folder beside `final`; on success it replaces `final`, on failure it is removed.

    Used for generated datasets: a folder that exists is always complete. The caller decides whether an
    existing `final` may be replaced (it is deleted whole).
    """
    final = Path(final)
    staging = staging_directory(final)
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        publish_staging(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_writable(path: str | Path, kind: str = "file") -> Path:
    """Refuse, before any work, an output `kind` ("file" or "folder") that could not be written at `path`.

    UserError naming the path when it is a folder where a file is wanted (or the reverse), lies under a
    file, is a dangling symbolic link, or the nearest existing folder cannot be written by this user.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise UserError(path, f"is a symbolic link to {os.readlink(path)}, which does not exist")
    if path.exists():
        if kind == "folder" and not path.is_dir():
            raise UserError(path, "exists and is not a folder (an output folder is wanted here)")
        if kind == "file" and path.is_dir():
            raise UserError(path, "is a folder (an output file is wanted here)")
    existing = path if kind == "folder" else path.parent
    while not existing.exists():  # the folders that do not exist yet are made by the write
        if existing.is_symlink():
            raise UserError(path, f"cannot be created: {existing} is a symbolic link to nothing")
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(path, f"cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(path, f"cannot be written: no permission to write in {existing} (or it is read-only)")
    return path


def read_npz(path: str | Path, what: str, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays of an npz file (no pickles). UserError naming the path, "not `what` (...)", when it is damaged
    or not an npz, and when its arrays would unpack to more than `max_bytes` (a small file can hold a zip bomb)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(info.file_size for info in archive.infolist())
            if size > max_bytes:
                raise UserError(path, f"its arrays would take {size:,} bytes (at most {max_bytes:,})")
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise UserError(path, f"not {what} ({error.__class__.__name__}: {str(error)[:200]})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """One JSON object from a file; a UserError when it cannot be read, is not JSON or not an object."""
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise UserError(path, f"cannot be read ({error.strerror or error.__class__.__name__})") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise UserError(path, f"not valid JSON ({str(error)[:200]})") from None
    if not isinstance(record, dict):
        raise UserError(path, "must hold one JSON object")
    return record
