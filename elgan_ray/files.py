"""Atomic writes: a reader, a crash or a concurrent trial never sees a half-written file or folder; and the
checks at the edges of every command: an output that can be written, a JSON record or an npz input that can be
read.

Files and folders written here get the modes an ordinary open() or mkdir() gives them: 0o666 and 0o777
less the umask (0644 and 0755 under the usual umask 022), so a colleague, TensorBoard or a service can read
a shared dataset or results folder exactly as the user's umask allows. Temporary siblings are hidden
(`.NAME.<random>.tmp`, `.NAME.<random>.partial`) and removed on failure, Ctrl-C and SIGTERM; a staging
folder left by a process killed outright (SIGKILL, a lost node) is removed by the next write of the same
folder on the same host, which recognises it by the owner file inside it.

Every record and input file is read the same way (read_regular, open_regular): opened without blocking, checked
with fstat to be a regular file within a size bound, and only then read, so a FIFO, a device or a symbolic link to
/dev/zero is refused in one line ("not a regular file") instead of hanging the command or filling its memory.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from elgan_ray.errors import UserError

STAGING_SUFFIX = ".partial"
OWNER_FILE = ".elgan_ray_staging"  # inside a staging folder: "host pid" of the process that fills it
_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO for reading would wait for a writer; a regular file ignores the flag.
_READ = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
MAX_RECORD_BYTES = 16 << 20  # a JSON record (status.json, run.json, study.json): a few KB in practice


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


def publish_files(staging: Path, folder: Path, names: list[str], stale: tuple[str, ...] = ()) -> None:
    """Move the files `names` of a filled staging folder into `folder` (each by one rename, replacing the old one),
    remove the files of `stale` that the set no longer holds, then the staging folder.

    Every byte was written before the first rename, so a write error (a full disk, a file-size limit) leaves the
    folder's previous set whole; a rename needs no space."""
    for name in names:
        os.replace(staging / name, folder / name)
    for name in stale:
        if name not in names:
            (folder / name).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)


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


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, for an error message: "a FIFO", "a device", "a folder", ..."""
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))
    kinds += ((stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def regular_file_rule(path: str | Path, name: str = "file") -> str | None:
    """Why `path` is no regular file to read ("<name> not found", "not a regular file (a FIFO)"), or None when it is
    one; from stat alone (symbolic links followed), so nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{name} not found"
    except (OSError, ValueError) as error:  # no permission on a folder above it, a name too long, a NUL byte
        return _unreadable(error)
    return None if stat.S_ISREG(mode) else f"not a regular file ({file_kind(mode)})"


def open_regular(path: str | Path, max_bytes: int, name: str = "file") -> BinaryIO:
    """The regular file at `path` (symbolic links followed), open for reading in binary, at most `max_bytes` long.

    Opened without blocking and checked with fstat before a byte is read: a UserError naming the path when it is
    missing ("<name> not found"), is not a regular file ("not a regular file (a FIFO)": a FIFO would block, a
    device such as /dev/zero never ends), cannot be read, or is larger than the bound.
    """
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        raise UserError(path, f"{name} not found") from None
    except (OSError, ValueError) as error:  # no permission, a loop of links, a name too long, a NUL byte
        raise UserError(path, _unreadable(error)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(path, f"not a regular file ({file_kind(info.st_mode)})")
        if info.st_size > max_bytes:
            raise UserError(path, _too_large(info.st_size, max_bytes, name))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, max_bytes: int, name: str = "file") -> bytes:
    """The bytes of the regular file at `path`, at most `max_bytes` of them (open_regular's checks and errors).

    Reads up to the bound whatever fstat said: a file that grows while it is read, or one that tells no size
    (/proc files), is still held to it."""
    with open_regular(path, max_bytes, name) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            chunks = [handle.read(size + 1)]  # the whole file, and a byte more if it has grown since
            total = len(chunks[0])
            while size < total <= max_bytes:  # it grew, or tells no size (/proc): read on, in bounded chunks
                chunk = handle.read(min(1 << 20, max_bytes + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as error:  # an I/O error
            raise UserError(path, _unreadable(error)) from None
    if total > max_bytes:
        raise UserError(path, _too_large(total, max_bytes, name))
    return b"".join(chunks) if len(chunks) > 1 else chunks[0]


def _unreadable(error: Exception) -> str:
    return f"cannot be read ({getattr(error, 'strerror', None) or error.__class__.__name__})"


def _too_large(size: int, max_bytes: int, name: str) -> str:
    return f"{size:,} bytes: larger than {max_bytes:,} bytes, more than any {name} holds"


def read_npz(path: str | Path, what: str, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays of an npz file (no pickles). UserError naming the path, "not `what` (...)", when it is damaged
    or not an npz, and when its arrays would unpack to more than `max_bytes` (a small file can hold a zip bomb).

    The file itself is checked first (open_regular: a regular file of at most `max_bytes` and a little room for
    the archive's own headers), so zipfile's search for the end of the archive never reads a device or a FIFO."""
    path = Path(path)
    with open_regular(path, max_bytes + (1 << 20), "npz file") as handle:
        try:
            with zipfile.ZipFile(handle) as archive:
                size = sum(info.file_size for info in archive.infolist())
                if size > max_bytes:
                    raise UserError(path, f"its arrays would take {size:,} bytes (at most {max_bytes:,})")
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            raise UserError(path, f"not {what} ({error.__class__.__name__}: {str(error)[:200]})") from None


def read_json_object(path: Path, max_bytes: int = MAX_RECORD_BYTES) -> dict[str, Any]:
    """One JSON object from a regular file of at most `max_bytes`; a UserError when it cannot be read, is not JSON
    (nested too deeply included) or not an object."""
    data = read_regular(path, max_bytes, "JSON record")
    try:
        record = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise UserError(path, f"not valid JSON ({str(error)[:200]})") from None
    if not isinstance(record, dict):
        raise UserError(path, "must hold one JSON object")
    return record


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
LOW_SPACE_BYTES = 1 << 20  # a file system with less free than this is full, for what a command writes


def disk_full(error: BaseException, path: str | Path) -> bool:
    """Whether `error` is, or was caused by, a full disk (or quota) where `path` lies: an OSError ENOSPC or EDQUOT
    in its chain, or (an error raised by a library that lost the OSError on the way, such as Ray Tune's unreadable
    error files) a file system at `path` with less than LOW_SPACE_BYTES free."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return True
        error = error.__cause__ or error.__context__
    try:
        usage = os.statvfs(path)
    except OSError:
        return False
    return usage.f_bavail * usage.f_frsize < LOW_SPACE_BYTES
