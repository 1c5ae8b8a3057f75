"""report/index.py: results/index.csv keeps one row per study run, and refuses a file it cannot read."""

from __future__ import annotations

import pandas as pd
import pytest

from elgan_ray.errors import UserError
from elgan_ray.record import layout
from elgan_ray.report.cost import StudyCost
from elgan_ray.report.index import INDEX_COLUMNS, read_index, update_index

COST = StudyCost(runs=3, untimed=0, trial_seconds=30.0, cpu_hours=0.01, gpu_hours=0.0, wall_seconds=20.0)


def _summary() -> pd.DataFrame:
    return pd.DataFrame([{"group": "control"}, {"group": "g=emb"}]).assign(n_trials=1, n_diverged=0)


METRIC = {"name": "f1", "post": "basic", "mode": "max"}


def test_a_study_run_has_one_row_replaced_when_its_report_is_written_again(tmp_path):
    first = {"study": "a", "started": "2026-01-01T00:00:00+00:00", "preset": "smoke", "metric": METRIC}
    update_index(tmp_path, first, _summary(), ("g=emb", 0.5), COST)
    update_index(tmp_path, first | {"started": "2026-02-01T00:00:00+00:00"}, _summary(), ("g=emb", 0.6), COST)
    update_index(tmp_path, first, _summary(), ("g=emb", 0.55), COST)  # the first run's report, written again
    index = read_index(layout.index_file(tmp_path))
    assert list(index.columns) == list(INDEX_COLUMNS)
    assert list(index.started) == ["2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"]  # by start time
    assert list(index.best_mean) == [0.55, 0.6] and set(index.best_metric) == {"f1 basic max"}
    assert set(index.best_group) == {"g=emb"} and set(index.trial_seconds) == {30.0}


def test_an_index_that_is_not_one_is_refused_naming_it(tmp_path):
    path = layout.index_file(tmp_path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="needs the columns 'study' and 'started'"):
        read_index(path)
    path.write_bytes(b"study,started\n\xff\n")
    with pytest.raises(UserError, match="index.csv:2: not UTF-8"):
        read_index(path)
    path.write_text("")
    assert read_index(path) is None
