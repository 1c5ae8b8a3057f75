"""`python -m elgan_ray.bench [--quick] [--out results/bench.json]`: the project's speed and memory, side by side.

One run measures every stage (medians of several repetitions), describes the machine, prints a table and
writes one JSON object. A stage whose module is missing or that fails writes null for its keys and the
reason under `notes`, so one broken piece never hides the other numbers. `--only` runs a subset.

This module is the command (the stages, their targets, the table and the JSON); the measurements are the
package's other modules, one per group of stages (see __init__.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from elgan_ray.bench import gpu, step_memory  # their keys only: the stages import torch when they run
from elgan_ray.errors import UserError, run_cli
from elgan_ray.files import atomic_write_text, check_writable

# Stage -> the keys it writes; the order is the run order (the Ray stages share one local Ray).
STAGES: dict[str, tuple[str, ...]] = {
    "evaluator": (
        "evaluator_speedup_vs_port",
        "evaluator_inprocess_speedup",
        "evaluator_agrees_with_port",
        "evaluate_s",
        "port_s",
        "peak_rss_mb_evaluate",
        "peak_rss_mb_port",
    ),
    "postprocess": ("postprocess_ms_train_size", "postprocess_ms_720p"),
    "render": ("render_ms",),
    "step": ("loader_over_train", "loader_over_train_cached", "step_ms", "step_flops_fraction"),
    "paper_memory": step_memory.KEYS,  # the paper-preset G+D step's peak memory per frame on CPU
    "loader": ("loader_wait_fraction", "loader_wait_fraction_sync"),
    "pretrain_sharing": ("pretrain_sharing_ratio", "pretrain_sharing_ratio_paper"),
    "tune": ("tune_over_bare", "peak_rss_mb_trial"),
    "ddp": ("ddp_2_over_1",),
    "sweep": ("sweep_efficiency", "pretrain_sharing_ratio_smoke_measured"),
    "gpu": gpu.KEYS,  # the paper-preset G+D step in float32 and bf16, and DDP on 2 GPUs
}
MAX_THREADS = 1024  # torch threads
# key -> (">=" or "<=", target): the goals of the issue; "met" in the JSON compares against them.
TARGETS: dict[str, tuple[str, float]] = {
    "evaluator_speedup_vs_port": (">=", 5),
    "evaluator_inprocess_speedup": (">=", 20),
    "postprocess_ms_train_size": ("<=", 1),
    "postprocess_ms_720p": ("<=", 5),
    "loader_over_train": (">=", 5),
    "loader_wait_fraction": ("<=", 0.05),
    "tune_over_bare": (">=", 0.95),
    "sweep_efficiency": (">=", 0.8),
    "pretrain_sharing_ratio": ("<=", 0.4),
    "peak_rss_mb_evaluate": ("<=", 200),
    "peak_rss_mb_trial": ("<=", 2048),
    "paper_peak_mib_per_frame_cpu": ("<=", 2100),
    "gpu_images_per_s_bf16": (">=", 65),
    "gpu_peak_gib_per_frame_bf16": ("<=", 1),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.bench",
        description="Measure the evaluator, post-processing, label rendering, data loading, the training step and "
        "its memory, Tune and Train overheads and the smoke sweep's efficiency; print a table and write one JSON "
        "object.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter runs (every key still)")
    parser.add_argument("--out", default="results/bench.json", help="JSON output (default: results/bench.json)")
    parser.add_argument("--only", help=f"comma-separated stages to run (of: {', '.join(STAGES)})")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    parser.add_argument("--work", help="scratch folder, kept (default: a new temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    if args.only is not None:
        chosen = {name.strip() for name in args.only.split(",")} - {""}
        unknown = chosen - set(STAGES)
        if unknown or not chosen:  # "" or ",,," selects nothing: refused like a stage that does not exist
            wrong = f"unknown stage(s) {', '.join(sorted(unknown))}" if unknown else "no stage named"
            raise UserError("--only", f"{wrong} (choose from {', '.join(STAGES)})")
        args.only = [stage for stage in STAGES if stage in chosen]
    if not 1 <= args.threads <= MAX_THREADS:
        raise UserError("--threads", f"must be from 1 to {MAX_THREADS}, got {args.threads}")
    check_writable(args.out, "file")  # now, not after the whole benchmark
    if args.work:
        check_writable(args.work, "folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stages = list(STAGES) if args.only is None else args.only
    work = Path(args.work or tempfile.mkdtemp(prefix="elgan_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run_bench(args, stages, work)
    finally:
        if not args.work:  # the scratch folder it made, however the bench ends
            shutil.rmtree(work, ignore_errors=True)


def run_bench(args: argparse.Namespace, stages: list[str], work: Path) -> int:
    """Every stage of `stages` with scratch files in `work`: the table on stdout, the JSON at --out."""
    started = time.perf_counter()
    import torch

    from elgan_ray.bench import harness

    torch.set_num_threads(args.threads)
    b = harness.Bench(work=work, quick=args.quick, threads=args.threads)
    result: dict[str, Any] = {"machine": harness.machine(args.threads), "quick": args.quick}
    seconds: dict[str, float] = {}
    try:
        for stage in stages:
            harness.log(f"{stage} ...")
            t0 = time.perf_counter()
            result |= run_stage(stage, b)
            seconds[stage] = round(time.perf_counter() - t0, 1)
            harness.log(f"{stage} done in {seconds[stage]} s")
    finally:
        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            sys.modules["ray"].shutdown()
    result["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    result["met"] = {k: met(result[k], *TARGETS[k]) for k in TARGETS if k in result}
    result |= {"targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}, "notes": b.notes}
    result |= {"stage_seconds": seconds, "wall_s": round(time.perf_counter() - started, 1)}
    result["work"] = str(work) if args.work else None  # a temporary scratch folder is removed at the end
    out = Path(args.out)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(table(result))
    print(f"-> {out}", file=sys.stderr)
    return 0


def run_stage(stage: str, b: Any) -> dict[str, Any]:
    """The stage's keys; null for each, and the reason in notes, when it cannot run here or fails."""
    from elgan_ray.bench import evaluator, harness, label_maps, ray_stages, step

    module = {"evaluator": evaluator, "postprocess": label_maps, "render": label_maps, "step": step, "loader": step}
    module |= {"paper_memory": step_memory, "pretrain_sharing": step, "tune": ray_stages, "ddp": ray_stages}
    module |= {"sweep": ray_stages, "gpu": gpu}
    try:
        measured = getattr(module[stage], f"stage_{stage}")(b)
    except ImportError as error:  # a module that has not landed yet
        b.notes[stage] = f"skipped: {error.__class__.__name__}: {error}"
        return dict.fromkeys(STAGES[stage])
    except Exception as error:  # one failing stage must not lose the others' numbers
        tail = traceback.format_exc(limit=4)[-1500:]
        harness.log(f"{stage} failed: {tail}")
        b.notes[stage] = f"failed: {error.__class__.__name__}: {error}"[:1500]
        return dict.fromkeys(STAGES[stage])
    return dict.fromkeys(STAGES[stage]) | measured


def met(value: Any, op: str, target: float) -> bool | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return value >= target if op == ">=" else value <= target


def table(result: dict[str, Any]) -> str:
    """The measured keys with their targets, one per line."""
    lines = [f"{'key':<38} {'value':>12}  target", "-" * 64]
    for keys in STAGES.values():
        for key in keys:
            if key not in result:
                continue
            value = result[key]
            if isinstance(value, dict):  # step times in ms
                shown = " ".join(f"{k}={v:.0f}" for k, v in value.items())
            elif isinstance(value, list):  # kinds of work and their shares
                shown = " ".join(f"{k['kind']}={k['share']:.0%}" for k in value)
            else:
                shown = f"{value:12.3f}" if isinstance(value, float) else f"{json.dumps(value):>12}"
            op, target = TARGETS.get(key, ("", ""))
            mark = {True: "ok", False: "MISSED", None: ""}[result["met"].get(key)]
            lines.append(f"{key:<38} {shown:>12}  {op} {target} {mark}".rstrip())
    m = result["machine"]
    lines.append(
        f"machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads; wall {result['wall_s']} s"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run_cli(main))
