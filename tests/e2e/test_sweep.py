"""Sweeps on real Ray: the smoke stability study end to end, a killed driver resumed, killed trial processes
restarted by Tune, and a 2-node cluster."""

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from studies import sweep_command, sweep_env, trial_processes, write_study

from elgan_ray.report import write_report
from elgan_ray.report.frame import final_rows
from elgan_ray.study.plan import run_name

RAY = str(Path(sys.executable).parent / "ray")


def test_run_names_say_what_differs():
    flat = {"loss.gen": "emb", "loss.disc": "ce", "seed": 3, "optim.lr_g": 0.00012345, "loss.lambda": 0.0}
    assert run_name(flat, ("loss.gen", "loss.disc", "seed")) == "g=emb,d=ce,seed=3"
    assert run_name(flat, ("optim.lr_g", "seed")) == "lr_g=0.000123,seed=3"
    # A control is named apart from every GAN trial, by what differs between controls.
    assert (
        run_name(flat, ("loss.gen", "loss.lambda", "optim.lr_g", "seed"), "control") == "control,lr_g=0.000123,seed=3"
    )


def small_study(tmp_path, name="small"):
    """2 loss combinations x 2 seeds: 4 GAN trials and 2 controls over 2 shared pre-trainings."""
    return write_study(tmp_path, name, {"loss.disc": ["ce", "emb"]}, seeds=2)


def run_sweep(study, results, data, *extra, timeout=900):
    command = sweep_command(study, results, data, *extra)
    return subprocess.run(command, check=True, env=sweep_env(), timeout=timeout, capture_output=True, text=True)


def key_columns(frame):
    columns = ["trial_name", "kind", "phase", "step", "post", "accuracy", "fp", "fn", "f1", "status"]
    return frame.sort_values(["trial_name", "step", "post"])[columns].reset_index(drop=True)


@pytest.mark.ray
def test_smoke_stability_sweep(tmp_path, tiny_dataset):
    run_sweep("stability", tmp_path, tiny_dataset)
    study = tmp_path / "stability"
    evals = pd.read_csv(study / "evals.csv")
    gan = evals[evals.role == "gan"]
    assert gan.trial_id.nunique() == 20  # 4 loss combinations x 5 seeds
    assert sorted(gan.groupby(["gen_loss", "disc_loss"]).seed.nunique().tolist()) == [5, 5, 5, 5]
    assert evals[evals.role == "baseline"].trial_id.nunique() == 5  # one shared pre-training per seed
    assert set(evals[evals.role == "baseline"].kind) == {"pretrain"}
    # One fit-only control per seed, with GAN-phase rows: the same schedule, lambda 0.
    control = evals[evals.role == "control"]
    assert sorted(control.groupby("trial_id").seed.first()) == [0, 1, 2, 3, 4]
    assert set(control["lambda"]) == {0.0} and set(control.phase) == {"pretrain_d", "gan"}
    assert (control.phase == "gan").sum() == (gan.phase == "gan").sum() / 4
    assert len(list((tmp_path / "_pretrain").glob("seed*"))) == 5
    assert set(gan.phase) == {"pretrain_d", "gan"} and set(evals.post) == {"basic", "basic++"}
    # D's health is in every row after D exists, and in no row of a pre-training.
    health = ["d_acc_real", "d_acc_fake", "emb_distance", "adv_fit_grad_ratio", "adv_fit_grad_cos"]
    assert evals.loc[evals.kind == "gan", health].notna().all().all()
    assert evals.loc[evals.kind == "pretrain", health].isna().all().all()
    assert not evals.duplicated(["trial_id", "step", "post"]).any()
    assert len(list((study / "tb").iterdir())) == 30  # one TensorBoard run per trial, control and baseline
    for name in ("summary.csv", "health.csv", "table.md", "stability.png", "curves.png", "health.png"):
        assert (study / name).exists(), name
    assert (study / "predictions.png").exists()
    assert list(pd.read_csv(study / "summary.csv").group)[0] == "control"
    pairs = pd.read_csv(study / "pairwise.csv")
    # Every GAN group against the control: final accuracy and Table 3's phase mean and variance after each of 2
    # post-processings, and the width ratio.
    assert set(pairs.b) == {"control", "baseline"} and (pairs.b == "control").sum() == 4 * (3 * 2 + 1)
    assert "## D's health" in (study / "table.md").read_text()
    index = pd.read_csv(tmp_path / "index.csv")
    assert list(index.study) == ["stability"]
    # What the study cost: the training time of its 25 runs and 5 shared pre-trainings, each trial holding 1 CPU.
    records = [*study.glob("runs/*/status.json"), *(tmp_path / "_pretrain").glob("*/status.json")]
    busy = [json.loads(path.read_text())["train_seconds"] for path in records]
    cost = index.iloc[0]
    assert len(busy) == 30 and cost.trial_seconds == pytest.approx(sum(busy), abs=0.1)
    assert cost.cpu_hours == pytest.approx(sum(busy) / 3600, abs=1e-4) and cost.gpu_hours == 0
    assert 0 < cost.trial_seconds and 0 < cost.wall_s
    assert "Cost: " in (study / "table.md").read_text()
    # Seed ensembles: every method (baseline, control, 4 GAN groups) x post-processing x 1..5 seeds, and a
    # single-seed "ensemble" scores exactly as that seed's final evaluation did (maps stored rounding half down).
    ensembles = pd.read_csv(study / "ensemble.csv", dtype={"seeds": str})
    assert (study / "ensemble.png").exists() and len(ensembles) == 6 * 2 * 5
    assert ensembles.groupby(["group", "post"]).n_models.apply(list).map([1, 2, 3, 4, 5].__eq__).all()
    assert list(ensembles.group.drop_duplicates())[:2] == ["baseline", "control"]
    singles = ensembles[ensembles.n_models == 1].set_index(["group", "post"]).accuracy.sort_index()
    seed_0 = final_rows(evals).query("seed == 0").set_index(["group", "post"]).accuracy
    pd.testing.assert_series_equal(singles, seed_0.reindex(singles.index))
    (study / "ensemble.csv").unlink()
    write_report(study)  # what `python -m elgan_ray.report` runs: it recomputes the ensembles from the runs' maps
    pd.testing.assert_frame_equal(pd.read_csv(study / "ensemble.csv", dtype={"seeds": str}), ensembles)


