"""study_estimate.py and `sweep --dry-run`: the plan printed in full, the estimate's arithmetic, nothing written."""

import pytest

from elgan_ray.presets import preset
from elgan_ray.sweep.__main__ import main
from elgan_ray.sweep.dry_run import Timings, phase_counts, pretrain_seconds, trial_seconds


def test_phase_counts_follow_the_schedule():
    # cpu preset: 3000 G pre-training steps, 100 D steps, 200 GAN steps in rounds of 12 G and 8 D.
    counts = phase_counts(preset("cpu"))
    assert (counts["pretrain_g"], counts["pretrain_d"], counts["gan_g"], counts["gan_d"]) == (3000, 100, 120, 80)
    odd = preset("cpu").with_flat({"schedule.gan_steps": 25, "schedule.eval_every": 7, "schedule.gan_eval_every": 0})
    counts = phase_counts(odd)  # one round of 12 + 8, then 5 more G steps; an evaluation every 7 and at the end
    assert (counts["gan_g"], counts["gan_d"], counts["gan_evals"], counts["pretrain_d_evals"]) == (17, 8, 4, 15)


def test_run_seconds_are_steps_and_evaluations_times_their_timings():
    t = Timings(pretrain_g=1.0, gan_g=2.0, d=3.0, evaluation=10.0, health=100.0)
    cfg = preset("smoke")
    n = phase_counts(cfg)
    assert pretrain_seconds(cfg, t) == n["pretrain_g"] + 10 * n["pretrain_g_evals"]
    evaluations = n["pretrain_d_evals"] + n["gan_evals"]
    assert trial_seconds(cfg, t) == 3 * n["pretrain_d"] + 2 * n["gan_g"] + 3 * n["gan_d"] + 110 * evaluations


def test_dry_run_prints_every_run_and_pretraining_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["stability", "--preset", "smoke", "--results", str(results), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "runs (25: 5 controls, 20 GAN trials)" in out
    assert sum(line.startswith("  gan ") for line in out.splitlines()) == 20
    assert sum(line.startswith("  control ") for line in out.splitlines()) == 5
    assert "generator pre-trainings shared (5, 0 of them done)" in out
    assert "trial-seconds" in out and "wall time: about" in out
    assert not results.exists()


def test_dry_run_of_a_search_study_counts_its_samples(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["optuna", "--preset", "smoke", "--results", str(results), "--dry-run", "--max-concurrent", "1"]) == 0
    out = capsys.readouterr().out
    assert "runs (18: 2 controls, 16 GAN trials)" in out  # 8 proposals x 2 seeds, and a control per seed
    assert "sampled by Optuna" in out and "1 trial(s) at once" in out
    assert not results.exists()


@pytest.mark.parametrize("flag", [["--max-concurrent", "-1"], ["--cpus-per-worker", "0"]])
def test_dry_run_checks_its_arguments_as_a_sweep_does(tmp_path, flag, capsys):
    from elgan_ray.errors import UserError

    with pytest.raises(UserError):
        main(["stability", "--preset", "smoke", "--results", str(tmp_path / "r"), "--dry-run", *flag])


def test_trials_at_once_are_asked_for_unbounded_on_a_cluster_else_what_the_machine_holds():
    from elgan_ray.sweep.settings import SweepSettings

    def settings(workers=1, cpus=1.0, gpus=0.0, cluster=False):
        return SweepSettings("s", "/r", {}, ("seed",), None, workers, cpus, gpus, cluster)

    assert settings().concurrency(3, cpus=16, gpus=0) == 3  # asked for
    assert settings(cluster=True).concurrency(0, cpus=2, gpus=0, capacity=6) == 6  # what the cluster holds at most
    assert settings(workers=2, cpus=1.5).concurrency(0, cpus=16, gpus=0) == 5  # 16 // 3 CPUs a trial
    assert settings(gpus=1.0).concurrency(0, cpus=16, gpus=2) == 2  # the GPUs bound it
    assert settings(cpus=4).concurrency(0, cpus=2, gpus=0) == 1  # at least one
    # Small presets share a GPU: a quarter of one per trial runs four trials on one GPU (CPUs allowing).
    assert settings(cpus=1.0, gpus=0.25).concurrency(0, cpus=16, gpus=1) == 4
