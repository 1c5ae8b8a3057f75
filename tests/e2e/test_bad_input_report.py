"""The bad-input corpus of `report`: every input checked before anything is written.

Each case must exit with status 2 and print one line naming the file (or flag, or key) and the rule, with no
traceback and nothing half-written left behind (bad_input.py has the contract and the helpers)."""

import resource
import subprocess
import sys

import numpy as np
import pytest
from bad_input import (
    REPORT_COLUMNS,
    assert_user_error,
    check_case,
    deep_json,
    evals_cell,
    evals_column,
    fifo,
    folder,
    preview,
    report_study,
    run,
    run_folder,
    run_unprivileged,
    symlink,
    write,
)

REPORT_CASES = {
    # defect 16: values that are not what the record may hold
    "status-weird": (evals_cell("status", "weird"), "status"),
    "post-zzz": (evals_cell("post", "zzz"), "post"),
    "accuracy-inf": (evals_cell("accuracy", "inf"), "accuracy"),
    "index-bad-csv": (lambda s: write(s.parent / "index.csv", 'a,"b\n1'), "index.csv"),
    # defect 22: a header and no rows
    "header-only": (lambda s: write(s / "evals.csv", ",".join(REPORT_COLUMNS) + "\n"), "no rows"),
    # defect 15: a run folder's records
    "run-config-not-a-mapping": (
        lambda s: write(s / "runs" / "x" / "run.json", '{"trial_id": "t9", "config": [1]}'),
        "run.json",
    ),
    "preview-corrupt": (lambda s: write(s / "runs" / "seed=0" / "preview.npz", b"garbage"), "preview.npz"),
    # defect 13: an index.csv that is not UTF-8
    "index-not-utf-8": (
        lambda s: write(s.parent / "index.csv", b"study,started\ncaf\xe9,x\n"),
        "index.csv",
    ),
    # defect 11: an index.csv that is a folder
    "index-is-a-folder": (lambda s: folder(s.parent / "index.csv"), "index.csv"),
    # --- issue 13 phase 2, more of the same defects ----------------------------------------------------------
    "seed-fractional": (evals_cell("seed", "0.5"), "evals.csv:2: key 'seed'"),
    # the official FP may be below 0 (one predicted lane matching several gt lanes), but not below 1 - 5 lanes
    "fp-below-its-least": (evals_cell("fp", "-4.5"), "evals.csv:2: key 'fp'"),
    "phase-unknown": (evals_cell("phase", "warmup"), "key 'phase'"),
    "health-infinite": (evals_column("d_acc_real", ["0.5", "inf"]), "key 'd_acc_real'"),
    "role-unknown": (evals_column("role", ["gan", "judge"]), "key 'role'"),
    "status-json-weird": (lambda s: run_folder(s, {"status": "weird"}), "status.json"),
    # one status reader for the loop, Tune and the report (run_status.py): a record without a status is refused,
    # not read as `failed`
    "status-json-without-status": (lambda s: run_folder(s, {"train_seconds": 3.0}), "status.json"),
    "run-json-not-json": (lambda s: write(s / "runs" / "x" / "run.json", "{oops"), "run.json"),
    "run-config-nested": (
        lambda s: write(s / "runs" / "x" / "run.json", '{"trial_id": "t9", "config": {"seed": {"a": 1}}}'),
        "config.seed",
    ),
    "preview-wrong-shape": (lambda s: preview(s, image=np.zeros((2, 2), np.uint8)), "preview.npz"),
    "preview-too-large": (lambda s: preview(s, label=np.zeros((1, 4096, 4096), np.float32)), "preview.npz"),
    "study-json-tables": (lambda s: write(s / "study.json", '{"tables": 5}'), "study.json"),
    "report-file-is-a-folder": (lambda s: folder(s / "curves.png"), "curves.png"),
    # found by fuzzing the record: text among numbers, which pandas cannot sort
    "lambda-text": (evals_cell("lambda", "abc"), "key 'lambda'"),
    "loss-unknown": (evals_cell("gen_loss", "bce"), "key 'gen_loss'"),
    "run-config-text-for-a-number": (
        lambda s: write(s / "runs" / "x" / "run.json", '{"trial_id": 5, "config": {"loss.lambda": "abc"}}'),
        "config.loss.lambda",
    ),
}


