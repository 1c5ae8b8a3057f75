"""The bad-input corpus of `evaluate` (prediction and label files) and `evaluate --oracle`.

Each case must exit with status 2 and print one line naming the file (or flag, or key) and the rule, with no
traceback and nothing half-written left behind (bad_input.py has the contract and the helpers)."""

import pytest
from bad_input import (
    broken_copy,
    check_case,
    deep_json,
    eval_files,
    fifo,
    folder,
    fuzz,
    huge_line,
    huge_x,
    label_line,
    pred_line,
    write,
)


def reference(t, pred):
    """The plain port of the official evaluator, on a prediction file and a good label file."""
    return ["elgan_ray.evaluate.reference", str(pred), str(write(t / "gt.json", label_line("a.jpg") + "\n"))]


CASES = {
    # issue 25 (roots 4, D10 and D12): the evaluator's files too are read as bounded regular files
    "eval-prediction-is-a-fifo": (
        lambda t, d: ["elgan_ray.evaluate", str(fifo(t / "pred.json")), str(write(t / "gt.json", "x\n"))],
        "pred.json: not a regular file (a FIFO)",
        {"timeout": 60},
    ),
    "reference-prediction-is-a-fifo": (
        lambda t, d: reference(t, fifo(t / "pred.json")),
        "pred.json: not a regular file (a FIFO)",
        {"timeout": 60},
    ),
    "reference-deeply-nested": (
        lambda t, d: reference(
            t, write(t / "pred.json", pred_line("a.jpg", lanes=[[1]]).replace("[[1]]", deep_json()))
        ),
        "pred.json:1: Fail to load json file of the prediction",
    ),
    "eval-binary-garbage": (lambda t, d: eval_files(t, ["\x00\x01\x02garbage"]), "pred.json"),
    "eval-blank-line": (lambda t, d: eval_files(t, [pred_line("a.jpg"), "", pred_line("b.jpg")]), "pred.json:2"),
    "eval-count-mismatch": (lambda t, d: eval_files(t, [pred_line("a.jpg")]), "pred.json"),
    "eval-empty-labels": (
        lambda t, d: [
            "elgan_ray.evaluate",
            str(write(t / "p.json", pred_line("a.jpg") + "\n")),
            str(write(t / "e.json", "")),
        ],
        "0 label lines",
    ),
    # defect 7: sizes bounded before any allocation
    "eval-huge-line": (huge_line, "pred.json:1", {"limit_mb": 1000}),
    # evaluate: prediction and label files
    "eval-malformed-json": (lambda t, d: eval_files(t, [pred_line("a.jpg"), "{oops"]), "pred.json:2"),
    "eval-missing-file": (lambda t, d: ["elgan_ray.evaluate", str(t / "none.json"), str(t / "gt.json")], "none.json"),
    "eval-missing-key": (
        lambda t, d: eval_files(t, [pred_line("a.jpg"), '{"raw_file": "b.jpg", "lanes": []}']),
        "run_time",
    ),
    # defect 11: outputs of evaluate, sweep and bench
    "eval-per-image-is-a-folder": (
        lambda t, d: [*eval_files(t, [pred_line("a.jpg"), pred_line("b.jpg")]), "--per-image", str(folder(t / "pi"))],
        "pi",
    ),
    "eval-per-image-is-the-prediction": (
        lambda t, d: [*eval_files(t, [pred_line("a.jpg"), pred_line("b.jpg")]), "--per-image", str(t / "pred.json")],
        "--per-image",
    ),
    "eval-per-image-under-a-file": (
        lambda t, d: [
            *eval_files(t, [pred_line("a.jpg"), pred_line("b.jpg")]),
            "--per-image",
            str(write(t / "afile", "x") / "pi.jsonl"),
        ],
        "afile",
    ),
    "eval-unknown-raw-file": (lambda t, d: eval_files(t, [pred_line("a.jpg"), pred_line("zzz.jpg")]), "pred.json:2"),
    "eval-wrong-lane-length": (
        lambda t, d: eval_files(t, [pred_line("a.jpg", [[1, 2]]), pred_line("b.jpg")]),
        "Format of lanes",
    ),
    "oracle-huge-coordinate": (
        lambda t, d: ["elgan_ray.evaluate", "--oracle", str(broken_copy(d, t, huge_x(10**400)))],
        "label_data_0601.json:1",
    ),
    "oracle-huge-size": (
        lambda t, d: ["elgan_ray.evaluate", "--oracle", str(d), "--size", "100000x100000"],
        "--size",
        {"limit_mb": 1000},
    ),
    "oracle-missing-dir": (lambda t, d: ["elgan_ray.evaluate", "--oracle", str(t / "nodata")], "nodata"),
    "oracle-zero-size": (lambda t, d: ["elgan_ray.evaluate", "--oracle", str(d), "--size", "0x128"], "size"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_dataset):
    check_case(CASES, case, tmp_path, tiny_dataset)


def test_fuzzed_prediction_and_label_files_keep_the_one_line_contract(tmp_path):
    fuzz("evaluate", tmp_path, n=200)
