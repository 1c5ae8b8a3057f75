"""The bad-input corpus of `sweep`: study files, flags, results folders.

Each case must exit with status 2 and print one line naming the file (or flag, or key) and the rule, with no
traceback and nothing half-written left behind (bad_input.py has the contract and the helpers)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from bad_input import (
    FLOAT_AS_TEXT,
    LAUGHS,
    NUISANCE,
    ONE_POINT,
    assert_user_error,
    broken_copy,
    check_case,
    corrupt_label_line,
    folder,
    fuzz,
    study_bytes,
    study_yaml,
    sweep,
    symlink,
    write,
)

CASES = {
    "sweep-bad-data": (
        lambda t, d: [
            "elgan_ray.sweep",
            "stability",
            "--data",
            str(broken_copy(d, t, corrupt_label_line)),
            "--results",
            str(t / "r"),
        ],
        "label_data_0601.json:2",
    ),
    "sweep-cpus-inf": (lambda t, d: sweep(t, "stability", "--cpus-per-worker", "inf"), "--cpus-per-worker"),
    # --- issue 13 phase 2, more of the same defects ----------------------------------------------------------
    # defect 4: nesting deep enough to exhaust PyYAML's recursion, an integer past Python's 4300 digits
    "sweep-deep-nesting": (lambda t, d: sweep(t, study_yaml(t, "seeds: " + "[" * 2000 + "\n")), "bad.yaml:4"),
    "sweep-fixed-growth-zero": (  # --data nodata: an unfixed sweep stops there instead of starting Ray
        lambda t, d: [
            "elgan_ray.sweep",
            study_yaml(t, "scientific: {loss.gen: [ce]}\nfixed: {discriminator.growth: 0}\n"),
            "--results",
            str(t / "r"),
            "--data",
            str(t / "nodata"),
        ],
        "discriminator.growth",
    ),
    "sweep-float-as-string": (
        lambda t, d: ["elgan_ray.sweep", study_yaml(t, FLOAT_AS_TEXT), "--results", str(t / "r")],
        "1.0e-5",
    ),
    "sweep-gpus-nan": (lambda t, d: sweep(t, "stability", "--gpus-per-worker", "nan"), "--gpus-per-worker"),
    "sweep-gpus-negative": (lambda t, d: sweep(t, "stability", "--gpus-per-worker", "-1"), "--gpus-per-worker"),
    "sweep-huge-integer": (lambda t, d: sweep(t, study_yaml(t, "seeds: " + "9" * 5000 + "\n")), "bad.yaml"),
    # defect 6: a count of seeds no machine can hold
    "sweep-huge-seeds": (
        lambda t, d: [
            "elgan_ray.sweep",
            study_yaml(t, "scientific: {loss.gen: [ce]}\nseeds: 1000000000000\n"),
            "--results",
            str(t / "r"),
        ],
        "seeds",
        {"limit_mb": 700},
    ),
    "sweep-index-is-a-folder": (
        lambda t, d: sweep(t, "stability", results=folder(t / "res" / "index.csv").parent),
        "index.csv",
    ),
    "sweep-index-not-utf-8": (
        lambda t, d: sweep(
            t, "stability", results=write(t / "res" / "index.csv", b"study,started\ncaf\xe9,x\n").parent
        ),
        "index.csv:2",
    ),
    # defect 13: a study file that is not UTF-8
    "sweep-latin1-comment": (
        lambda t, d: [
            "elgan_ray.sweep",
            study_bytes(t, b"# caf\xe9\nscientific: {loss.gen: [ce]}\n"),
            "--results",
            str(t / "r"),
        ],
        "bad.yaml",
    ),
    "sweep-long-choice": (
        lambda t, d: sweep(
            t, study_yaml(t, ONE_POINT + f"nuisance: {{loss.lambda: {{choice: {list(range(500))}}}}}\n")
        ),
        "loss.lambda",
    ),
    "sweep-max-concurrent-negative": (lambda t, d: sweep(t, "stability", "--max-concurrent", "-1"), "--max-concurrent"),
    "sweep-report-file-is-a-folder": (
        lambda t, d: sweep(
            t, "stability", "--resume", results=folder(t / "res" / "stability" / "summary.csv").parent.parent
        ),
        "summary.csv",
    ),
    # defect 8: every field's range, where it is declared (a study's resources share the sweep flags' ranges)
    "sweep-resources-inf": (
        lambda t, d: sweep(t, study_yaml(t, ONE_POINT + "resources: {cpu: .inf}\n")),
        "resources.cpu",
    ),
    # defect 11: the results folder and its index, checked before the first trial
    "sweep-results-dangling-symlink": (
        lambda t, d: sweep(t, "stability", results=symlink(t / "link", t / "nowhere")),
        "link",
    ),
    "sweep-results-is-a-file": (
        lambda t, d: ["elgan_ray.sweep", "stability", "--results", str(write(t / "afile", "x"))],
        "afile",
    ),
    "sweep-results-under-a-file": (
        lambda t, d: ["elgan_ray.sweep", "stability", "--results", str(write(t / "afile", "x") / "r")],
        "afile",
    ),
    "sweep-resume-damaged-study-json": (
        lambda t, d: sweep(
            t, "stability", "--resume", results=write(t / "res" / "stability" / "study.json", "[1]").parent.parent
        ),
        "study.json",
    ),
    # --- phase 2: the fix lives in a file issue 14 is reorganising ---------------------------------------------
    # defect 4 (study YAMLs): aliases in a study file
    "sweep-study-aliases": (
        lambda t, d: [
            "elgan_ray.sweep",
            study_yaml(t, f"scientific: {{loss.gen: [ce]}}\nseeds: {LAUGHS}\n"),
            "--results",
            str(t / "r"),
        ],
        "bad.yaml",
        {"limit_mb": 700},
    ),
    "sweep-study-too-large": (lambda t, d: sweep(t, study_yaml(t, ONE_POINT + "#" * 70_000 + "\n")), "bad.yaml"),
    "sweep-too-many-samples": (
        lambda t, d: sweep(t, study_yaml(t, NUISANCE + "num_samples: 1000000000\n")),
        "num_samples",
        {"limit_mb": 700},
    ),
    # defect 6: counts bounded before anything of their size is built
    "sweep-too-many-trials": (
        lambda t, d: sweep(t, study_yaml(t, f"scientific: {{loss.lambda: {list(range(100))}}}\nseeds: 100\n")),
        "GAN trials",
        {"limit_mb": 700},
    ),
    "sweep-unknown-key": (
        lambda t, d: ["elgan_ray.sweep", study_yaml(t, "scientific: {loss.genn: [ce]}\n"), "--results", str(t / "r")],
        "loss.genn",
    ),
    # sweep: study YAML and flags; all fail before Ray starts
    "sweep-unknown-study": (lambda t, d: ["elgan_ray.sweep", "nostudy", "--results", str(t / "r")], "nostudy"),
    "sweep-unknown-value": (
        lambda t, d: [
            "elgan_ray.sweep",
            study_yaml(t, "scientific: {loss.gen: [ce, bogus]}\n"),
            "--results",
            str(t / "r"),
        ],
        "loss.gen",
    ),
    "sweep-workers-huge": (lambda t, d: sweep(t, "stability", "--workers-per-trial", "10" * 20), "--workers-per-trial"),
    "sweep-yaml-syntax": (
        lambda t, d: ["elgan_ray.sweep", study_yaml(t, "scientific: {loss.gen: [ce\n"), "--results", str(t / "r")],
        "bad.yaml",
    ),
    "sweep-zero-workers": (
        lambda t, d: ["elgan_ray.sweep", "stability", "--workers-per-trial", "0", "--results", str(t / "r")],
        "--workers-per-trial",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_dataset):
    check_case(CASES, case, tmp_path, tiny_dataset)


def test_sweep_refuses_nan_cpus_before_it_writes_or_starts_ray(tmp_path):
    """An unfixed sweep accepts nan, writes study.json and starts Ray; it is stopped as soon as study.json appears,
    before Ray starts."""
    results = tmp_path / "r"
    argv = [sys.executable, "-m", "elgan_ray.sweep", "stability", "--cpus-per-worker", "nan", "--results", str(results)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and not (results / "stability").exists():
        time.sleep(0.02)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the sweep and anything it started
    out, err = process.communicate()
    assert not results.exists(), "the sweep wrote its results folder"
    assert_user_error(subprocess.CompletedProcess(argv, process.returncode, out, err), "--cpus-per-worker")


def test_fuzzed_study_files_keep_the_one_line_contract(tmp_path):
    fuzz("study", tmp_path, n=200)
