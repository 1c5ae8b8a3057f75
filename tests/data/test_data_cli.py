"""`python -m elgan_ray.data synth|show` as a user runs it: exit status, one-line errors, nothing half-written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elgan_ray.data", *args], capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, start: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {start}"), result.stderr


def test_synth_twice_gives_identical_labels_and_a_progress_bar(tmp_path):
    out = tmp_path / "d"
    first = run("synth", "--out", str(out), "--train", "2", "--val", "1", "--test", "1", "--seed", "5")
    assert first.returncode == 0, first.stderr
    assert "synth" in first.stderr and "4/4" in first.stderr  # tqdm's bar
    labels = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert {"label_data_0313.json", "label_data_0601.json", "test_label.json"} <= set(labels)
    second = run("synth", "--out", str(out), "--train", "2", "--val", "1", "--test", "1", "--seed", "5", "-q")
    assert second.returncode == 0 and "synth:" not in second.stderr  # -q: no bar
    assert {p.name: p.read_bytes() for p in out.glob("*.json")} == labels  # overwrote its own output, same bytes


def test_synth_refuses_a_foreign_folder_and_bad_counts(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert_one_line_error(run("synth", "--out", str(tmp_path), "--train", "1"), f"{tmp_path}: exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert_one_line_error(run("synth", "--out", str(tmp_path / "x"), "--val", "-3"), "--val: frame count")
    assert not (tmp_path / "x").exists()


def test_help_describes_the_layout():
    result = run("synth", "--help")
    assert result.returncode == 0
    for words in (
        "clips/<sequence>/<id>/20.jpg",
        "label_data_0601.json",
        "test_label.json",
        "h_samples",
        "-2",
        "dash camera",
        "vanishing point",
        "byte-identical",
        "progress bar",
    ):
        assert words in result.stdout, words
    assert "show" in run("--help").stdout


def test_show_draws_a_grid(data_tiny, tmp_path):
    out = tmp_path / "show.png"
    result = run("show", str(data_tiny), "--out", str(out), "--n", "3", "--split", "train")
    assert result.returncode == 0, result.stderr
    picture = cv2.imread(str(out))
    assert picture.shape == (720, 1280, 3)  # 3 frames in 2 columns of 640x360 tiles
    assert picture[360:, 640:].max() == 0  # the empty fourth tile


def test_show_errors_are_one_line(data_tiny, tmp_path):
    root = Path(shutil.copytree(data_tiny, tmp_path / "copy"))
    out = tmp_path / "show.png"
    lines = (root / "label_data_0601.json").read_text().splitlines()
    (root / "label_data_0601.json").write_text(lines[0] + "\n" + lines[1].replace("[-2", "[-2, 5", 1) + "\n")
    result = run("show", str(root), "--out", str(out))
    assert_one_line_error(result, f"{root / 'label_data_0601.json'}:2: lane 0 has 57 x values but there are 56")
    (root / "label_data_0601.json").write_text(lines[0] + "\n")
    (root / (line := lines[0].split('"raw_file": "')[1].split('"')[0])).write_bytes(b"garbage")
    assert_one_line_error(run("show", str(root), "--out", str(out)), f"{root / line}: unreadable image")
    assert_one_line_error(run("show", str(tmp_path / "nope"), "--out", str(out)), f"{tmp_path / 'nope'}: data folder")
    assert not out.exists()
