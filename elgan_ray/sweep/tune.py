"""The Ray Tune edge of a sweep: turn the study into Tuners (param spaces, Optuna, ASHA), and
run its controls and GAN trials.

Each trial is a plain function of its flat config. With one worker it calls the training loop in the trial's own
process; with several it launches Ray Train workers (ddp.py). Trials resume from their own checkpoint when Tune
restarts them after a failure, and `--resume` restores the Tuner, so finished trials are not run again. Tune
ranks a search's trials (Optuna, ASHA) by the study's metric (metric.name after metric.post, record/names.py's
metric_key), which every evaluation reports for every post-processing.
"""

from __future__ import annotations

import errno
import json
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from elgan_ray.config import RunSettings, TrainConfig
from elgan_ray.errors import quoted
from elgan_ray.files import disk_full
from elgan_ray.record import layout, store
from elgan_ray.record.layout import CHECKPOINT_FILE
from elgan_ray.record.runs import read_run_evals, read_run_record, read_status, write_run_record, write_status
from elgan_ray.study.plan import PLAN_KEY, grid_plan, run_name, search_controls, trial_point
from elgan_ray.study.scheduler import CLOCK, NEVER
from elgan_ray.study.spec import SweepSpec, is_search, scientific_points
from elgan_ray.sweep.gpu_check import require_cuda
from elgan_ray.sweep.pretrain import data_identity, ensure_pretrained, pretrain_id
from elgan_ray.sweep.ray_session import DRIVER_RESOURCE, sigterm_stops_tune
from elgan_ray.sweep.settings import SweepSettings
from elgan_ray.sweep.shared import cluster_capacity, ensure_pretrained_in_store, node_alive, start_locks

# A trial whose process or node is lost is restarted this often, resuming from its checkpoint. An exception raised by
# our own code is not retried: it would only be raised again (gan_trial marks the run failed and ends the trial).
TRIAL_RETRIES = 2
# A finished trial's process runs the next trial: no new process, no second torch import. Measured on the smoke
# stability sweep here: 84 s -> 33 s of wall time for the same rows (every trial has the same resources).
REUSE_TRIAL_PROCESSES = True


def run_trials(spec: SweepSpec, settings: SweepSettings, max_concurrent: int, resume: bool) -> None:
    """Every run of the study: a grid study's controls and GAN trials in one Tuner (study/plan.py's grid_plan order),
    or a search study's controls, then one Tuner per scientific point (Optuna takes no grid).

    Each run computes its seed's generator pre-training on demand if nobody has (pretrain.ensure_pretrained),
    so pre-trainings, controls and GAN trials share the slots with none left idle between stages.
    """
    trainable = tune.with_resources(tune.with_parameters(gan_trial, settings=settings), _trial_resources(settings))
    # The shared pre-trainings' locks on object storage, where no file lock works; held until every Tuner is done.
    locks = start_locks() if settings.storage else None
    base = TrainConfig.from_flat(settings.base_flat, source=spec.path)
    if is_search(spec):
        tuners = [(layout.CONTROL_TUNER, plan_space(search_controls(spec)), False)]
        for index, point in enumerate(scientific_points(spec)):
            tuners.append((layout.tuner_name(index), to_param_space(spec, point), True))
    else:
        tuners = [(layout.tuner_name(None), plan_space(grid_plan(spec, base)), False)]
    for name, param_space, searched in tuners:
        path = settings.ray_path(layout.tuner_dir(settings.study_dir, name))
        if resume and tune.Tuner.can_restore(path) and _tune_state_readable(path):
            tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=_tune_config(spec, settings, max_concurrent, searched),
                run_config=_run_config(name, settings),
            )
        with sigterm_stops_tune():
            results = tuner.fit()
        failed = [r for r in results if r.error is not None or (r.metrics or {}).get("failed")]
        errors = [r.error for r in failed if r.error is not None]
        if errors and disk_full(errors[0], settings.results_root):  # the sweep ends in one line (__main__.py)
            raise OSError(errno.ENOSPC, f"{len(failed)} trial(s) failed on a full disk", settings.results_root)
        if failed:
            print(f"{len(failed)} trial(s) failed; they are marked 'failed' in evals.csv", flush=True)
        if searched and spec.scheduler:
            store.pull_study(settings.ray_storage, settings.study_dir)
            stopped = mark_stopped(results, settings.study_dir, settings.ray_storage)
            print(f"{name}: {stopped} trial(s) stopped early by {spec.scheduler['name']} ('stopped')", flush=True)
    del locks


