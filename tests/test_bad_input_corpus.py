"""The bad-input corpus: every command, every format. Each case must exit with status 2 and print one line
naming the file (or flag, or key) and the rule, with no traceback and nothing half-written left behind.

Every numbered defect of issue 13 has its reproducer here (or in test_faults.py). Memory-hungry reproducers
run under an address-space limit, so that a regression fails fast with a MemoryError instead of exhausting the machine.
"""

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
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
    base = Path(__file__).resolve().parent.parent / "search_spaces" / "base.yaml"
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
    base = Path(__file__).resolve().parent.parent / "search_spaces" / "base.yaml"
    head = f"study: {name}\ndescription: x\nbase: {base}\n".encode()
    return str(write(tmp_path / f"{name}.yaml", head + body))


def huge_line(t, d):
    """One 20 MB prediction line (a plain port needs about 90 times that in memory)."""
    lanes = "[[" + "1, " * 6_666_666 + "1]]"
    pred = write(t / "pred.json", '{"raw_file": "a.jpg", "lanes": ' + lanes + ', "run_time": 10}\n')
    gt = write(t / "gt.json", label_line("a.jpg") + "\n")
    return ["elgan_ray.evaluate", str(pred), str(gt)]


CASES = {
    # evaluate: prediction and label files
    "eval-malformed-json": (lambda t, d: eval_files(t, [pred_line("a.jpg"), "{oops"]), "pred.json:2"),
    "eval-blank-line": (lambda t, d: eval_files(t, [pred_line("a.jpg"), "", pred_line("b.jpg")]), "pred.json:2"),
    "eval-count-mismatch": (lambda t, d: eval_files(t, [pred_line("a.jpg")]), "pred.json"),
    "eval-missing-key": (
        lambda t, d: eval_files(t, [pred_line("a.jpg"), '{"raw_file": "b.jpg", "lanes": []}']),
        "run_time",
    ),
    "eval-unknown-raw-file": (lambda t, d: eval_files(t, [pred_line("a.jpg"), pred_line("zzz.jpg")]), "pred.json:2"),
    "eval-wrong-lane-length": (
        lambda t, d: eval_files(t, [pred_line("a.jpg", [[1, 2]]), pred_line("b.jpg")]),
        "Format of lanes",
    ),
    "eval-missing-file": (lambda t, d: ["elgan_ray.evaluate", str(t / "none.json"), str(t / "gt.json")], "none.json"),
    "eval-binary-garbage": (lambda t, d: eval_files(t, ["\x00\x01\x02garbage"]), "pred.json"),
    "eval-empty-labels": (
        lambda t, d: [
            "elgan_ray.evaluate",
            str(write(t / "p.json", pred_line("a.jpg") + "\n")),
            str(write(t / "e.json", "")),
        ],
        "0 label lines",
    ),
    "oracle-zero-size": (lambda t, d: ["elgan_ray.evaluate", "--oracle", str(d), "--size", "0x128"], "size"),
    "oracle-missing-dir": (lambda t, d: ["elgan_ray.evaluate", "--oracle", str(t / "nodata")], "nodata"),
    # data synth / show
    "synth-negative-count": (
        lambda t, d: ["elgan_ray.data", "synth", "--out", str(t / "out"), "--train", "-1"],
        "train",
    ),
    "synth-foreign-folder": (
        lambda t, d: [
            "elgan_ray.data",
            "synth",
            "--out",
            str(write(t / "mine" / "keep.txt", "x").parent),
            "--train",
            "1",
        ],
        "mine",
    ),
    "show-missing-dir": (
        lambda t, d: ["elgan_ray.data", "show", str(t / "nodata"), "--out", str(t / "s.png")],
        "nodata",
    ),
    "show-malformed-label": (
        lambda t, d: [
            "elgan_ray.data",
            "show",
            str(broken_copy(d, t, corrupt_label_line)),
            "--out",
            str(t / "s.png"),
            "--split",
            "val",
        ],
        "label_data_0601.json:2",
    ),
    "show-short-lane": (
        lambda t, d: [
            "elgan_ray.data",
            "show",
            str(broken_copy(d, t, short_lane)),
            "--out",
            str(t / "s.png"),
            "--split",
            "val",
        ],
        "label_data_0601.json:2",
    ),
    "show-missing-image": (
        lambda t, d: [
            "elgan_ray.data",
            "show",
            str(broken_copy(d, t, lambda r: first_val_image(r).unlink())),
            "--out",
            str(t / "s.png"),
            "--split",
            "val",
        ],
        "label_data_0601.json:1",
    ),
    "show-unreadable-image": (
        lambda t, d: [
            "elgan_ray.data",
            "show",
            str(broken_copy(d, t, lambda r: first_val_image(r).write_bytes(b"\x00garbage"))),
            "--out",
            str(t / "s.png"),
            "--split",
            "val",
        ],
        "20.jpg",
    ),
    "show-empty-labels": (
        lambda t, d: [
            "elgan_ray.data",
            "show",
            str(broken_copy(d, t, lambda r: (r / "label_data_0601.json").write_text(""))),
            "--out",
            str(t / "s.png"),
            "--split",
            "val",
        ],
        "label_data_0601.json",
    ),
    # train: overrides, data, checkpoints
    "train-unknown-key": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "loss.nope=1"],
        "loss.nope",
    ),
    "train-wrong-type": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "optim.lr_g=fast"],
        "optim.lr_g",
    ),
    "train-unknown-value": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "loss.gen=bce"],
        "loss.gen",
    ),
    "train-zero-size": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "data.height=0"],
        "data.height",
    ),
    "train-not-key-value": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "novalue"],
        "novalue",
    ),
    "train-missing-data": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "--data", str(t / "nodata")],
        "nodata",
    ),
    # sweep: study YAML and flags; all fail before Ray starts
    "sweep-unknown-study": (lambda t, d: ["elgan_ray.sweep", "nostudy", "--results", str(t / "r")], "nostudy"),
    "sweep-unknown-key": (
        lambda t, d: ["elgan_ray.sweep", study_yaml(t, "scientific: {loss.genn: [ce]}\n"), "--results", str(t / "r")],
        "loss.genn",
    ),
    "sweep-unknown-value": (
        lambda t, d: [
            "elgan_ray.sweep",
            study_yaml(t, "scientific: {loss.gen: [ce, bogus]}\n"),
            "--results",
            str(t / "r"),
        ],
        "loss.gen",
    ),
    "sweep-float-as-string": (
        lambda t, d: ["elgan_ray.sweep", study_yaml(t, FLOAT_AS_TEXT), "--results", str(t / "r")],
        "1.0e-5",
    ),
    "sweep-yaml-syntax": (
        lambda t, d: ["elgan_ray.sweep", study_yaml(t, "scientific: {loss.gen: [ce\n"), "--results", str(t / "r")],
        "bad.yaml",
    ),
    "sweep-zero-workers": (
        lambda t, d: ["elgan_ray.sweep", "stability", "--workers-per-trial", "0", "--results", str(t / "r")],
        "--workers-per-trial",
    ),
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
    # report: the gathered record
    "report-missing-evals": (lambda t, d: ["elgan_ray.report", str((t / "study").resolve())], "evals.csv"),
    "report-garbage-evals": (
        lambda t, d: ["elgan_ray.report", str(write(t / "study" / "evals.csv", b"\x00\xff\xfe garbage").parent)],
        "evals.csv",
    ),
    "report-missing-columns": (
        lambda t, d: ["elgan_ray.report", str(write(t / "study" / "evals.csv", "a,b\n1,2\n").parent)],
        "evals.csv",
    ),
    # issue 13, defect 3: a dataset never reads outside its own folder
    "show-raw-file-outside": (lambda t, d: show(t, d, raw_file_outside(absolute=False)), "label_data_0601.json:1"),
    # defect 10: coordinates beyond any frame
    "show-huge-coordinate": (lambda t, d: show(t, d, huge_x(10**30)), "label_data_0601.json:1"),
    "oracle-huge-coordinate": (
        lambda t, d: ["elgan_ray.evaluate", "--oracle", str(broken_copy(d, t, huge_x(10**400)))],
        "label_data_0601.json:1",
    ),
    # defect 17: a damaged JPEG is no frame
    "show-bit-flipped-jpeg": (lambda t, d: show(t, d, bit_flips), "20.jpg"),
    # defect 4 (overrides): aliases are refused before anything expands or prints them
    "train-override-aliases": (lambda t, d: train(t, d, f"loss.gen={LAUGHS}"), "loss.gen", {"limit_mb": 1500}),
    "train-override-huge-number": (lambda t, d: train(t, d, "optim.lr_g=1" + "0" * 400), "optim.lr_g"),
    "train-override-deep-nesting": (  # a RecursionError in PyYAML's composer before plain_yaml.MAX_DEPTH
        lambda t, d: train(t, d, "generator.down_layers=" + "[" * 900),
        "generator.down_layers",
    ),
    # defect 8: every field's range, where it is declared
    "train-seed-negative": (lambda t, d: train(t, d, "seed=-1"), "seed"),
    "train-seed-flag-negative": (lambda t, d: train(t, d, "--seed", "-5"), "seed"),
    "train-seed-too-large": (lambda t, d: train(t, d, "seed=4294967296"), "seed"),
    "train-sigma-infinite": (lambda t, d: train(t, d, "data.sigma=.inf"), "data.sigma"),
    "train-dropout-5": (lambda t, d: train(t, d, "discriminator.dropout=5"), "discriminator.dropout"),
    "train-first-conv-negative": (lambda t, d: train(t, d, "discriminator.first_conv=-3"), "discriminator.first_conv"),
    "train-growth-zero": (lambda t, d: train(t, d, "discriminator.growth=0"), "discriminator.growth"),
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
    # defect 6 (synth): every count is bounded
    "synth-too-many-frames": (
        lambda t, d: ["elgan_ray.data", "synth", "--out", str(t / "out"), "--train", "1000000000000", "-q"],
        "--train",
        {"limit_mb": 1000},
    ),
    # defect 11: outputs that cannot be written are refused before the work
    "train-out-is-a-file": (lambda t, d: train(t, d, out=write(t / "afile", "x")), "afile"),
    "train-out-under-a-file": (lambda t, d: train(t, d, out=write(t / "afile", "x") / "run"), "afile"),
    "train-out-dangling-symlink": (lambda t, d: train(t, d, out=symlink(t / "link", t / "nowhere")), "link"),
    "synth-out-under-a-file": (
        lambda t, d: ["elgan_ray.data", "synth", "--out", str(write(t / "afile", "x") / "set"), "--train", "2", "-q"],
        "afile",
    ),
    "synth-out-dangling-symlink": (
        lambda t, d: ["elgan_ray.data", "synth", "--out", str(symlink(t / "link", t / "nowhere")), "--train", "2"],
        "link",
    ),
    "synth-out-symlink-to-an-earlier-set": (
        lambda t, d: [
            "elgan_ray.data",
            "synth",
            "--out",
            str(symlink(t / "link", shutil.copytree(d, t / "earlier"))),
            "--train",
            "2",
            "-q",
        ],
        "symbolic link",
    ),
    "show-out-is-a-folder": (
        lambda t, d: ["elgan_ray.data", "show", str(d), "--out", str(folder(t / "dir.png")), "--n", "1"],
        "dir.png",
    ),
    "show-out-under-a-file": (
        lambda t, d: ["elgan_ray.data", "show", str(d), "--out", str(write(t / "afile", "x") / "s.png"), "--n", "1"],
        "afile",
    ),
    "train-cache-under-a-file": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), *QUICK],
        "ELGAN_RAY_CACHE",
        {"env": lambda t: os.environ | {"ELGAN_RAY_CACHE": str(write(t / "afile", "x") / "cache")}},
    ),
    "train-home-missing": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), *QUICK],
        "HOME",
        {"env": lambda t: without_cache(HOME=str(t / "nohome"))},
    ),
    # defect 12: a device this machine has
    "train-device-unknown": (lambda t, d: train(t, d, "--device", "foo"), "--device"),
    "train-device-unavailable": (lambda t, d: train(t, d, "--device", "cuda:99"), "--device"),
    # defect 21: a checkpoint that is a folder
    "train-checkpoint-is-a-folder": (
        lambda t, d: train(t, d, out=folder(t / "run" / "checkpoint.pt").parent),
        "is a folder",
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
    # defect 7: sizes bounded before any allocation
    "eval-huge-line": (huge_line, "pred.json:1", {"limit_mb": 1000}),
    "oracle-huge-size": (
        lambda t, d: ["elgan_ray.evaluate", "--oracle", str(d), "--size", "100000x100000"],
        "--size",
        {"limit_mb": 1000},
    ),
    # defect 11: outputs of evaluate, sweep and bench
    "eval-per-image-is-a-folder": (
        lambda t, d: [*eval_files(t, [pred_line("a.jpg"), pred_line("b.jpg")]), "--per-image", str(folder(t / "pi"))],
        "pi",
    ),
    "eval-per-image-under-a-file": (
        lambda t, d: [
            *eval_files(t, [pred_line("a.jpg"), pred_line("b.jpg")]),
            "--per-image",
            str(write(t / "afile", "x") / "pi.jsonl"),
        ],
        "afile",
    ),
    "eval-per-image-is-the-prediction": (
        lambda t, d: [*eval_files(t, [pred_line("a.jpg"), pred_line("b.jpg")]), "--per-image", str(t / "pred.json")],
        "--per-image",
    ),
    "sweep-results-is-a-file": (
        lambda t, d: ["elgan_ray.sweep", "stability", "--results", str(write(t / "afile", "x"))],
        "afile",
    ),
    "sweep-results-under-a-file": (
        lambda t, d: ["elgan_ray.sweep", "stability", "--results", str(write(t / "afile", "x") / "r")],
        "afile",
    ),
    "bench-out-is-a-folder": (  # an unfixed bench fails only after the whole benchmark (here one quick stage)
        lambda t, d: ["elgan_ray.bench", "--quick", "--only", "render", "--out", str(folder(t / "bench_out"))],
        "bench_out",
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
    # --- issue 13 phase 2, more of the same defects ----------------------------------------------------------
    # defect 4: nesting deep enough to exhaust PyYAML's recursion, an integer past Python's 4300 digits
    "sweep-deep-nesting": (lambda t, d: sweep(t, study_yaml(t, "seeds: " + "[" * 2000 + "\n")), "bad.yaml:4"),
    "sweep-huge-integer": (lambda t, d: sweep(t, study_yaml(t, "seeds: " + "9" * 5000 + "\n")), "bad.yaml"),
    "sweep-study-too-large": (lambda t, d: sweep(t, study_yaml(t, ONE_POINT + "#" * 70_000 + "\n")), "bad.yaml"),
    # defect 6: counts bounded before anything of their size is built
    "sweep-too-many-trials": (
        lambda t, d: sweep(t, study_yaml(t, f"scientific: {{loss.lambda: {list(range(100))}}}\nseeds: 100\n")),
        "GAN trials",
        {"limit_mb": 700},
    ),
    "sweep-too-many-samples": (
        lambda t, d: sweep(t, study_yaml(t, NUISANCE + "num_samples: 1000000000\n")),
        "num_samples",
        {"limit_mb": 700},
    ),
    "sweep-long-choice": (
        lambda t, d: sweep(
            t, study_yaml(t, ONE_POINT + f"nuisance: {{loss.lambda: {{choice: {list(range(500))}}}}}\n")
        ),
        "loss.lambda",
    ),
    # defect 8: every field's range, where it is declared (a study's resources share the sweep flags' ranges)
    "sweep-resources-inf": (
        lambda t, d: sweep(t, study_yaml(t, ONE_POINT + "resources: {cpu: .inf}\n")),
        "resources.cpu",
    ),
    "sweep-cpus-inf": (lambda t, d: sweep(t, "stability", "--cpus-per-worker", "inf"), "--cpus-per-worker"),
    "sweep-gpus-negative": (lambda t, d: sweep(t, "stability", "--gpus-per-worker", "-1"), "--gpus-per-worker"),
    "sweep-gpus-nan": (lambda t, d: sweep(t, "stability", "--gpus-per-worker", "nan"), "--gpus-per-worker"),
    "sweep-workers-huge": (lambda t, d: sweep(t, "stability", "--workers-per-trial", "10" * 20), "--workers-per-trial"),
    "sweep-max-concurrent-negative": (lambda t, d: sweep(t, "stability", "--max-concurrent", "-1"), "--max-concurrent"),
    # defect 11: the results folder and its index, checked before the first trial
    "sweep-results-dangling-symlink": (
        lambda t, d: sweep(t, "stability", results=symlink(t / "link", t / "nowhere")),
        "link",
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
    "sweep-report-file-is-a-folder": (
        lambda t, d: sweep(
            t, "stability", "--resume", results=folder(t / "res" / "stability" / "summary.csv").parent.parent
        ),
        "summary.csv",
    ),
    "sweep-resume-damaged-study-json": (
        lambda t, d: sweep(
            t, "stability", "--resume", results=write(t / "res" / "stability" / "study.json", "[1]").parent.parent
        ),
        "study.json",
    ),
}


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


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_dataset):
    build, needle, *options = CASES[case]
    options = options[0] if options else {}
    argv = build(tmp_path, tiny_dataset)
    env = options["env"](tmp_path) if "env" in options else None
    assert_user_error(run(argv, env=env, limit_mb=options.get("limit_mb")), needle)
    assert not (tmp_path / "o").exists()  # train made no output folder
    assert not (tmp_path / "r").exists()  # the sweep wrote no results
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "out").exists()


