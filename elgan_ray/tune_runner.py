"""The Ray Tune edge of a sweep: start or join Ray, run the pre-trainings, run the GAN trials.

Each trial is a plain function of its flat config. With one worker it calls the training loop in the
trial's own process; with several it launches Ray Train workers (distributed.py). Trials resume from
their own checkpoint when Tune restarts them after a failure, and `--resume` restores the Tuner, so
finished trials are not run again.
"""

from __future__ import annotations

import time
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
from elgan_ray.pretrain import data_identity, ensure_pretrained, is_finished, pretrain_id
from elgan_ray.run_log import write_status
from elgan_ray.search_space import to_param_space
from elgan_ray.study_files import run_name, write_run_file
from elgan_ray.study_spec import SweepSpec, grid_points, is_search, scientific_points
from elgan_ray.sweep_settings import SweepSettings

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


def run_pretrainings(spec: SweepSpec, settings: SweepSettings, max_concurrent: int) -> None:
    """Stage 1: the distinct pre-trainings of a grid study, each computed once, in parallel as Tune trials.

    Search studies may sample pre-training keys (optim.lr_g), so their trials pre-train on demand instead.
    """
    if is_search(spec):
        return
    configs: dict[str, dict[str, Any]] = {}
    for point in grid_points(spec):
        cfg = settings.trial_config(point)
        configs.setdefault(pretrain_id(cfg, data_identity(settings.data_dir)), cfg.to_flat())
    pretrain_root = study_layout.pretrain_root(settings.results_root)
    missing = {pid: flat for pid, flat in configs.items() if not is_finished(pretrain_root / pid)}
    print(f"pre-trainings: {len(configs)} needed, {len(configs) - len(missing)} already done", flush=True)
    if not missing:
        return
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(pretrain_trial, settings=settings, configs=missing), _trial_resources(settings)
        ),
        param_space={"pretrain_id": tune.grid_search(sorted(missing))},  # what Tune's table shows
        tune_config=_tune_config(spec, settings, max_concurrent),  # a grid study's: pre-trainings are grid-only
        run_config=_run_config(study_layout.pretrain_tuner_name(int(time.time())), settings),
    )
    _raise_on_errors(tuner.fit(), "pre-training")


def run_trials(spec: SweepSpec, settings: SweepSettings, max_concurrent: int, resume: bool) -> None:
    """Stage 2: the GAN trials. A search study runs one Tuner per scientific point (Optuna takes no grid)."""
    trainable = tune.with_resources(tune.with_parameters(gan_trial, settings=settings), _trial_resources(settings))
    points = [None] if not is_search(spec) else scientific_points(spec)
    for index, point in enumerate(points):
        name = study_layout.tuner_name(None if point is None else index)
        path = study_layout.tuner_dir(settings.study_dir, name)
        if resume and tune.Tuner.can_restore(str(path)):
            tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=to_param_space(spec, point),
                tune_config=_tune_config(spec, settings, max_concurrent),
                run_config=_run_config(name, settings),
            )
        results = tuner.fit()
        failed = [r for r in results if r.error is not None]
        if failed:
            print(f"{len(failed)} trial(s) failed; they are marked 'failed' in evals.csv", flush=True)


# -- the trial functions (run in Ray worker processes) -------------------------------------------------


def pretrain_trial(config: dict[str, Any], settings: SweepSettings, configs: dict[str, dict]) -> None:
    cfg = TrainConfig.from_flat(configs[config["pretrain_id"]], source="pre-training")
    _limit_threads(settings)
    pretrained = ensure_pretrained(cfg, Path(settings.results_root), settings.data_dir, run=_runner(settings))
    tune.report({"pretrain": str(pretrained), **_last_main_row(pretrained)})


def gan_trial(config: dict[str, Any], settings: SweepSettings) -> None:
    """One GAN trial: the shared pre-trained G of its seed, then D pre-training and the alternating phase."""
    cfg = settings.trial_config(config)
    _limit_threads(settings)
    flat = cfg.to_flat()
    name = run_name(flat, settings.varying)
    out_dir = study_layout.run_dir(settings.study_dir, name)
    out_dir.mkdir(parents=True, exist_ok=True)
    pid = pretrain_id(cfg, data_identity(settings.data_dir))
    trial_id = tune.get_context().get_trial_id()
    write_run_file(out_dir, {"trial_id": trial_id, "trial_name": name, "config": flat, "pretrain_id": pid})
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
        device = "cuda" if settings.gpus_per_worker > 0 and torch.cuda.is_available() else "cpu"
        run_settings = RunSettings(**(asdict(run_settings) | {"device": device}))
        train(cfg, run_settings, report=_tune_report, phases=phases, init_generator=init_generator)

    return run_here


def _tune_report(step: int, metrics: dict[str, Any]) -> None:
    if metrics:
        tune.report({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))})


def _last_main_row(run_dir: Path) -> dict[str, Any]:
    from elgan_ray.run_log import MAIN_POST, read_evals, read_status

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


def _concurrency(settings: SweepSettings, requested: int) -> int | None:
    """Trials at once: what was asked; on a joined cluster no limit (pending trials make the autoscaler add
    nodes); locally as many as this machine's CPUs (and GPUs) hold, at least one."""
    if requested:
        return requested
    if settings.cluster:
        return None
    available = ray.cluster_resources()
    per_trial_cpu = settings.cpus_per_worker * settings.workers_per_trial
    fits = int(available.get("CPU", 1) // per_trial_cpu)
    if settings.gpus_per_worker:
        fits = min(fits, int(available.get("GPU", 0) // (settings.gpus_per_worker * settings.workers_per_trial)))
    return max(1, fits)


def _tune_config(spec: SweepSpec, settings: SweepSettings, max_concurrent: int) -> tune.TuneConfig:
    concurrency = _concurrency(settings, max_concurrent)
    if not is_search(spec):
        return tune.TuneConfig(max_concurrent_trials=concurrency, reuse_actors=REUSE_TRIAL_PROCESSES)
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    # Optuna proposes a configuration; Repeater runs it once per seed (__trial_index__) and Optuna sees the mean.
    searcher = Repeater(OptunaSearch(seed=0), repeat=spec.seeds)
    return tune.TuneConfig(
        metric=METRIC,
        mode=spec.metric_mode,
        search_alg=searcher,
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


def _raise_on_errors(results, stage: str) -> None:
    errors = [r.error for r in results if r.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} {stage} trial(s) failed after retries; first: {errors[0]}")
