"""metrics.bench_images against the per-lane port of the official evaluator, on hundreds of seeded edge cases."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from elgan_ray.evaluate import metric as metrics
from elgan_ray.evaluate import reference as reference_eval

H56 = list(range(160, 720, 10))  # the test set's h_samples
H48 = list(range(240, 720, 10))  # the other set in the train labels


def random_gt_lane(rng: np.random.Generator, h: list) -> list:
    """One gt lane of a random kind: slanted, vertical, steep, partial, single-point, empty or float."""
    y = np.asarray(h, dtype=np.float64)
    kind = rng.choice(["slant", "vertical", "steep", "single", "empty", "float", "edge"])
    if kind == "vertical":
        x = np.full(len(y), float(rng.integers(0, 1280)))
    elif kind == "steep":  # nearly horizontal in the image: |dx/dy| large, threshold far above 20
        x = rng.uniform(0, 60) + rng.choice([-1, 1]) * rng.uniform(3, 12) * (y - y.min())
    elif kind == "edge":  # hugs x = 0 so a predicted -2 can fall within the widened threshold
        x = rng.uniform(0, 8) + rng.uniform(6, 15) * (y.max() - y)
    else:
        x = rng.uniform(100, 1180) + rng.uniform(-2.5, 2.5) * (y - 400)
    if kind != "float":
        x = np.round(x)
    top = int(rng.integers(0, max(1, len(x) // 2))) if len(x) else 0
    x[:top] = -2
    x[(x < 0) | (x >= 1280)] = -2
    if kind == "single" and len(x):
        keep = int(rng.integers(0, len(x)))
        value = x[keep] if x[keep] >= 0 else 640.0
        x[:] = -2
        x[keep] = value
    if kind == "empty":
        x[:] = -2
    return [int(v) if v == int(v) else float(v) for v in x]


def random_pred_lane(rng: np.random.Generator, gt: list, h: list) -> list:
    """A prediction for one gt lane: noisy copy near the 20 px threshold, shifted, with -2 holes, or random."""
    x = np.asarray(gt, dtype=np.float64)
    kind = rng.choice(["noisy", "exact", "shift", "holes", "random", "all-missing"])
    if kind == "noisy":
        x = np.where(x >= 0, x + rng.integers(-25, 26, len(x)), x)
    elif kind == "shift":
        x = np.where(x >= 0, x + rng.choice([-20, 20, -19, 19, 21]), x)
    elif kind == "holes":
        x = np.where(rng.random(len(x)) < 0.3, -2, x)
    elif kind == "random":
        x = np.round(rng.uniform(-50, 1300, len(x)))
    elif kind == "all-missing":
        x = np.full(len(x), -2.0)
    x[x < 0] = rng.choice([-2, -1, -100, -2.5])
    return [int(v) if v == int(v) else float(v) for v in x]


def random_image(rng: np.random.Generator, h: list | None = None) -> tuple[list, list, list, float]:
    """(pred lanes, gt lanes, h_samples, run_time) covering the official loop's branches."""
    choices = [H56, H48, list(range(500, 720, 40)), [700], [float(v) + 0.5 for v in H48]]
    h = h if h is not None else choices[rng.choice(5, p=[0.5, 0.2, 0.1, 0.1, 0.1])]
    n_gt = int(rng.choice(7, p=[0.06, 0.1, 0.14, 0.2, 0.3, 0.12, 0.08]))  # up to 6: > 4 gt lanes is special
    gt = [random_gt_lane(rng, h) for _ in range(n_gt)]
    pred = [random_pred_lane(rng, lane, h) for lane in gt if rng.random() < 0.85]  # some gt lanes missed
    for _ in range(int(rng.choice(4, p=[0.6, 0.2, 0.1, 0.1]))):  # extra lanes, sometimes more than len(gt) + 2
        pred.append(random_pred_lane(rng, random_gt_lane(rng, h), h))
    if pred and rng.random() < 0.1:
        pred.append(list(pred[0]))  # a duplicate predicted lane
    rng.shuffle(pred)
    run_time = [10, 0, 200, 200.0, 200.0001, 201, 5000, 199.9][
        rng.choice(8, p=[0.6, 0.05, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05])
    ]
    return pred, gt, h, run_time


def reference(images: list) -> np.ndarray:
    return np.array([reference_eval.bench(*image) for image in images], dtype=np.float64).reshape(-1, 3)


def ours(images: list) -> np.ndarray:
    pred, gt, h, rt = (list(col) for col in zip(*images, strict=True)) if images else ([], [], [], [])
    return np.stack(metrics.bench_images(pred, gt, h, rt), axis=1)


@pytest.mark.parametrize("seed", range(6))
def test_random_images_match_reference(seed):
    rng = np.random.default_rng(seed)
    images = [random_image(rng) for _ in range(120)]
    np.testing.assert_allclose(ours(images), reference(images), rtol=0, atol=1e-9)


def test_every_branch_is_exercised():
    """The generator reaches the special branches, so the differential test means something."""
    rng = np.random.default_rng(0)
    images = [random_image(rng) for _ in range(720)]
    assert any(rt > 200 for *_, rt in images) and any(rt == 200 for *_, rt in images)
    assert any(len(p) > len(g) + 2 for p, g, *_ in images)
    assert any(len(g) > 4 for _, g, *_ in images) and any(not p for p, *_ in images)
    scores = reference(images)
    assert (scores[:, 1] < 0).any()  # one predicted lane matching two gt lanes: negative FP, kept
    assert ((scores[:, 0] > 0) & (scores[:, 0] < 1)).any()


