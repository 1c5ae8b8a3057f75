"""Shared generator pre-training: computed once per (seed, generator config, data, pre-training schedule).

Every GAN trial of a study starts from the pre-trained generator of its seed, and that generator is
also the non-GAN baseline. A pre-training lives in `<results>/_pretrain/<id>/` and is published by
renaming its staging folder, so a reader sees either nothing or a finished pre-training. A lock file
(lock.py's OwnerLock, as the sweep's lock on its study: atomic on local disks and NFS) keeps two trials, on one
node or several, from computing the same pre-training at once; a lock whose owner is gone is taken over, and at
once when it names a Ray node that Ray says is dead (the sweep passes the node and Ray's view of it; this module
imports no Ray).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from elgan_ray.config import RunSettings, TrainConfig
from elgan_ray.lock import OwnerLock
from elgan_ray.record.layout import pretrain_root
from elgan_ray.record.runs import read_status


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
    final, staging = root / pid, root / f"{pid}.partial"
    lock = OwnerLock(root / f"{pid}.lock", node=node, node_alive=node_alive)
    while not is_finished(final):
        if not lock.acquire():
            time.sleep(poll_seconds)  # another trial is computing it: wait for it to publish
            continue
        try:
            if is_finished(final):  # published between the look above and the lock
                break
            run(cfg, RunSettings(out_dir=str(staging), data_dir=data_dir, run_name=pid), ("pretrain_g",))
            if final.exists():  # an unfinished leftover (never published by this code): replace it
                shutil.rmtree(final)
            os.replace(staging, final)  # publish: readers see all of it or nothing
        finally:
            lock.release()
    return final
