"""A study on a 2-node Ray cluster on loopback: a node that cannot see --results is refused before any trial, and
a study whose results live on S3 (moto's S3-compatible server on 127.0.0.1) loses nothing when its worker node is
killed mid-sweep, and its report is written from the URI."""

import io
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
from loopback import cluster_env, free_port, kill_node, s3_keys, s3_text, start_head, start_worker, stop_cluster
from studies import sweep_command, write_study


def small_study(tmp_path, name):
    """2 loss combinations x 2 seeds: 4 GAN trials and 2 controls over 2 shared pre-trainings."""
    return write_study(tmp_path, name, {"loss.disc": ["ce", "emb"]}, seeds=2)


@pytest.mark.ray
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for a node's own mounts")
def test_a_node_that_does_not_see_the_results_is_refused_before_any_trial(tmp_path, tiny_dataset):
    # The worker node lives in its own mount namespace, where an empty file system covers the results folder: what
    # a cluster without its shared mount looks like (each node writes to its own disk at the same path).
    results = tmp_path / "results"
    results.mkdir()
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode:
        pytest.skip("no mount namespaces here")
    env, port = cluster_env(), free_port()
    try:
        start_head(env, port)
        start_worker(env, port, hidden=results)
        command = sweep_command(
            small_study(tmp_path, "hidden"), results, tiny_dataset, "--address", f"127.0.0.1:{port}"
        )
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    finally:
        stop_cluster(env)
    assert done.returncode == 2, done.stderr[-3000:]
    line = done.stderr.strip().splitlines()[-1]
    assert "1 of 2 nodes cannot run this study's trials: node " in line and "does not see the results at " in line
    assert not (results / "hidden").exists() and not (results / "_pretrain").exists()  # nothing written, no trial


@pytest.mark.ray
def test_a_study_on_s3_loses_nothing_when_its_worker_node_is_killed(tmp_path, tiny_dataset, s3_server):
    s3_env, client = s3_server
    env, port = cluster_env(**s3_env), free_port()
    uri = "s3://elgan-results/studies"
    try:
        start_head(env, port)
        worker = start_worker(env, port)
        command = sweep_command(small_study(tmp_path, "small"), uri, tiny_dataset, "--address", f"127.0.0.1:{port}")
        # A worker that no node can hold (1 CPU each here) is refused in one line, before any trial.
        refused = subprocess.run([*command, "--cpus-per-worker", "8"], env=env, capture_output=True, text=True)
        assert refused.returncode == 2, refused.stderr[-3000:]
        line = refused.stderr.strip().splitlines()[-1]
        assert "a trial needs 1 worker(s) of {'CPU': 8.0}, and the nodes alive now hold none" in line
        command += ["--max-concurrent", "2"]
        log = (tmp_path / "sweep.log").open("w")
        driver = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # Kill the worker node once the GAN stage has written to the store: a trial of it dies half way.
        deadline = time.time() + 600
        while time.time() < deadline and not [
            k for k in s3_keys(client, "studies/small/runs/") if k.endswith(".jsonl")
        ]:
            assert driver.poll() is None, (tmp_path / "sweep.log").read_text()[-3000:]
            time.sleep(0.5)
        kill_node(worker)
        assert driver.wait(timeout=900) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
        # The report, written again from the URI alone.
        client.delete_object(Bucket="elgan-results", Key="studies/small/summary.csv")
        report = subprocess.run(
            [sys.executable, "-m", "elgan_ray.report", f"{uri}/small"], env=env, capture_output=True, text=True
        )
        assert report.returncode == 0, report.stderr[-3000:]
    finally:
        stop_cluster(env)
    evals = pd.read_csv(io.StringIO(s3_text(client, "studies/small/evals.csv")))
    # Every planned row: 4 GAN trials and 2 controls of 3 evaluations, 2 baselines of 1, each after 2 post-processings.
    assert evals[evals.role == "gan"].trial_id.nunique() == 4 and evals[evals.role == "control"].trial_id.nunique() == 2
    assert evals[evals.role == "baseline"].trial_id.nunique() == 2
    assert len(evals) == (6 * 3 + 2) * 2 and set(evals.status) == {"ok"}
    assert not evals.duplicated(["trial_id", "step", "post"]).any()
    keys = s3_keys(client, "studies/")
    for name in (
        "studies/small/summary.csv",
        "studies/small/table.md",
        "studies/small/study.json",
        "studies/index.csv",
    ):
        assert name in keys, name
    assert any(k.startswith("studies/_pretrain/seed") and k.endswith("/status.json") for k in keys)
    summary = pd.read_csv(
        io.BytesIO(client.get_object(Bucket="elgan-results", Key="studies/small/summary.csv")["Body"].read())
    )
    assert list(summary.group)[0] == "control"
