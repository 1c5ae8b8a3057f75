"""Shared generator pre-training: computed once per (seed, generator config, data, pre-training schedule).

Every GAN trial of a study starts from the pre-trained generator of its seed, and that generator is
also the non-GAN baseline. A pre-training lives in `<results>/_pretrain/<id>/` and is published by
renaming its staging folder, so a reader sees either nothing or a finished pre-training. A lock file
made with O_EXCL (atomic on local disks and NFS) keeps two trials, on one node or several, from
computing the same pre-training at once; a lock whose owner stopped refreshing it is taken over, and at once when
it names a Ray node that Ray says is dead (the sweep passes the node and Ray's view of it; this module imports no
Ray).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from elgan_ray.config import RunSettings, TrainConfig
from elgan_ray.record.layout import pretrain_root
from elgan_ray.record.runs import read_status

STALE_LOCK_SECONDS = 300  # a lock not refreshed for this long belongs to a dead process
REFRESH_SECONDS = 30


def pretrain_id(cfg: TrainConfig, data_id: str) -> str:
    """A readable, content-addressed name: the seed, then a digest of everything the pre-training depends on."""
    from elgan_ray.config import pretrain_keys

    flat = cfg.to_flat()
    keyed = {key: flat[key] for key in pretrain_keys(flat)} | {"data": data_id}
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
    return f"seed{cfg.seed}-{digest}"


def data_identity(data_dir: str | None) -> str:
    """What the data is, for the pre-training id: the embedded set by version, a real set by its path."""
    if data_dir is None:
        from elgan_ray.data.synthetic import EMBEDDED_VERSION

        return f"embedded-{EMBEDDED_VERSION}"
    return str(Path(data_dir).resolve())


def is_finished(run_dir: Path) -> bool:
    return read_status(run_dir).get("status") in ("ok", "diverged")


def ensure_pretrained(
    cfg: TrainConfig,
    results_root: Path,
    data_dir: str | None,
    run: Callable,
    poll_seconds: float = 2.0,
    node: str | None = None,
    node_alive: Callable[[str], bool] | None = None,
) -> Path:
    """The folder of the finished pre-training for cfg, computing it with `run` if nobody has.

    `run(cfg, run_settings, phases)` runs the loop: in this process, or on Ray Train workers. `node` (this
    process's Ray node) goes into the lock; `node_alive(node)` says whether a lock's node is alive.
    """
    root = pretrain_root(results_root)
    root.mkdir(parents=True, exist_ok=True)
    pid = pretrain_id(cfg, data_identity(data_dir))
    final, staging, lock = root / pid, root / f"{pid}.partial", root / f"{pid}.lock"
    while not is_finished(final):
        if not _take_lock(lock, node, node_alive):
            time.sleep(poll_seconds)  # another trial is computing it: wait for it to publish
            continue
        keeper = threading.Event()
        threading.Thread(target=_keep_fresh, args=(lock, keeper), daemon=True).start()
        try:
            run(cfg, RunSettings(out_dir=str(staging), data_dir=data_dir, run_name=pid), ("pretrain_g",))
            if final.exists():  # an unfinished leftover (never published by this code): replace it
                shutil.rmtree(final)
            os.replace(staging, final)  # publish: readers see all of it or nothing
        finally:
            keeper.set()
            lock.unlink(missing_ok=True)
    return final


def _take_lock(lock: Path, node: str | None = None, node_alive: Callable[[str], bool] | None = None) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            judged = lock.read_bytes()
        except OSError:
            return False  # vanished: the next attempt may take it
        if _lock_is_stale(lock, node_alive):
            _take_over(lock, judged)  # its owner died; the next attempt takes it
        return False
    with os.fdopen(fd, "w") as handle:
        # "host pid [node nonce]": the nonce makes each taking of the lock a different content (see _take_over).
        handle.write(
            f"{socket.gethostname()} {os.getpid()}" + (f" {node} {secrets.token_hex(4)}" if node else "") + "\n"
        )
    return True


def _take_over(lock: Path, judged: bytes) -> None:
    """Remove the lock judged stale, and only it: two waiters may judge the same stale lock, and the first may have
    taken a fresh one by the time the second acts (the old stat-then-unlink removed that fresh lock). The lock is
    renamed aside (of two renames of one file, one wins) and compared with what was judged; a lock that changed in
    between belongs to a live owner and is put back."""
    aside = lock.with_name(f"{lock.name}.{secrets.token_hex(4)}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    try:
        if aside.read_bytes() != judged:
            os.link(aside, lock)  # put back; fails only if a third waiter took the lock meanwhile (then that one holds)
    except OSError:
        pass
    aside.unlink(missing_ok=True)


def _lock_is_stale(lock: Path, node_alive: Callable[[str], bool] | None = None) -> bool:
    """A lock is stale when its owner is a dead process on this host, on a node that Ray says is dead, or when
    nobody has refreshed it for long.

    A lock that cannot be read as "host pid [node nonce]" (empty or garbage: a write that failed on a full disk, or
    one being written right now) can only be judged by its age, like a lock from another host.
    """
    try:
        age = time.time() - lock.stat().st_mtime
        owner = lock.read_text(errors="replace").split()
    except FileNotFoundError:
        return False  # vanished: the next attempt may take it
    except OSError:
        owner = []
    if len(owner) == 4 and node_alive is not None and not node_alive(owner[2]):
        return True  # its node is gone (Ray's word): no need to wait for the lock to age
    if len(owner) in (2, 4) and owner[0] == socket.gethostname() and owner[1].isdigit():
        try:
            os.kill(int(owner[1]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, OverflowError):
            pass  # alive, owned by another user (or no pid at all): its age decides
    return age > STALE_LOCK_SECONDS


def _keep_fresh(lock: Path, stop: threading.Event) -> None:
    """Touch the lock until told to stop, proving its owner is alive however long an evaluation interval is."""
    while not stop.wait(REFRESH_SECONDS):
        lock.touch(exist_ok=True)
