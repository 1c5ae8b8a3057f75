"""python -m elgan_ray.sweep STUDY: run one study of search_spaces/ on Ray Tune, then write its report.

A study runs in two stages. First the shared generator pre-trainings (one per seed and pre-training
config; cached across studies in <results>/_pretrain/), then the GAN trials, each starting from its
seed's pre-trained generator. A trial with one worker runs the loop inside the Tune trial; with
several it launches Ray Train workers (DDP). Every trial writes its own evals.jsonl; at the end they
are gathered into <results>/<study>/evals.csv, never from Tune's result files (after Tuner.restore, Tune
truncates a resumed trial's result.json and progress.csv).

`main` reads as the study's story: own the study, check the inputs, plan the runs, (print the dry run, or) check
the record a --resume continues, run the runs on Ray, gather their records, write the report.
"""

from __future__ import annotations

import argparse
import math
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from elgan_ray.config import TrainConfig
from elgan_ray.data.labels import load_split
from elgan_ray.data.synthetic import EMBEDDED_SIZES, embedded_dataset
from elgan_ray.errors import UserError, quoted, run_cli
from elgan_ray.files import check_writable, disk_full
from elgan_ray.lock import OwnerLock
from elgan_ray.presets import PRESETS, preset
from elgan_ray.record import layout, store
from elgan_ray.record.names import CONTROL, RECORD_VERSION, SEED_KEY, metric_key, resource_rule
from elgan_ray.record.runs import read_study_record, write_study_record
from elgan_ray.report import check_outputs, write_report
from elgan_ray.study.plan import PlannedRun, planned_runs, varying_keys
from elgan_ray.study.spec import MAX_TRIALS, SEARCH_DIR, SweepSpec, grid_points, is_search, load_spec
from elgan_ray.sweep.dry_run import dry_run, pretrainings
from elgan_ray.sweep.gather import check_complete, gather_evals
from elgan_ray.sweep.gpu_check import local_shortfall
from elgan_ray.sweep.resume import check_record, check_same_study, definition
from elgan_ray.sweep.settings import SweepSettings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.sweep",
        description="Run a study (a YAML of search_spaces/, by name or path) as Ray Tune trials: shared "
        "generator pre-trainings first, then the GAN trials. Writes <results>/<study>/evals.csv, one "
        "TensorBoard run per trial in <results>/<study>/tb/, and the report (tables and figures).",
        epilog=f"Studies: {', '.join(sorted(p.stem for p in SEARCH_DIR.glob('*.yaml') if p.stem != 'base'))}. "
        "Compare runs with: tensorboard --logdir results/<study>/tb",
    )
    parser.add_argument("study", help="study name (search_spaces/<name>.yaml) or a YAML path")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="model and schedule scale")
    parser.add_argument("--data", help="TuSimple-layout folder (default: the embedded synthetic set)")
    parser.add_argument(
        "--results",
        default="results",
        help="results root: a folder (on a cluster, one every node mounts) or a storage URI such as s3://bucket/prefix "
        "(an S3-compatible store: set AWS_ENDPOINT_URL)",
    )
    parser.add_argument("--address", help="join this Ray cluster (default: start a local Ray)")
    parser.add_argument("--workers-per-trial", type=int, help="Ray Train workers (DDP) per trial (default: study's)")
    parser.add_argument("--cpus-per-worker", type=float, help="CPUs per worker (default: the study's resources.cpu)")
    parser.add_argument("--gpus-per-worker", type=float, help="GPUs per worker (default: the study's resources.gpu)")
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=0,
        help="trials at once (default: what this machine's CPUs/GPUs hold; with --address, what the cluster holds at "
        "its largest: its node types in ~/ray_bootstrap_config.yaml, or else its nodes now)",
    )
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep of this study")
    parser.add_argument(
        "--predict",
        choices=("test", "val"),
        help="every finished run (and its baseline) writes a TuSimple submission file of this split beside its record, "
        "scored by the evaluator; the report shows the test scores beside the paper's Table 2",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the runs, the pre-trainings they share and an estimate of the cost (a short timing of one step "
        "of each kind); no Ray, no training, nothing written",
    )
    args = parser.parse_args(argv)
    # The same ranges as a study's `resources` (record/names.py's RESOURCE_RANGES): finite, and checked before anything
    # is written or Ray starts.
    for flag, key in (("workers_per_trial", "workers"), ("cpus_per_worker", "cpu"), ("gpus_per_worker", "gpu")):
        value = getattr(args, flag)
        rule = None if value is None else resource_rule(key, value)
        if rule:
            raise UserError("--" + flag.replace("_", "-"), f"{rule}, got {quoted(value)}")
    if not 0 <= args.max_concurrent <= MAX_TRIALS:
        rule = f"must be from 0 (as many as fit) to {MAX_TRIALS:,}, got {args.max_concurrent}"
        raise UserError("--max-concurrent", rule)
    return args


@dataclass(frozen=True)
class Study:
    """A study's checked inputs: what it is, where it writes, and what every trial gets."""

    spec: SweepSpec
    base: TrainConfig  # the preset with the study's fixed keys
    settings: SweepSettings
    study_dir: Path
    first_started: str | None  # --resume keeps the first start time (and so the study's row in index.csv)
    val_frames: int  # of the data's validation split, as train() takes them
    definition: dict[str, Any]  # what makes the study this study (resume.py): study.json's, compared by --resume


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = load_spec(args.study)
    with ExitStack() as owned:
        if not args.dry_run:  # one sweep per study, decided before any other check (a dry run owns nothing)
            owned.enter_context(own_study(args.results, spec.study))
        study = check_inputs(args, spec)  # outputs, --resume's record, the data, the resources: before any work
        runs = planned_runs(study.spec, study.base, study.settings.varying)
        if args.resume:  # every run folder's record, before Ray starts and before study.json is written again
            check_record(study.spec, study.settings, runs)
        pids, done = pretrainings(runs, study.settings)
        print(describe_plan(study.spec.study, runs, pids, done), file=sys.stderr)
        if args.dry_run:
            print(dry_run(study.spec, study.base, study.settings, runs, args.max_concurrent, study.val_frames))
            return 0
        record = study_record(study, args, argv)
        storage, results_root = study.settings.ray_storage, Path(study.settings.results_root)
        with full_disk_in_one_line(study.settings.results_root):
            join_ray(study, args)  # study.json is written only once Ray runs: a cluster not joined writes nothing
            write_study_record(study.study_dir, record)
            store.push(storage, layout.study_file(study.study_dir))
            wall = time.perf_counter()
            run_study(study, args)
            store.pull_study(storage, study.study_dir)  # a URI's: every run's record, into this machine's mirror
            check_complete(study.study_dir, results_root, runs, is_search(study.spec))
            evals = gather_evals(study.settings, runs, is_search(study.spec))
            record |= {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            write_study_record(study.study_dir, record | {"wall_s": round(time.perf_counter() - wall, 1)})
            rows_at = study.settings.ray_path(layout.evals_file(study.study_dir))
            print(f"{len(evals)} evaluation rows -> {rows_at}", file=sys.stderr)
            written, warnings = write_report(study.study_dir, results_root)
            store.push_report(storage, study.study_dir, written.values())
        for line in warnings + [f"{name}: {study.settings.ray_path(path)}" for name, path in written.items()]:
            print(line, file=sys.stderr)
        tb_root = study.settings.ray_path(layout.tb_root(study.study_dir))
        print(f"TensorBoard: tensorboard --logdir {tb_root}", file=sys.stderr)
    return 0


@contextmanager
def own_study(results: str, study: str) -> Iterator[None]:
    """Hold the study's lock (<results>/.<study>.sweep.lock, lock.py) for as long as the sweep runs: a second sweep
    of the same study into the same results folder is refused in one line naming the holder, and the lock of a
    sweep that died is taken over. Released however the sweep ends (SIGTERM and Ctrl-C included); folders made for
    the lock are removed again if nothing was written into them."""
    if store.is_uri(results):  # no atomic file on object storage: the lock is this machine's mirror's
        root = store.mirror_root(results.rstrip("/"))
    else:
        check_writable(results, "folder")  # before resolve(): a dangling symbolic link is refused, not followed
        root = Path(results).resolve()
    lock = OwnerLock(layout.study_lock(root, study), make_parents=True)
    if not lock.acquire():
        holder = lock.holder or "an owner whose lock cannot be read"
        rule = f"another sweep runs study '{study}' into this results folder ({holder}): wait for it to end; the "
        raise UserError(lock.path, rule + "lock of a sweep that died is taken over")
    try:
        yield
    finally:
        lock.release()


@contextmanager
def full_disk_in_one_line(results_root: str) -> Iterator[None]:
    """A full disk (or quota) under the results ends the sweep in one line: free space, then --resume (which keeps
    every evaluation already recorded), instead of the tracebacks of whichever writer met it first."""
    try:
        yield
    except Exception as error:
        if not disk_full(error, results_root):
            raise
        rule = "no space left on its file system: free some, then run the same command with --resume (every "
        raise UserError(results_root, rule + "evaluation already recorded is kept)") from None


def check_inputs(args: argparse.Namespace, spec: SweepSpec) -> Study:
    """Everything a study needs, checked before anything is written or Ray starts: every grid point, the results
    folder and the report's outputs, --resume's study.json (the same study), the data, the resources asked for."""
    base = preset(args.preset).with_flat(spec.fixed, source=spec.path)
    storage = args.results.rstrip("/") if store.is_uri(args.results) else None
    if storage:  # object storage: this machine works in a mirror of it (record/store.py)
        results_root = store.mirror_root(storage)
        if not args.dry_run:  # the dry run writes nothing
            _check_store(storage, results_root)
    else:
        check_writable(args.results, "folder")  # before resolve(): a dangling symbolic link is refused, not followed
        results_root = Path(args.results).resolve()
    study_dir = layout.study_dir(results_root, spec.study)
    if store.exists(storage or results_root, study_dir) and not args.resume:
        where = store.uri_of(storage, study_dir) if storage else study_dir
        raise UserError(where, "results of this study exist: pass --resume to continue, or move them away")
    if storage and not args.dry_run:
        store.remove(results_root, study_dir)  # the mirror starts from what the store holds, nothing older
        store.pull_study(storage, study_dir)
    check_outputs(study_dir, results_root)  # the study folder, the report's files, a readable index.csv
    check_writable(layout.pretrain_root(results_root), "folder")
    settings = SweepSettings(
        study=spec.study,
        results_root=str(results_root),
        base_flat=base.to_flat(),
        varying=varying_keys(spec),
        data_dir=str(Path(args.data).resolve()) if args.data else None,
        workers_per_trial=_first(args.workers_per_trial, spec.resources["workers"]),
        cpus_per_worker=_first(args.cpus_per_worker, spec.resources["cpu"]),
        gpus_per_worker=_first(args.gpus_per_worker, spec.resources["gpu"]),
        metric=metric_key(spec.metric_name, spec.metric_post),
        metric_mode=spec.metric_mode,
        cluster=bool(args.address),
        predict=args.predict,
        storage=storage,
    )
    now = definition(spec, args.preset, settings)
    first_started = None
    if args.resume and layout.study_file(study_dir).exists():
        recorded = read_study_record(layout.study_file(study_dir))
        first_started = recorded.get("started")
        if not isinstance(first_started, str):
            raise UserError(layout.study_file(study_dir), "has no start time to resume from", key="started")
        check_same_study(recorded, now, study_dir)
    val_frames = EMBEDDED_SIZES[1]
    if args.data:
        val_frames = len(load_split(args.data, "val"))  # fail on bad data now, not inside 20 trials
        if args.predict:
            load_split(args.data, args.predict)  # its labels and every frame they name
    # Validate every grid point before any compute: a bad value fails here, naming the study file.
    for point in grid_points(spec):
        settings.trial_config(point)
    val_frames = int(min(val_frames, base.data.val_limit or math.inf))  # as train() takes them
    if settings.cluster:  # last: what the machine or the cluster can give, once the study itself is good
        probe_address(args.address)  # a cluster that does not answer: one line, not minutes of Ray's retries
    else:
        check_local_resources(args, spec, settings)
    return Study(spec, base, settings, study_dir, first_started, val_frames, now)


def check_local_resources(args: argparse.Namespace, spec: SweepSpec, settings: SweepSettings) -> None:
    """A local Ray has only this machine's CPUs and GPUs: a trial that needs more would keep Tune waiting for ever,
    so it is refused, naming the flag or the study file's key that asked for it."""
    for resource, per_worker, flag in (
        ("cpu", settings.cpus_per_worker, args.cpus_per_worker),
        ("gpu", settings.gpus_per_worker, args.gpus_per_worker),
    ):
        shortfall = local_shortfall(resource, per_worker * settings.workers_per_trial)
        if not shortfall:
            continue
        rule = f"{shortfall}: a local Ray would wait for them for ever; use a cluster (--address) or ask for fewer"
        # Named: what asked for too much, the amount per worker or (when one worker's would fit) the workers.
        by_workers = local_shortfall(resource, per_worker) is None
        if (args.workers_per_trial if by_workers else flag) is not None:
            raise UserError("--workers-per-trial" if by_workers else f"--{resource}s-per-worker", rule)
        raise UserError(spec.path, rule, key="resources.workers" if by_workers else f"resources.{resource}")


PROBE_SECONDS = 10  # how long --address may take to accept a connection


def probe_address(address: str) -> None:
    """UserError (--address) unless something accepts a TCP connection at the address's host and port within
    PROBE_SECONDS: Ray itself retries a GCS that is not there for minutes. `auto` (Ray finds the address) passes."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]  # ray://host:port (Ray Client) too
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError("--address", f"{quoted(address)} is no HOST:PORT of a Ray cluster (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        rule = f"nothing answers at {host}:{port} within {PROBE_SECONDS} s ({reason}): is the cluster's head node up?"
        raise UserError("--address", rule) from None


def _check_store(storage: str, mirror: Path) -> None:
    """UserError unless this machine can write to the storage URI and read back what it wrote."""
    check = mirror / ".elgan_ray_write_check"
    try:
        store.write_probe(storage, check, "ok")
        readable = store.read_text(storage, check) == "ok"
        store.remove(storage, check)
    except OSError as error:
        raise UserError(storage, f"cannot be written ({str(error)[:300]})") from None
    if not readable:
        raise UserError(storage, "what was written there cannot be read back")


def study_record(study: Study, args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    """study.json at the start: what the study is, how it was started, and what each trial holds."""
    spec, settings = study.spec, study.settings
    started = study.first_started or datetime.now(timezone.utc).isoformat(timespec="seconds")
    command = "python -m elgan_ray.sweep " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    record = {"study": spec.study, "record_version": RECORD_VERSION}
    record |= {"description": spec.description, "config_path": spec.path}
    record |= {"preset": args.preset, "command": command, "started": started, "finished": None}
    record |= {"scientific": [k for k in settings.varying if k != SEED_KEY], "tables": list(spec.tables)}
    record["metric"] = {"name": spec.metric_name, "post": spec.metric_post, "mode": spec.metric_mode}
    # What each trial holds (per worker, as a study file's resources): the report's CPU- and GPU-hours.
    resources = {"cpu": settings.cpus_per_worker, "gpu": settings.gpus_per_worker}
    record["resources"] = resources | {"workers": settings.workers_per_trial}
    return record | {"definition": study.definition}


def join_ray(study: Study, args: argparse.Namespace) -> None:
    """Start (or join) Ray, and check what only Ray can tell, before anything of the study is written; Ray is
    imported only once the inputs are good."""
    from elgan_ray.sweep.ray_session import start_ray
    from elgan_ray.sweep.shared import cluster_capacity, probe_nodes

    start_ray(args.address)
    probe_nodes(study.settings)  # every alive node sees the results and the data, or no trial starts
    if study.settings.cluster:
        cluster_capacity(study.settings)  # a worker that no node type can hold is refused, not left waiting


def run_study(study: Study, args: argparse.Namespace) -> None:
    """Run every trial of the study on the Ray that join_ray started or joined."""
    from elgan_ray.sweep import tune

    if study.settings.data_dir is None:
        embedded_dataset()  # make the embedded set once here, before trials race for it
    tune.run_trials(study.spec, study.settings, max_concurrent=args.max_concurrent, resume=args.resume)


def describe_plan(study: str, runs: list[PlannedRun], pids: list[str], done: set[str]) -> str:
    """One line: how many controls, GAN trials and generator pre-trainings the study runs, and how many of the
    pre-trainings are already done (cached in <results>/_pretrain/, also by other studies)."""
    controls = sum(run.role == CONTROL for run in runs)
    counts = f"{study}: {controls} controls (lambda 0), {len(runs) - controls} GAN trials"
    return f"{counts}; {len(set(pids))} generator pre-trainings, {len(done)} of them done"


def _first(flag: Any, default: Any) -> Any:
    return default if flag is None else flag


if __name__ == "__main__":
    sys.exit(run_cli(main))