SMOKE_STEPS = ["schedule.pretrain_g_steps=2", "schedule.pretrain_d_steps=0", "schedule.gan_steps=0"]
SMOKE_STEPS += ["schedule.eval_every=1", "data.val_limit=2", "data.train_limit=4"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dataset):
    """A finished smoke run (two evaluations, four evals.jsonl rows), trained once for this module."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = run(["elgan_ray.train", "--preset", "smoke", "--data", str(tiny_dataset), "--out", str(out), *SMOKE_STEPS])
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def smoke_checkpoint(trained, tmp_path):
    """A copy of the trained run, to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def resume_command(out, tiny_dataset):
    return ["elgan_ray.train", "--preset", "smoke", "--data", str(tiny_dataset), "--out", str(out), *SMOKE_STEPS]


def test_truncated_and_foreign_checkpoints_are_refused(trained, tmp_path, tiny_dataset):
    out = smoke_checkpoint(trained, tmp_path)
    checkpoint = out / "checkpoint.pt"
    base = resume_command(out, tiny_dataset)
    assert_user_error(run([*base, "seed=5"]), "another configuration")
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    evals_before = (out / "evals.jsonl").read_text()
    assert_user_error(run(base), "checkpoint.pt")
    assert (out / "evals.jsonl").read_text() == evals_before  # the record is untouched


