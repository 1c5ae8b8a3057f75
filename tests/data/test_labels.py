"""Label files (strict reading, splits) and label maps (Gaussian ridges of sigma 1 px, peak 1)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from elgan_ray.data.labels import H_SAMPLES, LaneLabel, load_split, read_label_file, render_lane_map, split_label_files
from elgan_ray.errors import UserError

H56 = list(H_SAMPLES)


def fit_gaussian(profile: np.ndarray) -> tuple[float, float, float]:
    """(peak, centre, sigma) of a sampled Gaussian, by a least-squares parabola on the log of its core."""
    x = np.flatnonzero(profile > 0.05)
    c2, c1, c0 = np.polyfit(x, np.log(profile[x]), 2)
    sigma = np.sqrt(-1 / (2 * c2))
    centre = -c1 / (2 * c2)
    return float(np.exp(c0 - c1**2 / (4 * c2))), float(centre), float(sigma)


@pytest.mark.parametrize("x_image", [600, 603, 605, 611])
def test_vertical_lane_cross_section_is_a_gaussian_of_sigma_1(x_image):
    lanes = [[x_image] * len(H56)]
    lane_map = render_lane_map(lanes, H56, 128, 256)  # 1 map px = 5 image px across
    peak, centre, sigma = fit_gaussian(lane_map[80].astype(np.float64))
    assert peak == pytest.approx(1.0, abs=1e-3)
    assert sigma == pytest.approx(1.0, abs=1e-3)
    assert centre == pytest.approx((x_image + 0.5) * 256 / 1280 - 0.5, abs=1e-3)  # pixel centres aligned
    assert lane_map.max() <= 1.0 and lane_map.min() >= 0.0 and lane_map.dtype == np.float32


def test_slanted_lane_is_sigma_1_across_the_line_not_along_the_row():
    # A straight 45-degree line in map pixels: x = y + 10 at 720x720 (one image px = one map px).
    lanes = [[int(y) + 10 for y in H56]]
    lane_map = render_lane_map(lanes, H56, 720, 720, image_width=720)
    _, _, sigma_row = fit_gaussian(lane_map[400].astype(np.float64))
    assert sigma_row == pytest.approx(np.sqrt(2), abs=0.01)  # along a row the ridge is sqrt(2) wider
    assert lane_map[400].max() == pytest.approx(1.0, abs=1e-6)  # the line passes through pixel centres


def test_sigma_is_a_parameter():
    lane_map = render_lane_map([[600] * len(H56)], H56, 128, 256, sigma=2.0)
    assert fit_gaussian(lane_map[80].astype(np.float64))[2] == pytest.approx(2.0, abs=1e-3)


def test_interpolation_is_smooth_between_labelled_rows():
    # A parabola sampled every 10 rows: at full resolution the ridge follows it between the samples too.
    xs = [int(round(300 + 0.002 * (y - 160) ** 2)) for y in H56]
    lane_map = render_lane_map([xs], H56, 720, 1280)
    for y in (165, 433, 707):  # between h_samples
        assert abs(np.argmax(lane_map[y]) - (300 + 0.002 * (y - 160) ** 2)) <= 1.0


def test_gaps_are_not_bridged_and_ends_are_round():
    xs = [640] * len(H56)
    xs[20:30] = [-2] * 10  # rows 360..450 absent
    lane_map = render_lane_map([xs], H56, 720, 1280)
    assert lane_map[405].max() == 0.0  # the middle of the gap stays empty
    assert lane_map[350, 640] == pytest.approx(1.0)  # last present row
    assert lane_map[352, 640] == pytest.approx(np.exp(-(2**2) / 2), abs=1e-6)  # 2 px past the end
    assert lane_map[159].max() == pytest.approx(np.exp(-0.5))  # one row above the first point
    assert lane_map[150].max() == 0.0  # beyond the cut-off


def test_no_lanes_and_absent_lanes_give_an_empty_map():
    assert not render_lane_map([], H56, 64, 128).any()
    assert not render_lane_map([[-2] * len(H56)], H56, 64, 128).any()
    assert render_lane_map([], H56, 64, 128).shape == (64, 128)


def test_render_is_fast_at_training_size():
    lanes = [[int(640 + k * (y - 260)) if y > 270 else -2 for y in H56] for k in (-1.2, -0.4, 0.4, 1.2)]
    lanes = [[x if 0 <= x < 1280 else -2 for x in lane] for lane in lanes]
    render_lane_map(lanes, H56, 128, 256)
    start = time.perf_counter()
    for _ in range(200):
        render_lane_map(lanes, H56, 128, 256)
    assert (time.perf_counter() - start) / 200 < 5e-3  # ~0.3 ms here; generous for loaded CI machines


# -- reading -----------------------------------------------------------------------------------------


def good_line(raw_file: str = "clips/a/1/20.jpg") -> str:
    return json.dumps({"lanes": [[-2, 10, 20], [5, 6, -2]], "h_samples": [240, 250, 260], "raw_file": raw_file})


def test_read_label_file(tmp_path):
    path = tmp_path / "label_data_0313.json"
    path.write_text(good_line() + "\n" + good_line("clips/a/2/20.jpg") + "\n")
    labels = read_label_file(path)
    assert labels[0] == LaneLabel("clips/a/1/20.jpg", ((-2, 10, 20), (5, 6, -2)), (240, 250, 260))
    assert [x.raw_file for x in labels] == ["clips/a/1/20.jpg", "clips/a/2/20.jpg"]


BAD_LINES = {
    "malformed JSON": '{"lanes": [[1, 2, 3]], "h_samples": [1, 2, 3], "raw_file": "x.jpg"',
    "blank line": "",
    "missing key 'lanes'": '{"h_samples": [1, 2, 3], "raw_file": "x.jpg"}',
    "missing key 'raw_file'": '{"lanes": [], "h_samples": [1, 2, 3]}',
    "lane 1 has 2 x values but there are 3 h_samples": '{"lanes": [[1, 2, 3], [1, 2]], "h_samples": [1, 2, 3], '
    '"raw_file": "x.jpg"}',
    "'lanes' must be a list of lists of integers": '{"lanes": [[1, "2", 3]], "h_samples": [1, 2, 3], "raw_file": "x"}',
    "'h_samples' must be a non-empty list of integers": '{"lanes": [], "h_samples": [1.5], "raw_file": "x.jpg"}',
    "'h_samples' must increase strictly": '{"lanes": [], "h_samples": [3, 2], "raw_file": "x.jpg"}',
    "'raw_file' must be a non-empty string": '{"lanes": [], "h_samples": [1], "raw_file": 7}',
    "a label line must be a JSON object": "[1, 2, 3]",
    # issue 13, defect 3: a dataset never reads outside its own folder
    "'raw_file' must be a relative path inside the dataset folder": '{"lanes": [], "h_samples": [1], '
    '"raw_file": "../OUTSIDE.jpg"}',
    "'raw_file' must be a relative path inside the dataset folder (no '..')": '{"lanes": [], "h_samples": [1], '
    '"raw_file": "/tmp/OUTSIDE.jpg"}',
    "'raw_file' must be a relative path": '{"lanes": [], "h_samples": [1], "raw_file": "clips/../../x.jpg"}',
    "'raw_file' must be a relative path inside": '{"lanes": [], "h_samples": [1], "raw_file": "a\\u0000.jpg"}',
    # issue 13, defect 10: coordinates no frame has
    "lane 0 has an x beyond +-100000 pixels": '{"lanes": [[1000000000000000000000000000000]], "h_samples": [1], '
    '"raw_file": "x.jpg"}',
    "lane 0 has an x beyond": '{"lanes": [[-1' + "0" * 400 + ']], "h_samples": [1], "raw_file": "x.jpg"}',
    "'h_samples' must be rows in [0, 100000]": '{"lanes": [], "h_samples": [1, 1000000], "raw_file": "x.jpg"}',
    "a number too long to read": '{"lanes": [[1' + "0" * 5000 + ']], "h_samples": [1], "raw_file": "x.jpg"}',
}


@pytest.mark.parametrize("rule", list(BAD_LINES))
def test_bad_line_names_file_line_and_rule(tmp_path, rule):
    path = tmp_path / "label_data_0313.json"
    path.write_text(good_line() + "\n" + good_line() + "\n" + BAD_LINES[rule] + "\n" + good_line() + "\n")
    with pytest.raises(UserError) as info:
        read_label_file(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")
    assert rule in str(info.value)


def test_empty_and_missing_label_files(tmp_path):
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(UserError, match="empty.json: label file is empty"):
        read_label_file(tmp_path / "empty.json")
    with pytest.raises(UserError, match="label file not found"):
        read_label_file(tmp_path / "nope.json")


def test_splits_by_sequence(tmp_path):
    for name in ("label_data_0313.json", "label_data_0531.json", "label_data_0601.json", "test_label.json"):
        (tmp_path / name).write_text(good_line() + "\n")
    assert [p.name for p in split_label_files(tmp_path, "train")] == ["label_data_0313.json", "label_data_0531.json"]
    assert [p.name for p in split_label_files(tmp_path, "val")] == ["label_data_0601.json"]
    assert [p.name for p in split_label_files(tmp_path, "test")] == ["test_label.json"]
    trainval = ["label_data_0313.json", "label_data_0531.json", "label_data_0601.json"]  # Table 2's training set
    assert [p.name for p in split_label_files(tmp_path, "trainval")] == trainval
    with pytest.raises(UserError, match="unknown split 'dev'"):
        split_label_files(tmp_path, "dev")
    (tmp_path / "test_label.json").unlink()
    with pytest.raises(UserError, match="test_label.json: label file of split 'test' not found"):
        split_label_files(tmp_path, "test")


def test_load_split_checks_images(tmp_path):
    (tmp_path / "label_data_0601.json").write_text(good_line("clips/0601/1/20.jpg") + "\n" + good_line() + "\n")
    (tmp_path / "clips/0601/1").mkdir(parents=True)
    (tmp_path / "clips/0601/1/20.jpg").write_bytes(b"")
    assert len(load_split(tmp_path, "val", check_images=False)) == 2
    with pytest.raises(UserError) as info:
        load_split(tmp_path, "val")
    assert str(info.value).startswith(f"{tmp_path / 'label_data_0601.json'}:2: image 'clips/a/1/20.jpg' not found")