def _tune_state_readable(path: str) -> bool:
    """Whether Tune's newest experiment state in a local Tuner folder is whole JSON. A full disk can tear it; Tune's
    restore then fails and starts no trial. A fresh Tuner instead runs every planned run again, and each resumes
    from its own checkpoint and record (a finished one ends at once), so a --resume still recovers every row. On a
    storage URI Tune's own reader decides."""
    if store.is_uri(path):
        return True
    states = sorted(Path(path).glob("experiment_state-*.json"))
    try:
        json.loads(states[-1].read_text()) if states else None
    except (OSError, ValueError):
        print(f"note: Tune's state in {path} is torn (a full disk?): its runs start again from their checkpoints")
        return False
    return True


def mark_stopped(results: tune.ResultGrid, study_dir: Path, storage: str | None = None) -> int:
    """Write status `stopped` for every run whose Tune trial ended without error but whose loop never finished:
    the scheduler stopped it (Tune ends a function trial by raising SystemExit in its tune.report, so the loop
    writes no status of its own). Its rows and checkpoint stay. Run again after a --resume, whose restored Tuner
    returns the trials that had ended before, so a stop is recorded even if the driver died right after it."""
    runs = {}
    for path in layout.run_files(study_dir, layout.RUN_FILE):
        runs[str(read_run_record(path)[0]["trial_id"])] = path.parent
    count = 0
    for result in results:
        run_dir = runs.get(str((result.metrics or {}).get("trial_id")))
        if result.error is not None or run_dir is None:
            continue
        if read_status(run_dir)["status"] == "running":
            steps = [row["step"] for row in read_run_evals(run_dir, warn=False)]
            write_status(run_dir, {"status": "stopped", "step": max(steps, default=0)})
            store.push(storage or str(study_dir), run_dir)
        count += read_status(run_dir)["status"] == "stopped"
    return count


# -- the trial functions (run in Ray worker processes) -------------------------------------------------


def gan_trial(config: dict[str, Any], settings: SweepSettings) -> None:
    """One GAN trial or control: the shared pre-trained G of its seed, then D pre-training and the alternating
    phase. `config` is a planned point (grid studies and controls) or a search algorithm's sample."""
    role, point = trial_point(config)
    cfg = settings.trial_config(point)
    _limit_threads(settings)
    flat = cfg.to_flat()
    name = run_name(flat, settings.varying, role)
    out_dir = layout.run_dir(settings.study_dir, name)
    store.pull(settings.ray_storage, out_dir)  # a URI's: a restarted trial resumes from what its last attempt pushed
    out_dir.mkdir(parents=True, exist_ok=True)
    pid = pretrain_id(cfg, data_identity(settings.data_dir))
    trial_id = tune.get_context().get_trial_id()
    record = {"trial_id": trial_id, "trial_name": name, "role": role, "config": flat, "pretrain_id": pid}
    write_run_record(out_dir, record)
    store.push(settings.ray_storage, out_dir)
    run = _runner(settings)
    try:
        if settings.storage:
            pretrained = ensure_pretrained_in_store(cfg, settings, run, trial_id)
        else:
            node = ray.get_runtime_context().get_node_id()  # in the lock: taken over at once if Ray says it died
            root = Path(settings.results_root)
            pretrained = ensure_pretrained(cfg, root, settings.data_dir, run=run, node=node, node_alive=node_alive)
        run_settings = RunSettings(
            out_dir=str(out_dir),
            data_dir=settings.data_dir,
            tb_dir=str(layout.tb_dir(settings.study_dir, name)),
            run_name=name,
        )
        run(cfg, run_settings, ("pretrain_d", "gan"), pretrained / CHECKPOINT_FILE)
    except Exception as error:
        if disk_full(error, settings.results_root):
            raise  # not the run's failure: an errored trial that --resume runs again (run_trials ends the sweep)
        write_status(out_dir, {"status": "failed", "error": traceback.format_exc(limit=3)[-2000:]})  # for the report
        store.push(settings.ray_storage, out_dir)
        if lost_process(error):
            raise  # Tune restarts the trial, which resumes from its checkpoint
        # Raised by our code: a second attempt would raise it again. The trial ends here, failed.
        print(f"{name}: failed, not retried: {error.__class__.__name__}: {str(error)[:500]}", flush=True)
        _report_worst(settings, "failed")
        return
    status = read_status(out_dir)["status"]
    if status == "diverged":
        _report_worst(settings, "diverged")
    if settings.predict and status == "ok":
        _predict(settings, out_dir, pretrained)


