"""The Ray Train path: one run of the training loop on N workers, DDP over G and D.

Ray 2.60 (Train V2) no longer takes a TorchTrainer as a Tune trainable; a Tune trial launches it instead, with
TuneReportCallback forwarding rank 0's metrics to Tune (Ray's docs: train/user-guides/hyperparameter-optimization).
The workers run the very same `train.loop.train`; Ray Train sets up the process group and the loop wraps G and D
in DDP. Every worker reports (Ray Train requires it); only rank 0 evaluates and writes.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import ray.train
import torch
from ray.train.torch import TorchConfig, TorchTrainer

from elgan_ray.config import RunSettings, TrainConfig
from elgan_ray.record import store
from elgan_ray.sweep.gpu_check import require_cuda

# Ray Train does not restart a worker group itself: a group that loses a worker fails the Tune trial, and Tune restarts
# the trial (tune.TRIAL_RETRIES), whose new group resumes from the checkpoint. One retry budget, not Train's times
# Tune's (a deterministic error was tried 3 x 3 times). Preemptions (a drained spot node) have Train's own budget,
# unlimited by default (FailureConfig.max_preemption_failures), and Tune does not count them either.
WORKER_RETRIES = 0


def fit_on_workers(
    cfg: TrainConfig,
    run_settings: RunSettings,
    phases: tuple[str, ...],
    init_generator: str | Path | None,
    settings: Any,
    name: str,
    inside_tune: bool,
) -> None:
    """Run `train` on settings.workers_per_trial Ray Train workers and wait for it to finish."""
    use_gpu = settings.gpus_per_worker > 0
    per_worker = {"CPU": settings.cpus_per_worker} | ({"GPU": settings.gpus_per_worker} if use_gpu else {})
    callbacks = []
    if inside_tune:
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())
    trainer = TorchTrainer(
        worker_loop,
        train_loop_config={
            "flat": cfg.to_flat(),
            "settings": asdict(run_settings),
            "phases": list(phases),
            "init_generator": str(init_generator) if init_generator else None,
            "threads": max(1, int(settings.cpus_per_worker)),
            "gpus_per_worker": settings.gpus_per_worker,
            "storage": getattr(settings, "storage", None),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=settings.workers_per_trial, use_gpu=use_gpu, resources_per_worker=per_worker
        ),
        # gloo on CPU, NCCL between GPUs.
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=ray.train.RunConfig(
            name=name,  # deterministic, so a restarted trial finds the same Train run
            storage_path=getattr(settings, "ray_storage", settings.results_root),
            callbacks=callbacks,
            failure_config=ray.train.FailureConfig(max_failures=WORKER_RETRIES),
        ),
    )
    trainer.fit()


def worker_loop(config: dict[str, Any]) -> None:
    """What each Train worker runs: the training loop, on this worker's device, reporting through Ray Train."""
    from elgan_ray.train.loop import train

    torch.set_num_threads(config["threads"])
    # Ray Train hands a worker without CUDA the CPU: refuse, naming the node, rather than hold its GPU for nothing.
    require_cuda(config["gpus_per_worker"])
    device = ray.train.torch.get_device()
    run_settings = RunSettings(**(config["settings"] | {"device": str(device)}))
    cfg = TrainConfig.from_flat(config["flat"], source="worker config")
    storage, init_generator = config["storage"], config["init_generator"]
    out_dir = Path(run_settings.out_dir)
    if storage:  # each rank works in a folder of its own in its node's mirror, pulled from the run's URI
        rank = ray.train.get_context().get_world_rank()
        run_settings = replace(run_settings, out_dir=str(_rank_folder(out_dir, rank)))
        store.pull(storage, out_dir, into=_rank_folder(out_dir, rank))  # a restarted group resumes from it
        if init_generator:
            start = Path(init_generator).parent
            store.pull(storage, start, into=_rank_folder(start, rank))
            init_generator = str(_rank_folder(start, rank) / Path(init_generator).name)

    def push() -> None:
        # Rank 0 writes the record: to the run's own URI (and TensorBoard's) after every evaluation and at the end.
        if storage and ray.train.get_context().get_world_rank() == 0:
            store.push(storage, Path(run_settings.out_dir), to=out_dir)
            if run_settings.tb_dir:
                store.push(storage, Path(run_settings.tb_dir))

    def report(step: int, metrics: dict[str, Any]) -> None:
        # Every worker must call report the same number of times; only rank 0's metrics reach Tune.
        push()
        ray.train.report({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))})

    try:
        train(cfg, run_settings, report=report, phases=tuple(config["phases"]), init_generator=init_generator)
    finally:
        push()


def _rank_folder(folder: Path, rank: int) -> Path:
    return folder.with_name(f".{folder.name}.rank{rank}")
