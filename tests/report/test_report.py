"""report.py: every summary number recomputed independently from a fake evals.csv; files, figures, index, CLI errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elgan_ray.report import write_report
from elgan_ray.report.__main__ import main
from elgan_ray.report.inputs import read_study_evals
from elgan_ray.report.tables import summarize

GROUPS = [("ce", "ce"), ("ce", "emb"), ("emb", "ce"), ("emb", "emb")]
SEEDS = [0, 1, 2]
H, W, N = 32, 64, 2  # preview frames: tiny, but the same layout as the training loop's


def _preview(run_dir: Path, rng: np.random.Generator) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    label = np.zeros((N, H, W), np.float32)
    label[:, 8:, 20:23] = 1
    label[:, 8:, 44:47] = 1
    prob = np.clip(label + rng.normal(0, 0.2, label.shape), 0, 1).astype(np.float32)
    image = rng.integers(0, 255, (N, H, W, 3), dtype=np.uint8)
    np.savez(run_dir / "preview.npz", image=image, label=label, prob=prob)


def _row(**kw) -> dict:
    # The extra columns the training loop writes besides the contract's; the report must ignore them.
    return {"line_width": 3.0, "label_width": 3.0, "loss_g": 0.1, "loss_d": 0.7} | kw


def _make_study(tmp_path: Path) -> Path:
    """results/stab: 4 groups x 3 seeds (g=emb,d=ce seed 2 diverged half-way), 3 pre-trainings, previews,
    and a failed trial with a run folder but no evaluation row."""
    rng = np.random.default_rng(1)
    study_dir = tmp_path / "results" / "stab"
    rows = []
    for seed in SEEDS:
        name = f"baseline,seed={seed}"
        for step in (100, 200):
            for post in ("basic", "basic++"):
                acc, fp, fn, f1 = rng.uniform(0.5, 0.9, 4)
                rows.append(_row(trial_id=f"pretrain_p{seed}", kind="pretrain", trial_name=name, seed=seed))
                rows[-1] |= {"phase": "pretrain_g", "step": step, "post": post, "status": "ok"}
                rows[-1] |= {"accuracy": acc, "fp": fp, "fn": fn, "f1": f1}
        _preview(study_dir / "runs" / name, rng)
    for i, (g, d) in enumerate(GROUPS):
        for seed in SEEDS:
            name, tid = f"g={g},d={d},seed={seed}", f"t{i}{seed}"
            diverged = (g, d) == ("emb", "ce") and seed == 2
            status = "diverged" if diverged else "ok"
            run_dir = study_dir / "runs" / name
            _preview(run_dir, rng)
            (run_dir / "status.json").write_text(json.dumps({"status": status, "train_seconds": 2.0}))
            config = {"seed": seed, "loss.gen": g, "loss.disc": d, "loss.lambda": 1.0, "loss.emb_block": 7}
            (run_dir / "run.json").write_text(json.dumps({"trial_id": tid, "trial_name": name, "config": config}))
            for phase, step in [("pretrain_d", 0)] + [("gan", s) for s in (10, 20, 30, 40)]:
                for post in ("basic", "basic++"):
                    acc, fp, fn, f1 = rng.uniform(0.2 * i, 0.2 * i + 0.3, 4)
                    if diverged and step >= 30:
                        acc = fp = fn = f1 = np.nan
                    rows.append(_row(trial_id=tid, kind="gan", trial_name=name, seed=seed, gen_loss=g, disc_loss=d))
                    rows[-1] |= {"lambda": 1.0, "emb_block": 7, "phase": phase, "step": step, "post": post}
                    rows[-1] |= {"accuracy": acc, "fp": fp, "fn": fn, "f1": f1, "status": status}
    run_dir = study_dir / "runs" / "g=emb,d=emb,seed=3"  # failed before its first evaluation
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({"status": "failed"}))
    config = {"seed": 3, "loss.gen": "emb", "loss.disc": "emb", "loss.lambda": 1.0, "loss.emb_block": 7}
    (run_dir / "run.json").write_text(json.dumps({"trial_id": "t99", "trial_name": run_dir.name, "config": config}))
    frame = pd.DataFrame(rows)
    columns = ["trial_id", "kind", "trial_name", "seed", "gen_loss", "disc_loss", "lambda", "emb_block"]
    columns += ["phase", "step", "post", "accuracy", "fp", "fn", "f1", "status"]
    frame.reindex(columns=columns + [c for c in frame if c not in columns]).to_csv(study_dir / "evals.csv", index=False)
    record = {"study": "stab", "description": "test study", "config_path": "search_spaces/stability.yaml"}
    record |= {"preset": "tiny", "command": "python -m elgan_ray.sweep stability --preset tiny"}
    record |= {"started": "2024-01-01T00:00:00+00:00", "finished": None, "wall_s": 1.0}
    record |= {"scientific": ["loss.gen", "loss.disc"], "tables": ["stability", "baseline"]}
    record |= {"resources": {"cpu": 2, "gpu": 0.5, "workers": 1}}
    (study_dir / "study.json").write_text(json.dumps(record))
    return study_dir


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return _make_study(tmp_path)


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """One study, reported once (figures take seconds), shared by the tests that only read what it wrote."""
    study_dir = _make_study(tmp_path_factory.mktemp("reported"))
    return study_dir, write_report(study_dir)[0]


def _independent(evals: pd.DataFrame) -> dict[str, dict]:
    """Table 3 numbers and F1 statistics in percent, straight from the rule: each run's own mean, variance and max
    over its GAN-phase evaluations, averaged over the group's runs; the pooled figures over every evaluation."""
    gan = evals[evals["kind"] == "gan"].copy()
    gan["group"] = "g=" + gan["gen_loss"] + ",d=" + gan["disc_loss"]
    out = {}
    for group, rows in gan.groupby("group"):
        main_rows = rows[(rows["phase"] == "gan") & (rows["post"] == "basic++")]
        acc = main_rows["accuracy"] * 100
        last = main_rows[main_rows["step"] == main_rows.groupby("trial_id")["step"].transform("max")]
        f1 = last.sort_values(["seed", "trial_id"])["f1"].dropna().to_numpy() * 100
        idx = np.random.default_rng(0).integers(0, len(f1), (10_000, len(f1)))
        low, high = np.percentile(f1[idx].mean(axis=1), [2.5, 97.5])
        per_run = (main_rows["accuracy"] * 100).groupby(main_rows["trial_id"])
        out[group] = {f"accuracy_{s}": getattr(per_run, s)().mean() for s in ("mean", "var", "max")}
        out[group] |= {f"accuracy_{s}_sd": getattr(per_run, s)().std() for s in ("mean", "var", "max")}
        out[group] |= {"accuracy_pooled_mean": acc.mean(), "accuracy_pooled_var": acc.var(ddof=1)}
        out[group] |= {"accuracy_pooled_max": acc.max(), "n_evals": per_run.count().mean()}
        out[group] |= {"f1_mean": f1.mean(), "f1_std": f1.std(ddof=1), "f1_ci_low": low, "f1_ci_high": high}
        out[group] |= {"n_final": len(f1), "n_seeds": rows["seed"].nunique()}
        out[group] |= {"final_accuracy_mean": last["accuracy"].mean() * 100}
    return out