def resaved(checkpoint, change):
    state = torch.load(checkpoint, weights_only=True)
    change(state)
    torch.save(state, checkpoint)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.update(generator={}),
        lambda s: s.pop("discriminator"),
        lambda s: s["position"].update(extra=1),
        lambda s: s["opt_g"]["param_groups"].clear(),
        lambda s: s["rng"].pop("numpy"),
    ],
    ids=["empty-generator", "no-discriminator", "extra-position-key", "no-param-groups", "no-numpy-rng"],
)
def test_a_checkpoint_whose_config_matches_but_contents_do_not_is_refused(trained, tmp_path, change):
    """Issue 13, defect 9: the structure is checked on load (here through the loader the training loop uses)."""
    from elgan_ray.errors import UserError
    from elgan_ray.train.checkpoint import load_checkpoint

    out = smoke_checkpoint(trained, tmp_path)
    state = load_checkpoint(out / "checkpoint.pt")
    resaved(out / "checkpoint.pt", change)
    with pytest.raises(UserError, match="not a complete elgan_ray checkpoint"):
        load_checkpoint(out / "checkpoint.pt", state["config"])


def test_the_checkpoint_check_knows_the_position_fields():
    """checkpoint.py names the fields of train_loop.Position (it cannot import it): the two must agree."""
    import dataclasses

    from elgan_ray.train.checkpoint import POSITION_FIELDS
    from elgan_ray.train.loop import Position

    assert {f.name for f in dataclasses.fields(Position)} == set(POSITION_FIELDS)


