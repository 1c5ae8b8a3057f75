"""The evaluator's fast paths and bounds: metrics' int16 comparison against its float one, and the size bounds and
--per-image checks of `python -m elgan_ray.evaluate`, each refused in one line before any work (issue 13: a 200 MB
line took 17.9 GB; --per-image could overwrite an input)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from test_metric import random_image

from elgan_ray.errors import UserError, run_cli
from elgan_ray.evaluate import jsonl as tusimple_json
from elgan_ray.evaluate import metric as metrics
from elgan_ray.evaluate import score as evaluate
from elgan_ray.evaluate.__main__ import main as evaluate_main

H = list(range(160, 711, 10))
LANE = [-2] * 10 + list(range(300, 346))


@pytest.mark.parametrize("seed", range(3))
def test_integer_lanes_score_alike_in_int16_and_float64(monkeypatch, seed):
    """Integer x are compared as int16 against ceil(threshold) - 1: the same counts as |p - g| < threshold."""
    rng = np.random.default_rng(seed)
    images = [random_image(rng) for _ in range(300)]
    images = [(p, g, h, t) for p, g, h, t in images if metrics._as_small_integers(np.array(sum(p + g, []), float))]
    assert len(images) > 50
    args = [metrics.Ragged.from_lists([im[i] for im in images]) for i in (0, 1)]
    h = metrics.Ragged.from_lists([[im[2]] for im in images])
    args += [h.values, h.lane_len, np.array([float(im[3]) for im in images])]
    try:
        fast = metrics.bench_ragged(*args)
    except metrics.LaneFormatError as error:
        fast = error.index
    monkeypatch.setattr(metrics, "_as_small_integers", lambda *arrays: None)
    try:
        plain = metrics.bench_ragged(*args)
    except metrics.LaneFormatError as error:
        plain = error.index
    assert type(fast) is type(plain)
    if isinstance(fast, tuple):
        for a, b in zip(fast, plain, strict=True):
            np.testing.assert_array_equal(a, b)
    else:
        assert fast == plain


@pytest.mark.parametrize(
    ("value", "small"),
    [
        (16383.0, True),
        (-16383.0, True),
        (-0.0, True),
        (16384.0, False),
        (-16384.0, False),
        (-32768.0, False),
        (70000.0, False),
        (1e20, False),
        (1.5, False),
        (np.nan, False),
        (np.inf, False),
        (-np.inf, False),
    ],
)
def test_int16_comparison_only_for_small_integers(value, small):
    """Beyond +-2**14, a fraction, NaN or inf keeps the float comparison (the cast to int16 would change them)."""
    assert (metrics._as_small_integers(np.array([3.0, value]), np.array([-2.0])) is not None) is small


@pytest.mark.parametrize("seed", range(3))
def test_whole_pixel_lanes_read_as_json(seed):
    """The bulk reader of integer lanes gives json's numbers and structure, whatever the spacing and the digits,
    and declines (None) every other shape of value."""
    rng = np.random.default_rng(seed)
    blanks = ["", " ", "\t", "  "]
    texts, expected = [], []
    for _ in range(300):
        lanes = []
        for _ in range(int(rng.integers(0, 5))):
            digits = rng.integers(1, 16, int(rng.integers(0, 8)))  # 1 to 15 digits
            lanes.append([int(rng.integers(0, 10 ** int(d))) * int(rng.choice([1, -1])) for d in digits])
        blank = lambda: blanks[int(rng.integers(len(blanks)))]  # noqa: E731
        texts.append(
            f"{blank()}[{blank()}"
            + ",".join(
                f"{blank()}[" + ",".join(f"{blank()}{x}{blank()}" for x in lane) + f"]{blank()}" for lane in lanes
            )
            + f"]{blank()}"
        )
        assert json.loads(texts[-1]) == lanes
        expected.append(lanes)
    texts[0] = "[[-0, 0, -2]]"
    expected[0] = [[0, 0, -2]]
    read = tusimple_json._whole_pixel_lanes([t.encode() for t in texts])
    assert read is not None
    assert read.per_image.tolist() == [len(lanes) for lanes in expected]
    assert read.lane_len.tolist() == [len(lane) for lanes in expected for lane in lanes]
    assert read.values.tolist() == [float(x) for lanes in expected for lane in lanes for x in lane]
    for other in [
        "[1]",
        "5",
        "[[[1]]]",
        "[[1.5]]",
        "[[1e3]]",
        "[[true]]",
        '[["1"]]',
        "[[null]]",
        "[[1], 2]",
        "[[1234567890123456]]",
        "{}",
    ]:
        assert tusimple_json._whole_pixel_lanes([b"[[1]]", other.encode(), b"[]"]) is None, other


@pytest.mark.parametrize("newline", ["\n", "\r\n"])  # \r\n: the plain path reads every line
def test_a_line_nested_near_the_recursion_limit_scores_alike_or_is_refused(tmp_path, newline):
    """msgspec and json stop at Python's recursion limit, at depths a few levels apart, and the plain path's error
    search once parsed one frame shallower than its first pass (a hostile fuzz found both: a score against a
    refusal, and an AssertionError). A deep line now goes to the plain path, which parses it once."""
    limit = sys.getrecursionlimit()
    gt = json.dumps({"raw_file": "a", "lanes": [LANE], "h_samples": H}) + newline
    outcomes = set()
    for depth in range(limit - 60, limit + 5):
        pred = json.dumps({"raw_file": "a", "lanes": [LANE], "run_time": 1})[:-1]
        pred += ', "x": ' + "[" * depth + "]" * depth + "}" + newline
        pred_path, gt_path = tmp_path / "pred.json", tmp_path / "gt.json"
        pred_path.write_text(pred)
        gt_path.write_text(gt)
        assert evaluate._score_fast(pred.encode(), gt.encode()) is None, depth
        try:
            outcomes.add(evaluate.score_files(pred_path, gt_path).result[0]["value"])
        except UserError as error:
            assert "nested too deeply" in str(error), error
            outcomes.add("refused")
    assert outcomes == {1.0, "refused"}  # scored below json's limit, refused beyond it


def files(tmp_path, pred_text=None, gt_text=None):
    pred, gt = tmp_path / "pred.json", tmp_path / "gt.json"
    pred.write_text(pred_text or json.dumps({"raw_file": "a", "lanes": [LANE], "run_time": 1}) + "\n")
    gt.write_text(gt_text or json.dumps({"raw_file": "a", "lanes": [LANE], "h_samples": H}) + "\n")
    return str(pred), str(gt)


def one_line_error(argv, capsys):
    code = run_cli(evaluate_main, argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_a_line_over_the_bound_is_named_with_its_number_as_readlines_counts(tmp_path, capsys):
    long = "x" * (tusimple_json.MAX_LINE_BYTES + 1)
    gt_lines = [json.dumps({"raw_file": "a", "lanes": [LANE], "h_samples": H}), long]
    pred, gt = files(tmp_path, gt_text="\r\n".join(gt_lines) + "\r")  # \r\n and \r end lines, as in readlines
    err = one_line_error([pred, gt], capsys)
    assert f"{gt}:2: a line of {len(long):,} bytes" in err


def test_a_file_over_the_bound_is_refused_before_it_is_read(tmp_path, capsys):
    pred, gt = files(tmp_path)
    with open(pred, "r+b") as handle:  # sparse: the size is checked, never the content
        handle.truncate(tusimple_json.MAX_FILE_BYTES + 1)
    assert f"{pred}: {tusimple_json.MAX_FILE_BYTES + 1:,} bytes" in one_line_error([pred, gt], capsys)


def test_lines_within_the_bound_are_scored(tmp_path, capsys):
    many = {"raw_file": "a", "lanes": [LANE] * 2000, "run_time": 1}  # ~350 KB: skipped (more than gt + 2 lanes)
    pred, gt = files(tmp_path, pred_text=json.dumps(many) + "\n")
    assert run_cli(evaluate_main, [pred, gt, "-q"]) == 0
    assert [d["value"] for d in json.loads(capsys.readouterr().out)] == [0.0, 0.0, 1.0]


def test_an_unreadable_label_file_comes_after_the_predictions_errors(tmp_path, capsys):
    pred, _ = files(tmp_path, pred_text="{oops\n")
    assert f"{pred}:1:" in one_line_error([pred, str(tmp_path / "missing.json")], capsys)


@pytest.mark.parametrize("which", ["pred", "gt"])
def test_per_image_never_replaces_an_input_file(tmp_path, capsys, which):
    pred, gt = files(tmp_path)
    target = {"pred": pred, "gt": gt}[which]
    link = tmp_path / "link.json"
    link.symlink_to(target)  # the same file under another name
    for path in (target, str(link)):
        before = open(target).read()
        assert "--per-image" in one_line_error([pred, gt, "--per-image", path], capsys)
        assert open(target).read() == before


def test_per_image_refuses_a_dangling_link(tmp_path, capsys):
    pred, gt = files(tmp_path)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert "dangling" in one_line_error([pred, gt, "--per-image", str(tmp_path / "dangling")], capsys)


def test_oracle_size_is_bounded_before_the_labels_are_read(tmp_path, capsys):
    err = one_line_error(["--oracle", str(tmp_path / "no_data"), "--size", "721x1280"], capsys)
    assert err.startswith("error: --size:") and "720x1280" in err


@pytest.mark.parametrize("which", ["pred", "gt"])
def test_nesting_deeper_than_the_stack_is_one_line(tmp_path, capsys, which):
    """json and msgspec both raise RecursionError (not a ValueError) past Python's recursion limit."""
    deep = "[" * 100_000 + "]" * 100_000
    lines = {
        "pred": json.dumps({"raw_file": "a", "lanes": [LANE], "run_time": 1})[:-1] + f', "x": {deep}}}\n',
        "gt": json.dumps({"raw_file": "a", "lanes": [LANE], "h_samples": H})[:-1] + f', "x": {deep}}}\n',
    }
    pred, gt = files(tmp_path, **{f"{which}_text": lines[which]})
    err = one_line_error([pred, gt], capsys)
    assert err.startswith(f"error: {pred if which == 'pred' else gt}:1:") and "nested too deeply" in err
