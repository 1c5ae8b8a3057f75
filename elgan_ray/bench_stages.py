"""The measurements of `python -m elgan_ray.bench`, one function per stage.

Each stage takes a `Bench` (work folder, repetitions, shared step timings) and returns the JSON keys it
measured; notes on how a number was obtained go to `bench.notes`. Medians throughout: on a shared 2-core
machine a single slow repetition says more about the neighbours than about the code.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

N_EVAL_FRAMES = 2782  # the TuSimple test set
H_SAMPLES = list(range(160, 720, 10))  # 56 rows, as the test set
SMOKE_TRAIN, SMOKE_VAL = 32, 8  # frames of the bench's own dataset: the smoke preset's train/val limits
# A short run of the cpu-preset loop through all three phases: what tune_over_bare and the trial RSS time.
SHORT_RUN = {"schedule.pretrain_d_steps": 4, "schedule.g_steps_per_round": 3, "schedule.d_steps_per_round": 2}


@dataclass
class Bench:
    work: Path  # scratch folder
    quick: bool
    threads: int  # torch intra-op threads for every in-process measurement
    notes: dict[str, str] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)  # cpu-preset step times, filled by stage_step

    @property
    def reps(self) -> int:
        return 3 if self.quick else 7

    def data(self) -> Path:
        """A small synthetic TuSimple-layout dataset, written once."""
        from elgan_ray.data.synthetic import write_synthetic_dataset

        root = self.work / "data"
        if not (root / "synthetic.json").is_file():
            write_synthetic_dataset(root, SMOKE_TRAIN, SMOKE_VAL, 0, seed=0, progress=False)
        return root


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median_time(fn: Callable[[], Any], reps: int, warmup: int = 1) -> float:
    """Median wall seconds of `fn()` over `reps` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine(threads: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_gb, 1), "torch_threads": threads}
    info |= {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__}
    info["load_avg_1m"] = os.getloadavg()[0]  # other work on the machine slows every number here
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    for name in ("numpy", "cv2", "ray"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    return info


# -- evaluator ---------------------------------------------------------------------------------------


def write_eval_pair(pred: Path, gt: Path, n: int = N_EVAL_FRAMES, seed: int = 1) -> None:
    """n frames of 4 gently curved lanes; the prediction jitters each point, drops some, and misses a lane."""
    rng = np.random.default_rng(seed)
    with open(pred, "w") as fp, open(gt, "w") as fg:
        for i in range(n):
            raw = f"clips/bench/{i:05d}/20.jpg"
            gt_lanes, pred_lanes = [], []
            for xs in _lanes(rng):
                gt_lanes.append(xs.tolist())
                if rng.random() < 0.05:
                    continue  # a missed lane
                px = xs + rng.integers(-25, 26, xs.shape)
                px[(xs < 0) | (rng.random(xs.shape) < 0.03)] = -2
                pred_lanes.append(px.tolist())
            fg.write(json.dumps({"lanes": gt_lanes, "h_samples": H_SAMPLES, "raw_file": raw}) + "\n")
            pred_line = {"lanes": pred_lanes, "h_samples": H_SAMPLES, "raw_file": raw, "run_time": 20}
            fp.write(json.dumps(pred_line) + "\n")


def _lanes(rng: np.random.Generator) -> list[np.ndarray]:
    """4 gently curved lanes of one frame, x per h_sample in 1280x720 pixels, -2 where absent."""
    y = np.asarray(H_SAMPLES, np.float64)
    t = (y - y[0]) / (y[-1] - y[0])  # 0 at the top row, 1 at the bottom
    bend = rng.normal(0, 60)
    lanes = []
    for j in range(4):
        base = 640 + (j - 1.5) * rng.uniform(120, 160)  # x at the top of the lane
        xs = base + (j - 1.5) * 420 * t + bend * t**2
        xs = np.where((xs < 0) | (xs >= 1280), -2, np.rint(xs)).astype(int)
        xs[: rng.integers(0, 12)] = -2  # lanes start below the horizon
        lanes.append(xs)
    return lanes


def _run_child(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def peak_rss_mib(argv: list[str]) -> float:
    """Peak RSS of a command, via RUSAGE_CHILDREN in a fresh wrapper process (so no other child counts)."""
    wrapper = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def stage_evaluator(b: Bench) -> dict[str, Any]:
    from elgan_ray import evaluate, reference_eval

    pred, gt = b.work / "eval_pred.json", b.work / "eval_gt.json"
    write_eval_pair(pred, gt)
    ours = [sys.executable, "-m", "elgan_ray.evaluate", "-q", str(pred), str(gt)]
    port = [sys.executable, "-m", "elgan_ray.reference_eval", str(pred), str(gt)]
    a = json.loads(subprocess.run(ours, capture_output=True, text=True, check=True).stdout)
    r = json.loads(subprocess.run(port, capture_output=True, text=True, check=True).stdout)
    agree = all(abs(x["value"] - y["value"]) < 1e-9 for x, y in zip(a, r, strict=True))
    reps = max(5, b.reps)
    whole: dict[str, list[float]] = {"ours": [], "port": []}
    for _ in range(reps):  # interleaved, so a slow moment hits both
        whole["ours"].append(_run_child(ours))
        whole["port"].append(_run_child(port))
    inproc: dict[str, list[float]] = {"ours": [], "port": []}
    for _ in range(reps):
        inproc["ours"].append(median_time(lambda: evaluate.score_files(pred, gt), 1, warmup=0))
        inproc["port"].append(median_time(lambda: reference_eval.bench_one_submit(str(pred), str(gt)), 1, warmup=0))
    med = {k: statistics.median(v) for k, v in whole.items()}
    med_in = {k: statistics.median(v) for k, v in inproc.items()}
    b.notes["evaluator"] = (
        f"{N_EVAL_FRAMES} frames x 4 lanes x 56 rows; whole process = wall time of `python -m` (median of {reps} "
        f"interleaved runs): ours {med['ours']:.3f} s, port {med['port']:.3f} s; in process score_files "
        f"{med_in['ours'] * 1e3:.1f} ms vs reference_eval.bench_one_submit {med_in['port'] * 1e3:.1f} ms; "
        f"results identical: {agree}"
    )
    return {
        "evaluator_speedup_vs_port": med["port"] / med["ours"],
        "evaluator_inprocess_speedup": med_in["port"] / med_in["ours"],
        "evaluator_agrees_with_port": agree,
        "evaluate_s": med["ours"],
        "port_s": med["port"],
        "peak_rss_mb_evaluate": peak_rss_mib(ours),
        "peak_rss_mb_port": peak_rss_mib(port),
    }


# -- post-processing and rendering --------------------------------------------------------------------


def _label_frames(n: int) -> list[list[list[int]]]:
    """n frames of 4 lanes (x per h_sample, -2 where absent), as the evaluator's labels."""
    rng = np.random.default_rng(2)
    return [[xs.tolist() for xs in _lanes(rng)] for _ in range(n)]


def stage_postprocess(b: Bench) -> dict[str, Any]:
    from elgan_ray.data.labels import render_lane_map
    from elgan_ray.postprocess import lanes_from_map

    rng = np.random.default_rng(3)
    out: dict[str, Any] = {}
    for key, (h, w) in (("postprocess_ms_train_size", (128, 256)), ("postprocess_ms_720p", (720, 1280))):
        # A network-like map: the rendered label (sigma scaled with the size), plus noise and some specks.
        maps = []
        for lanes in _label_frames(8):
            m = render_lane_map(lanes, H_SAMPLES, h, w, sigma=w / 256)
            m = np.clip(m * rng.uniform(0.7, 1.0) + rng.normal(0, 0.08, m.shape), 0, 1).astype(np.float32)
            maps.append(m)
        per_map = [median_time(lambda m=m: lanes_from_map(m, H_SAMPLES, "basic++"), b.reps * 3) for m in maps]
        out[key] = statistics.median(per_map) * 1e3
    b.notes["postprocess"] = "basic++ on 8 rendered 4-lane maps with noise; median over maps of per-map medians"
    return out


def stage_render(b: Bench) -> dict[str, Any]:
    from elgan_ray.data.labels import render_lane_map

    per_frame = [
        median_time(lambda lanes=lanes: render_lane_map(lanes, H_SAMPLES, 128, 256, 1.0), b.reps * 5)
        for lanes in _label_frames(8)
    ]
    b.notes["render"] = "render_lane_map of 4 lanes at 128x256, sigma 1; median over 8 frames"
    return {"render_ms": statistics.median(per_frame) * 1e3}


# -- the training step: loader, FLOPs, pre-training sharing -------------------------------------------


def step_times(cfg, images, labels, reps: int, device: str = "cpu", warmup: int = 1) -> dict[str, float]:
    """Median seconds of each kind of training step, and the FLOPs of one GAN G step + one D step."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from elgan_ray.models import build_discriminator, build_generator
    from elgan_ray.train_loop import d_step, g_step

    g = build_generator(cfg.generator).to(device)
    d = build_discriminator(cfg.discriminator).to(device)
    # The optimisers of train(): their update is part of a step's cost.
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.optim.lr_g, weight_decay=cfg.optim.weight_decay)
    opt_d = torch.optim.SGD(
        d.parameters(), lr=cfg.optim.lr_d, momentum=cfg.optim.momentum_d, weight_decay=cfg.optim.weight_decay
    )
    images, labels = images.to(device), labels.to(device)
    steps = {  # every step ends in .item(), which waits for a GPU
        "pretrain_g": lambda: g_step(g, d, opt_g, images, labels, cfg, False),
        "gan_g": lambda: g_step(g, d, opt_g, images, labels, cfg, True),
        "d": lambda: d_step(g, d, opt_d, images, labels, cfg),
    }
    times = {name: median_time(fn, reps, warmup) for name, fn in steps.items()}
    with FlopCounterMode(display=False) as counter:
        steps["gan_g"]()
        steps["d"]()
    return times | {"gan_pair_flops": float(counter.get_total_flops())}


def conv_flops_per_s(reps: int, device: str = "cpu") -> float:
    """FLOP/s of a large 3x3 convolution (64->64 channels on 8x64x128x256): what the hardware gives."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(8, 64, 128, 256, device=device)
    w = torch.randn(64, 64, 3, 3, device=device)

    def conv() -> None:
        with torch.no_grad():
            F.conv2d(x, w, padding=1).sum().item()

    with FlopCounterMode(display=False) as counter:
        conv()
    return counter.get_total_flops() / median_time(conv, reps)


def stage_step(b: Bench) -> dict[str, Any]:
    import torch

    from elgan_ray.config import preset
    from elgan_ray.data.tusimple import TuSimpleDataset

    cfg = preset("cpu")
    size = (cfg.data.height, cfg.data.width)
    root = b.data()
    cold = TuSimpleDataset(root, "train", *size, sigma=cfg.data.sigma, cache=False)
    n = len(cold)
    cold_fps = n / median_time(lambda: [cold[i] for i in range(n)], b.reps, warmup=0)
    warm = TuSimpleDataset(root, "train", *size, sigma=cfg.data.sigma, cache=True)
    warm_fps = n / median_time(lambda: [warm[i] for i in range(n)], b.reps)
    batch = [warm[i] for i in range(cfg.optim.batch_size)]
    images = torch.stack([f["image"] for f in batch])  # (B, 3, H, W)
    labels = torch.stack([f["label"] for f in batch])  # (B, 1, H, W)
    b.steps = step_times(cfg, images, labels, 2 if b.quick else 5, warmup=1 if b.quick else 2)
    fastest = min(b.steps[k] for k in ("pretrain_g", "gan_g", "d"))
    train_fps = cfg.optim.batch_size / fastest
    achieved = b.steps["gan_pair_flops"] / (b.steps["gan_g"] + b.steps["d"])
    peak = conv_flops_per_s(b.reps)
    b.notes["loader_over_train"] = (
        f"loader = TuSimpleDataset.__getitem__ uncached (JPEG decode, resize, render): {cold_fps:.0f} frames/s "
        f"(cached, as after the first epoch: {warm_fps:.0f}); training = batch {cfg.optim.batch_size} over the "
        f"fastest cpu-preset step ({fastest * 1e3:.0f} ms): {train_fps:.1f} frames/s; {b.threads} torch threads"
    )
    b.notes["step_flops_fraction"] = (
        f"FlopCounterMode FLOPs of one GAN G step + one D step {b.steps['gan_pair_flops'] / 1e9:.2f} GFLOP in "
        f"{(b.steps['gan_g'] + b.steps['d']) * 1e3:.0f} ms = {achieved / 1e9:.1f} GFLOP/s, over a 64->64 3x3 conv "
        f"on 8x64x128x256: {peak / 1e9:.1f} GFLOP/s; {b.threads} torch threads"
    )
    return {
        "loader_over_train": cold_fps / train_fps,
        "loader_over_train_cached": warm_fps / train_fps,
        "step_ms": {k: v * 1e3 for k, v in b.steps.items() if k != "gan_pair_flops"},
        "step_flops_fraction": achieved / peak,
    }


def sharing_ratio(flat: dict[str, Any], seeds: int, trials: int, t: dict[str, float]) -> float:
    """Step compute of a grid study with one pre-training per seed over one per trial (steps x step times)."""
    from elgan_ray.config import TrainConfig

    s = TrainConfig.from_flat(flat).schedule
    rounds, rest = divmod(s.gan_steps, s.g_steps_per_round + s.d_steps_per_round)
    gan_g = rounds * s.g_steps_per_round + min(rest, s.g_steps_per_round)
    gan = gan_g * t["gan_g"] + (s.gan_steps - gan_g) * t["d"] + s.pretrain_d_steps * t["d"]
    pre = s.pretrain_g_steps * t["pretrain_g"]
    return (seeds * pre + trials * gan) / (trials * (pre + gan))


def stage_pretrain_sharing(b: Bench) -> dict[str, Any]:
    from elgan_ray.config import PRESETS
    from elgan_ray.search_space import grid_points, load_spec

    if not b.steps:
        stage_step(b)
    spec = load_spec("stability")
    trials = len(list(grid_points(spec)))
    ratios = {name: sharing_ratio(PRESETS[name], spec.seeds, trials, b.steps) for name in ("smoke", "cpu", "paper")}
    b.notes["pretrain_sharing_ratio"] = (
        f"computed from the schedule: {spec.seeds} shared pre-trainings + {trials} (D pre-training + GAN) runs "
        f"over {trials} full runs, steps weighted by the measured cpu-preset step times; evaluations not "
        f"counted. Per preset: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
    )
    return {"pretrain_sharing_ratio": ratios["cpu"], "pretrain_sharing_ratio_paper": ratios["paper"]}


# -- Ray: Tune trial vs plain process, Train workers, the smoke sweep ----------------------------------


def ensure_ray(b: Bench) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False, log_to_driver=False)


def short_run(steps: int) -> dict[str, Any]:
    """Flat cpu-preset config of a short run through all three phases, evaluating only at phase ends."""
    from elgan_ray.config import preset

    flat = SHORT_RUN | {"schedule.pretrain_g_steps": steps, "schedule.gan_steps": steps, "schedule.eval_every": 10**6}
    return preset("cpu").with_flat(flat | {"data.val_limit": 4}).to_flat()


def _tune_trial(config: dict[str, Any]) -> None:
    """The same loop as a plain run, inside a Tune function trial; reports its speed and peak RSS."""
    import torch
    from ray import tune

    from elgan_ray.config import RunSettings, TrainConfig
    from elgan_ray.train_loop import train

    torch.set_num_threads(config["threads"])
    result = train(TrainConfig.from_flat(config["flat"]), RunSettings(out_dir=config["out"], data_dir=config["data"]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tune.report({"steps_per_s": result.step / result.train_seconds, "peak_rss_mb": rss})


def stage_tune(b: Bench) -> dict[str, Any]:
    from ray import tune

    from elgan_ray.config import RunSettings, TrainConfig
    from elgan_ray.train_loop import train

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
    from elgan_ray.config import RunSettings, preset
    from elgan_ray.distributed import fit_on_workers
    from elgan_ray.run_log import read_status

    ensure_ray(b)
    steps = 4 if b.quick else 20
    cfg = preset("cpu").with_flat(
        {"schedule.pretrain_g_steps": steps, "schedule.eval_every": 10**6, "data.val_limit": 4}
    )
    rate = {}
    for workers in (1, 2):
        log(f"ddp: {workers} worker(s)")
        out = b.work / f"ddp{workers}"
        settings = SimpleNamespace(
            workers_per_trial=workers, cpus_per_worker=1, gpus_per_worker=0, results_root=str(b.work / "ray_train")
        )
        run = RunSettings(out_dir=str(out), data_dir=str(b.data()))
        fit_on_workers(cfg, run, ("pretrain_g",), None, settings, f"bench_ddp{workers}", inside_tune=False)
        status = read_status(out)
        rate[workers] = status["step"] * cfg.optim.batch_size / status["train_seconds"]
    b.notes["ddp_2_over_1"] = (
        f"cpu preset G pre-training, {steps} steps of global batch {cfg.optim.batch_size}, Ray Train TorchTrainer "
        f"(gloo), 1 CPU and 1 thread per worker; samples/s from rank 0's train_seconds: "
        f"1 worker {rate[1]:.1f}, 2 workers {rate[2]:.1f}"
    )
    return {"ddp_2_over_1": rate[2] / rate[1]}


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
    from elgan_ray.run_log import read_status

    study = json.loads((results / "stability" / "study.json").read_text())
    runs = [read_status(p.parent)["train_seconds"] for p in (results / "stability" / "runs").glob("*/status.json")]
    pre = [read_status(p.parent)["train_seconds"] for p in (results / "_pretrain").glob("*/status.json")]
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


def stage_gpu(b: Bench) -> dict[str, Any]:
    import torch

    from elgan_ray.config import preset

    if not torch.cuda.is_available():
        b.notes["gpu"] = "no CUDA device on this machine: GPU figures not measured"
        return {"gpu_paper_step_ms": None, "ddp_2_over_1_gpu": None}
    cfg = preset("paper")
    images = torch.rand(cfg.optim.batch_size, 3, cfg.data.height, cfg.data.width)
    labels = torch.rand(cfg.optim.batch_size, 1, cfg.data.height, cfg.data.width)
    times = step_times(cfg, images, labels, b.reps, device="cuda")
    b.notes["gpu"] = f"paper preset on {torch.cuda.get_device_name(0)}; DDP on GPUs needs 2 devices"
    ddp = None  # one lent GPU here; 2-GPU DDP is measured where torch.cuda.device_count() >= 2
    return {
        "gpu_paper_step_ms": {k: v * 1e3 for k, v in times.items() if k != "gan_pair_flops"},
        "ddp_2_over_1_gpu": ddp,
    }
