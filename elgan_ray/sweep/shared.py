"""What every node of a cluster must share, checked and coordinated through Ray: the probe that proves each alive node
sees the study (its results and its data) before the first trial, and the shared pre-trainings when the results
are a storage URI (record/store.py), where no file lock works: a named actor on the driver's node holds the locks.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from elgan_ray.config import RunSettings, TrainConfig
from elgan_ray.errors import UserError
from elgan_ray.lock import REFRESH_SECONDS, STALE_SECONDS
from elgan_ray.record import layout, store
from elgan_ray.sweep.pretrain import data_identity, is_finished, pretrain_id
from elgan_ray.sweep.settings import SweepSettings

PROBE_FILE = ".node_probe"  # in the results root: the driver's token, which every node must read back
LOCK_ACTOR = "elgan_ray_pretrain_locks"
LOCK_NAMESPACE = "elgan_ray"  # the trials look the actor up by name: in one namespace, whatever the job's


# -- before the first trial: every node sees the study ----------------------------------------------------------


def probe_nodes(settings: SweepSettings, timeout_s: float = 120.0) -> None:
    """UserError naming every alive node that cannot read the driver's token at the results root, write beside it,
    or see the data folder as the driver does. One Ray task per node, pinned there, holding no CPU."""
    token = secrets.token_hex(8)
    probe = Path(settings.results_root) / f"{PROBE_FILE}.{token}"  # at the root: nothing of the study written yet
    where = settings.storage or settings.results_root
    store.write_probe(where, probe, token)
    data = _data_listing(settings.data_dir)
    nodes = [node for node in ray.nodes() if node["Alive"]]
    pending = {
        _probe.options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote(where, str(probe), token, settings.data_dir, data): node
        for node in nodes
    }
    ready, late = ray.wait(list(pending), num_returns=len(pending), timeout=timeout_s)
    store.remove(where, probe)
    problems = [f"{_node(pending[ref])} {ray.get(ref)}" for ref in ready if ray.get(ref)]
    problems += [f"{_node(pending[ref])} did not answer in {timeout_s:.0f} s" for ref in late]
    if problems:
        what = "; ".join(problems)
        rule = f"{len(problems)} of {len(nodes)} nodes cannot run this study's trials: {what}"
        raise UserError(
            where,
            rule + ". Every node must see --results and --data at the same path (a shared file "
            "system mounted on every node, or --results s3://...)",
        )


def _node(node: dict) -> str:
    return f"node {node['NodeManagerAddress']} ({node['NodeID'][:12]})"


def _data_listing(data_dir: str | None) -> list[tuple[str, int]] | None:
    """What the driver sees of the data folder: its top-level files and their sizes (the label files)."""
    if data_dir is None:
        return None  # the embedded set: each node makes its own
    return sorted((p.name, p.stat().st_size) for p in Path(data_dir).iterdir() if p.is_file())


@ray.remote
def _probe(where: str, probe: str, token: str, data_dir: str | None, data: list | None) -> str | None:
    """On one node: None when it sees the study as the driver does, else what it cannot see."""
    seen = store.read_text(where, Path(probe))
    if seen != token:
        return f"does not see the results at {store.uri_of(where, Path(probe)) if store.is_uri(where) else probe}"
    mine = Path(probe).with_name(f"{Path(probe).name}.{os.getpid()}")
    try:
        store.write_probe(where, mine, token)
        store.remove(where, mine)
    except OSError as error:
        return f"cannot write in the results ({error})"
    if data is not None and (not Path(data_dir).is_dir() or _data_listing(data_dir) != [tuple(d) for d in data]):
        return f"does not see the data folder {data_dir} as the driver does"
    return None


# -- the shared pre-trainings on a storage URI ----------------------------------------------------------------


@ray.remote(num_cpus=0)
class PretrainLocks:
    """Which trial computes which pre-training. A lock is free when nobody holds it, when its holder's node is dead
    (Ray says so: taken over at once), or when its holder has not refreshed it for STALE_SECONDS (a process
    that died on a live node). A restarted trial takes its own lock back. One actor serialises every call: a
    takeover is atomic."""

    def __init__(self):
        self.held: dict[str, tuple[str, str, float]] = {}  # pre-training id -> (trial, node, last refresh)

    def acquire(self, pid: str, trial: str, node: str) -> bool:
        holder = self.held.get(pid)
        if holder and holder[0] != trial and time.time() - holder[2] < STALE_SECONDS and node_alive(holder[1]):
            return False
        self.held[pid] = (trial, node, time.time())
        return True

    def refresh(self, pid: str, trial: str) -> None:
        if self.held.get(pid, ("",))[0] == trial:
            self.held[pid] = (*self.held[pid][:2], time.time())

    def release(self, pid: str, trial: str) -> None:
        if self.held.get(pid, ("",))[0] == trial:
            del self.held[pid]


def node_alive(node: str) -> bool:
    """Whether Ray counts the node among the alive ones."""
    return any(n["NodeID"] == node and n["Alive"] for n in ray.nodes())


def start_locks():
    """The lock actor, on the driver's node (a worker node may go away). Keep the handle while trials run: a named
    actor that is not detached ends with its last handle."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    options = {"name": LOCK_ACTOR, "namespace": LOCK_NAMESPACE, "get_if_exists": True, "scheduling_strategy": here}
    return PretrainLocks.options(**options).remote()