def test_steep_lane_matches_missing_point():
    """On a steep gt lane a predicted -2 (read as -100) is within the widened threshold of a small x: kept."""
    h = [160, 170, 180, 190]
    gt = [[90, 0, -2, -2]]  # k = -9: threshold 20 * sqrt(82) ~ 181 > |-100 - 0| = 100, < |-100 - 90| = 190
    pred = [[-2, -2, -2, -2]]
    np.testing.assert_array_equal(ours([(pred, gt, h, 0)]), [[0.75, 1.0, 1.0]])
    np.testing.assert_array_equal(reference([(pred, gt, h, 0)]), [[0.75, 1.0, 1.0]])


def test_both_missing_counts_as_correct():
    h = [160, 170, 180, 190]
    gt = [[-2, -2, 500, 510]]
    pred = [[-1, -2, 505, -2]]  # rows 0 and 1: both missing -> correct; row 3 missing in pred only
    np.testing.assert_array_equal(ours([(pred, gt, h, 0)]), [[0.75, 1.0, 1.0]])


def test_threshold_is_strict_at_exactly_20():
    h = [160, 170]
    gt = [[500, 500]]  # vertical: k = 0, threshold exactly 20
    assert ours([([[520, 519]], gt, h, 0)])[0, 0] == 0.5


def test_more_than_four_gt_lanes_forgives_one_miss_and_drops_the_worst():
    h = [160, 170]
    gt = [[100 * i, 100 * i] for i in range(1, 6)]
    pred = [lane[:] for lane in gt[:4]]
    np.testing.assert_allclose(ours([(pred, gt, h, 0)]), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(ours([(pred, gt, h, 0)]), reference([(pred, gt, h, 0)]))


def test_run_time_and_lane_count_rules():
    h = [160, 170]
    gt = [[100, 100]]
    assert ours([([[100, 100]], gt, h, 200)])[0].tolist() == [1.0, 0.0, 0.0]  # exactly 200 is evaluated
    assert ours([([[100, 100]], gt, h, 200.5)])[0].tolist() == [0.0, 0.0, 1.0]
    assert ours([([[100, 100]] * 4, gt, h, 0)])[0].tolist() == [0.0, 0.0, 1.0]  # 4 > 1 + 2
    assert ours([([[100, 100]] * 3, gt, h, 0)])[0].tolist() == [1.0, 2 / 3, 0.0]  # 3 - 1 matched, over 3
    # One predicted lane matches both gt lanes: matched 2 > len(pred) 1, so FP is negative, as in the official.
    assert ours([([[100, 100]], [[100, 100], [110, 110]], h, 0)])[0].tolist() == [1.0, -1.0, 0.0]


def test_format_errors_name_the_first_bad_image():
    h = [160, 170]
    good = ([[1, 2]], [[1, 2]], h, 0)
    cases = [
        ([[1, 2, 3]], [[1, 2]], h, 0),  # predicted lane of another length
        ([[1, 2]], [[1, 2, 3]], h, 0),  # gt lane of another length, image evaluated
        ([["a", 2]], [[1, 2]], h, 0),  # not a number
        ([[1, 2]], [[1, None]], h, 0),
        ([[1, 2]], [[1, 2]], h, "fast"),  # run_time not a number
        ([[1, 2]], [[float("inf"), 5]], h, 0),  # sklearn refuses inf in the fit
        (5, [[1, 2]], h, 0),
        ([[1, 2]], [[1, 2]], [160, "x"], 0),
    ]
    for bad in cases:
        with pytest.raises(Exception):  # noqa: B017 - the reference raises whatever bench raises
            reference_eval.bench(*bad)
        with pytest.raises(metrics.LaneFormatError) as info:
            ours([good, good, bad, bad])
        assert info.value.index == 2


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # the reference's 0 / 0 with no h_samples
def test_quirks_without_errors_match_reference():
    """Inputs the official code never reads do not fail: a bad gt lane on a skipped image, odd preds with no gt."""
    h = [160, 170]
    images = [
        ([[1, 2]], [[1, 2, 3]], h, 500),  # too slow: the gt lane is never fitted
        ([[1, 2]] * 5, [[1, 2, 3]], h, 0),  # too many predictions: ditto
        ([["a", "b"]], [], h, 0),  # no gt lane: predicted values are never compared
        ([[float("nan"), 2]], [[float("nan"), 2]], h, 0),  # NaN is "missing" in both
        ([[True, 2]], [[1, 2]], h, 0),
        ([], [], [], 0),
        ([[]], [[]], [], 0),  # no h_samples: 0 / 0, NaN as in the official
    ]
    np.testing.assert_allclose(ours(images), reference(images), rtol=0, atol=1e-9, equal_nan=True)


def test_f1_matches_the_spec_example():
    assert metrics.f1_score(0.0412, 0.0336) == pytest.approx(0.9625, abs=5e-5)
    assert metrics.f1_score(0.0, 0.0) == 1.0
    assert metrics.f1_score(1.0, 0.0) == 0.0


def test_result_list_and_score_predictions():
    h = H56
    labels = [SimpleNamespace(raw_file=f"{i}.jpg", lanes=[[500] * 56, [700] * 56], h_samples=h) for i in range(3)]
    preds = [[[505] * 56], [[500] * 56, [700] * 56], []]
    scores = metrics.score_predictions(preds, labels)
    assert scores.accuracy == pytest.approx((0.5 + 1 + 0) / 3)
    assert scores.fp == 0 and scores.fn == pytest.approx((0.5 + 0 + 1) / 3)
    assert scores.f1 == pytest.approx(metrics.f1_score(scores.fp, scores.fn))
    names = [item["name"] for item in metrics.result_list(1, 2, 3, 4)]
    assert names == ["Accuracy", "FP", "FN"] and math.isclose(metrics.result_list(1, 2, 3, 4)[2]["value"], 0.75)
