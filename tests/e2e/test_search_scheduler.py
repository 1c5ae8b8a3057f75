"""A search study with ASHA on real Ray: weak trials are stopped early, keep their rows, are marked `stopped`
and counted by the report; the marks survive --resume."""

import subprocess

import pandas as pd
import pytest
from studies import sweep_command, sweep_env, write_study

GAN_EVALUATIONS = 3  # gan_steps 12 / eval_every 4


@pytest.mark.ray
def test_asha_stops_weak_search_trials_and_the_report_counts_them(tmp_path, tiny_dataset):
    # One trial at a time, so the order in which trials reach a rung (and the stops) is the same on every run.
    # A wide lr_g range gives trials that differ; reduction factor 4 stops all but the best quarter at each rung.
    study = write_study(
        tmp_path,
        "search",
        {},
        seeds=1,
        nuisance={"optim.lr_g": {"loguniform": [1.0e-5, 1.0e-1]}},
        num_samples=5,
        tables=[],
        fixed={"schedule.gan_steps": 12, "schedule.eval_every": 4},
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 4},
        metric={"name": "f1", "post": "basic", "mode": "max"},  # ranked by F1 after basic, not basic++ accuracy
    )
    results = tmp_path / "results"
    command = sweep_command(study, results, tiny_dataset, "--max-concurrent", "1")
    done = subprocess.run(command, env=sweep_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    evals = pd.read_csv(results / "search" / "evals.csv")
    gan = evals[(evals.role == "gan") & (evals.post == "basic++")]
    status = gan.groupby("trial_id").status.first()
    evaluations = gan[gan.phase == "gan"].groupby("trial_id").step.nunique()
    assert set(status) <= {"ok", "stopped"} and (status == "stopped").sum() >= 1, status
    assert (evaluations[status == "ok"] == GAN_EVALUATIONS).all()
    assert (evaluations[status == "stopped"] < GAN_EVALUATIONS).all()  # stopped early, its rows kept
    assert set(evals[evals.role == "control"].status) == {"ok"}  # the controls' Tuner has no scheduler
    summary = pd.read_csv(results / "search" / "summary.csv")
    assert summary.n_stopped.sum() == (status == "stopped").sum()
    assert f"{(status == 'stopped').sum()} trial(s) stopped early by asha" in done.stdout
    # Tune ranked by the study's metric: every trial reported it, and the index names it with the best group.
    results_files = list((results / "search" / "tune_0").glob("*/result.json"))
    assert results_files and all('"basic/f1"' in path.read_text() for path in results_files)
    index = pd.read_csv(results / "index.csv")
    assert list(index.best_metric) == ["f1 basic max"]

    again = subprocess.run(command + ["--resume"], env=sweep_env(), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = pd.read_csv(results / "search" / "evals.csv")
    pd.testing.assert_series_equal(resumed[resumed.role == "gan"].groupby("trial_id").status.first(), status)
