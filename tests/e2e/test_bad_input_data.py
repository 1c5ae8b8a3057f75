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
    file_in_an_earlier_set,
    first_val_image,
    folder,
    huge_x,
    label_line,
    marker_only,
    pred_line,
    raw_file_outside,
    run,
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
