"""Shared helpers of the bad-input corpus (tests/e2e/test_bad_input_*.py): files to damage, the commands
run as a user runs them, and the one-line contract every case must keep."""

import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

GOOD_LANE = [-2] * 10 + list(range(300, 346))  # 56 values, one per h_sample


def label_line(raw_file, lanes=None, h_samples=None):
    return json.dumps(
        {"raw_file": raw_file, "lanes": lanes or [GOOD_LANE], "h_samples": h_samples or list(range(160, 711, 10))}
    )


def pred_line(raw_file, lanes=None, run_time=10):
    return json.dumps({"raw_file": raw_file, "lanes": lanes or [GOOD_LANE], "run_time": run_time})


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def broken_copy(tiny_dataset, tmp_path, damage):
    """A copy of the tiny dataset with one thing broken by `damage(root)`."""
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    damage(root)
    return root


def first_val_image(root):
    return root / json.loads((root / "label_data_0601.json").read_text().splitlines()[0])["raw_file"]


def eval_files(tmp_path, pred_lines, gt_lines=None):
    gt = write(tmp_path / "gt.json", "\n".join(gt_lines or [label_line("a.jpg"), label_line("b.jpg")]) + "\n")
    pred = write(tmp_path / "pred.json", "\n".join(pred_lines) + "\n")
    return ["elgan_ray.evaluate", str(pred), str(gt)]


def study_yaml(tmp_path, body, name="bad"):
    base = Path(__file__).resolve().parents[2] / "search_spaces" / "base.yaml"
    return str(write(tmp_path / f"{name}.yaml", f"study: {name}\ndescription: x\nbase: {base}\n{body}"))


def corrupt_label_line(root):
    path = root / "label_data_0601.json"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")


def short_lane(root):
    path = root / "label_data_0601.json"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["lanes"][0] = record["lanes"][0][:-1]
    path.write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n")


FLOAT_AS_TEXT = "scientific: {loss.gen: [ce]}\nfixed: {optim.lr_g: 1e-5}\n"  # PyYAML reads 1e-5 as text


# "Billion laughs": 9 levels of 9 aliases, under 500 bytes, stand for 9**9 strings once expanded or printed.
LAUGHS = "[" + ", ".join(["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)
]) + "]"  # fmt: skip


# A few steps on a couple of frames: where an unfixed defect lets training start, it ends in seconds.
QUICK = ["schedule.pretrain_g_steps=1", "schedule.pretrain_d_steps=1", "schedule.gan_steps=0"]


QUICK += ["schedule.eval_every=1", "data.val_limit=1", "data.train_limit=2"]


ONE_POINT = "scientific: {loss.gen: [ce]}\n"


NUISANCE = ONE_POINT + "nuisance: {optim.lr_g: {loguniform: [1.0e-5, 1.0e-3]}}\n"


def sweep(t, study, *extra, results=None):
    """`sweep STUDY --results t/r` (or `results`); a sweep that gets past its checks stops at --data t/nodata,
    before it writes anything or starts Ray."""
    return ["elgan_ray.sweep", study, "--results", str(results or t / "r"), "--data", str(t / "nodata"), *extra]


def train(t, d, *extra, out=None):
    """`train --preset smoke` on the tiny set with the QUICK schedule, writing to t/o (or `out`)."""
    return ["elgan_ray.train", "--preset", "smoke", "--data", str(d), "--out", str(out or t / "o"), *QUICK, *extra]


def show(t, d, damage, *extra):
    return ["elgan_ray.data", "show", str(broken_copy(d, t, damage)), "--out", str(t / "s.png"), "--split", "val"]


def edit_val_label(change):
    """A damage(root) that applies change(record, root) to the first validation label line."""

    def damage(root):
        path = root / "label_data_0601.json"
        lines = path.read_text().splitlines()
        record = json.loads(lines[0])
        change(record, root)
        path.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")

    return damage


def raw_file_outside(absolute):
    """The first validation label points at a real frame just outside the dataset folder."""

    def change(record, root):
        shutil.copy(root / record["raw_file"], root.parent / "OUTSIDE.jpg")
        record["raw_file"] = str(root.parent / "OUTSIDE.jpg") if absolute else "../OUTSIDE.jpg"

    return edit_val_label(change)


def huge_x(value):
    def change(record, root):
        record["lanes"][0][20] = value

    return edit_val_label(change)