def lost_process(error: Exception) -> bool:
    """Whether a trial's error is the loss of a process or node (worth a retry), not an exception of our code.

    A Ray system error (an actor or object lost with its node) is a loss. So is Ray Train's error of a worker group
    in which some rank failed with a Ray or Ray Train error (it died, or stopped answering its health checks): the
    ranks that survive such a death then fail in their collectives, so one lost rank decides. A worker group whose
    every rank raised from our loop (Train hands back each rank's own exception), or any other exception in the
    trial's own process, is our code's.
    """
    from ray.exceptions import RayError, RayTaskError
    from ray.train import ControllerError, WorkerGroupError
    from ray.train.v2._internal.exceptions import RayTrainError  # private (Ray 2.60): Train's own errors' base

    if isinstance(error, RayError):
        return not isinstance(error, RayTaskError)  # a RayTaskError carries an exception raised by the task's code
    if isinstance(error, WorkerGroupError):
        return any(isinstance(failure, (RayError, RayTrainError)) for failure in error.worker_failures.values())
    return isinstance(error, ControllerError)  # Train's controller failed: not the loop's doing


def _report_worst(settings: SweepSettings, flag: str) -> None:
    """A run without a score (diverged, failed): Optuna and Tune's table need a number: the worst there is."""
    tune.report({settings.metric: 0.0 if settings.metric_mode == "max" else 1.0, flag: True})


def _predict(settings: SweepSettings, out_dir: Path, pretrained: Path) -> None:
    """--predict SPLIT: the run's submission file and its scores beside its record, and its baseline's (the shared
    pre-training's) if no trial has written them yet (two trials that race write the same file, atomically). On
    the trial's device: its GPU when it holds one, else the CPU (a multi-worker trial's own process holds none)."""
    from elgan_ray.data.synthetic import embedded_dataset
    from elgan_ray.predict.submission import predict_and_score

    data = settings.data_dir or str(embedded_dataset())
    device = "cuda" if settings.gpus_per_worker > 0 and settings.workers_per_trial == 1 else "cpu"
    predict_and_score(out_dir, data, settings.predict, device)
    if not (pretrained / layout.scores_file(settings.predict)).is_file():
        predict_and_score(pretrained, data, settings.predict, device)


def _runner(settings: SweepSettings):
    """A function that runs the loop for one run: here in this process, or on Ray Train workers."""
    if settings.workers_per_trial > 1:
        from elgan_ray.sweep.ddp import fit_on_workers

        def run_distributed(cfg, run_settings, phases, init_generator=None):
            trial_id = tune.get_context().get_trial_id()
            name = layout.train_run_name(settings.study, trial_id, Path(run_settings.out_dir).name)
            fit_on_workers(cfg, run_settings, phases, init_generator, settings, name, inside_tune=True)
            store.pull(settings.ray_storage, Path(run_settings.out_dir))  # a URI's: what rank 0 wrote on its node

        return run_distributed

    from elgan_ray.train.loop import train

    def run_here(cfg, run_settings, phases, init_generator=None):
        require_cuda(settings.gpus_per_worker)  # a GPU slot without CUDA fails the trial, naming the node
        device = "cuda" if settings.gpus_per_worker > 0 else "cpu"
        run_settings = RunSettings(**(asdict(run_settings) | {"device": device}))
        written = [Path(p) for p in (run_settings.out_dir, run_settings.tb_dir) if p]

        def report(step: int, metrics: dict[str, Any]) -> None:
            # With a URI, every evaluation's record and checkpoint reach the store before Tune hears of it (and
            # before Tune may stop the trial inside tune.report).
            for path in written:
                store.push(settings.ray_storage, path)
            _tune_report(step, metrics)

        try:
            train(cfg, run_settings, report=report, phases=phases, init_generator=init_generator)
        finally:
            for path in written:  # status.json, the final maps, the last events
                store.push(settings.ray_storage, path)

    return run_here


def _tune_report(step: int, metrics: dict[str, Any]) -> None:
    if metrics:
        tune.report({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))})