def ensure_pretrained_in_store(
    cfg: TrainConfig, settings: SweepSettings, run: Callable, trial: str, poll_seconds: float = 2.0
) -> Path:
    """The mirror folder of the finished pre-training for cfg, from the store, computing and publishing it first if
    nobody has. Published file by file with status.json last: a reader that finds status.json finds the rest."""
    root = layout.pretrain_root(settings.results_root)
    pid = pretrain_id(cfg, data_identity(settings.data_dir))
    final = root / pid
    locks = ray.get_actor(LOCK_ACTOR, namespace=LOCK_NAMESPACE)
    node = ray.get_runtime_context().get_node_id()
    while not (is_finished(final) and (final / layout.CHECKPOINT_FILE).is_file()):
        if store.exists(settings.storage, final / layout.STATUS_FILE):
            store.pull(settings.storage, final)
            continue
        if not ray.get(locks.acquire.remote(pid, trial, node)):
            time.sleep(poll_seconds)  # another trial is computing it: wait for it to publish
            continue
        stop = threading.Event()
        threading.Thread(target=_keep_fresh, args=(locks, pid, trial, stop), daemon=True).start()
        try:
            # As on a shared folder, the staging run resumes from the checkpoint of whoever held the lock before
            # (the runner pushes it at every evaluation).
            staging = root / f"{pid}.partial"
            store.pull(settings.storage, staging)
            run(cfg, RunSettings(out_dir=str(staging), data_dir=settings.data_dir, run_name=pid), ("pretrain_g",))
            status = staging / layout.STATUS_FILE
            for file in sorted(p for p in staging.iterdir() if p.is_file() and p != status):
                store.push(settings.storage, file, to=final / file.name)
            store.push(settings.storage, status, to=final / layout.STATUS_FILE)  # published: status.json last
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
            store.remove(settings.storage, staging)
        finally:
            stop.set()
            locks.release.remote(pid, trial)
    return final


def _keep_fresh(locks, pid: str, trial: str, stop: threading.Event) -> None:
    while not stop.wait(REFRESH_SECONDS):
        locks.refresh.remote(pid, trial)


# -- what the cluster can run at once ----------------------------------------------------------------------------

# What `ray up` leaves on the head: the cluster's node types, with the resources and the number of each.
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"


def trials_that_fit(nodes: list[tuple[dict[str, float], int]], worker: dict[str, float], workers: int) -> int:
    """How many trials of `workers` workers of `worker` resources the nodes hold at once: (resources, count) per kind
    of node, each worker on one node (a trial's workers may spread over nodes)."""

    def fits(resources: dict[str, float]) -> int:
        counts = [int(resources.get(key, 0) // need) for key, need in worker.items() if need > 0]
        return min(counts, default=0)

    return sum(fits(resources) * count for resources, count in nodes) // workers


def cluster_nodes(config_path: str = BOOTSTRAP_CONFIG) -> tuple[list[tuple[dict[str, float], int]], str]:
    """The nodes the cluster can have, as (resources, how many), and where that was read: the launcher's node types
    (at their max_workers; the head once), or else the nodes alive now."""
    import yaml

    path = Path(os.path.expanduser(config_path))
    if path.is_file():
        config = yaml.safe_load(path.read_text())
        head = config.get("head_node_type")
        nodes = [
            (dict(kind.get("resources", {})), 1 if name == head else int(kind.get("max_workers", 0)))
            for name, kind in config.get("available_node_types", {}).items()
        ]
        return nodes, f"the node types of {path}"
    return [(node["Resources"], 1) for node in ray.nodes() if node["Alive"]], "the nodes alive now"


def cluster_capacity(settings: SweepSettings, config_path: str = BOOTSTRAP_CONFIG) -> int:
    """Trials that the joined cluster can run at once, at most; UserError when no node can hold one worker."""
    worker = {"CPU": settings.cpus_per_worker} | ({"GPU": settings.gpus_per_worker} if settings.gpus_per_worker else {})
    nodes, source = cluster_nodes(config_path)
    capacity = trials_that_fit(nodes, worker, settings.workers_per_trial)
    if capacity == 0:
        kinds = ", ".join(sorted({str({k: v for k, v in r.items() if k in ("CPU", "GPU")}) for r, n in nodes if n}))
        rule = f"a trial needs {settings.workers_per_trial} worker(s) of {worker}, and {source} hold none ({kinds})"
        raise UserError("--cpus-per-worker/--gpus-per-worker", rule + ": it would wait for ever")
    return capacity
