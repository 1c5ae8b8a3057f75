"""`python -m elgan_ray.evaluate PRED.json GT.json`: the official TuSimple result line, per-image scores, F1.

stdout gets exactly what the benchmark prints, `[{"name": "Accuracy", ...}, {"name": "FP", ...}, {"name": "FN", ...}]`;
a readable summary with F1 goes to stderr. Bad input stops with one line naming the file, the line and the rule
(with the official wording; score.py). `--oracle DATA_DIR` scores the labels themselves after rendering them as
maps at a training size and post-processing them: the ceiling a post-processor leaves at that set-up.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import Any

from elgan_ray.config import IMAGE_HEIGHT, IMAGE_WIDTH, TrainConfig
from elgan_ray.errors import UserError, quoted, run_cli
from elgan_ray.evaluate.metric import f1_score
from elgan_ray.evaluate.score import oracle_result, score_files
from elgan_ray.record.names import MAIN_POST, POSTS


def parse_size(text: str) -> tuple[int, int]:
    """'128x256' -> (128, 256)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 6 and int(p) > 0 for p in parts):
        raise UserError("--size", f"{quoted(text)} is not HxW with positive integers, e.g. 128x256")
    size = int(parts[0]), int(parts[1])
    if size[0] > IMAGE_HEIGHT or size[1] > IMAGE_WIDTH:  # --oracle renders no map larger than a TuSimple frame
        raise UserError("--size", f"{text} is larger than a TuSimple frame (at most {IMAGE_HEIGHT}x{IMAGE_WIDTH})")
    return size


def check_output(path: str, inputs: tuple[str, str]) -> None:
    """--per-image: a path that can be written, and neither input file (it would be replaced by the scores)."""
    from elgan_ray.files import check_writable

    for given, what in zip(inputs, ("prediction", "label"), strict=True):
        try:
            same = os.path.samefile(path, given)
        except OSError:  # one of them does not exist (yet): compare where they would be
            same = os.path.realpath(path) == os.path.realpath(given)
        if same:
            raise UserError("--per-image", f"{quoted(path)} is the {what} file: it would be overwritten")
    check_writable(path, "file")


def summary(result: list[dict]) -> str:
    """One readable line: the three official figures and F1 (spec: P = 1 - FP, R = (1 - FP) / (1 - FP + FN))."""
    acc, fp, fn = (item["value"] for item in result)
    return f"accuracy {acc:.4f}  FP {fp:.4f}  FN {fn:.4f}  F1 {f1_score(fp, fn):.4f}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.evaluate",
        description="TuSimple evaluation, identical to the official benchmark (TuSimple's evaluate/lane.py; "
        "docs/tusimple-metric.md states its rules, quirks included).",
    )
    parser.add_argument("pred", nargs="?", help="prediction file: one JSON object per line")
    parser.add_argument("gt", nargs="?", help="label file: one JSON object per line")
    parser.add_argument("--per-image", metavar="OUT.jsonl", help="also write raw_file, accuracy, fp, fn per line")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    parser.add_argument("--oracle", metavar="DATA_DIR", help="score the post-processed labels of a split instead")
    parser.add_argument("--split", default="val", help="split for --oracle (default: val)")
    parser.add_argument("--post", default=MAIN_POST, choices=POSTS, help="post-processing for --oracle")
    oracle = parser.add_argument_group("--oracle's training set-up (default: the cpu preset's; flags override it)")
    oracle.add_argument("--preset", default="cpu", help="take size, label sigma and eval keys from this preset")
    oracle.add_argument("--size", help="map size HxW (data.height x data.width)")
    oracle.add_argument("--sigma", type=float, help="label line width in training pixels (data.sigma)")
    oracle.add_argument("--min-area", type=int, help="our speck filter in training pixels (eval.min_area; 0: off)")
    oracle.add_argument("--max-lanes", type=int, help="our cap on lanes per frame (eval.max_lanes; 0: off)")
    return parser


def oracle_config(args: argparse.Namespace) -> TrainConfig:
    """The preset with --size, --sigma, --min-area and --max-lanes over it, each checked as a config key."""
    from elgan_ray.presets import preset

    flat: dict[str, Any] = {}
    if args.size is not None:
        flat["data.height"], flat["data.width"] = parse_size(args.size)
    for flag, key in (("sigma", "data.sigma"), ("min_area", "eval.min_area"), ("max_lanes", "eval.max_lanes")):
        if getattr(args, flag) is not None:
            flat[key] = getattr(args, flag)
    return preset(args.preset).with_flat(flat, source="--oracle")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, score, print the official list (stdout) and a summary (stderr)."""
    enabled = gc.isenabled()
    gc.disable()  # the parsed files hold no cycles; a collection over them would cost more than the scoring
    try:
        return _main(argv)
    finally:
        if enabled:
            gc.enable()


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.oracle is not None:
        if args.pred or args.gt or args.per_image:
            raise UserError("evaluate", "--oracle takes no prediction or label files")
        cfg = oracle_config(args)  # before the labels are read: a bad size or key is refused without any work
        result = oracle_result(args.oracle, args.split, args.post, cfg)
        print(json.dumps(result))
        if not args.quiet:
            setup = f"{cfg.data.height}x{cfg.data.width}, sigma {cfg.data.sigma:g}"
            setup += f", min_area {cfg.eval.min_area}, max_lanes {cfg.eval.max_lanes}"
            print(f"oracle ceiling of {args.post} at {setup}: {summary(result)}", file=sys.stderr)
        return 0
    if args.pred is None or args.gt is None:
        raise UserError("evaluate", "give PRED.json GT.json, or --oracle DATA_DIR")
    if args.per_image:
        check_output(args.per_image, (args.pred, args.gt))
    scores = score_files(args.pred, args.gt)
    if args.per_image:
        from elgan_ray.files import atomic_write_text

        rows = zip(scores.raw_files, scores.accuracy.tolist(), scores.fp.tolist(), scores.fn.tolist(), strict=True)
        text = "".join(json.dumps({"raw_file": r, "accuracy": a, "fp": p, "fn": n}) + "\n" for r, a, p, n in rows)
        atomic_write_text(args.per_image, text)
    print(json.dumps(scores.result))
    if not args.quiet:
        print(f"{summary(scores.result)}  ({len(scores.raw_files)} predictions)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    status = run_cli(main)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: freeing the million parsed JSON objects one by one takes longer than
    # scoring them. Output is flushed and --per-image was written atomically, so nothing is lost.
    os._exit(status)
