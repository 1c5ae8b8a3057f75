"""The Ray stages, sharing one local Ray: the training loop in a Tune trial against a plain process (and the
trial's peak memory), 2 Ray Train workers against 1, and a smoke stability sweep's efficiency.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from elgan_ray.bench.harness import SMOKE_TRAIN, Bench, log
from elgan_ray.record import layout

# A short run of the cpu-preset loop through all three phases: what tune_over_bare and the trial RSS time.
SHORT_RUN = {"schedule.pretrain_d_steps": 4, "schedule.g_steps_per_round": 3, "schedule.d_steps_per_round": 2}


def ensure_ray(b: Bench) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False, log_to_driver=False)


def short_run(steps: int) -> dict[str, Any]:
    """Flat cpu-preset config of a short run through all three phases, evaluating only at phase ends."""
    from elgan_ray.presets import preset

    flat = SHORT_RUN | {"schedule.pretrain_g_steps": steps, "schedule.gan_steps": steps, "schedule.eval_every": 10**6}
    return preset("cpu").with_flat(flat | {"data.val_limit": 4}).to_flat()


def _tune_trial(config: dict[str, Any]) -> None:
    """The same loop as a plain run, inside a Tune function trial; reports its speed and peak RSS."""
    import torch
    from ray import tune

    from elgan_ray.config import RunSettings, TrainConfig
    from elgan_ray.train.loop import train

    torch.set_num_threads(config["threads"])
    result = train(TrainConfig.from_flat(config["flat"]), RunSettings(out_dir=config["out"], data_dir=config["data"]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tune.report({"steps_per_s": result.step / result.train_seconds, "peak_rss_mb": rss})


def stage_tune(b: Bench) -> dict[str, Any]:
    from ray import tune

    from elgan_ray.config import RunSettings, TrainConfig
    from elgan_ray.train.loop import train

    ensure_ray(b)
    flat = short_run(4 if b.quick else 20)
    bare, trial, rss = [], [], []
    for rep in range(1 if b.quick else 2):  # interleaved
        result = train(
            TrainConfig.from_flat(flat), RunSettings(out_dir=str(b.work / f"bare{rep}"), data_dir=str(b.data()))
        )
        bare.append(result.step / result.train_seconds)
        config = {"flat": flat, "threads": b.threads, "out": str(b.work / f"trial{rep}"), "data": str(b.data())}
        tuner = tune.Tuner(
            tune.with_resources(_tune_trial, {"CPU": b.threads}),
            param_space=config,
            run_config=tune.RunConfig(name=f"bench_tune{rep}", storage_path=str(b.work / "tune"), verbose=0),
        )
        metrics = tuner.fit()[0].metrics
        trial.append(metrics["steps_per_s"])
        rss.append(metrics["peak_rss_mb"])
    b.notes["tune_over_bare"] = (
        f"cpu preset, {flat['schedule.pretrain_g_steps']} + {flat['schedule.pretrain_d_steps']} + "
        f"{flat['schedule.gan_steps']} steps via train() in this process vs in a Tune function trial "
        f"({b.threads} CPUs, {b.threads} threads each); steps/s from train_seconds: bare {bare}, trial {trial}"
    )
    b.notes["peak_rss_mb_trial"] = (
        f"ru_maxrss of the Ray worker process that ran the cpu-preset trial above ({SMOKE_TRAIN} train frames "
        f"cached; each further cached frame adds {128 * 256 * 7 / 2**20:.2f} MiB, the 400-frame embedded set "
        f"{(400 - SMOKE_TRAIN) * 128 * 256 * 7 / 2**20:.0f} MiB more)"
    )
    return {"tune_over_bare": statistics.median(trial) / statistics.median(bare), "peak_rss_mb_trial": max(rss)}


def stage_ddp(b: Bench) -> dict[str, Any]:
    from elgan_ray.presets import preset

    steps = 4 if b.quick else 20
    cfg = preset("cpu").with_flat(
        {"schedule.pretrain_g_steps": steps, "schedule.eval_every": 10**6, "data.val_limit": 4}
    )
    rate = ddp_rates(b, cfg, gpus_per_worker=0)
    b.notes["ddp_2_over_1"] = (
        f"cpu preset G pre-training, {steps} steps of global batch {cfg.optim.batch_size}, Ray Train TorchTrainer "
        f"(gloo), 1 CPU and 1 thread per worker; samples/s from rank 0's train_seconds: "
        f"1 worker {rate[1]:.1f}, 2 workers {rate[2]:.1f}"
    )
    return {"ddp_2_over_1": rate[2] / rate[1]}


def ddp_rates(b: Bench, cfg: Any, gpus_per_worker: float) -> dict[int, float]:
    """Samples/s of cfg's G pre-training on 1 and on 2 Ray Train workers (DDP), from rank 0's train_seconds."""
    from elgan_ray.config import RunSettings
    from elgan_ray.record.runs import read_status
    from elgan_ray.sweep.ddp import fit_on_workers

    ensure_ray(b)
    rate = {}
    device = "gpu" if gpus_per_worker else "cpu"
    for workers in (1, 2):
        log(f"ddp: {workers} worker(s), {device}")
        out = b.work / f"ddp{workers}_{device}"
        settings = SimpleNamespace(
            workers_per_trial=workers,
            cpus_per_worker=1,
            gpus_per_worker=gpus_per_worker,
            results_root=str(b.work / "ray_train"),
        )
        run = RunSettings(out_dir=str(out), data_dir=str(b.data()))
        fit_on_workers(cfg, run, ("pretrain_g",), None, settings, f"bench_ddp{workers}_{device}", inside_tune=False)
        status = read_status(out)
        rate[workers] = status["step"] * cfg.optim.batch_size / status["train_seconds"]
    return rate


def stage_sweep(b: Bench) -> dict[str, Any]:
    results = b.work / "sweep"
    shutil.rmtree(results, ignore_errors=True)  # the sweep refuses to overwrite a study (our own scratch)
    command = [sys.executable, "-m", "elgan_ray.sweep", "stability", "--preset", "smoke"]
    command += ["--results", str(results), "--data", str(b.data()), "--max-concurrent", "2"]
    with open(b.work / "sweep.log", "w") as out:
        wall = _timed(lambda: subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True))
    measured = sweep_numbers(results, concurrency=2)
    b.notes["sweep_efficiency"] = measured.pop("note") + f" (the command took {wall:.1f} s, Ray start-up included)"
    return measured


def sweep_numbers(results: Path, concurrency: int) -> dict[str, Any]:
    """Efficiency of a finished stability sweep from its runs' status.json and study.json, and the measured
    compute of its shared pre-trainings against one pre-training per trial."""
    from elgan_ray.record.layout import STATUS_FILE
    from elgan_ray.record.runs import read_status

    study_dir = layout.study_dir(results, "stability")
    study = json.loads(layout.study_file(study_dir).read_text())
    runs = [read_status(p.parent)["train_seconds"] for p in layout.run_files(study_dir, STATUS_FILE)]
    pre = [read_status(p.parent)["train_seconds"] for p in layout.pretrain_root(results).glob(f"*/{STATUS_FILE}")]
    busy = sum(runs) + sum(pre)
    note = (
        f"smoke stability sweep, concurrency {concurrency}: {len(pre)} pre-trainings + {len(runs)} trials, "
        f"their own train_seconds {busy:.1f} s over study wall_s {study['wall_s']} s x {concurrency}"
    )
    shared = busy / (sum(runs) + len(runs) * statistics.mean(pre)) if pre and runs else None
    return {
        "sweep_efficiency": busy / (study["wall_s"] * concurrency),
        "pretrain_sharing_ratio_smoke_measured": shared,
        "note": note,
    }


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
