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
    write_run_record(tmp_path, run)
    assert read_run_record(tmp_path / layout.RUN_FILE) == (run, "ok")
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
