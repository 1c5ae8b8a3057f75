"""Post-processing on hand-made maps, and the oracle ceiling on a tiny synthetic split."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from elgan_ray.evaluate import postprocess
from elgan_ray.evaluate.postprocess import lanes_from_map, sample_rows
from elgan_ray.record.names import POSTS

H56 = list(range(160, 720, 10))


def draw(height: int, width: int, segments: list[tuple[tuple[int, int], tuple[int, int]]], thickness: int = 2):
    """A (H, W) float map with value 1 on the given line segments (x, y in map pixels)."""
    prob = np.zeros((height, width), np.float32)
    for start, end in segments:
        cv2.line(prob, start, end, 1.0, thickness)
    return prob


def test_single_vertical_lane_maps_back_to_image_coordinates():
    prob = np.zeros((128, 256), np.float32)
    prob[40:, 100:102] = 0.9  # map x 100.5 -> image x (100.5 + 0.5) * 5 - 0.5 = 504.5 -> 504 (round half even)
    lanes = lanes_from_map(prob, H56, method="basic")
    assert len(lanes) == 1 and len(lanes[0]) == 56
    rows = sample_rows(H56, 128)
    expected = [504 if r >= 40 else -2 for r in rows]
    assert lanes[0] == expected


def test_sample_rows_align_pixel_centres():
    assert sample_rows([0, 719], 720).tolist() == [0, 719]  # identity at full size
    assert sample_rows([0, 5, 6, 715], 128).tolist() == [0, 0, 1, 127]  # 720 / 128 = 5.625 image rows per map row


def test_touching_lanes_basic_merges_and_basic_plus_splits():
    # Two lanes meeting near the horizon (a V) form one component.
    prob = draw(128, 256, [((128, 30), (30, 127)), ((128, 30), (226, 127))])
    basic = lanes_from_map(prob, H56, method="basic")
    split = lanes_from_map(prob, H56, method="basic++")
    assert len(basic) == 1 and len(split) == 2
    bottom = [lane[-1] for lane in split]
    assert min(bottom) < 300 and max(bottom) > 900  # one lane on each side at the bottom row
    # basic averages the two branches into one lane down the middle, far from both
    assert 550 < basic[0][-1] < 750


def test_separate_lanes_are_the_same_in_both():
    prob = draw(128, 256, [((60, 40), (20, 127)), ((200, 40), (240, 127))])
    assert lanes_from_map(prob, H56, method="basic") == lanes_from_map(prob, H56, method="basic++")
    assert len(lanes_from_map(prob, H56)) == 2


def test_by_default_every_component_is_a_lane_and_our_filters_drop_specks_and_cap_lanes():
    prob = draw(128, 256, [((20 + 40 * i, 40), (20 + 40 * i, 127)) for i in range(6)])  # six lanes
    prob[sample_rows(H56, 128)[20], 250] = 1.0  # a one-pixel speck on a sampled row
    for method in POSTS:
        assert len(lanes_from_map(prob, H56, method)) == 7  # the paper's post-processing: the speck is a lane
        filtered = lanes_from_map(prob, H56, method, min_area=postprocess.OUR_MIN_AREA)
        assert len(filtered) == 6
        capped = lanes_from_map(
            prob, H56, method, min_area=postprocess.OUR_MIN_AREA, max_lanes=postprocess.OUR_MAX_LANES
        )
        assert len(capped) == postprocess.OUR_MAX_LANES
    assert lanes_from_map(np.zeros((128, 256)), H56) == []


def test_threshold_and_min_area_are_honoured():
    prob = draw(128, 256, [((100, 60), (100, 127))]) * 0.4
    assert lanes_from_map(prob, H56) == []  # below the default threshold 0.5
    assert len(lanes_from_map(prob, H56, threshold=0.3)) == 1
    assert lanes_from_map(prob, H56, threshold=0.3, min_area=10_000) == []


def test_a_spur_does_not_become_a_lane():
    prob = draw(128, 256, [((100, 40), (100, 127))])  # columns 99..101
    row = sample_rows(H56, 128)[40]
    prob[row - 1, 102] = 1.0  # joined to the lane just above a sampled row ...
    prob[row, 103] = 1.0  # ... making a second run of pixels on that row only
    assert len(lanes_from_map(prob, H56, method="basic")) == 1
    lanes = lanes_from_map(prob, H56, method="basic++", min_area=1)
    assert len(lanes) == 1 and lanes[0][40] == 502  # the lane keeps its own run on that row


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        lanes_from_map(np.zeros((8, 8)), [1], method="fancy")


def test_oracle_ceiling_on_a_tiny_synthetic_split(tmp_path, capsys):
    synthetic = pytest.importorskip("elgan_ray.data.synthetic")
    pytest.importorskip("elgan_ray.data.labels")
    from elgan_ray.errors import run_cli
    from elgan_ray.evaluate.__main__ import main as evaluate_main

    synthetic.write_synthetic_dataset(tmp_path / "data", 2, 12, 1, seed=0, progress=False)
    values = {}
    for post in POSTS:
        code = run_cli(evaluate_main, ["--oracle", str(tmp_path / "data"), "--post", post, "-q"])
        out = capsys.readouterr().out
        assert code == 0
        result = json.loads(out)
        assert [d["name"] for d in result] == ["Accuracy", "FP", "FN"]
        values[post] = result[0]["value"]
    assert values["basic++"] >= values["basic"]
    assert values["basic++"] >= 0.9


def test_oracle_takes_its_set_up_from_a_preset_and_flags(tmp_path, capsys):
    synthetic = pytest.importorskip("elgan_ray.data.synthetic")
    from elgan_ray.errors import run_cli
    from elgan_ray.evaluate.__main__ import main as evaluate_main

    data = str(tmp_path / "data")
    synthetic.write_synthetic_dataset(data, 2, 12, 1, seed=0, progress=False)

    def basic(*flags: str) -> tuple[float, str]:
        assert run_cli(evaluate_main, ["--oracle", data, "--post", "basic", *flags]) == 0
        captured = capsys.readouterr()
        return json.loads(captured.out)[0]["value"], captured.err

    wide, err = basic("--preset", "smoke", "--sigma", "2")
    assert "at 64x128, sigma 2, min_area 0, max_lanes 0:" in err  # the smoke preset's size, the flag's sigma
    thin, err = basic("--size", "64x128", "--sigma", "0.5", "--min-area", "10", "--max-lanes", "4")
    assert "sigma 0.5, min_area 10, max_lanes 4" in err
    assert thin > wide  # thin labels leave basic fewer merged lanes near the horizon
    assert run_cli(evaluate_main, ["--oracle", data, "--sigma", "0"]) == 2
    assert "data.sigma" in capsys.readouterr().err
    assert run_cli(evaluate_main, ["--oracle", data, "--max-lanes", "-1"]) == 2
    assert "eval.max_lanes" in capsys.readouterr().err
