"""The Ray Tune edge of a sweep: start or join Ray, turn the study into Tuners (param spaces, Optuna, ASHA), and
run its controls and GAN trials.

Each trial is a plain function of its flat config. With one worker it calls the training loop in the trial's own
process; with several it launches Ray Train workers (ddp.py). Trials resume from their own checkpoint when Tune
restarts them after a failure, and `--resume` restores the Tuner, so finished trials are not run again. Tune
ranks a search's trials (Optuna, ASHA) by the study's metric (metric.name after metric.post, record/names.py's
metric_key), which every evaluation reports for every post-processing.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from elgan_ray.config import RunSettings, TrainConfig
from elgan_ray.errors import Terminated, UserError, handle_sigterm, quoted
from elgan_ray.files import disk_full
from elgan_ray.record import layout
from elgan_ray.record.layout import CHECKPOINT_FILE
from elgan_ray.record.runs import read_run_evals, read_run_record, read_status, write_run_record, write_status
from elgan_ray.study.plan import PLAN_KEY, grid_plan, run_name, search_controls, trial_point
from elgan_ray.study.scheduler import CLOCK, NEVER
from elgan_ray.study.spec import SweepSpec, is_search, scientific_points
from elgan_ray.sweep import reaper
from elgan_ray.sweep.gpu_check import require_cuda
from elgan_ray.sweep.pretrain import data_identity, ensure_pretrained, pretrain_id
from elgan_ray.sweep.settings import SweepSettings

TRIAL_RETRIES = 2  # a trial whose process dies is restarted this often, resuming from its checkpoint
# A finished trial's process runs the next trial: no new process, no second torch import. Measured on the smoke
# stability sweep here: 84 s -> 33 s of wall time for the same rows (every trial has the same resources).
REUSE_TRIAL_PROCESSES = True
# A trial whose Train workers hold the CPUs and GPUs needs somewhere to wait that takes none of theirs: a
# fraction of a CPU would keep a 2-worker group off a 2-CPU machine (or a 4-CPU GPU node) for good. Ray
# refuses a trial of no resources at all, so the waiting trials hold this custom resource instead; the local
# Ray and cluster.yaml's head node declare it.
DRIVER_RESOURCE = "elgan_trial_driver"
DRIVER_SLOTS = 1000


def start_ray(address: str | None) -> None:
    """Join the cluster at `address` (--address), or start a local Ray of this machine with its dashboard off.

    Without --address the sweep starts its own Ray whatever RAY_ADDRESS or a `ray start` on this machine says (Ray
    would join those, and then refuse the resources a local Ray declares); it says so when RAY_ADDRESS is set.
    Afterwards SIGTERM ends the sweep as run_cli says ("terminated", 143) again: ray.init replaces that handler with
    its own."""
    if address:  # __main__.py's check_inputs has seen it answer (probe_address)
        try:
            ray.init(address=address, log_to_driver=True)
        except (ConnectionError, ValueError, RuntimeError) as error:
            rule = f"cannot join the Ray cluster at {quoted(address)}: {_first_line(error)}"
            raise UserError("--address", rule) from None
    else:
        ignored = os.environ.pop("RAY_ADDRESS", None)  # also for the trials' processes, which inherit the environment
        if ignored:
            note = f"note: RAY_ADDRESS={ignored} is ignored: a sweep joins a cluster only with --address"
            print(note, file=sys.stderr)
        ray.init(
            address="local",
            include_dashboard=False,
            configure_logging=False,
            resources={DRIVER_RESOURCE: DRIVER_SLOTS},
        )
        reaper.watch()  # a kill -9 of this process must not leave Ray's agents behind for minutes
    if threading.current_thread() is threading.main_thread():
        handle_sigterm()


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [error.__class__.__name__])[0][:300]


def run_trials(spec: SweepSpec, settings: SweepSettings, max_concurrent: int, resume: bool) -> None:
    """Every run of the study: a grid study's controls and GAN trials in one Tuner (study/plan.py's grid_plan order),
    or a search study's controls, then one Tuner per scientific point (Optuna takes no grid).

    Each run computes its seed's generator pre-training on demand if nobody has (pretrain.ensure_pretrained),
    so pre-trainings, controls and GAN trials share the slots with none left idle between stages.
    """
    trainable = tune.with_resources(tune.with_parameters(gan_trial, settings=settings), _trial_resources(settings))
    base = TrainConfig.from_flat(settings.base_flat, source=spec.path)
    if is_search(spec):
        tuners = [(layout.CONTROL_TUNER, plan_space(search_controls(spec)), False)]
        for index, point in enumerate(scientific_points(spec)):
            tuners.append((layout.tuner_name(index), to_param_space(spec, point), True))
    else:
        tuners = [(layout.tuner_name(None), plan_space(grid_plan(spec, base)), False)]
    for name, param_space, searched in tuners:
        path = layout.tuner_dir(settings.study_dir, name)
        if resume and tune.Tuner.can_restore(str(path)):
            tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=_tune_config(spec, settings, max_concurrent, searched),
                run_config=_run_config(name, settings),
            )
        with _sigterm_stops_tune():
            results = tuner.fit()
        failed = [r for r in results if r.error is not None]
        if failed and disk_full(failed[0].error, settings.results_root):  # the sweep ends in one line (__main__.py)
            raise OSError(errno.ENOSPC, f"{len(failed)} trial(s) failed on a full disk", settings.results_root)
        if failed:
            print(f"{len(failed)} trial(s) failed; they are marked 'failed' in evals.csv", flush=True)
        if searched and spec.scheduler:
            stopped = mark_stopped(results, settings.study_dir)
            print(f"{name}: {stopped} trial(s) stopped early by {spec.scheduler['name']} ('stopped')", flush=True)


@contextmanager
def _sigterm_stops_tune() -> Iterator[None]:
    """SIGTERM while Tune runs: Tune is asked to stop as Ctrl-C asks it (it saves its state and ends its trials), and
    Terminated is raised once Tuner.fit has returned, so the sweep ends with "terminated" and 143 (run_cli).

    Raising in the signal handler itself, as run_cli's does, would land in the middle of Ray's C code (ray.wait):
    a SystemError, or an abort. Tune handles SIGUSR1 as it handles Ctrl-C, for as long as fit runs."""
    stopped = threading.Event()
    outside = signal.getsignal(signal.SIGUSR1)  # what holds SIGUSR1 until fit installs Tune's handler

    def stop(signum: int, frame: object) -> None:
        stopped.set()
        tunes = signal.getsignal(signal.SIGUSR1)
        if callable(tunes) and tunes is not outside:
            tunes(signal.SIGUSR1, frame)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        yield
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if stopped.is_set():
        raise Terminated


def mark_stopped(results: tune.ResultGrid, study_dir: Path) -> int:
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
    out_dir.mkdir(parents=True, exist_ok=True)
    pid = pretrain_id(cfg, data_identity(settings.data_dir))
    trial_id = tune.get_context().get_trial_id()
    record = {"trial_id": trial_id, "trial_name": name, "role": role, "config": flat, "pretrain_id": pid}
    write_run_record(out_dir, record)
    run = _runner(settings)
    try:
        pretrained = ensure_pretrained(cfg, Path(settings.results_root), settings.data_dir, run=run)
        run_settings = RunSettings(
            out_dir=str(out_dir),
            data_dir=settings.data_dir,
            tb_dir=str(layout.tb_dir(settings.study_dir, name)),
            run_name=name,
        )
        run(cfg, run_settings, ("pretrain_d", "gan"), pretrained / CHECKPOINT_FILE)
    except Exception:
        # Recorded for the report; re-raised so that Tune retries the trial, which then resumes.
        write_status(out_dir, {"status": "failed", "error": traceback.format_exc(limit=3)[-2000:]})
        raise
    if read_status(out_dir)["status"] == "diverged":  # Optuna and Tune's table need a number: the worst there is
        tune.report({settings.metric: 0.0 if settings.metric_mode == "max" else 1.0, "diverged": True})


def _runner(settings: SweepSettings):
    """A function that runs the loop for one run: here in this process, or on Ray Train workers."""
    if settings.workers_per_trial > 1:
        from elgan_ray.sweep.ddp import fit_on_workers

        def run_distributed(cfg, run_settings, phases, init_generator=None):
            trial_id = tune.get_context().get_trial_id()
            name = layout.train_run_name(settings.study, trial_id, Path(run_settings.out_dir).name)
            fit_on_workers(cfg, run_settings, phases, init_generator, settings, name, inside_tune=True)

        return run_distributed

    from elgan_ray.train.loop import train

    def run_here(cfg, run_settings, phases, init_generator=None):
        require_cuda(settings.gpus_per_worker)  # a GPU slot without CUDA fails the trial, naming the node
        device = "cuda" if settings.gpus_per_worker > 0 else "cpu"
        run_settings = RunSettings(**(asdict(run_settings) | {"device": device}))
        train(cfg, run_settings, report=_tune_report, phases=phases, init_generator=init_generator)

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
    concurrency = settings.concurrency(max_concurrent, available.get("CPU", 1), available.get("GPU", 0))
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
        storage_path=str(settings.study_dir),
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
