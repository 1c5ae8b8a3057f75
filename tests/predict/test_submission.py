"""predict/: a smoke run's final generator on the test split, as a submission file the evaluator scores."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from elgan_ray.config import RunSettings
from elgan_ray.data.labels import load_split
from elgan_ray.presets import preset
from elgan_ray.record import layout
from elgan_ray.record.runs import write_status
from elgan_ray.train.loop import train

OFFICIAL_KEYS = {"raw_file", "lanes", "h_samples", "run_time"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_dataset):
    out = tmp_path_factory.mktemp("run") / "run"
    cfg = preset("smoke").with_flat({"schedule.gan_steps": 6})
    train(cfg, RunSettings(out_dir=str(out), data_dir=str(tiny_dataset), run_name="run"))
    return out


def _run(*argv):
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=300)


def test_a_submission_file_has_a_line_per_test_frame_and_scores_as_in_process(finished, tiny_dataset, tmp_path):
    from elgan_ray.predict.submission import predict_split

    pred = tmp_path / "p.json"
    done = _run("elgan_ray.predict", str(finished), "--data", str(tiny_dataset), "--split", "test", "--out", str(pred))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in pred.read_text().splitlines()]
    labels = load_split(tiny_dataset, "test")
    assert [line["raw_file"] for line in lines] == [label.raw_file for label in labels]
    assert all(set(line) == OFFICIAL_KEYS and 0 < line["run_time"] <= 200 for line in lines)
    scored = _run("elgan_ray.evaluate", str(pred), str(tiny_dataset / "test_label.json"), "-q")
    assert scored.returncode == 0, scored.stderr
    accuracy, fp, fn = (item["value"] for item in json.loads(scored.stdout))
    in_process = predict_split(finished, tiny_dataset, "test", "basic++", tmp_path / "again.json")
    assert (accuracy, fp, fn) == pytest.approx((in_process.accuracy, in_process.fp, in_process.fn), abs=1e-12)


def test_bad_runs_splits_and_outputs_are_one_line_and_nothing_is_written(finished, tiny_dataset, tmp_path):
    base = ["elgan_ray.predict", "--data", str(tiny_dataset)]

    def refused(*argv, needle):
        done = _run(*base, *argv)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert needle in done.stderr and "Traceback" not in done.stderr

    out = str(tmp_path / "p.json")
    refused(str(tmp_path), "--out", out, needle="holds no checkpoint.pt")
    unfinished = shutil.copytree(finished, tmp_path / "unfinished")
    write_status(unfinished, {"status": "running"})
    refused(str(unfinished), "--out", out, needle="not finished")
    other = shutil.copytree(finished, tmp_path / "other")
    (other / layout.RUN_FILE).write_text(json.dumps({"trial_id": "t", "config": {"seed": 99}}))
    refused(str(other), "--out", out, needle="checkpoint of another config")
    imageless = shutil.copytree(tiny_dataset, tmp_path / "data")
    shutil.rmtree(imageless / "clips" / "0530")  # the test sequence's frames
    done = _run("elgan_ray.predict", str(finished), "--data", str(imageless), "--out", out)
    assert done.returncode == 2 and "not found" in done.stderr
    (tmp_path / "a_file").write_text("")
    refused(str(finished), "--out", str(tmp_path / "a_file" / "p.json"), needle="is a file, not a folder")
    refused(str(finished), "--out", str(tiny_dataset / "test_label.json"), needle="the split's label file")
    assert not (tmp_path / "p.json").exists()
