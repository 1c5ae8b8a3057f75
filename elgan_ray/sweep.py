"""python -m elgan_ray.sweep STUDY: run one study of search_spaces/ on Ray Tune, then write its report.

A study runs in two stages. First the shared generator pre-trainings (one per seed and pre-training
config; cached across studies in <results>/_pretrain/), then the GAN trials, each starting from its
seed's pre-trained generator. A trial with one worker runs the loop inside the Tune trial; with
several it launches Ray Train workers (DDP). Every trial writes its own evals.jsonl; at the end they
are gathered into <results>/<study>/evals.csv, never from Tune's result files (see specs/ray-notes.md).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from elgan_ray import study_layout
from elgan_ray.config import TrainConfig
from elgan_ray.errors import UserError, quoted, run_cli
from elgan_ray.files import check_writable
from elgan_ray.gpu_check import local_shortfall
from elgan_ray.presets import PRESETS, preset
from elgan_ray.report_inputs import check_outputs, read_study_record
from elgan_ray.study_spec import (
    MAX_TRIALS,
    SweepSpec,
    grid_points,
    is_search,
    load_spec,
    resource_rule,
)
from elgan_ray.sweep_settings import SEED_KEY, SweepSettings
from elgan_ray.trial_plan import CONTROL


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.sweep",
        description="Run a study (a YAML of search_spaces/, by name or path) as Ray Tune trials: shared "
        "generator pre-trainings first, then the GAN trials. Writes <results>/<study>/evals.csv, one "
        "TensorBoard run per trial in <results>/<study>/tb/, and the report (tables and figures).",
        epilog="Studies: stability, lambda, embedding, losses, baseline, optuna. "
        "Compare runs with: tensorboard --logdir results/<study>/tb",
    )
    parser.add_argument("study", help="study name (search_spaces/<name>.yaml) or a YAML path")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="model and schedule scale")
    parser.add_argument("--data", help="TuSimple-layout folder (default: the embedded synthetic set)")
    parser.add_argument("--results", default="results", help="results root; on a cluster, shared storage")
    parser.add_argument("--address", help="join this Ray cluster (default: start a local Ray)")
    parser.add_argument("--workers-per-trial", type=int, help="Ray Train workers (DDP) per trial (default: study's)")
    parser.add_argument("--cpus-per-worker", type=float, help="CPUs per worker (default: the study's resources.cpu)")
    parser.add_argument("--gpus-per-worker", type=float, help="GPUs per worker (default: the study's resources.gpu)")
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=0,
        help="trials at once (default: what this machine's CPUs/GPUs hold; with --address, no limit, so the "
        "autoscaler adds nodes for pending trials)",
    )
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep of this study")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the runs, the pre-trainings they share and an estimate of the cost (a short timing of one step "
        "of each kind); no Ray, no training, nothing written",
    )
    args = parser.parse_args(argv)
    # The same ranges as a study's `resources` (study_spec.RESOURCE_RANGES): finite, and checked before anything
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = load_spec(args.study)
    base = preset(args.preset).with_flat(spec.fixed, source=spec.path)
    check_writable(args.results, "folder")  # before resolve(): a dangling symbolic link is refused, not followed
    results_root = Path(args.results).resolve()
    study_dir = study_layout.study_dir(results_root, spec.study)
    if study_dir.exists() and not args.resume:
        raise UserError(study_dir, "results of this study exist: pass --resume to continue, or move them away")
    check_outputs(study_dir, results_root)  # the study folder, the report's files, a readable index.csv
    check_writable(study_layout.pretrain_root(results_root), "folder")
    first_started = None  # --resume keeps the first start time (and so the study's row in index.csv)
    if args.resume and study_layout.study_file(study_dir).exists():
        first_started = read_study_record(study_layout.study_file(study_dir)).get("started")
        if not isinstance(first_started, str):
            raise UserError(study_layout.study_file(study_dir), "has no start time to resume from", key="started")
    val_frames = None  # of the data's validation split
    if args.data:
        from elgan_ray.data.labels import load_split

        val_frames = len(load_split(args.data, "val"))  # fail on bad data now, not inside 20 trials
    settings = SweepSettings(
        study=spec.study,
        results_root=str(results_root),
        base_flat=base.to_flat(),
        varying=varying_keys(spec),
        data_dir=str(Path(args.data).resolve()) if args.data else None,
        workers_per_trial=_first(args.workers_per_trial, spec.resources["workers"]),
        cpus_per_worker=_first(args.cpus_per_worker, spec.resources["cpu"]),
        gpus_per_worker=_first(args.gpus_per_worker, spec.resources["gpu"]),
        cluster=bool(args.address),
    )
    if not settings.cluster:  # a local Ray has only this machine's GPUs: Tune would wait for ever for more
        shortfall = local_shortfall(settings.gpus_per_worker * settings.workers_per_trial)
        if shortfall:
            rule = f"{shortfall}: a local Ray would wait for them for ever; use a cluster with GPUs (--address) or 0"
            if args.gpus_per_worker is not None:
                raise UserError("--gpus-per-worker", rule)
            raise UserError(spec.path, rule, key="resources.gpu")
    # Validate every grid point before any compute: a bad value fails here, naming the study file.
    for point in grid_points(spec):
        settings.trial_config(point)
    print(describe_plan(spec, base, settings), file=sys.stderr)
    if args.dry_run:
        from elgan_ray.data.synthetic import EMBEDDED_SIZES
        from elgan_ray.study_estimate import dry_run

        val_frames = min(val_frames or EMBEDDED_SIZES[1], base.data.val_limit or math.inf)  # as train() takes them
        print(dry_run(spec, base, settings, args.max_concurrent, int(val_frames)))
        return 0
    started = first_started or datetime.now(timezone.utc).isoformat(timespec="seconds")
    command = "python -m elgan_ray.sweep " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    record = {"study": spec.study, "description": spec.description, "config_path": spec.path}
    record |= {"preset": args.preset, "command": command, "started": started, "finished": None}
    record |= {"scientific": [k for k in settings.varying if k != SEED_KEY], "tables": list(spec.tables)}
    # What each trial holds (per worker, as a study file's resources): the report's CPU- and GPU-hours.
    resources = {"cpu": settings.cpus_per_worker, "gpu": settings.gpus_per_worker}
    record["resources"] = resources | {"workers": settings.workers_per_trial}
    from elgan_ray.study_files import gather_evals, write_study_record

    write_study_record(study_dir, record)

    from elgan_ray import tune_runner  # Ray is imported only once the inputs are known to be good

    wall = time.perf_counter()
    tune_runner.start_ray(args.address)
    if settings.data_dir is None:
        from elgan_ray.data.synthetic import embedded_dataset

        embedded_dataset()  # make the embedded set once here, before trials race for it
    tune_runner.run_trials(spec, settings, max_concurrent=args.max_concurrent, resume=args.resume)
    evals = gather_evals(study_dir, results_root, settings.varying)
    record |= {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record |= {"wall_s": round(time.perf_counter() - wall, 1)}
    write_study_record(study_dir, record)
    print(f"{len(evals)} evaluation rows -> {study_layout.evals_file(study_dir)}", file=sys.stderr)

    from elgan_ray.report import read_evals, write_report
    from elgan_ray.tables import chance_warnings

    for line in chance_warnings(read_evals(study_layout.evals_file(study_dir))):
        print(line, file=sys.stderr)

    written = write_report(study_dir, results_root)
    for name, path in written.items():
        print(f"{name}: {path}", file=sys.stderr)
    print(f"TensorBoard: tensorboard --logdir {study_layout.tb_root(study_dir)}", file=sys.stderr)
    return 0


def describe_plan(spec: SweepSpec, base: TrainConfig, settings: SweepSettings) -> str:
    """One line: how many controls, GAN trials and generator pre-trainings the study runs, and how many of the
    pre-trainings are already done (cached in <results>/_pretrain/, also by other studies)."""
    from elgan_ray.study_estimate import planned_runs, pretrainings

    runs = planned_runs(spec, base, settings)
    pids, done = pretrainings(runs, settings)
    controls = sum(run.role == CONTROL for run in runs)
    counts = f"{spec.study}: {controls} controls (lambda 0), {len(runs) - controls} GAN trials"
    return f"{counts}; {len(set(pids))} generator pre-trainings, {len(done)} of them done"


def _first(flag: Any, default: Any) -> Any:
    return default if flag is None else flag


def varying_keys(spec: SweepSpec) -> tuple[str, ...]:
    """Config keys that differ between the trials of a study: the scientific and nuisance keys, and the seed."""
    keys = [k for k, values in spec.scientific.items() if len(values) > 1 or is_search(spec)]
    keys += list(spec.nuisance)
    return tuple(keys) + (SEED_KEY,)


if __name__ == "__main__":
    sys.exit(run_cli(main))
