"""Sweeps on real local Rays that race, find RAY_ADDRESS set, run out of disk, are stopped or are killed (issue 25:
D1, D11, D15, D16, D22). The tiny study (conftest.py's tiny_study) is swept once per session, two sweeps at once."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from studies import ray_processes, sweep_command, sweep_env, tiny_study_file, trial_processes
from test_sweep import key_columns

pytestmark = pytest.mark.ray


def wait_for(condition, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        time.sleep(0.2)
    return condition()


def test_a_second_sweep_of_a_running_study_is_refused_in_one_line_naming_the_first(tiny_study):
    """D1: a second sweep of one study into one --results, started while the first ran its pre-flight, ran too: both
    Tuners trained the same run folders, every GAN-phase row was written twice, index.csv got two rows. The first
    sweep's lock is taken before any other check; the second is refused in one line naming its holder."""
    (winner,) = [sweep for sweep in tiny_study.sweeps if sweep[1] == 0]
    (refused,) = [sweep for sweep in tiny_study.sweeps if sweep[1] != 0]
    lines = [line for line in refused[2].splitlines() if line.strip()]
    assert refused[1] == 2 and len(lines) == 1, refused[2][-3000:]
    assert ".tiny.sweep.lock: another sweep runs study 'tiny'" in lines[0] and f"pid {winner[0]}," in lines[0]
    results = tiny_study.results
    evals = pd.read_csv(results / "tiny" / "evals.csv")
    assert not evals.duplicated(["trial_id", "step", "post"]).any()
    for record in (results / "tiny" / "runs").glob("*/evals.jsonl"):
        rows = record.read_text().splitlines()
        assert len(rows) == len(set(rows)), record
    assert list(pd.read_csv(results / "index.csv").study) == ["tiny"]
    assert not (results / ".tiny.sweep.lock").exists()  # released when the sweep ended


def test_a_local_sweep_starts_its_own_ray_whatever_ray_address_says(tiny_study):
    """D11: with RAY_ADDRESS set (as inside `ray job submit`), ray.init joined it and refused the local resources:
    a ValueError traceback, and study.json already written."""
    (winner,) = [sweep for sweep in tiny_study.sweeps if sweep[1] == 0]
    assert "note: RAY_ADDRESS=127.0.0.1:1 is ignored: a sweep joins a cluster only with --address" in winner[2]
    assert (tiny_study.results / "tiny" / "summary.csv").is_file()


def test_a_full_disk_ends_the_sweep_in_one_line_and_resume_recovers_every_row(tmp_path, tiny_dataset, tiny_study):
    """D15: a full disk during a sweep ended the driver with a traceback after 359 lines of stderr. The sweep runs
    on a 1200 KB tmpfs: its last line says to free space and --resume; once the file system is larger, --resume
    ends with exactly the rows of an undisturbed sweep."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        study, results = tiny_study_file(tmp_path), disk / "r"
        done = subprocess.run(
            sweep_command(study, results, tiny_dataset), env=sweep_env(), capture_output=True, text=True, timeout=900
        )
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2, done.stderr[-3000:]
        assert lines[-1].startswith(f"error: {results}: no space left on its file system: free some, then run")
        assert "--resume" in lines[-1]
        assert 'elgan_ray/sweep/__main__.py", line' not in done.stderr  # no traceback of the driver's
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        resumed = subprocess.run(
            sweep_command(study, results, tiny_dataset, "--resume"),
            env=sweep_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        whole = pd.read_csv(tiny_study.results / "tiny" / "evals.csv")
        pd.testing.assert_frame_equal(key_columns(pd.read_csv(results / "tiny" / "evals.csv")), key_columns(whole))
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def start_tiny_sweep(tmp_path, tiny_dataset):
    """A tiny sweep in its own session (the driver and its local Ray can be found, and killed, as one group), its
    stderr in tmp_path/stderr; returned once its trials run."""
    command = sweep_command(tiny_study_file(tmp_path), tmp_path / "results", tiny_dataset)
    with open(tmp_path / "stderr", "w") as err:
        driver = subprocess.Popen(
            command, env=sweep_env(), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
    assert wait_for(lambda: trial_processes(driver.pid) or driver.poll() is not None), "no trial started"
    assert driver.poll() is None, (tmp_path / "stderr").read_text()[-3000:]
    return driver


def test_sigterm_ends_a_running_sweep_as_terminated_with_143(tmp_path, tiny_dataset):
    """D16: ray.init replaced run_cli's SIGTERM handler: a SIGTERM once Ray ran ended the driver with 134 (abort) and
    Ray's C++ stack dump."""
    driver = start_tiny_sweep(tmp_path, tiny_dataset)
    try:
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=180) == 128 + signal.SIGTERM, (tmp_path / "stderr").read_text()[-3000:]
        err = (tmp_path / "stderr").read_text()
        assert [line for line in err.splitlines() if line.strip()][-1] == "terminated", err[-3000:]
        # No abort, and no traceback of the driver's (a trial Tune stopped mid-report may print its own, via Ray).
        assert "Aborted" not in err and "SIGABRT" not in err and "in run_cli" not in err, err[-3000:]
        assert not (tmp_path / "results" / ".tiny.sweep.lock").exists()  # the study's lock released
    finally:
        _kill_group(driver.pid)


def test_a_killed_driver_leaves_no_ray_agent_behind(tmp_path, tiny_dataset):
    """D22: after a kill -9 of the driver, Ray's two agents (~180 MB) stayed as orphans for 1-3 minutes."""
    driver = start_tiny_sweep(tmp_path, tiny_dataset)
    try:
        agents = ray_processes(driver.pid, b"ray::DashboardAgent", b"ray::RuntimeEnvAgent")
        assert agents, "no Ray agent found under the driver"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        assert wait_for(lambda: not any(map(_alive, agents)), timeout=30), agents
    finally:
        _kill_group(driver.pid)


def _alive(pid: int) -> bool:
    """A process that runs (a zombie, which a container's first process may never reap, has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # its own session: the sweep and anything left of its Ray
    except ProcessLookupError:
        pass
