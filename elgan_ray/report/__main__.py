"""python -m elgan_ray.report results/<study>: the tables and figures of a study folder, and its index row."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from elgan_ray.errors import run_cli
from elgan_ray.record import layout, store
from elgan_ray.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.report",
        description="Tables (summary.csv, final.csv, pairwise.csv, health.csv, ensemble.csv, table.md, table.tex) and "
        "figures (stability, curves, health, ensemble, predictions) of a study folder from its evals.csv; adds the "
        "study run's row to <results>/index.csv.",
    )
    parser.add_argument(
        "study_dir",
        help="results/<study>: the folder holding evals.csv, or its storage URI (s3://bucket/prefix/<study>)",
    )
    parser.add_argument("--results", help="where index.csv lives (default: the study folder's parent)")
    args = parser.parse_args(argv)
    study_dir, results = Path(args.study_dir), args.results and Path(args.results)
    storage = None
    if store.is_uri(args.study_dir):  # read from the store into this machine's mirror, written back there
        storage, name = (args.results or args.study_dir.rstrip("/").rsplit("/", 1)[0]), args.study_dir.rstrip("/")
        results = store.mirror_root(storage)
        study_dir = layout.study_dir(results, name.rsplit("/", 1)[1])
        store.pull_study(storage, study_dir)
    written, warnings = write_report(study_dir, results)
    if storage:
        store.push_report(storage, study_dir, written.values())
        written = {name: store.uri_of(storage, path) for name, path in written.items()}
    for line in warnings:
        print(line, file=sys.stderr)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
