"""python -m elgan_ray.report results/<study>: the tables and figures of a study folder, and its index row."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from elgan_ray.errors import run_cli
from elgan_ray.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.report",
        description="Tables (summary.csv, final.csv, pairwise.csv, health.csv, ensemble.csv, table.md, table.tex) and "
        "figures (stability, curves, health, ensemble, predictions) of a study folder from its evals.csv; adds the "
        "study run's row to <results>/index.csv.",
    )
    parser.add_argument("study_dir", type=Path, help="results/<study>: the folder holding evals.csv")
    parser.add_argument("--results", type=Path, help="where index.csv lives (default: the study folder's parent)")
    args = parser.parse_args(argv)
    written, warnings = write_report(args.study_dir, args.results)
    for line in warnings:
        print(line, file=sys.stderr)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
