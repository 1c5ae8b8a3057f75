"""The evaluator stage: the `evaluate` command against a plain per-lane port of the official loop
(reference.py), as whole processes and in process, on a file the size of the TuSimple test set; and the
peak memory of each.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from elgan_ray.bench.harness import Bench
from elgan_ray.data.labels import H_SAMPLES
from elgan_ray.train.timing import frame_lanes, median_time

N_EVAL_FRAMES = 2782  # the TuSimple test set


def write_eval_pair(pred: Path, gt: Path, n: int = N_EVAL_FRAMES, seed: int = 1) -> None:
    """n frames of 4 gently curved lanes; the prediction jitters each point, drops some, and misses a lane."""
    rng = np.random.default_rng(seed)
    with open(pred, "w") as fp, open(gt, "w") as fg:
        for i in range(n):
            raw = f"clips/bench/{i:05d}/20.jpg"
            gt_lanes, pred_lanes = [], []
            for xs in frame_lanes(rng):
                gt_lanes.append(xs.tolist())
                if rng.random() < 0.05:
                    continue  # a missed lane
                px = xs + rng.integers(-25, 26, xs.shape)
                px[(xs < 0) | (rng.random(xs.shape) < 0.03)] = -2
                pred_lanes.append(px.tolist())
            fg.write(json.dumps({"lanes": gt_lanes, "h_samples": H_SAMPLES, "raw_file": raw}) + "\n")
            pred_line = {"lanes": pred_lanes, "h_samples": H_SAMPLES, "raw_file": raw, "run_time": 20}
            fp.write(json.dumps(pred_line) + "\n")


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
    from elgan_ray.evaluate import reference, score

    pred, gt = b.work / "eval_pred.json", b.work / "eval_gt.json"
    write_eval_pair(pred, gt)
    ours = [sys.executable, "-m", "elgan_ray.evaluate", "-q", str(pred), str(gt)]
    port = [sys.executable, "-m", "elgan_ray.evaluate.reference", str(pred), str(gt)]
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
        inproc["ours"].append(median_time(lambda: score.score_files(pred, gt), 1, warmup=0))
        inproc["port"].append(median_time(lambda: reference.bench_one_submit(str(pred), str(gt)), 1, warmup=0))
    med = {k: statistics.median(v) for k, v in whole.items()}
    med_in = {k: statistics.median(v) for k, v in inproc.items()}
    b.notes["evaluator"] = (
        f"{N_EVAL_FRAMES} frames x 4 lanes x 56 rows; whole process = wall time of `python -m` (median of {reps} "
        f"interleaved runs): ours {med['ours']:.3f} s, port {med['port']:.3f} s; in process score_files "
        f"{med_in['ours'] * 1e3:.1f} ms vs reference.bench_one_submit {med_in['port'] * 1e3:.1f} ms; "
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
