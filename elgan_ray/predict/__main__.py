"""python -m elgan_ray.predict RUN_DIR: a finished run's final generator on a split, as a TuSimple submission file.

Examples:
  python -m elgan_ray.predict results/train/smoke-seed0 --data DATA --split test --out pred.json
  python -m elgan_ray.evaluate pred.json DATA/test_label.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from elgan_ray.errors import run_cli
from elgan_ray.record.names import MAIN_POST, POSTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.predict",
        description="Write a TuSimple submission file (one JSON line per frame: raw_file, lanes, h_samples, "
        "run_time in ms) from a finished run's final generator: a `train --out` folder, a sweep's runs/NAME "
        "or a shared pre-training (the baseline). Frames whose run_time exceeds 200 ms score 0 in the official "
        "metric, as on the benchmark.",
        epilog="Score it with: python -m elgan_ray.evaluate OUT DATA/test_label.json",
    )
    parser.add_argument("run_dir", type=Path, help="a finished run's folder (holding checkpoint.pt)")
    parser.add_argument("--data", help="TuSimple-layout folder (default: the embedded synthetic set)")
    parser.add_argument("--split", default="test", choices=("test", "val"), help="the frames to predict")
    parser.add_argument("--post", default=MAIN_POST, choices=POSTS, help="post-processing (default: basic++)")
    parser.add_argument("--out", type=Path, help="the submission file (default: RUN_DIR/predictions_SPLIT.json)")
    parser.add_argument("--device", help="torch device (default: cuda when torch sees one, else cpu)")
    args = parser.parse_args(argv)
    from elgan_ray.files import check_writable

    out = check_writable(args.out or args.run_dir / f"predictions_{args.split}.json", "file")  # before any work
    from elgan_ray.predict.submission import predict_split  # torch only once the arguments are good
    from elgan_ray.train.device import check_device, default_device

    device = args.device or default_device()
    check_device(device)
    data = args.data
    if data is None:
        from elgan_ray.data.synthetic import embedded_dataset

        data = embedded_dataset()
    done = predict_split(args.run_dir, data, args.split, args.post, out, device)
    print(
        f"{done.frames} frames -> {done.path} (mean run_time {done.mean_run_time_ms:.1f} ms); in-process "
        f"{args.post}: accuracy {done.accuracy:.4f}  FP {done.fp:.4f}  FN {done.fn:.4f}  F1 {done.f1:.4f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
