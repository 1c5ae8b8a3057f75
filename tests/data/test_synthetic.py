"""The synthetic generator: TuSimple's layout and format, determinism, all-or-nothing writes, the cache."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import cv2
import numpy as np
import pytest

from elgan_ray.data import render, synthetic
from elgan_ray.data import scene as scenes
from elgan_ray.data.labels import H_SAMPLES, load_split
from elgan_ray.errors import UserError


def independent_reader(root: Path) -> int:
    """The TuSimple format checked without our reader: every line parses, lanes fit h_samples, images exist."""
    n = 0
    for path in sorted(root.glob("label_data_*.json")) + [root / "test_label.json"]:
        for line in path.read_text().splitlines():
            obj = json.loads(line)
            assert obj["h_samples"] == list(range(160, 711, 10))
            assert 2 <= len(obj["lanes"]) <= 5
            assert all(len(lane) == len(obj["h_samples"]) for lane in obj["lanes"])
            assert all(x == -2 or 0 <= x < 1280 for lane in obj["lanes"] for x in lane)
            assert all(sum(x >= 0 for x in lane) >= 4 for lane in obj["lanes"])
            image = cv2.imread(str(root / obj["raw_file"]))
            assert image is not None and image.shape == (720, 1280, 3)
            n += 1
    return n


def test_layout_and_format(data_tiny):
    assert independent_reader(data_tiny) == 8
    names = sorted(p.name for p in data_tiny.glob("*.json"))
    assert names == ["label_data_0313.json", "label_data_0601.json", "synthetic.json", "test_label.json"]
    raw = [x.raw_file for x in load_split(data_tiny, "train")]
    assert {r.split("/")[1] for r in raw} == {"0313-1", "0313-2"}
    assert all(r.startswith("clips/0601/") for r in (x.raw_file for x in load_split(data_tiny, "val")))
    assert all(
        r.startswith("clips/0530/") and r.endswith("/20.jpg")
        for r in (x.raw_file for x in load_split(data_tiny, "test"))
    )


def test_sequences_like_tusimple():
    frames = synthetic._frames_of_split(400, 100, 100)
    count = {seq: sum(f[1] == seq for f in frames) for seq in ("0313-1", "0313-2", "0531", "0601", "0530")}
    assert count == {"0313-1": 175, "0313-2": 175, "0531": 50, "0601": 100, "0530": 100}


def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path, data_tiny):
    again = synthetic.write_synthetic_dataset(tmp_path / "again", 4, 2, 2, seed=0, progress=False)
    for path in data_tiny.rglob("*"):
        if path.is_file():
            assert (again / path.relative_to(data_tiny)).read_bytes() == path.read_bytes(), path
    other = synthetic.write_synthetic_dataset(tmp_path / "other", 4, 2, 2, seed=1, progress=False)
    assert (other / "label_data_0601.json").read_text() != (data_tiny / "label_data_0601.json").read_text()


def test_labels_start_below_the_horizon_and_lanes_stay_apart():
    bank = render.TextureBank(0)
    for i in range(20):
        rng = np.random.default_rng([3, i])
        scene = scenes.sample_scene(rng, scenes.sequence_look(np.random.default_rng(i)))
        lanes = np.asarray(scenes.scene_labels(scene))  # (L, 56)
        assert 2 <= len(lanes) <= 5
        first = min(H_SAMPLES[np.flatnonzero(lane >= 0)[0]] for lane in lanes)
        assert first > scene.horizon + 10  # upper rows are -2, as in TuSimple
        both = (lanes[:-1] >= 0) & (lanes[1:] >= 0)
        gaps = np.abs(np.diff(lanes, axis=0))[both]
        assert gaps.min() >= 20  # >= 4 px at 256 wide: separable at the training size
    assert render.render_scene(scene, rng, bank).shape == (720, 1280, 3)


def test_frames_are_not_trivial(data_tiny):
    # Texture and sensor noise everywhere: neighbouring road pixels differ, the road is no flat colour.
    for path in data_tiny.glob("clips/0601/*/20.jpg"):
        road = cv2.imread(str(path))[500:700, 300:1000].astype(np.float64)
        assert road.std() > 5
        assert np.abs(np.diff(road, axis=1)).mean() > 0.5


def test_refuses_a_foreign_folder_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not an empty folder or an earlier synthetic dataset"):
        synthetic.write_synthetic_dataset(mine, 1, 1, 1, seed=0, progress=False)
    assert (mine / "thesis.tex").read_text() == "precious"

    calls = []

    def failing_frame(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return np.zeros((720, 1280, 3), np.uint8), [[1] * 56, [2] * 56], 90

    monkeypatch.setattr(synthetic, "make_frame", failing_frame)
    with pytest.raises(RuntimeError):
        synthetic.write_synthetic_dataset(tmp_path / "new", 2, 1, 1, seed=0, progress=False)
    assert list(tmp_path.iterdir()) == [mine]  # no "new", no staging folder left


def test_bad_counts_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"--val: frame count must be in \[0, 100,000\]"):
        synthetic.write_synthetic_dataset(tmp_path / "d", 1, -1, 1, seed=0)
    with pytest.raises(UserError, match="nothing to write"):
        synthetic.write_synthetic_dataset(tmp_path / "d", 0, 0, 0, seed=0)


def _embedded(cache: str) -> str:
    return str(synthetic.embedded_dataset(cache))


def test_embedded_dataset_is_made_once_even_when_processes_race(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "EMBEDDED_SIZES", (2, 1, 1))  # inherited by the forked processes
    with multiprocessing.get_context("fork").Pool(3) as pool:
        paths = pool.map(_embedded, [str(tmp_path)] * 3)
    assert len(set(paths)) == 1
    folder = Path(paths[0])
    assert folder.name == f"synthetic-{synthetic.EMBEDDED_VERSION}"
    assert len(load_split(folder, "train")) == 2 and len(load_split(folder, "val")) == 1
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [folder.name]
    monkeypatch.setenv("ELGAN_RAY_CACHE", str(tmp_path))
    assert synthetic.embedded_dataset() == folder
