"""study_cost.py: a study's training time and reserved hours from a fabricated results folder."""

import json
from pathlib import Path

import pytest

from elgan_ray.errors import UserError
from elgan_ray.record.runs import read_study_record
from elgan_ray.report.cost import study_cost

STUDY = {"study": "s", "wall_s": 100.0, "resources": {"cpu": 2, "gpu": 1, "workers": 2}}


def write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Two trials sharing pre-training p0, one on p1, a failed trial without a time, and a pre-training of another
    study (p9) that this one never used."""
    for name, pid, status in (("a", "p0", 10), ("b", "p0", 20), ("c", "p1", 30), ("d", "p1", None)):
        write(tmp_path / "s" / "runs" / name / "run.json", {"trial_id": name, "pretrain_id": pid})
        record = {"status": "failed"} if status is None else {"status": "ok", "train_seconds": status}
        write(tmp_path / "s" / "runs" / name / "status.json", record)
    for pid, seconds in (("p0", 100), ("p1", 200), ("p9", 5000)):
        write(tmp_path / "_pretrain" / pid / "status.json", {"status": "ok", "train_seconds": seconds})
    return tmp_path


def test_every_run_and_each_shared_pretraining_once(results: Path):
    cost = study_cost(results / "s", results, STUDY)
    assert (cost.runs, cost.untimed, cost.trial_seconds) == (5, 1, 360)
    # A trial held 2 workers x (2 CPUs, 1 GPU); so did each pre-training, run inside the trial that needed it.
    assert cost.cpu_hours == pytest.approx(360 * 4 / 3600) and cost.gpu_hours == pytest.approx(360 * 2 / 3600)
    assert cost.wall_seconds == 100
    assert cost.index_columns() == {"trial_seconds": 360, "cpu_hours": 0.4, "gpu_hours": 0.2}
    assert "360 trial-seconds of training over 5 runs; reserved 0.4 CPU-hours and 0.2 GPU-hours" in cost.line()


def test_a_shared_gpu_is_counted_by_the_fraction_a_trial_held(results: Path):
    cost = study_cost(results / "s", results, STUDY | {"resources": {"cpu": 1, "gpu": 0.25, "workers": 1}})
    assert cost.gpu_hours == pytest.approx(360 * 0.25 / 3600) and cost.cpu_hours == pytest.approx(360 / 3600)


def test_without_resources_no_hours(results: Path):
    cost = study_cost(results / "s", results, {"study": "s"})
    assert (cost.cpu_hours, cost.gpu_hours, cost.wall_seconds) == (None, None, None)
    assert "CPU-hours" not in cost.line() and cost.trial_seconds == 360


def test_a_bad_time_names_the_file(results: Path):
    write(results / "s" / "runs" / "b" / "status.json", {"status": "ok", "train_seconds": -1})
    with pytest.raises(UserError, match="train_seconds") as error:
        study_cost(results / "s", results, STUDY)
    assert "runs/b/status.json" in str(error.value)


@pytest.mark.parametrize(
    "resources, key",
    [([1], "resources"), ({"cpu": 1, "gpu": 0}, "resources"), ({"cpu": 0, "gpu": 0, "workers": 1}, "resources.cpu")],
)
def test_study_json_resources_are_checked(tmp_path: Path, resources, key):
    write(tmp_path / "study.json", {"study": "s", "resources": resources})
    with pytest.raises(UserError, match=key):
        read_study_record(tmp_path / "study.json")
