"""Owner locks: one lock file per thing that must have one owner at a time, made atomically, naming its owner, kept
fresh while held and taken over atomically once its owner is provably gone.

One mechanism serves every lock of the record: the sweep's lock on its study (one sweep per study folder,
sweep/__main__.py) and the lock of each shared pre-training (one trial computes it, sweep/pretrain.py).

- Taking: the owner's line ("host pid since nonce") is written to a temporary sibling, which is then hard-linked to
  the lock's name. link(2) fails when the name exists, on local disks and on NFS alike, so exactly one process
  takes a free lock, and nobody ever sees a lock without its owner's line.
- Holding: a thread touches the lock every `refresh` seconds, proving on every host that its owner is alive.
- Gone: an owner on this host is gone when its pid is not alive, or is a process that started after the lock was
  taken (its pid reused). An owner on a Ray node that Ray says is dead is gone at once (`node_alive`, given by the
  sweep: this module imports no Ray). Any other owner, or one that cannot be read, is gone once the lock has not
  been touched for `stale_after` seconds.
- Taking over a gone owner's lock never unlinks what it merely looked at: the taker first creates the lock's
  takeover token (`<lock>.takeover`, taken as the lock itself is, so one taker at a time), checks that the lock
  still holds the very line it judged (a nonce makes every line unique), then replaces it. A token whose taker died
  half-way is judged like a lock and moved aside by a rename, checked to be the one judged.
- Releasing removes the lock only while it holds this owner's line.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

STALE_SECONDS = 300  # a lock (or takeover token) of another host not touched for this long belongs to a dead owner
REFRESH_SECONDS = 30
PID_REUSE_SLACK = 2.0  # seconds: /proc's boot time is whole seconds, so a start time is known to about one


@dataclass(frozen=True)
class Owner:
    """Who holds a lock, as its line says: host, pid, when it took the lock (None in an older two-field line) and
    the Ray node it runs on (None outside Ray)."""

    host: str
    pid: int
    since: float | None
    node: str | None = None

    def __str__(self) -> str:
        when = (
            ""
            if self.since is None
            else ", since " + datetime.fromtimestamp(self.since, timezone.utc).isoformat(timespec="seconds")
        )
        return f"host {self.host}, pid {self.pid}{when}" + ("" if self.node is None else f", Ray node {self.node}")


def parse_owner(line: bytes) -> Owner | None:
    """The owner a lock's line names, or None when it names none (empty, garbage, written by something else)."""
    fields = line.decode("utf-8", "replace").split()  # "host pid [since nonce [node]]"
    if len(fields) not in (2, 4, 5) or not fields[1].isdigit():
        return None
    try:
        since = float(fields[2]) if len(fields) >= 4 else None
    except ValueError:
        return None
    return Owner(fields[0], int(fields[1]), since, fields[4] if len(fields) == 5 else None)


