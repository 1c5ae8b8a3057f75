"""The bad-input corpus of `data synth` and `data show`.

Each case must exit with status 2 and print one line naming the file (or flag, or key) and the rule, with no
traceback and nothing half-written left behind (bad_input.py has the contract and the helpers)."""

import shutil

import pytest
from bad_input import (
    assert_user_error,
    bit_flips,
    broken_copy,
    check_case,
    corrupt_label_line,
    deep_json,
    deep_label,
    fifo,
    file_in_an_earlier_set,
    first_val_image,
    folder,
    huge_x,
    label_line,
    marker_only,
    pred_line,
    raw_file_outside,
    run,
    run_peak_rss,
    run_unprivileged,
    short_lane,
    show,
    symlink,
    write,
)

CASES = {
    # defect 17: a damaged JPEG is no frame
    "show-bit-flipped-jpeg": (lambda t, d: show(t, d, bit_flips), "20.jpg"),
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
    # defect 10: coordinates beyond any frame
    "show-huge-coordinate": (lambda t, d: show(t, d, huge_x(10**30)), "label_data_0601.json:1"),
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
    "show-missing-dir": (
        lambda t, d: ["elgan_ray.data", "show", str(t / "nodata"), "--out", str(t / "s.png")],
        "nodata",
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
    "show-out-is-a-folder": (
        lambda t, d: ["elgan_ray.data", "show", str(d), "--out", str(folder(t / "dir.png")), "--n", "1"],
        "dir.png",
    ),
    "show-out-under-a-file": (
        lambda t, d: ["elgan_ray.data", "show", str(d), "--out", str(write(t / "afile", "x") / "s.png"), "--n", "1"],
        "afile",
    ),
    # issue 13, defect 3: a dataset never reads outside its own folder
    "show-raw-file-outside": (lambda t, d: show(t, d, raw_file_outside(absolute=False)), "label_data_0601.json:1"),
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
    # data synth / show
    "synth-negative-count": (
        lambda t, d: ["elgan_ray.data", "synth", "--out", str(t / "out"), "--train", "-1"],
        "train",
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
    "synth-out-under-a-file": (
        lambda t, d: ["elgan_ray.data", "synth", "--out", str(write(t / "afile", "x") / "set"), "--train", "2", "-q"],
        "afile",
    ),
    # defect 6 (synth): every count is bounded
    "synth-too-many-frames": (
        lambda t, d: ["elgan_ray.data", "synth", "--out", str(t / "out"), "--train", "1000000000000", "-q"],
        "--train",
        {"limit_mb": 1000},
    ),
    # --- issue 25 (round 3) ---------------------------------------------------------------------------------------
    # D12: a label line (or synth's marker) nested deeper than json can parse was a RecursionError traceback
    "show-deeply-nested-label": (
        lambda t, d: show(t, d, deep_label),
        "label_data_0601.json:1: malformed JSON (nested too deeply)",
    ),
    "oracle-deeply-nested-label": (
        lambda t, d: ["elgan_ray.evaluate", "--oracle", str(broken_copy(d, t, deep_label)), "--preset", "smoke"],
        "label_data_0601.json:1: malformed JSON (nested too deeply)",
    ),
    "synth-over-a-deeply-nested-marker": (
        lambda t, d: [
            *["elgan_ray.data", "synth", "--out", str(write(t / "sd" / "synthetic.json", deep_json()).parent)],
            *["--train", "2", "--val", "1", "--test", "1", "-q"],
        ],
        "synthetic.json: was not written by `synth`",
    ),
    # D17: a label line is bounded like the evaluator's
    "show-label-line-too-long": (
        lambda t, d: show(t, d, lambda r: write(r / "label_data_0601.json", label_line("a" * 2_000_000) + "\n")),
        "label_data_0601.json:1: a line longer than 1,048,576 characters",
    ),
    # D20: a label file that exists but is a FIFO was "not found" (and a FIFO among the training files blocked)
    "show-label-file-is-a-fifo": (
        lambda t, d: show(t, d, lambda r: fifo(r / "label_data_0601.json")),
        "label_data_0601.json: not a regular file (a FIFO)",
        {"timeout": 60},
    ),
    "show-training-label-file-is-a-fifo": (
        lambda t, d: [
            *["elgan_ray.data", "show", str(broken_copy(d, t, lambda r: fifo(r / "label_data_0531.json")))],
            *["--out", str(t / "s.png"), "--split", "train"],
        ],
        "label_data_0531.json: not a regular file (a FIFO)",
        {"timeout": 60},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_dataset):
    check_case(CASES, case, tmp_path, tiny_dataset)


@pytest.mark.parametrize("folder_kind", ["marker-only", "file-in-an-earlier-set"])
def test_synth_deletes_nothing_it_did_not_write(tmp_path, tiny_dataset, folder_kind):
    root = tmp_path / "X"
    precious = marker_only(root) if folder_kind == "marker-only" else file_in_an_earlier_set(root, tiny_dataset)
    mode = root.stat().st_mode
    done = run(["elgan_ray.data", "synth", "--out", str(root), "--train", "1", "--val", "0", "--test", "0", "-q"])
    assert_user_error(done, str(root))
    assert precious.read_text() in ("t\n", "mine\n") and root.stat().st_mode == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X"]  # and no staging folder beside it


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


def test_the_label_reader_holds_a_file_to_its_bound_and_reads_it_a_line_at_a_time(tmp_path, tiny_dataset):
    """D17: the dataset label reader read a whole file and kept every line as Python objects (86 MB of short lines:
    850 MB) before it refused the first missing frame. Now a file is refused past 64 MB before it is read, and a
    file within the bound is read a line at a time, the frame of each line checked as it is read."""
    root = broken_copy(tiny_dataset, tmp_path, lambda r: None)
    path = root / "label_data_0601.json"
    first = path.read_text().splitlines()[0]
    line = '{"lanes": [[100, 120]], "h_samples": [200, 210], "raw_file": "clips/x/%d/20.jpg"}\n'
    argv = ["elgan_ray.data", "show", str(root), "--n", "1", "--out", str(tmp_path / "s.png"), "--split", "val"]
    for count, needle in (
        (1_000_000, "label_data_0601.json: 8"),  # about 86 MB: over the bound
        (680_000, "label_data_0601.json:2: image 'clips/x/0/20.jpg' not found"),  # about 58 MB: within it
    ):
        with open(path, "w") as handle:
            handle.write(first + "\n")
            handle.writelines(line % i for i in range(count))
        done, peak_mb = run_peak_rss(argv)
        assert_user_error(done, needle)
        assert peak_mb < 500, f"{peak_mb:.0f} MB"  # `data show` itself (torch, cv2) takes about 250 MB
