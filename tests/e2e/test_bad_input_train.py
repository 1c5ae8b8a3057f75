"""The bad-input corpus of `train`: overrides, data, checkpoints and a run's evals.jsonl; written files' modes.

Each case must exit with status 2 and print one line naming the file (or flag, or key) and the rule, with no
traceback and nothing half-written left behind (bad_input.py has the contract and the helpers)."""

import json
import os
import stat

import pytest
from bad_input import (
    LAUGHS,
    QUICK,
    assert_user_error,
    check_case,
    deep_json,
    folder,
    fuzz,
    modes,
    resaved,
    resume_command,
    run,
    run_unprivileged,
    smoke_checkpoint,
    symlink,
    train,
    without_cache,
    write,
)

CASES = {
    "train-cache-under-a-file": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), *QUICK],
        "ELGAN_RAY_CACHE",
        {"env": lambda t: os.environ | {"ELGAN_RAY_CACHE": str(write(t / "afile", "x") / "cache")}},
    ),
    # defect 21: a checkpoint that is a folder
    "train-checkpoint-is-a-folder": (
        lambda t, d: train(t, d, out=folder(t / "run" / "checkpoint.pt").parent),
        "checkpoint.pt: not a regular file (a folder)",
    ),
    "train-device-unavailable": (lambda t, d: train(t, d, "--device", "cuda:99"), "--device"),
    # defect 12: a device this machine has
    "train-device-unknown": (lambda t, d: train(t, d, "--device", "foo"), "--device"),
    "train-dropout-5": (lambda t, d: train(t, d, "discriminator.dropout=5"), "discriminator.dropout"),
    "train-first-conv-negative": (lambda t, d: train(t, d, "discriminator.first_conv=-3"), "discriminator.first_conv"),
    "train-growth-zero": (lambda t, d: train(t, d, "discriminator.growth=0"), "discriminator.growth"),
    "train-home-missing": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), *QUICK],
        "HOME",
        {"env": lambda t: without_cache(HOME=str(t / "nohome"))},
    ),
    "train-missing-data": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "--data", str(t / "nodata")],
        "nodata",
    ),
    "train-not-key-value": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "novalue"],
        "novalue",
    ),
    "train-out-dangling-symlink": (lambda t, d: train(t, d, out=symlink(t / "link", t / "nowhere")), "link"),
    # defect 11: outputs that cannot be written are refused before the work
    "train-out-is-a-file": (lambda t, d: train(t, d, out=write(t / "afile", "x")), "afile"),
    "train-out-under-a-file": (lambda t, d: train(t, d, out=write(t / "afile", "x") / "run"), "afile"),
    # defect 4 (overrides): aliases are refused before anything expands or prints them
    "train-override-aliases": (lambda t, d: train(t, d, f"loss.gen={LAUGHS}"), "loss.gen", {"limit_mb": 1500}),
    "train-override-deep-nesting": (  # a RecursionError in PyYAML's composer before plain_yaml.MAX_DEPTH
        lambda t, d: train(t, d, "generator.down_layers=" + "[" * 900),
        "generator.down_layers",
    ),
    "train-override-huge-number": (lambda t, d: train(t, d, "optim.lr_g=1" + "0" * 400), "optim.lr_g"),
    "train-seed-flag-negative": (lambda t, d: train(t, d, "--seed", "-5"), "seed"),
    # defect 8: every field's range, where it is declared
    "train-seed-negative": (lambda t, d: train(t, d, "seed=-1"), "seed"),
    "train-seed-too-large": (lambda t, d: train(t, d, "seed=4294967296"), "seed"),
    "train-sigma-infinite": (lambda t, d: train(t, d, "data.sigma=.inf"), "data.sigma"),
    # train: overrides, data, checkpoints
    "train-unknown-key": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "loss.nope=1"],
        "loss.nope",
    ),
    "train-unknown-value": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "loss.gen=bce"],
        "loss.gen",
    ),
    "train-wrong-type": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "optim.lr_g=fast"],
        "optim.lr_g",
    ),
    "train-zero-size": (
        lambda t, d: ["elgan_ray.train", "--preset", "smoke", "--out", str(t / "o"), "data.height=0"],
        "data.height",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_dataset):
    check_case(CASES, case, tmp_path, tiny_dataset)


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


