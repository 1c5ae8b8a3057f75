"""The Ray Tune edge of a sweep: start or join Ray, run the study's controls and GAN trials.

Each trial is a plain function of its flat config. With one worker it calls the training loop in the
trial's own process; with several it launches Ray Train workers (distributed.py). Trials resume from
their own checkpoint when Tune restarts them after a failure, and `--resume` restores the Tuner, so
finished trials are not run again.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from elgan_ray import study_layout
from elgan_ray.checkpoint import CHECKPOINT_NAME
from elgan_ray.config import RunSettings, TrainConfig
from elgan_ray.gpu_check import require_cuda
from elgan_ray.pretrain import data_identity, ensure_pretrained, pretrain_id
from elgan_ray.run_log import read_evals
from elgan_ray.run_status import read_status, write_status
from elgan_ray.search_space import PLAN_KEY, plan_space, to_param_space
from elgan_ray.study_files import run_name, write_run_file
from elgan_ray.study_scheduler import tune_scheduler
from elgan_ray.study_spec import SweepSpec, is_search, scientific_points
from elgan_ray.sweep_settings import SweepSettings
from elgan_ray.trial_plan import config_point, grid_plan, search_controls

METRIC = "accuracy"  # basic++ validation accuracy, the paper's headline number
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
    """Join a cluster, or start a local Ray with its dashboard off (nothing listens beyond this process)."""
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(include_dashboard=False, configure_logging=False, resources={DRIVER_RESOURCE: DRIVER_SLOTS})


def run_trials(spec: SweepSpec, settings: SweepSettings, max_concurrent: int, resume: bool) -> None:
    """Every run of the study: a grid study's controls and GAN trials in one Tuner (trial_plan.grid_plan's order),
    or a search study's controls, then one Tuner per scientific point (Optuna takes no grid).

    Each run computes its seed's generator pre-training on demand if nobody has (pretrain.ensure_pretrained),
    so pre-trainings, controls and GAN trials share the slots with none left idle between stages.
    """
    trainable = tune.with_resources(tune.with_parameters(gan_trial, settings=settings), _trial_resources(settings))
    base = TrainConfig.from_flat(settings.base_flat, source=spec.path)
    if is_search(spec):
        tuners = [(study_layout.CONTROL_TUNER, plan_space(search_controls(spec)), False)]
        for index, point in enumerate(scientific_points(spec)):
            tuners.append((study_layout.tuner_name(index), to_param_space(spec, point), True))
    else:
        tuners = [(study_layout.tuner_name(None), plan_space(grid_plan(spec, base)), False)]
    for name, param_space, searched in tuners:
        path = study_layout.tuner_dir(settings.study_dir, name)
        if resume and tune.Tuner.can_restore(str(path)):
            tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=_tune_config(spec, settings, max_concurrent, searched),
                run_config=_run_config(name, settings),
            )
        results = tuner.fit()
        failed = [r for r in results if r.error is not None]
        if failed:
            print(f"{len(failed)} trial(s) failed; they are marked 'failed' in evals.csv", flush=True)
        if searched and spec.scheduler:
            stopped = mark_stopped(results, settings.study_dir)
            print(f"{name}: {stopped} trial(s) stopped early by {spec.scheduler['name']} ('stopped')", flush=True)


def mark_stopped(results: tune.ResultGrid, study_dir: Path) -> int:
    """Write status `stopped` for every run whose Tune trial ended without error but whose loop never finished:
    the scheduler stopped it (Tune ends a function trial by raising SystemExit in its tune.report, so the loop
    writes no status of its own). Its rows and checkpoint stay. Run again after a --resume, whose restored Tuner
    returns the trials that had ended before, so a stop is recorded even if the driver died right after it."""
    runs = {}
    for path in study_layout.run_files(study_dir, study_layout.RUN_FILE):
        runs[str(json.loads(path.read_text()).get("trial_id"))] = path.parent
    count = 0
    for result in results:
        run_dir = runs.get(str((result.metrics or {}).get("trial_id")))
        if result.error is not None or run_dir is None:
            continue
        if read_status(run_dir)["status"] == "running":
            steps = [row["step"] for row in read_evals(run_dir, warn=False)]
            write_status(run_dir, {"status": "stopped", "step": max(steps, default=0)})
        count += read_status(run_dir)["status"] == "stopped"
    return count


# -- the trial functions (run in Ray worker processes) -------------------------------------------------


def gan_trial(config: dict[str, Any], settings: SweepSettings) -> None:
    """One GAN trial or control: the shared pre-trained G of its seed, then D pre-training and the alternating
    phase. `config` is a planned point (grid studies and controls) or a search algorithm's sample."""
    role, point = config_point(config.get(PLAN_KEY, config))
    cfg = settings.trial_config(point)
    _limit_threads(settings)
    flat = cfg.to_flat()
    name = run_name(flat, settings.varying, role)
    out_dir = study_layout.run_dir(settings.study_dir, name)
    out_dir.mkdir(parents=True, exist_ok=True)
    pid = pretrain_id(cfg, data_identity(settings.data_dir))
    trial_id = tune.get_context().get_trial_id()
    record = {"trial_id": trial_id, "trial_name": name, "role": role, "config": flat, "pretrain_id": pid}
    write_run_file(out_dir, record)
    run = _runner(settings)
    try:
        pretrained = ensure_pretrained(cfg, Path(settings.results_root), settings.data_dir, run=run)
        run_settings = RunSettings(
            out_dir=str(out_dir),
            data_dir=settings.data_dir,
            tb_dir=str(study_layout.tb_dir(settings.study_dir, name)),
            run_name=name,
        )
        run(cfg, run_settings, ("pretrain_d", "gan"), pretrained / CHECKPOINT_NAME)
    except Exception:
        # Recorded for the report; re-raised so that Tune retries the trial, which then resumes.
        write_status(out_dir, {"status": "failed", "error": traceback.format_exc(limit=3)[-2000:]})
        raise
    final = _last_main_row(out_dir)
    if final.get("status") == "diverged":
        tune.report({METRIC: 0.0, "diverged": True})  # Optuna and Tune's table need a number


def _runner(settings: SweepSettings):
    """A function that runs the loop for one run: here in this process, or on Ray Train workers."""
    if settings.workers_per_trial > 1:
        from elgan_ray.distributed import fit_on_workers

        def run_distributed(cfg, run_settings, phases, init_generator=None):
            trial_id = tune.get_context().get_trial_id()
            name = study_layout.train_run_name(settings.study, trial_id, Path(run_settings.out_dir).name)
            fit_on_workers(cfg, run_settings, phases, init_generator, settings, name, inside_tune=True)

        return run_distributed

    from elgan_ray.train_loop import train

    def run_here(cfg, run_settings, phases, init_generator=None):
        require_cuda(settings.gpus_per_worker)  # a GPU slot without CUDA fails the trial, naming the node
        device = "cuda" if settings.gpus_per_worker > 0 else "cpu"
        run_settings = RunSettings(**(asdict(run_settings) | {"device": device}))
        train(cfg, run_settings, report=_tune_report, phases=phases, init_generator=init_generator)

    return run_here


def _tune_report(step: int, metrics: dict[str, Any]) -> None:
    if metrics:
        tune.report({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))})


def _last_main_row(run_dir: Path) -> dict[str, Any]:
    from elgan_ray.run_log import MAIN_POST

    rows = [row for row in read_evals(run_dir) if row["post"] == MAIN_POST]
    return (rows[-1] if rows else {}) | {"status": read_status(run_dir)["status"]}


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
        metric=METRIC,
        mode=spec.metric_mode,
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