def test_summary_numbers_recompute(reported):
    study, written = reported
    summary = pd.read_csv(written["summary.csv"])
    expected = _independent(read_study_evals(study / "evals.csv"))
    assert list(summary["group"]) == sorted(expected)
    for _, row in summary.iterrows():
        for key, value in expected[row["group"]].items():
            if key == "n_seeds" and row["group"] == "g=emb,d=emb":
                value += 1  # the failed trial with no rows is counted, not dropped
            assert row[key] == pytest.approx(value, rel=1e-9), (row["group"], key)
    by_group = summary.set_index("group")
    assert by_group.loc["g=emb,d=ce", "n_diverged"] == 1 and by_group.loc["g=emb,d=emb", "n_failed"] == 1
    assert by_group.loc["g=emb,d=ce", "n_evals"] == 10 / 3  # per run: 4, 4 and 2 before divergence
    assert by_group.loc["g=emb,d=ce", "n_final"] == 2  # the diverged seed's last evaluation is NaN


def test_summarize_is_pure(study: Path):
    evals = read_study_evals(study / "evals.csv")
    before = evals.copy()
    summary = summarize(evals)
    pd.testing.assert_frame_equal(evals, before)
    assert len(summary) == 4 and {"gen_loss", "disc_loss"} <= set(summary.columns)
    assert "lambda" not in summary.columns  # constant across trials: not part of the group