CASES = {
    "report-garbage-evals": (
        lambda t, d: ["elgan_ray.report", str(write(t / "study" / "evals.csv", b"\x00\xff\xfe garbage").parent)],
        "evals.csv",
    ),
    "report-missing-columns": (
        lambda t, d: ["elgan_ray.report", str(write(t / "study" / "evals.csv", "a,b\n1,2\n").parent)],
        "evals.csv",
    ),
    # report: the gathered record
    "report-missing-evals": (lambda t, d: ["elgan_ray.report", str((t / "study").resolve())], "evals.csv"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_dataset):
    check_case(CASES, case, tmp_path, tiny_dataset)


@pytest.mark.parametrize("case", sorted(REPORT_CASES))
def test_report_refuses_a_bad_record_before_writing_anything(tmp_path, case):
    damage, needle = REPORT_CASES[case]
    study = report_study(tmp_path)
    damage(study)
    index = study.parent / "index.csv"
    index_before = index.read_bytes() if index.is_file() else None
    before = {p.name for p in study.iterdir()}  # evals.csv, runs/ and what the damage made
    assert_user_error(run(["elgan_ray.report", str(study)]), needle)
    written = sorted({p.name for p in study.iterdir()} - before)
    assert written == [], f"written before the error: {written}"
    assert (index.read_bytes() if index.is_file() else None) == index_before


def test_a_report_whose_index_cannot_be_written_writes_nothing(tmp_path):
    """Issue 13, defect 11: an index.csv the user cannot write failed only after the tables and figures."""
    study = report_study(tmp_path)
    study.parent.chmod(0o555)  # results/: index.csv cannot be made; results/stab/ stays writable
    try:
        assert_user_error(run_unprivileged(["elgan_ray.report", str(study)]), "index.csv")
    finally:
        study.parent.chmod(0o755)
    assert sorted(p.name for p in study.iterdir()) == ["evals.csv"]


# -- issue 25 (round 3): inputs that are not regular files, JSON nested too deep, a write that fails ---------------
def deep_val_maps(study):
    """runs/seed=0/val_maps.npz whose labels (JSON text) nest deeper than json can parse."""
    arrays = {"maps": np.zeros((1, 8, 16), np.uint8), "labels": np.array(deep_json()), "threshold": np.float64(0.5)}
    arrays |= {"min_area": np.int64(0), "max_lanes": np.int64(0)}
    (study / "runs" / "seed=0").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(study / "runs" / "seed=0" / "val_maps.npz", **arrays)


def fifo_status(study):
    run_folder(study, {"status": "ok"})
    fifo(study / "runs" / "x" / "status.json")


ISSUE_25 = {
    # D7: a preview that is a link to a device was read without end (OOM at ~15 GB)
    "preview-links-to-dev-zero": (
        lambda s: symlink(folder(s / "runs" / "seed=0") / "preview.npz", "/dev/zero"),
        "preview.npz: not a regular file (a device)",
    ),
    # D10: a FIFO where status.json should be blocked the report for ever
    "status-json-is-a-fifo": (fifo_status, "status.json: not a regular file (a FIFO)"),
    # D12: labels nested too deeply in a run's val_maps.npz were a RecursionError traceback
    "val-maps-deeply-nested-labels": (deep_val_maps, "val_maps.npz: not a run's validation maps (RecursionError"),
    # D20: an evals.csv that exists but is a FIFO was "not found"
    "evals-csv-is-a-fifo": (lambda s: fifo(s / "evals.csv"), "evals.csv: not a regular file (a FIFO)"),
}


@pytest.mark.parametrize("case", sorted(ISSUE_25))
def test_an_input_that_is_no_regular_file_or_too_deep_is_one_line(tmp_path, case):
    damage, needle = ISSUE_25[case]
    study = report_study(tmp_path)
    damage(study)
    before = sorted(p.name for p in study.iterdir())
    # Bounded: an unfixed report reads /dev/zero until the address-space limit, or waits on a FIFO until the timeout.
    assert_user_error(run(["elgan_ray.report", str(study)], limit_mb=2000, timeout=90), needle)
    assert sorted(p.name for p in study.iterdir()) == before


def test_a_report_that_cannot_be_written_leaves_the_previous_one_whole(tmp_path):
    """D14: a write error mid-report (here the file-size limit, as `ulimit -f 20`) left new CSVs and tables beside
    the previous figures, index.csv not updated, and a traceback. The report is written into a staging folder and
    swapped in: the error is one line, and the previous report (index.csv's row too) is exactly as it was."""
    study = report_study(tmp_path)
    first = run(["elgan_ray.report", str(study)])
    assert first.returncode == 0, first.stderr[-2000:]
    previous = {p.name: p.read_bytes() for p in [*study.iterdir(), study.parent / "index.csv"] if p.is_file()}
    assert "summary.csv" in previous and "stability.png" in previous
    evals_cell("accuracy", "0.5")(study)  # a changed record: the new report would differ
    previous["evals.csv"] = (study / "evals.csv").read_bytes()

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20 * 1024, 20 * 1024))  # 20 KB: the CSVs fit, the figures do not

    argv = [sys.executable, "-m", "elgan_ray.report", str(study)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    assert_user_error(done, f"{study}: the report could not be written (File too large): the previous report is")
    now = {p.name: p.read_bytes() for p in [*study.iterdir(), study.parent / "index.csv"] if p.is_file()}
    assert now == previous  # every file as it was, no staging folder, index.csv untouched
    assert sorted(p.name for p in study.iterdir() if p.is_dir()) == []
