"""record/runs.py: the one reader and writer of a run's and a study's JSON records."""

from __future__ import annotations

import json

import pytest

from elgan_ray.errors import UserError
from elgan_ray.record import layout
from elgan_ray.record.runs import (
    read_run_evals,
    read_run_record,
    read_status,
    read_study_record,
    write_run_record,
    write_status,
    write_study_record,
)


def test_records_round_trip(tmp_path):
    write_status(tmp_path, {"status": "ok", "train_seconds": 1.5})
    assert read_status(tmp_path) == {"status": "ok", "train_seconds": 1.5}
    run = {"trial_id": "t1", "trial_name": "g=emb,seed=0", "role": "gan", "config": {"seed": 0, "loss.gen": "emb"}}
    run_dir = tmp_path / "g=emb,seed=0"  # a run's folder is named as the run
    run_dir.mkdir()
    write_status(run_dir, {"status": "ok"})
    write_run_record(run_dir, run)
    assert read_run_record(run_dir / layout.RUN_FILE) == (run, "ok")
    study = {"study": "s", "started": "2026-01-01T00:00:00+00:00", "tables": ["stability"], "wall_s": 3.0}
    write_study_record(tmp_path, study)
    assert read_study_record(layout.study_file(tmp_path)) == study


def test_a_run_without_status_is_running_and_a_run_without_record_has_no_rows(tmp_path):
    assert read_status(tmp_path) == {"status": "running"}
    assert read_run_evals(tmp_path) == []


def test_evals_rows_are_read_whole_and_a_torn_last_line_only_is_dropped(tmp_path, capsys):
    row = {"step": 4, "phase": "gan", "post": "basic++", "accuracy": 0.5}
    path = tmp_path / layout.RUN_EVALS_FILE
    path.write_text(json.dumps(row) + "\n" + '{"step": 8, "pha')
    assert read_run_evals(tmp_path) == [row]
    assert "dropped a torn last line" in capsys.readouterr().err
    path.write_text(json.dumps(row) + "\n" + '{"step": 8}\n' + json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"evals.jsonl:2: an evaluation row is a JSON object"):
        read_run_evals(tmp_path)


@pytest.mark.parametrize(
    ("record", "key"),
    [
        ({"trial_id": True}, "trial_id"),
        ({"trial_id": "t", "role": "referee"}, "role"),
        ({"trial_id": "t", "config": {"seed": -1}}, "config.seed"),
        ({"trial_id": "t", "config": {"x": {"nested": 1}}}, "config.x"),
    ],
)
def test_a_bad_run_record_is_one_error_naming_the_key(tmp_path, record, key):
    (tmp_path / layout.RUN_FILE).write_text(json.dumps(record))
    with pytest.raises(UserError) as info:
        read_run_record(tmp_path / layout.RUN_FILE)
    assert info.value.key == key


def test_a_status_outside_the_statuses_is_refused_naming_status_json(tmp_path):
    write_run_record(tmp_path, {"trial_id": "t"})
    write_status(tmp_path, {"status": "exploded"})
    with pytest.raises(UserError, match="status.json: key 'status'"):
        read_run_record(tmp_path / layout.RUN_FILE)


GOOD_ROW = {"step": 4, "phase": "gan", "phase_step": 2, "post": "basic++", "accuracy": 0.5, "fp": 0.0, "fn": 0.0}
GOOD_ROW |= {"f1": 1.0, "line_width": 3.0, "label_width": 4.0, "loss_g": 0.7, "d_acc_real": 0.5}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"trial_name": "control,seed=0"}, "trial_name"),  # who a row is of is its folder's (issue 25, D5)
        ({"seed": 7}, "seed"),
        ({"accuracy": 5.0}, "accuracy"),
        ({"fp": -4.5}, "fp"),  # below what one predicted lane matching five gt lanes gives
        ({"f1": 1.7}, "f1"),
        ({"fn": -0.1}, "fn"),
        ({"step": 4.0}, "step"),
        ({"phase_step": -1}, "phase_step"),
        ({"phase": "warmup"}, "phase"),
        ({"post": 1}, "post"),
        ({"loss_g": "NaN"}, "loss_g"),
        ({"d_acc_real": float("inf")}, "d_acc_real"),
        ({"line_width": -1.0}, "line_width"),
        ({"x": 1}, "x"),
    ],
)
def test_an_evaluation_row_outside_the_schema_is_refused_naming_its_line_and_key(tmp_path, change, key):
    path = tmp_path / layout.RUN_EVALS_FILE
    path.write_text(json.dumps(GOOD_ROW) + "\n" + json.dumps(GOOD_ROW | change) + "\n")
    with pytest.raises(UserError) as caught:
        read_run_evals(tmp_path)
    assert (caught.value.line, caught.value.key) == (2, key)


def test_the_official_metric_s_own_values_are_rows(tmp_path):
    """One predicted lane may match two gt lanes: the official FP goes below 0 and F1 above 1 (-0.0025 on real maps)."""
    rows = [GOOD_ROW | {"fp": -0.0025, "f1": 1.00125}, GOOD_ROW | {"accuracy": None, "fp": None, "loss_g": None}]
    (tmp_path / layout.RUN_EVALS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert read_run_evals(tmp_path) == rows