def test_fuzzed_overrides_keep_the_one_line_contract(tmp_path):
    fuzz("overrides", tmp_path, n=200)


# -- issue 25 (round 3) -------------------------------------------------------------------------------------------


def test_train_refuses_a_record_it_cannot_resume_instead_of_deleting_it(trained, tmp_path, tiny_dataset):
    """D2: `train --out DIR` over an evals.jsonl without checkpoint.pt started from step 0 and dropped every row."""
    out = folder(tmp_path / "no_checkpoint")
    record = (trained / "evals.jsonl").read_bytes() + b'{"step": 999, "phase": "gan", "post": "basic++"}\n'
    (out / "evals.jsonl").write_bytes(record)
    assert_user_error(run(resume_command(out, tiny_dataset)), f"{out}: holds a run's record (evals.jsonl)")
    assert (out / "evals.jsonl").read_bytes() == record and sorted(p.name for p in out.iterdir()) == ["evals.jsonl"]
    (out / "evals.jsonl").write_bytes(b"")  # what a run killed before its first evaluation leaves: nothing to lose
    done = run(resume_command(out, tiny_dataset))
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        # D5: a row's identity keys moved it to another run in the sweep's gather
        ({"trial_name": "control,seed=0", "role": "control", "trial_id": "FORGED", "seed": 7}, "key 'trial_name'"),
        ({"accuracy": 5.0}, "key 'accuracy': must be a number from 0 to 1, or null, got 5.0"),  # D5: out of range
    ],
    ids=["identity", "accuracy-5"],
)
def test_a_row_outside_the_schema_stops_train_s_resume_in_one_line(trained, tmp_path, tiny_dataset, row, needle):
    """D5: `train` accepted accuracy 5.0 and printed it as the run's final result; a row may hold only the schema's
    keys, each in its range (record/runs.py; tests/record/test_runs.py has the rest of the schema)."""
    out = smoke_checkpoint(trained, tmp_path)
    good = {"step": 4, "phase": "gan", "post": "basic++", "accuracy": 0.5, "fp": 0.0, "fn": 0.0, "f1": 1.0}
    whole = (out / "evals.jsonl").read_bytes() + json.dumps(good | row).encode() + b"\n"
    (out / "evals.jsonl").write_bytes(whole)
    lines = whole.count(b"\n")
    assert_user_error(run(resume_command(out, tiny_dataset)), f"evals.jsonl:{lines}: {needle}")
    assert (out / "evals.jsonl").read_bytes() == whole


def test_the_official_slightly_negative_fp_is_a_valid_row(trained, tmp_path, tiny_dataset):
    """One predicted lane may match two gt lanes, so the official FP can be below 0 (-0.0025 on real maps): kept."""
    out = smoke_checkpoint(trained, tmp_path)
    row = {"step": 1, "phase": "pretrain_g", "post": "basic", "accuracy": 0.9, "fp": -0.0025, "fn": 0.0, "f1": 1.0012}
    lines = (out / "evals.jsonl").read_bytes().splitlines(keepends=True)
    (out / "evals.jsonl").write_bytes(b"".join([json.dumps(row).encode() + b"\n", *lines]))
    done = run(resume_command(out, tiny_dataset))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "evals.jsonl").read_bytes().splitlines()[0]) == row


def test_a_deeply_nested_line_of_evals_jsonl_stops_train_in_one_line(trained, tmp_path, tiny_dataset):
    """D12: RecursionError, not ValueError: a traceback from the evals.jsonl reader."""
    out = smoke_checkpoint(trained, tmp_path)
    line = '{"step": 30, "phase": "gan", "post": "basic", "x": ' + deep_json(200_000) + "}\n"
    (out / "evals.jsonl").write_bytes((out / "evals.jsonl").read_bytes() + line.encode())
    assert_user_error(run(resume_command(out, tiny_dataset)), "evals.jsonl:5: not JSON (nested too deeply)")