def test_a_damaged_checkpoint_stops_train_in_one_line(trained, tmp_path, tiny_dataset):
    """Issue 13, defect 9, as a user meets it: `generator={}` in an otherwise matching checkpoint."""
    out = smoke_checkpoint(trained, tmp_path)
    resaved(out / "checkpoint.pt", lambda s: s.update(generator={}))
    evals_before = (out / "evals.jsonl").read_bytes()
    assert_user_error(run(resume_command(out, tiny_dataset)), "checkpoint.pt")
    assert (out / "evals.jsonl").read_bytes() == evals_before


def test_a_crafted_pickle_checkpoint_is_refused_in_one_line(trained, tmp_path, tiny_dataset):
    """Issue 13, defect 20: a pickle of protocol 4 made torch add a two-line UserWarning to the one-line error."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    out = smoke_checkpoint(trained, tmp_path)
    (out / "checkpoint.pt").write_bytes(pickle.dumps(Payload(), protocol=4))
    done = run(resume_command(out, tiny_dataset))
    assert_user_error(done, "checkpoint.pt")
    assert "pwned" not in done.stdout + done.stderr


def test_a_bad_line_in_evals_jsonl_stops_train_instead_of_dropping_rows(trained, tmp_path, tiny_dataset):
    """Issue 13, defect 2: read_run_evals stopped at the first bad line, and a resumed run rewrote the record without
    every row after it (12 -> 2 rows)."""
    out = smoke_checkpoint(trained, tmp_path)
    rows = (out / "evals.jsonl").read_bytes().splitlines()
    broken = b"\n".join([rows[0], b"{oops", *rows[1:]]) + b"\n"
    (out / "evals.jsonl").write_bytes(broken)
    assert_user_error(run(resume_command(out, tiny_dataset)), "evals.jsonl:2")
    assert (out / "evals.jsonl").read_bytes() == broken  # nothing dropped, nothing rewritten


@pytest.mark.parametrize(
    ("damage", "line"),
    [
        (lambda rows: [rows[0], b"\xff\xfe not utf-8", *rows[1:]], 2),
        (lambda rows: [rows[0], rows[1], b"{}", *rows[2:]], 3),
        (lambda rows: [rows[0], b"[1, 2]", *rows[1:]], 2),
        (lambda rows: [rows[0], b"", *rows[1:]], 2),
        (lambda rows: [*rows[:-1], rows[-1][:-9] + b"\n"], 4),  # a torn line that is not the last
    ],
    ids=["not-utf-8", "empty-object", "not-an-object", "blank-line", "torn-middle-line"],
)
def test_every_bad_line_of_evals_jsonl_is_named(trained, tmp_path, damage, line):
    """Defect 2 again: a non-UTF-8 line or a `{}` row crashed the readers with a traceback."""
    from elgan_ray.errors import UserError
    from elgan_ray.record.runs import read_run_evals

    out = smoke_checkpoint(trained, tmp_path)
    rows = (out / "evals.jsonl").read_bytes().splitlines()
    (out / "evals.jsonl").write_bytes(b"\n".join(damage(rows)) + b"\n")
    with pytest.raises(UserError) as caught:
        read_run_evals(out)
    assert caught.value.line == line and caught.value.source.endswith("evals.jsonl")


def test_a_torn_last_line_of_evals_jsonl_is_dropped_with_a_warning(trained, tmp_path, tiny_dataset):
    """The one line a crash can tear (the last, without its newline) is dropped, and said so; the run resumes."""
    out = smoke_checkpoint(trained, tmp_path)
    whole = (out / "evals.jsonl").read_bytes()
    (out / "evals.jsonl").write_bytes(whole + b'{"step": 3, "phase": "pretr')
    done = run(resume_command(out, tiny_dataset))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "evals.jsonl:5: dropped a torn last line" in done.stderr
    assert (out / "evals.jsonl").read_bytes() == whole


def test_a_diverged_run_prints_valid_json(tmp_path, tiny_dataset):
    """Issue 13, defect 23: `"accuracy": NaN` on stdout is not JSON; a diverged run's metrics are null."""
    argv = train(tmp_path, tiny_dataset, "optim.lr_g=1.0e+30", "optim.lr_d=1.0e+30")
    done = run(argv)
    assert done.returncode == 1, done.stderr[-2000:]  # diverged

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    result = json.loads(done.stdout, parse_constant=refuse)
    assert result["status"] == "diverged" and result["accuracy"] is None