def test_groups_by_cfg_columns_and_names_single_group(study: Path):
    evals = read_study_evals(study / "evals.csv")
    gan = evals["kind"] == "gan"
    one = evals[~gan | ((evals["gen_loss"] == "emb") & (evals["disc_loss"] == "ce"))]
    assert list(summarize(one)["group"]) == ["EL-GAN"]
    lrs = one.assign(**{"cfg.optim.lr_g": np.where(one["seed"] == 0, 1e-4, 3e-4)})
    lrs.loc[lrs["kind"] == "pretrain", "cfg.optim.lr_g"] = np.nan
    assert list(summarize(lrs)["group"]) == ["lr_g=0.0001", "lr_g=0.0003"]
    blocks = one.assign(emb_block=one["seed"].map({0: 7.0, 1: 3.0, 2: 5.0}).where(one["kind"] == "gan"))
    assert list(summarize(blocks)["group"]) == ["emb=3", "emb=5", "emb=7"]  # numeric order, printed as ints


def test_files_figures(reported):
    study, written = reported
    for name in ("summary.csv", "final.csv", "pairwise.csv", "table.md", "table.tex", "stability.pdf"):
        assert written[name].exists() and written[name].stat().st_size > 0, name
    for name in ("stability.png", "curves.png", "predictions.png"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written[name].stat().st_size > 10_000
    evals = read_study_evals(study / "evals.csv")
    final = pd.read_csv(written["final.csv"])
    base = final[(final["group"] == "baseline") & (final["post"] == "basic++")].iloc[0]
    last = evals[(evals["kind"] == "pretrain") & (evals["step"] == 200) & (evals["post"] == "basic++")]
    assert base["accuracy"] == pytest.approx(last["accuracy"].mean() * 100)
    assert base["fp"] == pytest.approx(last["fp"].mean()) and base["n_runs"] == 3
    table = (study / "table.md").read_text()
    assert "n_diverged" in table and "Table 1 form" in table and "stab (preset tiny)" in table
    pairs = pd.read_csv(written["pairwise.csv"])
    # baseline + 4 groups, every two: final accuracy after basic and basic++, width ratio (3 x 10); Table 3's phase
    # mean and variance after each post-processing for the 6 pairs of GAN groups (the baseline has no GAN phase).
    assert len(pairs) == 3 * 10 + 2 * 2 * 6
    assert not pairs["paired"].any()  # a study without controls: unpaired, each side bootstrapped
    accuracy = pairs[(pairs.measure == "accuracy") & (pairs.post == "basic++")]
    real = accuracy.set_index(["a", "b"]).loc[("baseline", "g=ce,d=ce"), "real"]
    assert bool(real)  # baseline ~0.7 against ~0.15: far apart


def test_index_row_replaced_on_rerun(reported):
    study, _ = reported
    write_report(study)
    index = pd.read_csv(study.parent / "index.csv")
    assert len(index) == 1
    row = index.iloc[0]
    assert row["n_trials"] == 13 and row["n_diverged"] == 1
    assert row["preset"] == "tiny" and row["command"].startswith("python -m elgan_ray.sweep")
    final = pd.read_csv(study / "final.csv").query("post == 'basic++' and group not in ('baseline', 'control')")
    assert row["best_metric"] == "accuracy basic++ max"  # a version-1 study: the metric its sweep ranked by
    assert row["best_group"] == final.loc[final["accuracy"].idxmax(), "group"]
    assert row["best_mean"] * 100 == pytest.approx(final["accuracy"].max(), abs=1e-2)
    # The cost: 12 runs of 2 s (the failed one has no time), each holding 2 CPUs and half a GPU.
    assert (row["trial_seconds"], row["cpu_hours"], row["gpu_hours"]) == (24, round(48 / 3600, 4), round(12 / 3600, 4))
    assert row["wall_s"] == 1.0
    cost = "Cost: 24 trial-seconds of training over 12 runs; reserved 0.0133 CPU-hours and 0.00333 GPU-hours; 1 s wall"
    table = (study / "table.md").read_text()
    assert cost in table and "(1 run(s) without a recorded time" in table


def test_works_without_study_json(study: Path):
    (study / "study.json").unlink()
    assert main([str(study)]) == 0
    index = pd.read_csv(study.parent / "index.csv")
    assert index["study"].iloc[0] == "stab" and index["trial_seconds"].iloc[0] == 24
    assert index["cpu_hours"].isna().all()  # no record of the resources a trial held
    assert "stab (preset unknown)" in (study / "table.md").read_text()


def _cli(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elgan_ray.report", str(path)], capture_output=True, text=True)


def test_cli_runs_and_names_a_single_group(study: Path):
    evals = read_study_evals(study / "evals.csv")
    keep = (evals["kind"] == "pretrain") | (evals["gen_loss"] == "emb") & (evals["disc_loss"] == "ce")
    evals[keep].to_csv(study / "evals.csv", index=False)
    for name in evals.loc[~keep, "trial_name"].unique():  # as if those trials never ran
        shutil.rmtree(study / "runs" / name)
    result = _cli(study)
    assert result.returncode == 0, result.stderr
    assert "summary.csv" in result.stdout
    # The failed g=emb,d=emb run (no rows) now differs from the rest: two groups, neither dropped.
    assert list(pd.read_csv(study / "summary.csv")["group"]) == ["d=ce", "d=emb"]


def test_predictions_without_postprocess(reported, monkeypatch):
    from elgan_ray.report import plots

    study, _ = reported
    monkeypatch.setitem(sys.modules, "elgan_ray.evaluate.postprocess", None)  # import fails: the raw row only
    fig = plots.predictions_figure("stab", read_study_evals(study / "evals.csv"), study)
    assert fig is not None and len(fig.axes) == 2 * 7 + 1  # 2 frames x (frame, label, baseline, 4 groups), colour bar
    assert "post-processed row skipped" in fig._suptitle.get_text()


@pytest.mark.parametrize(
    "content, rule",
    [
        (None, "not found"),
        ('a,b\n1,2\n"unterminated\n', "CSV"),
        ("trial_id,kind\n1,gan\n", "missing column"),
    ],
)
def test_cli_bad_folder(tmp_path: Path, content, rule):
    if content is not None:
        (tmp_path / "evals.csv").write_text(content)
    result = _cli(tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "evals.csv" in lines[0] and rule in lines[0], result.stderr


def _with_controls(study_dir: Path, d_acc: float = 0.95) -> pd.DataFrame:
    """The study's evals.csv as the sweep now gathers it: roles, one control per seed (lambda 0) with GAN-phase
    rows, and D's health figures in every row after D exists; `d_acc` is every D's accuracy at the end of its
    pre-training."""
    evals = pd.read_csv(study_dir / "evals.csv")
    evals["role"] = evals["kind"].map({"pretrain": "baseline", "gan": "gan"})
    rng = np.random.default_rng(2)
    controls = []
    for seed in SEEDS:
        template = evals[(evals["trial_id"] == f"t0{seed}")].copy()
        template = template.assign(trial_id=f"c{seed}", role="control", trial_name=f"control,seed={seed}")
        template = template.assign(gen_loss="emb", disc_loss="ce", status="ok", accuracy=rng.uniform(0.9, 0.95))
        template["lambda"] = 0.0
        controls.append(template)
    evals = pd.concat([evals, *controls], ignore_index=True)
    after_d = evals["kind"] == "gan"
    evals.loc[after_d, ["d_acc_real", "d_acc_fake"]] = d_acc
    evals.loc[after_d, "emb_distance"] = rng.uniform(0.5, 1.5, after_d.sum())
    evals.loc[after_d, "adv_fit_grad_ratio"] = np.where(evals.loc[after_d, "role"] == "control", 0.0, 0.3)
    evals.loc[after_d, "adv_fit_grad_cos"] = -0.05
    evals.to_csv(study_dir / "evals.csv", index=False)
    return evals


def test_controls_are_the_reference_of_every_table(study: Path):
    evals = _with_controls(study)
    written, _ = write_report(study)
    summary = pd.read_csv(written["summary.csv"])
    assert list(summary["group"])[0] == "control" and summary.loc[0, "n_trials"] == 3
    assert pd.isna(summary.loc[0, "gen_loss"])  # the control is no loss combination
    final = pd.read_csv(written["final.csv"])
    assert list(final["group"].drop_duplicates())[:2] == ["baseline", "control"]
    pairs = pd.read_csv(written["pairwise.csv"])
    pairs = pairs[(pairs.measure == "accuracy") & (pairs.post == "basic++")]
    assert [(a, b) for a, b in zip(pairs["a"], pairs["b"], strict=True)] == [
        *[(f"g={g},d={d}", "control") for g, d in GROUPS],
        ("control", "baseline"),
    ]
    # Paired by seed: 3 seeds, 2 where a seed diverged (its final accuracy is NaN), every pair with its mde.
    assert pairs["paired"].all() and set(pairs["n_pairs"]) == {2, 3} and pairs["mde"].notna().all()
    control_final = evals[(evals.role == "control") & (evals.phase == "gan") & (evals.post == "basic++")]
    control_final = control_final[control_final.step == 40]["accuracy"] * 100
    assert pairs.set_index("a").loc["control", "mean_a"] == pytest.approx(control_final.mean())
    health = pd.read_csv(written["health.csv"]).set_index("group")
    assert health.loc["control", "grad_ratio_median"] == 0 and health.loc["g=ce,d=ce", "grad_ratio_median"] == 0.3
    assert health["d_acc_end_of_pretraining"].tolist() == pytest.approx([0.95] * 5)
    gan_rows = evals[(evals.role == "gan") & (evals.phase == "gan") & (evals.post == "basic++")]
    expected = gan_rows.assign(group="g=" + gan_rows.gen_loss + ",d=" + gan_rows.disc_loss).groupby("group")
    assert health.loc["g=emb,d=emb", "emb_distance"] == pytest.approx(expected["emb_distance"].mean()["g=emb,d=emb"])
    assert "warning" not in (study / "table.md").read_text()
    assert "health.png" in written and "## D's health" in (study / "table.md").read_text()


def test_a_discriminator_at_chance_is_named_in_the_tables(study: Path):
    _with_controls(study, d_acc=0.55)
    write_report(study)
    text = (study / "table.md").read_text()
    # The control and the two groups whose D is trained by the patch loss (eq. 2); under eq. 5 D's patch head gets no
    # gradient and stays at chance by construction: no warning for d=emb.
    assert text.count("D ends its pre-training at chance") == 3
    assert "warning: g=ce,d=emb" not in text and "warning: g=ce,d=ce" in text


def test_the_report_files_are_the_ones_checked_before_writing(reported):
    """report_inputs.check_outputs checks study_layout.REPORT_FILES before the first write: every file the report
    writes must be one of them."""
    from elgan_ray.record import layout as study_layout

    _, written = reported
    assert set(written) - {"index.csv"} <= set(study_layout.REPORT_FILES)


def test_the_phases_the_report_accepts_are_the_training_loops():
    from elgan_ray.record.names import PHASES
    from elgan_ray.record.names import PHASES as LOOP_PHASES

    assert PHASES == LOOP_PHASES


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


def test_an_older_record_is_upgraded_in_one_place(study: Path):
    """The study above is record version 1: evals.csv without `role`, study.json without a version or a metric."""
    from elgan_ray.report.inputs import read_study

    assert "role" not in pd.read_csv(study / "evals.csv").columns
    evals = read_study_evals(study / "evals.csv")
    assert set(evals.loc[evals.kind == "pretrain", "role"]) == {"baseline"} and set(evals.role) == {"baseline", "gan"}
    record = read_study(study, evals)
    assert record["record_version"] == 1 and record["metric"] == {"name": "accuracy", "post": "basic++", "mode": "max"}


def test_the_best_group_is_the_best_by_the_study_s_metric_in_its_mode(study: Path):
    from elgan_ray.report.frame import final_rows
    from elgan_ray.report.tables import best_group

    evals = read_study_evals(study / "evals.csv")
    final = final_rows(evals)
    gan = final[(final["role"] == "gan") & (final["post"] == "basic")]
    by_fp = gan.groupby("group")["fp"].mean()
    assert best_group(evals, {"name": "fp", "post": "basic", "mode": "min"}) == (by_fp.idxmin(), by_fp.min())
    by_f1 = gan.groupby("group")["f1"].mean()
    assert best_group(evals, {"name": "f1", "post": "basic", "mode": "max"}) == (by_f1.idxmax(), by_f1.max())


def _two_runs(accuracies: dict[str, list[float]], widths: dict[str, float] | None = None) -> pd.DataFrame:
    """GAN-phase basic++ rows by hand: per (group, seed) name its accuracies over training (as fractions)."""
    rows = []
    for name, values in accuracies.items():
        group, seed = name.split("/")
        role = "control" if group == "control" else "gan"
        for step, accuracy in enumerate(values, start=1):
            row = {"trial_id": name, "kind": "gan", "role": role, "trial_name": name, "seed": int(seed)}
            row |= {"gen_loss": "emb", "disc_loss": "ce", "lambda": 0.0 if role == "control" else 0.1}
            row |= {"emb_block": 7, "phase": "gan", "step": step * 10, "accuracy": accuracy, "status": "ok"}
            row |= {"fp": 0.1, "fn": 0.1, "f1": 0.9, "line_width": (widths or {}).get(name, 2.0), "label_width": 1.0}
            rows += [row | {"post": post} for post in ("basic", "basic++")]
    return pd.DataFrame(rows)


def test_table_3_is_within_each_run_and_the_pooled_figures_differ_when_seeds_differ():
    # Two seeds, each perfectly steady over training but at different levels: no variance within a run (the
    # paper's Table 3 statistic), all of it between the seeds (what a pooled variance adds in).
    evals = _two_runs({"gan/0": [0.80, 0.80, 0.80], "gan/1": [0.90, 0.90, 0.90], "control/0": [0.5, 0.6, 0.7]})
    gan = summarize(evals).set_index("group").loc["EL-GAN"]
    assert gan["accuracy_var"] == 0.0 and gan["accuracy_var_sd"] == 0.0
    assert gan["accuracy_mean"] == pytest.approx(85.0) and gan["accuracy_mean_sd"] == pytest.approx(
        np.std([80, 90], ddof=1)
    )
    assert gan["accuracy_pooled_var"] == pytest.approx(np.var([80] * 3 + [90] * 3, ddof=1))  # 30: all between seeds
    assert gan["accuracy_max"] == pytest.approx(85.0) and gan["accuracy_pooled_max"] == pytest.approx(90.0)
    control = summarize(evals).set_index("group").loc["control"]
    assert control["accuracy_var"] == pytest.approx(100.0)  # 50, 60, 70 within its one run


def test_table_3_s_statistics_are_compared_per_seed_with_the_control():
    """Each run's mean and variance over its GAN phase, paired by seed: the paper's statistic, not the final row."""
    from elgan_ray.report.tables import pairwise

    evals = _two_runs(
        {
            "gan/0": [0.80, 0.80, 0.80],
            "gan/1": [0.70, 0.90, 0.80],
            "control/0": [0.50, 0.60, 0.70],
            "control/1": [0.60, 0.60, 0.60],
        }
    )
    pairs = pairwise(evals).set_index(["measure", "post"])
    mean = pairs.loc[("phase_mean", "basic")]
    assert mean["paired"] and mean["n_pairs"] == 2
    assert mean["diff"] == pytest.approx(np.mean([80 - 60, 80 - 60]))
    var = pairs.loc[("phase_var", "basic++")]
    assert var["diff"] == pytest.approx(np.mean([0 - 100, 100 - 0]))  # percent squared, within each run
    final = pairs.loc[("accuracy", "basic")]
    assert final["diff"] == pytest.approx(np.mean([80 - 70, 80 - 60]))  # the last evaluation only


def test_comparisons_are_paired_by_seed_with_an_exact_interval_and_a_minimal_detectable_effect():
    from elgan_ray.report.stats import minimal_detectable_effect, sign_flip_ci
    from elgan_ray.report.tables import pairwise

    seeds = range(7)
    gains = [1.0, 2.0, 1.5, 0.5, 2.5, 1.0, 1.5]  # every seed's GAN run ends this many points above its control
    levels = [60.0 + 7 * s for s in seeds]  # seeds differ by far more than the gains: unpaired, they drown them
    accuracies = {f"control/{s}": [levels[s] / 100] for s in seeds}
    accuracies |= {f"gan/{s}": [(levels[s] + gains[s]) / 100] for s in seeds}
    widths = {f"gan/{s}": 1.5 for s in seeds} | {f"control/{s}": 2.0 + 0.1 * s for s in seeds}
    pairs = pairwise(_two_runs(accuracies, widths)).set_index(["measure", "post"])
    row = pairs.loc[("accuracy", "basic++")]
    assert row["paired"] and row["n_pairs"] == 7 and row["method"] == "sign-flip"
    assert row["diff"] == pytest.approx(np.mean(gains))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(sign_flip_ci(np.array(gains)))
    assert row["real"] and row["ci_low"] > 0  # every seed gained: the exact test rejects no difference
    assert row["mde"] == pytest.approx(minimal_detectable_effect(np.std(gains, ddof=1), 7))
    width = pairs.loc[("width_ratio", "maps")]
    assert width["diff"] == pytest.approx(np.mean([1.5 - (2.0 + 0.1 * s) for s in seeds]))