def bit_flips(root):
    """64 random bytes (no 0xFF, so no new marker) in the middle of a frame's compressed data: libjpeg warns
    "Corrupt JPEG data" and still returns a frame, grey past the damage."""
    path = first_val_image(root)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = np.random.default_rng(0).integers(0, 255, 64, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def symlink(link, target):
    link.symlink_to(target)
    return link


def folder(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def without_cache(**extra):
    """The environment without ELGAN_RAY_CACHE, plus `extra`."""
    return {k: v for k, v in os.environ.items() if k != "ELGAN_RAY_CACHE"} | extra


def study_bytes(tmp_path, body: bytes, name="bad"):
    base = Path(__file__).resolve().parents[2] / "search_spaces" / "base.yaml"
    head = f"study: {name}\ndescription: x\nbase: {base}\n".encode()
    return str(write(tmp_path / f"{name}.yaml", head + body))


def huge_line(t, d):
    """One 20 MB prediction line (a plain port needs about 90 times that in memory)."""
    lanes = "[[" + "1, " * 6_666_666 + "1]]"
    pred = write(t / "pred.json", '{"raw_file": "a.jpg", "lanes": ' + lanes + ', "run_time": 10}\n')
    gt = write(t / "gt.json", label_line("a.jpg") + "\n")
    return ["elgan_ray.evaluate", str(pred), str(gt)]


def run(argv, env=None, limit_mb=None, timeout=300):
    """`python -m argv...` under umask 022; with limit_mb, under that address-space limit (a leak fails fast)."""

    def limit():
        os.umask(0o022)
        if limit_mb:
            resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))

    return subprocess.run(
        [sys.executable, "-m", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=(env or os.environ) | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        preexec_fn=limit,
    )


def assert_user_error(done, needle):
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1, done.stderr[-2000:]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout.strip() == ""


SMOKE_STEPS = ["schedule.pretrain_g_steps=2", "schedule.pretrain_d_steps=0", "schedule.gan_steps=0"]


SMOKE_STEPS += ["schedule.eval_every=1", "data.val_limit=2", "data.train_limit=4"]


def smoke_checkpoint(trained, tmp_path):
    """A copy of the trained run, to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def resume_command(out, tiny_dataset):
    return ["elgan_ray.train", "--preset", "smoke", "--data", str(tiny_dataset), "--out", str(out), *SMOKE_STEPS]


def resaved(checkpoint, change):
    state = torch.load(checkpoint, weights_only=True)
    change(state)
    torch.save(state, checkpoint)


def marker_only(root):
    write(root / "Documents" / "thesis.tex", "t\n")
    write(root / "synthetic.json", "{}\n")
    return root / "Documents" / "thesis.tex"


def file_in_an_earlier_set(root, tiny_dataset):
    shutil.copytree(tiny_dataset, root)
    return write(root / "clips" / "0601" / "notes.txt", "mine\n")


# -- outputs a user cannot write, inputs a user cannot read -----------------------------------------------------
def _without_file_privileges():
    """Root ignores file modes: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (from the bounding set, so that they
    stay dropped across exec) to make root's child meet modes as any user does. Other users need nothing."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(argv):
    """`python -m argv` under umask 022, meeting file modes as an ordinary user does."""

    def setup():
        os.umask(0o022)
        _without_file_privileges()

    try:
        return subprocess.run(
            [sys.executable, "-m", *argv], capture_output=True, text=True, timeout=300, preexec_fn=setup
        )
    except subprocess.SubprocessError as error:  # a container that forbids dropping capabilities
        pytest.skip(f"cannot run without file privileges here: {error}")


def modes(root):
    """{path relative to root's parent: permission bits} of root and everything under it."""
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


# -- report: every input checked before anything is written (issue 13, defects 13, 15, 16, 22, 11) -----------------
REPORT_COLUMNS = ["trial_id", "kind", "trial_name", "seed", "gen_loss", "disc_loss", "lambda", "emb_block"]


REPORT_COLUMNS += ["phase", "step", "post", "accuracy", "fp", "fn", "f1", "status"]


def report_study(tmp_path):
    """results/stab: two GAN trials (seeds 0, 1), two evaluations each, both post-processings."""
    study = tmp_path / "results" / "stab"
    rows = [
        [f"t{seed}", "gan", f"seed={seed}", seed, "emb", "ce", 1.0, 7, "gan", step, post, 0.9, 0.1, 0.1, 0.9, "ok"]
        for seed in (0, 1)
        for step in (10, 20)
        for post in ("basic", "basic++")
    ]
    lines = [",".join(REPORT_COLUMNS)] + [",".join(map(str, row)) for row in rows]
    write(study / "evals.csv", "\n".join(lines) + "\n")
    return study


def evals_cell(column, value, row=1):
    def damage(study):
        lines = (study / "evals.csv").read_text().splitlines()
        cells = lines[row].split(",")
        cells[REPORT_COLUMNS.index(column)] = value
        lines[row] = ",".join(cells)
        (study / "evals.csv").write_text("\n".join(lines) + "\n")

    return damage


def evals_column(column, values):
    """A damage(study) that adds `column` to evals.csv, with values[i] in row i + 1 and empty cells after."""

    def damage(study):
        lines = (study / "evals.csv").read_text().splitlines()
        cells = values + [""] * (len(lines) - 1 - len(values))
        lines = [lines[0] + f",{column}"] + [f"{line},{cell}" for line, cell in zip(lines[1:], cells, strict=True)]
        (study / "evals.csv").write_text("\n".join(lines) + "\n")

    return damage


def run_folder(study, status):
    """runs/x: a GAN run with no evaluation row (a silent run) whose status.json holds `status`."""
    config = {"seed": 2, "loss.gen": "emb", "loss.disc": "ce", "loss.lambda": 1.0, "loss.emb_block": 7}
    write(study / "runs" / "x" / "run.json", json.dumps({"trial_id": "t9", "trial_name": "x", "config": config}))
    write(study / "runs" / "x" / "status.json", json.dumps(status))


def preview(study, **arrays):
    """runs/seed=0/preview.npz: a good one (2 frames of 8x16) with `arrays` replacing its own."""
    good = {"image": np.zeros((2, 8, 16, 3), np.uint8), "label": np.zeros((2, 8, 16), np.float32)}
    good["prob"] = np.zeros((2, 8, 16), np.float32)
    (study / "runs" / "seed=0").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(study / "runs" / "seed=0" / "preview.npz", **(good | arrays))


FUZZ = Path(__file__).resolve().parent.parent / "fuzz_cli.py"


def fuzz(kind, tmp_path, n, seed=0):
    """Run tests/fuzz_cli.py in its own process under a 3 GB address-space limit."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    argv = [sys.executable, str(FUZZ), kind, "--seed", str(seed), "--n", str(n), "--work", str(tmp_path)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "ELGAN_RAY_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, preexec_fn=limit)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]


def check_case(cases: dict, case: str, tmp_path: Path, tiny_dataset: Path) -> None:
    """Run one corpus case: exit status 2, one line holding its needle, nothing written. Options: `env` (a function of
    tmp_path), `limit_mb` (an address-space limit), `timeout` (seconds: a case that used to hang fails fast)."""
    build, needle, *options = cases[case]
    options = options[0] if options else {}
    argv = build(tmp_path, tiny_dataset)
    env = options["env"](tmp_path) if "env" in options else None
    done = run(argv, env=env, limit_mb=options.get("limit_mb"), timeout=options.get("timeout", 300))
    assert_user_error(done, needle)
    assert not (tmp_path / "o").exists()  # train made no output folder
    assert not (tmp_path / "r").exists()  # the sweep wrote no results
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "out").exists()


def fifo(path):
    """A FIFO at `path` (nobody writes to it: opening it for reading the usual way waits for ever)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def deep_json(depth=100_000):
    """JSON text nested `depth` lists deep: more than Python's recursion limit lets json parse."""
    return "[" * depth + "]" * depth


def deep_label(root):
    """The validation label file as one line whose lanes nest deeper than json can parse."""
    write(root / "label_data_0601.json", '{"raw_file": "a", "lanes": ' + deep_json() + ', "h_samples": [1]}\n')


# Starts argv[2:] and writes its peak resident memory (KB) to argv[1]: the launcher is small, so the peak is the
# command's own (a child forked from a large process counts that process's pages until it execs).
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_peak_rss(argv, timeout=300):
    """`python -m argv...` as run() runs it, and its peak resident memory in MB."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        peak = Path(folder) / "peak"
        command = [sys.executable, "-c", _LAUNCHER, str(peak), sys.executable, "-m", *argv]
        env = os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        return done, int(peak.read_text()) / 1024