# -- issue 13, defect 1: synth deletes nothing it did not write ------------------------------------------------


def marker_only(root):
    write(root / "Documents" / "thesis.tex", "t\n")
    write(root / "synthetic.json", "{}\n")
    return root / "Documents" / "thesis.tex"


def file_in_an_earlier_set(root, tiny_dataset):
    shutil.copytree(tiny_dataset, root)
    return write(root / "clips" / "0601" / "notes.txt", "mine\n")


@pytest.mark.parametrize("folder_kind", ["marker-only", "file-in-an-earlier-set"])
def test_synth_deletes_nothing_it_did_not_write(tmp_path, tiny_dataset, folder_kind):
    root = tmp_path / "X"
    precious = marker_only(root) if folder_kind == "marker-only" else file_in_an_earlier_set(root, tiny_dataset)
    mode = root.stat().st_mode
    done = run(["elgan_ray.data", "synth", "--out", str(root), "--train", "1", "--val", "0", "--test", "0", "-q"])
    assert_user_error(done, str(root))
    assert precious.read_text() in ("t\n", "mine\n") and root.stat().st_mode == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X"]  # and no staging folder beside it


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


@pytest.mark.parametrize("command", ["train", "synth", "show", "sweep", "bench"])
def test_an_output_the_user_cannot_write_is_refused_before_the_work(tmp_path, tiny_dataset, command):
    """Issue 13, defect 11: an unwritable output folder gave a PermissionError traceback after the work."""
    read_only = folder(tmp_path / "ro")
    read_only.chmod(0o555)
    target = read_only / "out"
    argv = {
        "train": train(tmp_path, tiny_dataset, out=target),
        "synth": ["elgan_ray.data", "synth", "--out", str(target), "--train", "2", "-q"],
        "show": ["elgan_ray.data", "show", str(tiny_dataset), "--out", str(target) + ".png", "--n", "1"],
        "sweep": ["elgan_ray.sweep", "stability", "--results", str(target), "--data", str(tiny_dataset)],
        "bench": ["elgan_ray.bench", "--quick", "--only", "render", "--out", str(target) + ".json"],
    }[command]
    assert_user_error(run_unprivileged(argv), str(read_only))
    read_only.chmod(0o755)
    assert list(read_only.iterdir()) == []


