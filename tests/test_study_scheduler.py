"""study_scheduler.py: a search study's `scheduler` key checked (one line naming file, line and key), a grid
study refusing one, and ASHA judging trials on their GAN-phase evaluations. Ray is imported, not started."""

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from elgan_ray.errors import UserError
from elgan_ray.study.scheduler import CLOCK
from elgan_ray.study.spec import SEARCH_DIR, load_spec
from elgan_ray.sweep.tune import tune_scheduler

SEARCH = """\
study: study
description: a search
base: base.yaml
scientific: {}
nuisance:
  optim.lr_g: {loguniform: [1.0e-4, 1.0e-3]}
num_samples: 4
seeds: 2
"""


def _write(tmp_path: Path, text: str, base_extra: str = "") -> Path:
    (tmp_path / "base.yaml").write_text((SEARCH_DIR / "base.yaml").read_text() + base_extra)
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str, base_extra: str = "") -> UserError:
    with pytest.raises(UserError) as info:
        load_spec(str(_write(tmp_path, text, base_extra)))
    return info.value


def test_shipped_studies_only_optuna_stops_early():
    assert load_spec("optuna").scheduler == {"name": "asha", "grace_period": 3, "reduction_factor": 3.0}
    for name in ("stability", "lambda", "embedding", "losses", "baseline"):
        assert load_spec(name).scheduler is None


def test_a_search_study_names_asha(tmp_path):
    spec = load_spec(str(_write(tmp_path, SEARCH + "scheduler: {name: asha, grace_period: 2, reduction_factor: 2}\n")))
    assert spec.scheduler == {"name": "asha", "grace_period": 2, "reduction_factor": 2.0}
    assert load_spec(str(_write(tmp_path, SEARCH))).scheduler is None


@pytest.mark.parametrize("name", ["stability", "losses", "embedding", "lambda", "baseline"])
def test_a_grid_study_refuses_a_scheduler_saying_why(tmp_path, name):
    text = (SEARCH_DIR / f"{name}.yaml").read_text().replace("base: base.yaml", f"base: {SEARCH_DIR / 'base.yaml'}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text + "scheduler: {name: asha, grace_period: 2, reduction_factor: 2}\n")
    with pytest.raises(UserError) as info:
        load_spec(str(path))
    error = info.value
    assert (error.source, error.key, error.line) == (str(path), "scheduler", len(text.splitlines()) + 1)
    assert "hide the very instability the table measures" in str(error) and "\n" not in str(error)


@pytest.mark.parametrize(
    "scheduler, key, words",
    [
        ("{name: hyperband, grace_period: 2, reduction_factor: 2}", "scheduler.name", "unknown scheduler"),
        ("{name: asha, grace_period: 0, reduction_factor: 2}", "scheduler.grace_period", "integer >= 1"),
        ("{name: asha, grace_period: 2.5, reduction_factor: 2}", "scheduler.grace_period", "integer >= 1"),
        ("{name: asha, grace_period: 2, reduction_factor: 1}", "scheduler.reduction_factor", "> 1"),
        ("{name: asha, grace_period: 2, reduction_factor: .inf}", "scheduler.reduction_factor", "> 1"),
        ("{name: asha, grace_period: 2}", "scheduler", "'reduction_factor' missing"),
        ("{name: asha, grace_period: 2, reduction_factor: 2, max_t: 9}", "scheduler.max_t", "unknown key"),
    ],
)
def test_bad_scheduler_names_file_line_and_key(tmp_path, scheduler, key, words):
    error = _error(tmp_path, SEARCH + f"scheduler: {scheduler}\n")
    assert error.source.endswith("study.yaml") and error.key == key and error.line == 9
    assert words in error.rule


def test_base_yaml_may_not_hold_a_scheduler(tmp_path):
    error = _error(tmp_path, SEARCH, base_extra="scheduler: {name: asha, grace_period: 2, reduction_factor: 2}\n")
    assert error.source.endswith("base.yaml") and error.key == "scheduler"


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


def _search_evals() -> pd.DataFrame:
    """Two Optuna proposals (lambda 0.1, 1.0) x 3 seeds and a control; proposal 1.0's seed 2 was stopped early."""
    runs = [(0.0, 0, "ok")] + [(0.1, seed, "ok") for seed in range(3)] + [(1.0, 0, "ok"), (1.0, 1, "ok")]
    rows = []
    for trial, (lam, seed, status) in enumerate(runs + [(1.0, 2, "stopped")]):
        role = "control" if lam == 0 else "gan"
        steps = (10, 20) if status == "stopped" else (10, 20, 30, 40)
        for step in steps:
            accuracy = 0.1 if status == "stopped" else 0.5 + 0.01 * step + 0.02 * seed
            row = {"trial_id": f"t{trial}", "kind": "gan", "role": role, "trial_name": f"lambda={lam},seed={seed}"}
            row |= {"seed": seed, "gen_loss": "emb", "disc_loss": "ce", "lambda": lam, "emb_block": 7}
            row |= {
                "phase": "gan",
                "step": step,
                "accuracy": accuracy,
                "fp": 0.1,
                "fn": 0.1,
                "f1": 0.9,
                "status": status,
            }
            rows += [row | {"post": post} for post in ("basic", "basic++")]
    return pd.DataFrame(rows)


def test_a_stopped_trial_is_counted_and_kept_out_of_the_statistics():
    from elgan_ray.record.names import STATUSES
    from elgan_ray.report.frame import final_rows
    from elgan_ray.report.plots import stability_figure
    from elgan_ray.report.tables import summarize

    assert "stopped" in STATUSES
    evals = _search_evals()
    summary = summarize(evals).set_index("group")
    without = summarize(evals[evals.status != "stopped"]).set_index("group")
    assert summary.loc["lambda=1", "n_trials"] == 3 and summary.loc["lambda=1", "n_stopped"] == 1
    assert summary["n_stopped"].sum() == 1 and summary.loc["lambda=1", "n_final"] == 2
    statistics = ["n_evals", "accuracy_mean", "accuracy_var", "accuracy_max", "f1_mean", "final_accuracy_mean"]
    pd.testing.assert_frame_equal(summary[statistics], without[statistics])
    assert "t6" not in set(final_rows(evals).trial_id)  # its last row is not a final evaluation
    assert len(evals[evals.trial_id == "t6"]) == 4  # but its rows stay
    figure = stability_figure("search", evals, summarize(evals))
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert any("2/3 scored, 1 stopped" in t for t in ticks), ticks


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
