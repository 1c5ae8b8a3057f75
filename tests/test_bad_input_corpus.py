"""The bad-input corpus: every command, every format. Each case must exit with status 2 and print one line
naming the file (or flag, or key) and the rule, with no traceback and nothing half-written left behind."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
}


def run(argv):
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=300)


def assert_user_error(done, needle):
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1, done.stderr[-2000:]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_dataset):
    build, needle = CASES[case]
    argv = build(tmp_path, tiny_dataset)
    assert_user_error(run(argv), needle)
    assert not (tmp_path / "o").exists()  # train made no output folder
    assert not (tmp_path / "r").exists()  # the sweep wrote no results
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "out").exists()


def smoke_checkpoint(tmp_path, tiny_dataset):
    out = tmp_path / "run"
    steps = ["schedule.pretrain_g_steps=2", "schedule.pretrain_d_steps=0", "schedule.gan_steps=0"]
    steps += ["schedule.eval_every=1", "data.val_limit=2", "data.train_limit=4"]
    done = run(["elgan_ray.train", "--preset", "smoke", "--data", str(tiny_dataset), "--out", str(out), *steps])
    assert done.returncode == 0, done.stderr[-2000:]
    return out, steps


def test_truncated_and_foreign_checkpoints_are_refused(tmp_path, tiny_dataset):
    out, steps = smoke_checkpoint(tmp_path, tiny_dataset)
    checkpoint = out / "checkpoint.pt"
    base = ["elgan_ray.train", "--preset", "smoke", "--data", str(tiny_dataset), "--out", str(out), *steps]
    assert_user_error(run([*base, "seed=5"]), "another configuration")
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    evals_before = (out / "evals.jsonl").read_text()
    assert_user_error(run(base), "checkpoint.pt")
    assert (out / "evals.jsonl").read_text() == evals_before  # the record is untouched