def _limit_threads(settings: SweepSettings) -> None:
    # Ray gives a trial N CPUs; torch would otherwise start a thread per core and trials would fight.
    torch.set_num_threads(max(1, int(settings.cpus_per_worker)))


def _trial_resources(settings: SweepSettings) -> dict[str, float]:
    if settings.workers_per_trial > 1:
        # The trial only launches and waits for its Train workers, which hold the real resources.
        if ray.cluster_resources().get(DRIVER_RESOURCE):
            return {"CPU": 0, DRIVER_RESOURCE: 1}
        return {"CPU": 0.01}  # a cluster that does not declare it: the best that fits anywhere
    return {"CPU": settings.cpus_per_worker, "GPU": settings.gpus_per_worker}


def _tune_config(spec: SweepSpec, settings: SweepSettings, max_concurrent: int, searched: bool) -> tune.TuneConfig:
    """A grid's config, or (searched) Optuna's over the study's nuisance keys."""
    available = ray.cluster_resources()
    capacity = cluster_capacity(settings) if settings.cluster else None
    concurrency = settings.concurrency(max_concurrent, available.get("CPU", 1), available.get("GPU", 0), capacity)
    if not searched:  # a grid, or a search study's controls: every run to its end, no scheduler
        return tune.TuneConfig(max_concurrent_trials=concurrency, reuse_actors=REUSE_TRIAL_PROCESSES)
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    # Optuna proposes a configuration; Repeater runs it once per seed (__trial_index__) and Optuna sees the mean.
    searcher = Repeater(OptunaSearch(seed=0), repeat=spec.seeds)
    return tune.TuneConfig(
        metric=settings.metric,
        mode=settings.metric_mode,
        search_alg=searcher,
        scheduler=tune_scheduler(spec.scheduler),  # ASHA's metric and mode are these
        num_samples=spec.num_samples * spec.seeds,
        max_concurrent_trials=concurrency,
        reuse_actors=REUSE_TRIAL_PROCESSES,
    )


def _run_config(name: str, settings: SweepSettings) -> tune.RunConfig:
    """Tune's record of one Tuner in the study folder; a trial whose process dies is retried."""
    return tune.RunConfig(
        name=name,
        storage_path=settings.ray_path(settings.study_dir),
        failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
        verbose=1,
    )


def plan_space(plan: list[dict[str, Any]]) -> dict[str, Any]:
    """The param space of planned runs: one grid axis PLAN_KEY whose values are the runs' points, so Tune starts
    them in plan order (a product of per-key grids could not hold the controls beside the combinations)."""
    return {PLAN_KEY: tune.grid_search(list(plan))}


def to_param_space(spec: SweepSpec, scientific_point: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Ray Tune param space of one scientific point of a search study.

    The nuisance distributions and the scientific point as constants, and no `seed`: OptunaSearch refuses
    grid_search, so the sweep wraps it in Repeater(repeat=spec.seeds) and takes the seed from `__trial_index__`;
    each scientific point is its own Tuner. The fixed keys are not in the space: the sweep applies them to its
    base config (preset + fixed), so trials' configs, Tune's tables and Optuna see only what varies.
    """
    if not is_search(spec):
        raise ValueError(f"{spec.study} is a grid study: its runs are planned (study/plan.py's grid_plan, plan_space)")
    space: dict[str, Any] = {}
    points = scientific_points(spec)
    if scientific_point is None:
        if len(points) != 1:
            raise ValueError(f"{spec.study} has {len(points)} scientific points: pass one of them")
        scientific_point = points[0]
    if scientific_point not in points:
        raise ValueError(f"{quoted(scientific_point)} is not a scientific point of {spec.study}")
    space.update(scientific_point)
    for key, dist in spec.nuisance.items():
        ((kind, args),) = dist.items()
        if kind == "choice":
            space[key] = tune.choice(list(args))
        else:
            space[key] = {"loguniform": tune.loguniform, "uniform": tune.uniform, "randint": tune.randint}[kind](*args)
    return space


def tune_scheduler(scheduler: dict[str, Any] | None):
    """Ray Tune's scheduler for a checked `scheduler` (None: Tune's default, every trial runs to its end). The
    metric and mode come from the Tuner's TuneConfig, as for the search algorithm."""
    if scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=CLOCK,
        max_t=NEVER,
        grace_period=scheduler["grace_period"],
        reduction_factor=scheduler["reduction_factor"],
    )
