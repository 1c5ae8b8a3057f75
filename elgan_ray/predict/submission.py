"""A finished run's generator -> a TuSimple submission file: one JSON line per frame of a split, with raw_file,
lanes (x per h_sample in 1280x720 pixels, -2 where absent), h_samples and run_time (milliseconds), as the official
benchmark takes it; `python -m elgan_ray.evaluate FILE DATA/test_label.json` scores it.

The frames are prepared as training prepares them (data/tusimple.py at the run's size), G runs in eval mode, and
each map is post-processed with the run's own threshold and filters (eval.*). run_time is the measured time of
G's forward pass per frame (a batch's time over its frames) plus that frame's post-processing: the official
metric scores a frame with run_time over 200 ms as a miss, so a slow device is charged as the benchmark would.
Everything is checked before any work (a run folder without a finished checkpoint, a checkpoint of another config
than its run.json's, a split whose images are missing, an output that cannot be written), and the file is written
whole or not at all.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from elgan_ray.config import TrainConfig, without_retired
from elgan_ray.data.labels import split_label_files
from elgan_ray.data.tusimple import TuSimpleDataset
from elgan_ray.errors import UserError, quoted
from elgan_ray.evaluate.metric import f1_score, score_predictions
from elgan_ray.evaluate.postprocess import lanes_from_map
from elgan_ray.evaluate.score import score_files
from elgan_ray.files import atomic_write_text, check_writable
from elgan_ray.models import build_generator
from elgan_ray.record import layout
from elgan_ray.record.names import MAIN_POST
from elgan_ray.record.runs import read_run_record, read_status, write_scores
from elgan_ray.train.checkpoint import load_checkpoint
from elgan_ray.train.validation import predict_maps

BATCH = 16  # frames per forward pass


@dataclass(frozen=True)
class Submission:
    """What predict wrote: the file, its frames, and the in-process scores of its lanes (run_time aside)."""

    path: Path
    frames: int
    accuracy: float
    fp: float
    fn: float
    f1: float
    mean_run_time_ms: float


def finished_generator(run_dir: Path) -> tuple[TrainConfig, dict]:
    """(config, generator weights) of a finished run's final checkpoint; a UserError for any other folder."""
    checkpoint = run_dir / layout.CHECKPOINT_FILE
    if not run_dir.is_dir():
        raise UserError(run_dir, "not a run folder (no such folder)")
    if not checkpoint.is_file():
        raise UserError(run_dir, f"holds no {layout.CHECKPOINT_FILE}: predict takes a finished run's generator")
    status = read_status(run_dir)["status"]
    if status != "ok":
        raise UserError(run_dir / layout.STATUS_FILE, f"the run is {status}, not finished: its generator is not final")
    state = load_checkpoint(checkpoint)
    if (run_dir / layout.RUN_FILE).is_file():  # a sweep's run: its identity must be the checkpoint's
        run, _ = read_run_record(run_dir / layout.RUN_FILE)
        config = without_retired(run.get("config", {}))
        differing = sorted(k for k in set(config) | set(state["config"]) if config.get(k) != state["config"].get(k))
        if differing:
            key = differing[0]
            rule = f"checkpoint of another config than run.json's: {key} is {quoted(state['config'].get(key))} there"
            raise UserError(checkpoint, rule)
    return TrainConfig.from_flat(state["config"], source=str(checkpoint)), state["generator"]


def predict_split(
    run_dir: str | Path, data_dir: str | Path, split: str, post: str, out: str | Path, device: str = "cpu"
) -> Submission:
    """Write the submission file of `split` from the run's final generator to `out`; its in-process scores."""
    run_dir, out = Path(run_dir), Path(out)
    cfg, weights = finished_generator(run_dir)
    dataset = TuSimpleDataset(data_dir, split, cfg.data.height, cfg.data.width, sigma=cfg.data.sigma, cache=False)
    if not len(dataset):
        raise UserError(data_dir, f"split '{split}' has no frames")
    if out.resolve() in {(Path(data_dir) / p).resolve() for p in ("test_label.json",)}:
        raise UserError(out, "is the split's label file: it would be overwritten")
    check_writable(out, "file")
    generator = build_generator(cfg.generator)
    generator.load_state_dict(weights)
    generator.to(device, memory_format=torch.channels_last).eval()
    kwargs = {"threshold": cfg.eval.threshold, "min_area": cfg.eval.min_area, "max_lanes": cfg.eval.max_lanes}
    lines, all_lanes, times = [], [], []
    # One untimed pass first: the first forward pass builds the kernels' plans (oneDNN, cuDNN), which a
    # benchmark's timing of a deployed model would not include.
    predict_maps(
        generator, dataset[0]["image"][None].contiguous(memory_format=torch.channels_last), torch.device(device)
    )
    for start in range(0, len(dataset), BATCH):
        indices = range(start, min(start + BATCH, len(dataset)))
        images = torch.stack([dataset[i]["image"] for i in indices]).contiguous(memory_format=torch.channels_last)
        began = time.perf_counter()
        maps = predict_maps(generator, images, torch.device(device))  # (b, H, W)
        forward_ms = (time.perf_counter() - began) * 1000 / len(indices)
        for i, prob in zip(indices, maps, strict=True):
            label = dataset.labels[i]
            began = time.perf_counter()
            lanes = lanes_from_map(prob, list(label.h_samples), method=post, **kwargs)
            run_time = forward_ms + (time.perf_counter() - began) * 1000
            lines.append({"raw_file": label.raw_file, "lanes": lanes, "h_samples": list(label.h_samples)})
            lines[-1]["run_time"] = round(run_time, 3)
            all_lanes.append(lanes)
            times.append(run_time)
    atomic_write_text(out, "".join(json.dumps(line) + "\n" for line in lines))
    scores = score_predictions(all_lanes, dataset.labels)
    return Submission(out, len(lines), scores.accuracy, scores.fp, scores.fn, scores.f1, sum(times) / len(times))


def predict_and_score(run_dir: str | Path, data_dir: str | Path, split: str, device: str = "cpu") -> dict:
    """The sweep's --predict: the run's submission file of `split` (basic++) beside its record, scored by the
    evaluator against the split's label file as `python -m elgan_ray.evaluate` would; the scores are written
    beside it too (layout.scores_file), for the report."""
    run_dir = Path(run_dir)
    submission = predict_split(run_dir, data_dir, split, MAIN_POST, run_dir / layout.predictions_file(split), device)
    (label_file,) = split_label_files(data_dir, split)
    accuracy, fp, fn = (item["value"] for item in score_files(submission.path, label_file).result)
    scores = {"split": split, "post": MAIN_POST, "frames": submission.frames, "accuracy": accuracy, "fp": fp}
    scores |= {"fn": fn, "f1": f1_score(fp, fn), "mean_run_time_ms": submission.mean_run_time_ms}
    write_scores(run_dir / layout.scores_file(split), scores)
    return scores
