"""The bad-input corpus of `sweep`: study files, flags, results folders.

Each case must exit with status 2 and print one line naming the file (or flag, or key) and the rule, with no
traceback and nothing half-written left behind (bad_input.py has the contract and the helpers)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
    fifo,
    folder,
    fuzz,
    run,
    study_bytes,
    study_yaml,
    sweep,
    symlink,
    write,
)

from elgan_ray.lock import OwnerLock

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
    # --- issue 25 (round 3) ---------------------------------------------------------------------------------------
    # D8: an --address where nothing listens was retried by Ray for minutes (real data: the sweep gets to Ray)
    "sweep-address-nothing-listens": (
        lambda t, d: sweep(t, study_yaml(t, ONE_POINT), "--address", "127.0.0.1:1", "--data", str(d)),
        "--address",
        {"timeout": 150},
    ),
    # D9: more CPUs per trial than a local Ray has: Tune waited for ever; refused before Ray starts, as GPUs are
    # (real data: the sweep gets past its other checks)
    "sweep-cpus-more-than-here": (
        lambda t, d: sweep(t, study_yaml(t, ONE_POINT), "--cpus-per-worker", "1024", "--data", str(d)),
        "--cpus-per-worker",
        {"timeout": 150},
    ),
    "sweep-study-cpus-more-than-here": (
        lambda t, d: sweep(t, study_yaml(t, ONE_POINT + "resources: {cpu: 1024}\n"), "--data", str(d)),
        "key 'resources.cpu'",
        {"timeout": 150},
    ),
    "sweep-workers-more-than-here": (
        lambda t, d: sweep(t, study_yaml(t, ONE_POINT), "--workers-per-trial", "1024", "--data", str(d)),
        "--workers-per-trial",
        {"timeout": 150},
    ),
    # D10: a FIFO where index.csv should be blocked the sweep (its dry run too) for ever
    "sweep-index-is-a-fifo": (
        lambda t, d: sweep(t, study_yaml(t, ONE_POINT), "--dry-run", results=fifo(t / "res" / "index.csv").parent),
        "index.csv: not a regular file (a FIFO)",
        {"timeout": 90},
    ),
    # D13: fractions of a CPU finer than Ray's 0.0001 passed our range check and failed inside Ray
    "sweep-cpus-finer-than-ray": (lambda t, d: sweep(t, "stability", "--cpus-per-worker", "1e-9"), "--cpus-per-worker"),
    "sweep-resources-finer-than-ray": (
        lambda t, d: sweep(t, study_yaml(t, ONE_POINT + "resources: {cpu: 0.00001}\n")),
        "key 'resources.cpu'",
    ),
    # D19: a study named _pretrain wrote its folder into the shared pre-training cache
    "sweep-study-named-pretrain": (lambda t, d: sweep(t, study_yaml(t, ONE_POINT, name="_pretrain")), "reserved"),
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


def test_a_sweep_of_a_study_another_sweep_holds_is_refused_naming_the_holder(tmp_path):
    """Issue 25, D1 without Ray: the study's lock is the sweep's first act; a live holder's refuses in one line, a
    dead holder's is taken over (the sweep then goes on to its next check, here the missing --data)."""
    study = study_yaml(tmp_path, ONE_POINT)
    lock = tmp_path / "r" / ".bad.sweep.lock"
    held = OwnerLock(lock, make_parents=True)
    assert held.acquire()
    try:
        done = run(sweep(tmp_path, study))
        holder = f"(host {socket.gethostname()}, pid {os.getpid()}, since "
        assert_user_error(done, f"{lock}: another sweep runs study 'bad' into this results folder {holder}")
        assert lock.exists()  # still this test's
    finally:
        held.release()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write(lock, f"{socket.gethostname()} {dead.stdout.strip()} {time.time():.6f} 0123456789abcdef\n")
    assert_user_error(run(sweep(tmp_path, study)), "nodata")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == []  # the lock taken over, and released


