"""sweep/tune.py without a running Ray: a search's ASHA judges trials on their GAN-phase evaluations, and runs whose
trials ended unfinished are marked stopped."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

from elgan_ray.record.names import metric_key
from elgan_ray.study.scheduler import CLOCK
from elgan_ray.sweep.tune import tune_scheduler


def test_asha_judges_trials_on_gan_phase_evaluations():
    asha = tune_scheduler({"name": "asha", "grace_period": 2, "reduction_factor": 2.0})
    assert asha.set_search_properties("accuracy", "max")  # the Tuner's metric and mode, as Optuna's
    good, bad = SimpleNamespace(trial_id="good"), SimpleNamespace(trial_id="bad")
    for trial in (good, bad):
        asha.on_trial_add(None, trial)
    # During the D pre-training (no GAN evaluation yet) nothing is judged, however low the score.
    assert asha.on_trial_result(None, bad, {CLOCK: 0, "accuracy": 0.0}) == "CONTINUE"
    assert asha.on_trial_result(None, good, {CLOCK: 2, "accuracy": 0.9}) == "CONTINUE"
    assert asha.on_trial_result(None, bad, {CLOCK: 2, "accuracy": 0.1}) == "STOP"  # below the best half at rung 2
    assert tune_scheduler(None) is None


def test_runs_whose_trials_ended_unfinished_are_marked_stopped(tmp_path):
    import json

    from elgan_ray.record.runs import read_status, write_status
    from elgan_ray.sweep.tune import mark_stopped

    study = tmp_path / "search"
    for trial_id, status in [("a", None), ("b", "ok"), ("c", "stopped"), ("d", None), ("e", None)]:
        run = study / "runs" / f"run-{trial_id}"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"trial_id": trial_id}))
        (run / "evals.jsonl").write_text('{"step": 4, "phase": "gan", "post": "basic++"}\n')
        if status:
            write_status(run, {"status": status})
    results = [SimpleNamespace(error=None, metrics={"trial_id": t}) for t in "abc"]
    results.append(SimpleNamespace(error=RuntimeError("died"), metrics={"trial_id": "d"}))  # failed, not stopped
    assert mark_stopped(results, study) == 2  # a (the scheduler ended it before its loop did) and c (earlier)
    assert read_status(study / "runs" / "run-a") == {"status": "stopped", "step": 4}
    assert [read_status(study / "runs" / f"run-{t}")["status"] for t in "bcde"] == [
        "ok",
        "stopped",
        "running",
        "running",
    ]
    assert mark_stopped(results, study) == 2  # a --resume runs it again: nothing changes


def test_a_search_study_s_tuners_rank_by_its_metric_after_its_post_processing(tmp_path, monkeypatch):
    import ray

    from elgan_ray.study.spec import load_spec
    from elgan_ray.sweep.settings import SweepSettings
    from elgan_ray.sweep.tune import _tune_config

    base = Path(__file__).resolve().parents[2] / "search_spaces" / "base.yaml"
    path = tmp_path / "f1.yaml"
    path.write_text(
        f"study: f1\ndescription: a search by F1\nbase: {base}\nscientific: {{}}\nseeds: 2\nnum_samples: 3\n"
        "nuisance: {optim.lr_g: {loguniform: [1.0e-4, 1.0e-3]}}\nmetric: {name: f1, post: basic, mode: max}\n"
    )
    spec = load_spec(str(path))
    settings = SweepSettings("f1", str(tmp_path), {}, ("optim.lr_g", "seed"), None, 1, 1.0, 0.0)
    settings = dataclasses.replace(settings, metric=metric_key(spec.metric_name, spec.metric_post))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})  # no Ray started: the machine's share
    searched = _tune_config(spec, settings, max_concurrent=0, searched=True)
    assert (searched.metric, searched.mode) == ("basic/f1", "max")
    assert searched.num_samples == 6  # 3 proposals x 2 seeds, each seed a repeat
    assert _tune_config(spec, settings, max_concurrent=0, searched=False).metric is None  # the controls' grid


def test_a_torn_tune_state_is_not_restored(tmp_path):
    """A full disk can cut Tune's experiment state mid-write; restoring it fails and starts no trial, so the sweep
    runs a fresh Tuner whose runs resume from their own checkpoints instead."""
    from elgan_ray.sweep.tune import _tune_state_readable

    (tmp_path / "experiment_state-2026-12-05_01-00-00.json").write_text('{"trials": [1, 2]}')
    assert _tune_state_readable(str(tmp_path))
    (tmp_path / "experiment_state-2026-12-05_01-10-00.json").write_text('{"trials": [1, "unterminat')
    assert not _tune_state_readable(str(tmp_path))