class OwnerLock:
    """A lock file at `path`. acquire() takes it (True) or says who holds it (False, `holder`); release() gives it up.

    With `make_parents`, the folders acquire() makes for the lock are removed again by release() when they are
    empty, so that a command refused after taking its lock leaves nothing behind."""

    def __init__(
        self,
        path: str | Path,
        stale_after: float = STALE_SECONDS,
        refresh: float = REFRESH_SECONDS,
        make_parents: bool = False,
        node: str | None = None,
        node_alive: Callable[[str], bool] | None = None,
    ):
        self.path = Path(path)
        self.node, self.node_alive = node, node_alive  # this owner's Ray node; whether a Ray node is alive
        self.stale_after, self.refresh = stale_after, refresh
        self.make_parents = make_parents
        self.holder: Owner | None = None  # the owner of the lock acquire() last found held (None: unreadable)
        self._line = b""
        self._made: list[Path] = []
        self._stop = threading.Event()

    def acquire(self) -> bool:
        """Take the lock if it is free or its owner is gone; False (and `holder`) when a live owner holds it."""
        if self.make_parents:
            self._made = _make_folders(self.path.parent)
        self._line = _owner_line(self.node)
        for _ in range(5):  # the lock vanished between two looks (released): look again
            if _link_new(self.path, self._line):
                return self._held()
            seen = _read(self.path)
            if seen is None:
                continue
            line, touched = seen
            self.holder = parse_owner(line)
            if not self._gone(self.holder, touched):
                return False
            if self._take_over(line):
                return self._held()
            seen = _read(self.path)  # another process took it over, or is taking it over now: it is the holder
            self.holder = parse_owner(seen[0]) if seen else self.holder
            return False
        return False

    def release(self) -> None:
        """Stop refreshing; remove the lock if it is still this owner's, and the folders acquire() made if empty."""
        self._stop.set()
        seen = _read(self.path)
        if seen is not None and seen[0] == self._line:
            self.path.unlink(missing_ok=True)
        for folder in reversed(self._made):
            try:
                folder.rmdir()
            except OSError:  # not empty (a results folder in use), or gone
                break
        self._made = []

    def _held(self) -> bool:
        self._stop = threading.Event()
        threading.Thread(target=self._keep_fresh, args=(self._stop,), daemon=True).start()
        return True

    def _keep_fresh(self, stop: threading.Event) -> None:
        while not stop.wait(self.refresh):
            try:
                os.utime(self.path)
            except OSError:  # gone (released meanwhile) or unreachable for a moment: the next touch tries again
                pass

    def _gone(self, owner: Owner | None, touched: float) -> bool:
        if owner is not None and owner.node is not None and self.node_alive is not None:
            if not self.node_alive(owner.node):
                return True  # Ray says its node is dead: no need to wait for the lock to age
        if owner is not None and owner.host == socket.gethostname():
            return not _alive_since(owner.pid, owner.since)
        return time.time() - touched > self.stale_after

    def _take_over(self, judged: bytes) -> bool:
        """Replace the lock holding `judged` (a gone owner's line) by this owner's, under the takeover token."""
        token = self.path.with_name(self.path.name + ".takeover")
        token_line = _owner_line()
        if not _link_new(token, token_line):
            seen = _read(token)
            if seen is None or not self._gone(parse_owner(seen[0]), seen[1]):
                return False  # another taker is at work (or just finished): it decides
            if not _remove_exactly(token, seen[0]) or not _link_new(token, token_line):
                return False
        try:
            seen = _read(self.path)
            if seen is None or seen[0] != judged:
                return False  # released, or taken over, since it was judged
            self.path.unlink()
            return _link_new(self.path, self._line)  # False: a plain acquire won the name in between
        finally:
            if (_read(token) or (b"",))[0] == token_line:
                token.unlink(missing_ok=True)


def _owner_line(node: str | None = None) -> bytes:
    line = f"{socket.gethostname()} {os.getpid()} {time.time():.6f} {secrets.token_hex(8)}"
    return (line + ("" if node is None else f" {node}") + "\n").encode()


def _link_new(path: Path, line: bytes) -> bool:
    """Create `path` holding `line`, atomically, unless it exists (False)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "xb") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: O_EXCL, as atomic, but briefly empty (read as unreadable)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(line)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> tuple[bytes, float] | None:
    """A lock's line and when it was last touched; None when there is no lock."""
    try:
        with open(path, "rb") as handle:
            return handle.read(1024), os.fstat(handle.fileno()).st_mtime
    except FileNotFoundError:
        return None
    except OSError:  # unreadable: judged by its age alone
        try:
            return b"", path.stat().st_mtime
        except OSError:
            return None


def _remove_exactly(path: Path, judged: bytes) -> bool:
    """Remove `path` if it holds `judged`: moved aside by a rename (atomic: the name then holds nothing) and checked;
    a file that turns out to be another, put back."""
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}.gone")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    seen = _read(aside)
    if seen is not None and seen[0] == judged:
        aside.unlink(missing_ok=True)
        return True
    try:
        os.link(aside, path)
    except OSError:
        pass
    aside.unlink(missing_ok=True)
    return False


def _alive_since(pid: int, since: float | None) -> bool:
    """Whether the process `pid` of this host is alive and is the one that took the lock at `since`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        pass  # another user's process (alive), or no pid at all: its start time decides, if known
    started = _started(pid)
    return since is None or started is None or started <= since + PID_REUSE_SLACK


def _started(pid: int) -> float | None:
    """When the process `pid` started (seconds since the epoch), from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return float(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def _make_folders(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; the ones this call made, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    made = []
    for path in reversed(missing):
        try:
            path.mkdir()
            made.append(path)
        except FileExistsError:  # made by another process meanwhile: not ours to remove
            pass
    return made