def test_a_report_whose_index_cannot_be_written_writes_nothing(tmp_path):
    """Issue 13, defect 11: an index.csv the user cannot write failed only after the tables and figures."""
    study = report_study(tmp_path)
    study.parent.chmod(0o555)  # results/: index.csv cannot be made; results/stab/ stays writable
    try:
        assert_user_error(run_unprivileged(["elgan_ray.report", str(study)]), "index.csv")
    finally:
        study.parent.chmod(0o755)
    assert sorted(p.name for p in study.iterdir()) == ["evals.csv"]


def modes(root):
    """{path relative to root's parent: permission bits} of root and everything under it."""
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_written_files_honour_the_umask_and_other_users_can_read_them(trained, tmp_path):
    """Issue 13, defect 19: atomic writes made every file 0600 and a dataset root 0700 even under umask 022, so
    another user (a colleague, TensorBoard) could not read a shared run or dataset: `show --split val` failed with
    a traceback, `--split train` said, falsely, that there were no training label files. Written files and folders
    get the modes the umask gives any ordinary file (the trained run was written under umask 022)."""
    data = tmp_path / "set"
    done = run(["elgan_ray.data", "synth", "--out", str(data), "--train", "2", "--val", "2", "--test", "0", "-q"])
    assert done.returncode == 0, done.stderr
    paths = [data, *data.rglob("*")]
    before = {path: path.stat().st_mode for path in paths}
    for path in paths:  # the set becomes another user's (root without file privileges is then "another user")
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)
        else:  # the owner's bits decide for the owner: give it only what the others may do
            path.chmod((before[path] & 0o077) | ((before[path] & 0o007) << 6))
    try:
        argv = ["elgan_ray.data", "show", str(data), "--split", "val", "--out", str(tmp_path / "val.png")]
        done = run_unprivileged(argv)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        for path in reversed(paths):
            path.chmod(before[path])
    found = modes(data) | modes(trained) | {"val.png": stat.S_IMODE((tmp_path / "val.png").stat().st_mode)}
    wrong = {path: oct(mode) for path, mode in found.items() if mode not in (0o755, 0o644)}
    assert not wrong, wrong
    assert {"set", "set/synthetic.json", "run", "run/checkpoint.pt", "run/status.json", "run/preview.npz"} <= set(found)


