"""`python -m elgan_ray.evaluate`: files scored as the official evaluator does, and every bad input as one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_metric import random_image

from elgan_ray.errors import UserError, run_cli
from elgan_ray.evaluate import jsonl as tusimple_json
from elgan_ray.evaluate import reference as reference_eval
from elgan_ray.evaluate import score as evaluate
from elgan_ray.evaluate.__main__ import main as evaluate_main


def write_pair(tmp: Path, preds: list, labels: list, name: str = "") -> tuple[str, str]:
    pred_path, gt_path = tmp / f"pred{name}.json", tmp / f"gt{name}.json"
    pred_path.write_text("".join(json.dumps(p) + "\n" for p in preds))
    gt_path.write_text("".join(json.dumps(g) + "\n" for g in labels))
    return str(pred_path), str(gt_path)


def random_files(seed: int, n: int = 80) -> tuple[list, list]:
    """Prediction and label lines; labels repeat some raw_files (the later wins), predictions repeat some too."""
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for i in range(n):
        pred, gt, h, run_time = random_image(rng)
        labels.append({"raw_file": f"clips/{i}.jpg", "lanes": gt, "h_samples": h})
        preds.append({"raw_file": f"clips/{i}.jpg", "lanes": pred, "run_time": run_time, "h_samples": h})
    rows = [label["h_samples"] for label in labels]
    for _ in range(4):  # a label line repeated with other lanes: the later one is the label
        j = int(rng.integers(n))
        pred, gt, h, run_time = random_image(rng, rows[j])  # same rows: earlier preds stay valid
        labels.insert(
            int(rng.integers(j + 1, len(labels) + 1)), {"raw_file": f"clips/{j}.jpg", "lanes": gt, "h_samples": h}
        )
        preds.insert(
            int(rng.integers(len(preds) + 1)), {"raw_file": f"clips/{j}.jpg", "lanes": pred, "run_time": run_time}
        )
    return preds, labels


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = run_cli(evaluate_main, argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("seed", range(4))
def test_files_match_reference(tmp_path, capsys, seed):
    pred_path, gt_path = write_pair(tmp_path, *random_files(seed))
    per_image = tmp_path / "per_image.jsonl"
    code, out, err = run([pred_path, gt_path, "--per-image", str(per_image)], capsys)
    expected, expected_images = reference_eval.bench_one_submit(pred_path, gt_path)
    assert code == 0 and out.count("\n") == 1
    ours, theirs = json.loads(out), json.loads(expected)
    assert [(d["name"], d["order"]) for d in ours] == [(d["name"], d["order"]) for d in theirs]
    np.testing.assert_allclose([d["value"] for d in ours], [d["value"] for d in theirs], rtol=0, atol=1e-9)
    rows = [json.loads(line) for line in per_image.read_text().splitlines()]
    assert [r["raw_file"] for r in rows] == [
        json.loads(x)["raw_file"] for x in Path(pred_path).read_text().splitlines()
    ]
    got = np.array([[r["accuracy"], r["fp"], r["fn"]] for r in rows])
    np.testing.assert_allclose(got, np.array(expected_images), rtol=0, atol=1e-9)
    assert "F1" in err


def test_output_is_the_official_json_line(tmp_path, capsys):
    h = [160, 170]
    labels = [{"raw_file": "a", "lanes": [[100, 100]], "h_samples": h}, {"raw_file": "b", "lanes": [], "h_samples": h}]
    preds = [{"raw_file": "a", "lanes": [[100, 100]], "run_time": 1}, {"raw_file": "b", "lanes": [], "run_time": 1}]
    code, out, _ = run([*write_pair(tmp_path, preds, labels), "-q"], capsys)
    assert out == (
        '[{"name": "Accuracy", "value": 0.5, "order": "desc"}, {"name": "FP", "value": 0.0, "order": "asc"}, '
        '{"name": "FN", "value": 0.0, "order": "asc"}]\n'
    )


GOOD = {"raw_file": "a", "lanes": [[100, 100]], "run_time": 1}
LABEL = {"raw_file": "a", "lanes": [[100, 100]], "h_samples": [160, 170]}
LABEL_B = {"raw_file": "b", "lanes": [[100, 100]], "h_samples": [160, 170]}
GOOD_B = {**GOOD, "raw_file": "b"}

# (prediction lines as text, label lines as text, which file, line, official wording)
ERROR_CASES = {
    "unparsable": (['{"raw_file": "a"', json.dumps(GOOD_B)], None, "pred", 1, reference_eval.LOAD_ERROR),
    "blank line": ([json.dumps(GOOD), "", json.dumps(GOOD_B)], None, "pred", 2, reference_eval.LOAD_ERROR),
    "count mismatch": ([json.dumps(GOOD)], None, "pred", 2, reference_eval.COUNT_ERROR),
    "missing lanes": (
        [json.dumps(GOOD), json.dumps({"raw_file": "b", "run_time": 1})],
        None,
        "pred",
        2,
        reference_eval.KEYS_ERROR,
    ),
    "missing run_time": (
        [json.dumps({"raw_file": "a", "lanes": []}), "{}"],
        None,
        "pred",
        1,
        reference_eval.KEYS_ERROR,
    ),
    "not an object": (["[1, 2]", json.dumps(GOOD_B)], None, "pred", 1, reference_eval.KEYS_ERROR),
    "unknown raw_file": (
        [json.dumps(GOOD), json.dumps({**GOOD, "raw_file": "zzz"})],
        None,
        "pred",
        2,
        reference_eval.UNKNOWN_ERROR,
    ),
    "lane length": (
        [json.dumps(GOOD), json.dumps({**GOOD_B, "lanes": [[1, 2, 3]]})],
        None,
        "pred",
        2,
        reference_eval.FORMAT_ERROR,
    ),
    "gt lane length": (
        [json.dumps(GOOD), json.dumps(GOOD_B)],
        [json.dumps(LABEL), json.dumps({**LABEL_B, "lanes": [[1]]})],
        "pred",
        2,
        reference_eval.FORMAT_ERROR,
    ),
    "string x": (
        [json.dumps({**GOOD, "lanes": [["1", 2]]}), json.dumps(GOOD_B)],
        None,
        "pred",
        1,
        reference_eval.FORMAT_ERROR,
    ),
    "string run_time": (
        [json.dumps(GOOD), json.dumps({**GOOD_B, "run_time": "1"})],
        None,
        "pred",
        2,
        reference_eval.FORMAT_ERROR,
    ),
    "format before key": (
        [json.dumps({**GOOD, "lanes": [[1]]}), json.dumps({"raw_file": "b"})],
        None,
        "pred",
        1,
        reference_eval.FORMAT_ERROR,
    ),
    "key before format": (
        [json.dumps({"raw_file": "a"}), json.dumps({**GOOD_B, "lanes": [[1]]})],
        None,
        "pred",
        1,
        reference_eval.KEYS_ERROR,
    ),
    "label not json": ([json.dumps(GOOD), json.dumps(GOOD_B)], [json.dumps(LABEL), "nope"], "gt", 2, "label"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_input_is_one_line_with_file_line_and_rule(tmp_path, capsys, case):
    pred_lines, gt_lines, which, line, rule = ERROR_CASES[case]
    gt_lines = gt_lines or [json.dumps(LABEL), json.dumps(LABEL_B)]
    pred_path, gt_path = tmp_path / "p.json", tmp_path / "g.json"
    pred_path.write_text("\n".join(pred_lines) + "\n")
    gt_path.write_text("\n".join(gt_lines) + "\n")
    code, out, err = run([str(pred_path), str(gt_path)], capsys)
    path = pred_path if which == "pred" else gt_path
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {path}:{line}:") and rule in err
    with pytest.raises(UserError) as info:  # the reference port fails on the same line with the same rule
        reference_eval.bench_one_submit(str(pred_path), str(gt_path))
    assert info.value.line == line and info.value.source == str(path) and rule in info.value.rule


def test_missing_files(tmp_path, capsys):
    pred_path, gt_path = write_pair(tmp_path, [GOOD], [LABEL])
    for argv, missing in (([str(tmp_path / "no.json"), gt_path], "no.json"), ([pred_path, str(tmp_path / "x")], "x")):
        code, out, err = run(argv, capsys)
        assert code == 2 and out == "" and err.count("\n") == 1 and missing in err and "file not found" in err


def test_skipped_image_never_reads_its_bad_gt_lane(tmp_path, capsys):
    """Official quirk: with run_time > 200 the image scores (0, 0, 1) before the gt lanes are looked at."""
    preds = [{**GOOD, "run_time": 201}]
    labels = [{**LABEL, "lanes": [[1, 2, 3]]}]
    code, out, _ = run([*write_pair(tmp_path, preds, labels), "-q"], capsys)
    assert code == 0 and [d["value"] for d in json.loads(out)] == [0.0, 0.0, 1.0]


def test_command_starts_without_torch_or_ray(tmp_path):
    pred_path, gt_path = write_pair(tmp_path, [GOOD], [LABEL])
    code = (
        "import sys, runpy; sys.argv = ['evaluate', '-q', sys.argv[1], sys.argv[2]]\n"
        "try:\n    runpy.run_module('elgan_ray.evaluate', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('torch', 'ray', 'cv2', 'sklearn') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code, pred_path, gt_path], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["value"] == 1.0


def test_python_dash_m_exit_status(tmp_path):
    pred_path, gt_path = write_pair(tmp_path, [GOOD], [LABEL_B])
    result = subprocess.run(
        [sys.executable, "-m", "elgan_ray.evaluate", pred_path, gt_path], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stdout == "" and reference_eval.UNKNOWN_ERROR in result.stderr


def _json_prediction(line: bytes):
    """What json makes of one prediction line, as (raw_file, lane lengths, values, run_time), or None unless the
    line is an object with a string raw_file, lanes of numbers and a numeric run_time."""
    try:
        value = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None
    if type(value) is not dict or not {"raw_file", "lanes", "run_time"} <= set(value):
        return None
    lanes, run_time = value["lanes"], value["run_time"]
    if type(value["raw_file"]) is not str or type(lanes) is not list or type(run_time) not in (int, float):
        return None
    if not all(type(lane) is list and all(type(x) in (int, float) for x in lane) for lane in lanes):
        return None
    return value["raw_file"], [len(lane) for lane in lanes], [x for lane in lanes for x in lane], run_time


def test_fast_reader_agrees_with_json():
    """The msgspec reader accepts only lines json accepts, and then reads the same strings and doubles (fuzzed)."""
    rng = np.random.default_rng(7)
    alphabet = list('[]{},:-. 0123456789"eE+') + ["12", "0.5", "-2", "[[", "]]", ", ", "1280", "3.14159", "NaN"]
    alphabet += [
        "Infinity",
        "1e400",
        "true",
        "null",
        '"x"',
        "\\u00e9",
        "\\ud800",
        "\t",
        "\r",
        "\xff",
        "\udcff",
        "99999999999999999999",
    ]
    alphabet += ["1e-400", "-0", "01", "1.", ".5", "\\"]
    alphabet += ['"lanes"', '"run_time"', '"raw_file"', '"h_samples"']
    base = json.dumps({"raw_file": "a.jpg", "lanes": [[1, -2, 3.5], [0.25, 1280]], "run_time": 12, "h_samples": [1]})
    whole = json.dumps({"raw_file": "a.jpg", "lanes": [[1, -2, 30], [], [1280, 0]], "run_time": 12, "h_samples": [1]})
    texts = [base, base.replace("12", "12.5"), base.replace('"a.jpg"', '"a\\u00e9.jpg"'), whole]
    for _ in range(4000):
        text = (base, whole)[int(rng.integers(2))]  # decimals, and whole pixels (read in bulk)
        for _ in range(int(rng.integers(1, 4))):
            i, j = sorted(int(x) for x in rng.integers(0, len(text) + 1, 2))
            text = text[:i] + "".join(rng.choice(alphabet, size=int(rng.integers(0, 3)))) + text[j:]
        texts.append(text)
    numbers = list(re.finditer(r"-?[0-9.]+", base))
    for _ in range(1000):  # one number replaced by a number-like token: json's number grammar, edge by edge
        m = numbers[int(rng.integers(len(numbers)))]
        token = "".join(rng.choice(list("-+.eE0123456789") + ["1", "5", "0"] * 4, size=int(rng.integers(1, 7))))
        texts.append(base[: m.start()] + token + base[m.end() :])
    for _ in range(300):
        lanes = [[round(float(v), int(rng.integers(0, 18))) for v in rng.uniform(-5, 1500, 5)] for _ in range(2)]
        texts.append(json.dumps({"raw_file": "b", "lanes": lanes, "run_time": float(rng.uniform(0, 300))}))
    accepted = 0
    for text in texts:
        line = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        if b"\n" in line:
            continue
        fast = tusimple_json.read_fast(line + b"\n", tusimple_json.Prediction)
        expected = _json_prediction(line)
        if fast is None:
            continue
        accepted += text not in texts[:4] and "b" not in text
        assert expected is not None, text
        raw_file, lane_len, values, run_time = expected
        assert fast.raw_files == [raw_file] and fast.lanes.lane_len.tolist() == lane_len, text
        assert fast.lanes.per_image.tolist() == [len(lane_len)], text
        assert fast.lanes.values.tolist() == [float(x) for x in values], text  # bit-identical doubles
        assert fast.run_times.tolist() == [float(run_time)], text
    assert accepted > 200  # mutated lines that still read


def test_fast_and_plain_paths_agree(tmp_path, capsys):
    """Ordinary integer and decimal files take the fast path and score exactly as the plain path does."""
    rng = np.random.default_rng(3)
    h = list(range(160, 720, 10))
    preds, labels = [], []
    for i in range(150):
        gt = [
            [int(v) if v < 1280 else -2 for v in np.round(rng.uniform(0, 1400, 56))]
            for _ in range(int(rng.integers(0, 6)))
        ]
        pred = [
            [round(float(x + rng.normal(0, 12)), int(rng.integers(0, 4))) if x >= 0 else -2 for x in lane]
            for lane in gt
        ]
        labels.append({"raw_file": f"{i}.jpg", "lanes": gt, "h_samples": h})
        preds.append(
            {
                "raw_file": f"{i}.jpg",
                "lanes": pred[: int(rng.integers(0, len(pred) + 1))],
                "run_time": int(rng.integers(0, 300)),
                "h_samples": h,
            }
        )
    pred_path, gt_path = write_pair(tmp_path, preds, labels)
    fast = evaluate._score_fast(Path(pred_path).read_bytes(), Path(gt_path).read_bytes())
    assert fast is not None
    expected, per_image = reference_eval.bench_one_submit(pred_path, gt_path)
    assert json.dumps(fast.result) == expected
    np.testing.assert_allclose(np.stack([fast.accuracy, fast.fp, fast.fn], 1), per_image, rtol=0, atol=1e-12)
    # A broken h_samples in a prediction (ignored for scoring) must still fail to parse, as in the official.
    Path(pred_path).write_text(Path(pred_path).read_text().replace('"h_samples": [160,', '"h_samples": [0160,', 1))
    code, out, err = run([pred_path, gt_path], capsys)
    assert code == 2 and out == "" and f"{pred_path}:1:" in err and reference_eval.LOAD_ERROR in err
