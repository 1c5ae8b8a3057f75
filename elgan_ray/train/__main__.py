"""python -m elgan_ray.train: one EL-GAN training run in this process (no Ray), with TensorBoard output.

Examples:
  python -m elgan_ray.train --preset smoke --out /tmp/run
  python -m elgan_ray.train --preset cpu loss.gen=ce loss.disc=ce --seed 3
  python -m elgan_ray.train --describe --preset paper
"""

from __future__ import annotations

import argparse
import json
import sys

from elgan_ray.config import RunSettings, TrainConfig, flat_keys, parse_overrides
from elgan_ray.errors import UserError, run_cli
from elgan_ray.presets import PRESETS, preset
from elgan_ray.record import layout
from elgan_ray.record.runs import record_files
from elgan_ray.train.device import check_device, default_device


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.train",
        description="Train EL-GAN once: pre-train the generator (the baseline), pre-train the discriminator, "
        "then alternate G and D steps. Writes evals.jsonl (one line per evaluation and post-processing), "
        "checkpoint.pt (resumed automatically when present), preview.npz and TensorBoard events to --out.",
        epilog="Overrides are flat config keys: " + ", ".join(flat_keys()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="model and schedule scale")
    parser.add_argument("--data", help="TuSimple-layout folder (default: the embedded synthetic set, made once)")
    parser.add_argument("--out", help="output folder (default: results/train/<preset>-seed<N>)")
    parser.add_argument("--seed", type=int, help="random seed (same seed and config: same metrics on CPU)")
    parser.add_argument(
        "--device", help="torch device, e.g. cpu or cuda:0 (default: cuda when torch sees one, else cpu)"
    )
    parser.add_argument("--describe", action="store_true", help="print the models' conv and parameter counts")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. loss.gen=ce")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
    flat = parse_overrides(args.overrides)
    if args.seed is not None:
        flat["seed"] = args.seed
    return preset(args.preset).with_flat(flat, source="command line")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = build_config(args)
    if args.describe:
        from elgan_ray.models import describe

        print(json.dumps(describe(cfg.generator, cfg.discriminator)))
        return 0
    from elgan_ray.files import check_writable

    out = check_writable(args.out or f"results/train/{args.preset}-seed{cfg.seed}", "folder")
    device = args.device or default_device()
    check_device(device)
    from elgan_ray.train.loop import train  # torch is imported only when a run starts

    settings = RunSettings(out_dir=str(out), data_dir=args.data, device=device, run_name=out.name)
    checkpoint = out / layout.CHECKPOINT_FILE
    if checkpoint.exists() or checkpoint.is_symlink():
        from elgan_ray.record.runs import read_run_evals
        from elgan_ray.train.checkpoint import load_checkpoint

        load_checkpoint(checkpoint, cfg.to_flat())  # a bad checkpoint fails here, in one line
        read_run_evals(out, warn=False)  # and so does a damaged record, before any work
        print(f"resuming from {checkpoint}", file=sys.stderr)
    elif record_files(out):  # a run starts from step 0 and would drop every row after it: the record would be lost
        rule = f"holds a run's record ({', '.join(record_files(out))}) but no {layout.CHECKPOINT_FILE} to resume it "
        raise UserError(out, rule + "from: give another --out, or move the record away")
    result = train(cfg, settings, report=print_progress)
    from elgan_ray.train.run_log import json_safe

    # A diverged run's metrics are NaN, which JSON does not have: null keeps stdout one JSON object.
    print(json.dumps(json_safe({"status": result.status, "step": result.step, **result.final})))
    print(f"TensorBoard: tensorboard --logdir {out}", file=sys.stderr)
    return 0 if result.status == "ok" else 1


def print_progress(step: int, metrics: dict) -> None:
    """One line per evaluation on stderr, so a long run shows where it is."""
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    print(" ".join(f"{k}={v}" for k, v in shown.items()), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(run_cli(main))