def test_a_label_file_in_a_folder_the_user_cannot_enter_is_one_line(tmp_path):
    """Issue 13, defect 14: a label file the user may not reach gave a PermissionError traceback (a prediction file
    there already gave a clean line)."""
    pred = write(tmp_path / "pred.json", pred_line("a.jpg") + "\n")
    hidden = tmp_path / "hidden"
    write(hidden / "gt.json", label_line("a.jpg") + "\n")
    hidden.chmod(0o000)
    try:
        done = run_unprivileged(["elgan_ray.evaluate", str(pred), str(hidden / "gt.json")])
    finally:
        hidden.chmod(0o755)
    assert_user_error(done, "gt.json")


# -- issue 13, defect 8: sweep --cpus-per-worker nan ---------------------------------------------------------------


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
    "fp-negative": (evals_cell("fp", "-0.1"), "evals.csv:2: key 'fp'"),
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


# -- property tests: seeded random mutations of valid inputs keep the one-line contract ---------------------------
FUZZ = Path(__file__).resolve().parent / "fuzz_cli.py"


def fuzz(kind, tmp_path, n, seed=0):
    """Run tests/fuzz_cli.py in its own process under a 3 GB address-space limit."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    argv = [sys.executable, str(FUZZ), kind, "--seed", str(seed), "--n", str(n), "--work", str(tmp_path)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "ELGAN_RAY_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, preexec_fn=limit)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]


def test_fuzzed_overrides_keep_the_one_line_contract(tmp_path):
    fuzz("overrides", tmp_path, n=200)


def test_fuzzed_prediction_and_label_files_keep_the_one_line_contract(tmp_path):
    fuzz("evaluate", tmp_path, n=200)


def test_fuzzed_study_files_keep_the_one_line_contract(tmp_path):
    fuzz("study", tmp_path, n=200)