def test_fuzzed_study_files_keep_the_one_line_contract(tmp_path):
    fuzz("study", tmp_path, n=200)


# -- issue 25 (round 3): a --resume of another study, or of a record that is not its own --------------------------
def forged_row(results):
    """D5: a row that names another run (the control, a seed 7): the gather built `identity | row`."""
    row = {"step": 20, "phase": "gan", "post": "basic++", "accuracy": 0.99, "fp": 0.0, "fn": 0.0, "f1": 1.0}
    row |= {"trial_name": "control,seed=0", "role": "control", "trial_id": "FORGED", "seed": 7}
    with open(results / "tiny" / "runs" / "seed=0" / "evals.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")


def renamed_run(results):
    """D23: a run.json whose name and seed are not its folder's."""
    path = results / "tiny" / "runs" / "seed=0" / "run.json"
    run = json.loads(path.read_text())
    run["trial_name"], run["config"]["seed"] = "g=ce,seed=3", 3
    path.write_text(json.dumps(run))


def reseeded_run(results):
    """D23 again, with the folder's name kept: a config that is another run's."""
    path = results / "tiny" / "runs" / "seed=0" / "run.json"
    run = json.loads(path.read_text())
    run["config"]["seed"] = 3
    path.write_text(json.dumps(run))


def more_values(t, study):
    """D3: the study file with a value added to its scientific key, under the same study name."""
    text = study.read_text().replace("- emb", "- ce\n  - emb")
    assert text != study.read_text()
    return write(t / "changed" / "tiny.yaml", text)


RESUME_CASES = {
    # D3: the restored Tuner ran the old parameter space; study.json recorded the new file
    "study-file-changed": (lambda t, s: (more_values(t, s), []), None, "the study file changed (sha256"),
    # D4: nothing ran again, and study.json, table.md and index.csv named the new preset
    "preset-changed": (lambda t, s: (s, ["--preset", "cpu"]), None, "the preset was 'smoke', now 'cpu'"),
    "resources-changed": (lambda t, s: (s, ["--cpus-per-worker", "0.5"]), None, "a trial's resources was"),
    # D5: one row moved itself to another run and changed the control's mean
    "forged-row": (lambda t, s: (s, []), forged_row, "key 'trial_name': is no key of an evaluation row"),
    # D6: a damaged run.json was a traceback after Ray ran, and study.json had lost its end
    "damaged-run-json": (
        lambda t, s: (s, []),
        lambda r: write(r / "tiny" / "runs" / "seed=0" / "run.json", '{"trial_id": "x", '),
        "seed=0/run.json: not valid JSON",
    ),
    # D23: run.json's name and seed renamed the run's rows and its baseline
    "run-json-of-another-run": (lambda t, s: (s, []), renamed_run, "key 'trial_name': names the run 'g=ce,seed=3'"),
    "run-json-of-another-seed": (
        lambda t, s: (s, []),
        reseeded_run,
        "key 'config': its config and role make the run 'seed=3'",
    ),
}


@pytest.mark.ray
@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_a_resume_of_another_study_or_a_foreign_record_is_one_line_before_ray(case, tmp_path, tiny_study):
    """The refusal comes before Ray starts (one line on stderr: no Ray or Tune output) and before study.json is
    written again: the finished study keeps its end and every file."""
    from studies import sweep_command, sweep_env

    results = Path(shutil.copytree(tiny_study.results, tmp_path / "results"))
    arguments, damage, needle = RESUME_CASES[case]
    study, extra = arguments(tmp_path, Path(tiny_study.study))
    if damage:
        damage(results)
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    assert json.loads(before[results / "tiny" / "study.json"])["finished"]
    command = sweep_command(study, results, tiny_study.data, "--resume", *extra)
    done = subprocess.run(command, env=sweep_env(), capture_output=True, text=True, timeout=300)
    assert_user_error(done, needle)
    assert {p: p.read_bytes() for p in results.rglob("*") if p.is_file()} == before