@pytest.fixture(scope="module")
def uninterrupted_small_sweep(tmp_path_factory, tiny_dataset):
    """The small study's evals.csv from a sweep nobody disturbed: what every fault test must end with."""
    root = tmp_path_factory.mktemp("whole")
    run_sweep(small_study(root), root / "results", tiny_dataset)
    return pd.read_csv(root / "results" / "small" / "evals.csv")


def start_sweep(study, results, data):
    command = sweep_command(study, results, data)
    # Its own session: the driver and the local Ray it starts can be found, and killed, as one group.
    return subprocess.Popen(
        command, env=sweep_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_for(condition, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        time.sleep(0.2)
    assert condition(), "timed out"


def gan_rows_written(results):
    return sum(len(p.read_text().splitlines()) for p in (results / "small" / "runs").glob("*/evals.jsonl"))


@pytest.mark.ray
def test_killed_sweep_resumes_with_the_same_rows(tmp_path, tiny_dataset, uninterrupted_small_sweep):
    study = small_study(tmp_path)
    broken = tmp_path / "broken"
    driver = start_sweep(study, broken, tiny_dataset)
    # Kill the driver (and its local Ray) once the GAN stage has started: some trials done, others not.
    wait_for(lambda: gan_rows_written(broken) > 0)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver's session holds its local Ray: all of it dies
    driver.wait()
    started = json.loads((broken / "small" / "study.json").read_text())["started"]

    run_sweep(study, broken, tiny_dataset, "--resume")
    assert json.loads((broken / "small" / "study.json").read_text())["started"] == started  # one study, one row
    assert pd.read_csv(broken / "index.csv")["started"].tolist() == [started]
    resumed = pd.read_csv(broken / "small" / "evals.csv")
    assert not resumed.duplicated(["trial_id", "step", "post"]).any()
    pd.testing.assert_frame_equal(key_columns(resumed), key_columns(uninterrupted_small_sweep))


@pytest.mark.ray
def test_killed_trial_process_is_restarted_and_resumes(tmp_path, tiny_dataset, uninterrupted_small_sweep):
    results = tmp_path / "results"
    driver = start_sweep(small_study(tmp_path), results, tiny_dataset)
    expected_rows = int((uninterrupted_small_sweep.kind == "gan").sum())
    # Mid-run: the GAN trials have written evaluations but not all of them.
    wait_for(lambda: gan_rows_written(results) > 0 and trial_processes(driver.pid))
    killed = trial_processes(driver.pid)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    assert gan_rows_written(results) < expected_rows  # they really died half way
    assert driver.wait(timeout=900) == 0  # Tune restarted them and the sweep finished
    evals = pd.read_csv(results / "small" / "evals.csv")
    assert not evals.duplicated(["trial_id", "step", "post"]).any()
    pd.testing.assert_frame_equal(key_columns(evals), key_columns(uninterrupted_small_sweep))
    assert set(evals.status) == {"ok"}


@pytest.mark.ray
def test_optuna_search_runs_each_proposal_once_per_seed(tmp_path, tiny_dataset):
    nuisance = {"loss.lambda": {"loguniform": [0.1, 10.0]}, "optim.lr_d": {"loguniform": [1.0e-4, 1.0e-2]}}
    study = write_study(tmp_path, "search", {}, seeds=2, nuisance=nuisance, num_samples=2, tables=[])
    run_sweep(study, tmp_path / "results", tiny_dataset)
    evals = pd.read_csv(tmp_path / "results" / "search" / "evals.csv")
    gan = evals[evals.role == "gan"]
    assert gan.trial_id.nunique() == 4  # 2 Optuna proposals x 2 seeds
    control = evals[evals.role == "control"]  # one per seed at the base config, run before the search
    assert sorted(control.groupby("trial_id").seed.first()) == [0, 1] and set(control["lambda"]) == {0.0}
    proposals = gan.groupby(["lambda", "cfg.optim.lr_d"]).seed.unique()
    assert len(proposals) == 2 and all(sorted(seeds) == [0, 1] for seeds in proposals)
    assert all(0.1 <= value <= 10.0 for value in gan["lambda"])  # drawn from the declared range
    assert set(gan.status) == {"ok"}
    assert (tmp_path / "results" / "search" / "summary.csv").exists()


@pytest.mark.ray
def test_a_trial_on_two_train_workers_fits_a_two_cpu_machine(tmp_path, tiny_dataset):
    # On 2 cores, 2 workers x 1 CPU take every CPU of the local Ray: the waiting Tune trials must hold none.
    study = write_study(tmp_path, "one", {}, seeds=1, fixed={"optim.batch_size": 4})
    command = sweep_command(study, tmp_path, tiny_dataset, "--workers-per-trial", "2")
    done = subprocess.run(command, env=sweep_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    evals = pd.read_csv(tmp_path / "one" / "evals.csv")
    assert len(evals[evals.role == "gan"]) == 6 and set(evals.status) == {"ok"}  # 3 evaluations x 2 posts
    assert len(evals[evals.role == "control"]) == 6
    for status in [*(tmp_path / "one" / "runs").glob("*/status.json"), *(tmp_path / "_pretrain").glob("*/status.json")]:
        assert json.loads(status.read_text())["workers"] == 2, status


@pytest.mark.ray
def test_sweep_joins_a_two_node_cluster(tmp_path, tiny_dataset):
    # Ray's socket paths must stay under 107 bytes: a short temp folder, not pytest's deep one.
    env = sweep_env() | {"RAY_TMPDIR": tempfile.mkdtemp(prefix="ray", dir="/tmp")}
    # Token authentication stays on: every node and the driver are given the cluster's token.
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    head = subprocess.run(
        [RAY, "start", "--head", "--port=6390", "--num-cpus=1", "--include-dashboard=false"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert head.returncode == 0, head.stderr
    try:
        worker = subprocess.run(
            [RAY, "start", "--address=127.0.0.1:6390", "--num-cpus=1"], env=env, capture_output=True, text=True
        )
        assert worker.returncode == 0, worker.stderr
        study = small_study(tmp_path, "cluster")
        command = sweep_command(study, tmp_path / "results", tiny_dataset, "--address", "127.0.0.1:6390")
        command += ["--max-concurrent", "2"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        evals = pd.read_csv(tmp_path / "results" / "cluster" / "evals.csv")
        assert evals[evals.role == "gan"].trial_id.nunique() == 4
        assert evals[evals.role == "control"].trial_id.nunique() == 2
        assert evals[evals.role == "baseline"].trial_id.nunique() == 2
        assert not evals.duplicated(["trial_id", "step", "post"]).any()
    finally:
        # Only this cluster's processes (they carry its temp folder in their arguments); `ray stop` would end
        # every Ray on the machine.
        subprocess.run(["pkill", "-9", "-f", env["RAY_TMPDIR"]], capture_output=True)


@pytest.mark.ray
def test_a_study_predicting_the_test_set_reports_table_2_beside_the_paper(tmp_path, tiny_dataset):
    study = write_study(tmp_path, "t2", {"loss.gen": ["emb"]}, seeds=1, fixed={"data.train_split": "trainval"})
    run_sweep(study, tmp_path / "r", tiny_dataset, "--predict", "test")
    folder = tmp_path / "r" / "t2"
    for name in ("control,seed=0", "seed=0", "baseline,seed=0"):
        lines = (folder / "runs" / name / "predictions_test.json").read_text().splitlines()
        assert len(lines) == 4 and set(json.loads(lines[0])) == {"raw_file", "lanes", "h_samples", "run_time"}
        scores = json.loads((folder / "runs" / name / "scores_test.json").read_text())
        assert scores["split"] == "test" and 0 <= scores["accuracy"] <= 1
    test = pd.read_csv(folder / "test.csv")
    assert set(test["group"]) == {"baseline", "control", "EL-GAN"} and set(test["n_runs"]) == {1}
    table = (folder / "table.md").read_text()
    assert "Beside the paper's Table 2" in table and "96.39" in table and "frames seen in training" in table
