"""sweep/gather.py: evals.csv from a study's run folders and its shared pre-training, each run's identity from its
folder and the study's plan, never from a row or a run.json that disagrees with them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from studies import write_study

from elgan_ray.errors import UserError
from elgan_ray.presets import preset
from elgan_ray.record import layout
from elgan_ray.record.names import EVALS_COLUMNS
from elgan_ray.record.runs import write_run_record, write_status
from elgan_ray.study.plan import planned_runs, varying_keys
from elgan_ray.study.spec import load_spec
from elgan_ray.sweep.gather import gather_evals, study_rows
from elgan_ray.sweep.pretrain import data_identity, pretrain_id
from elgan_ray.sweep.settings import SweepSettings

ROW = {"step": 10, "phase": "gan", "phase_step": 4, "accuracy": 0.5, "fp": 0.1, "fn": 0.2, "f1": 0.7}


@pytest.fixture
def study(tmp_path):
    """A two-run study (a GAN trial at lr_g 0.001 and its control, seed 0), its settings and plan, and its run folders
    written as the trials write them: run.json, evals.jsonl, status.json; the control failed before its first row."""
    spec = load_spec(str(write_study(tmp_path, "s", {"optim.lr_g": [0.001]}, seeds=1, nuisance={})))
    base = preset("smoke").with_flat(spec.fixed, source=spec.path)
    varying = ("optim.lr_g", *varying_keys(spec))
    settings = SweepSettings("s", str(tmp_path / "results"), base.to_flat(), varying, None, 1, 1, 0)
    planned = planned_runs(spec, base, varying)
    pid = pretrain_id(planned[0].cfg, data_identity(None))
    for n, run in enumerate(planned):
        folder = layout.run_dir(settings.study_dir, run.name)
        folder.mkdir(parents=True)
        record = {"trial_id": f"t{n}", "trial_name": run.name, "role": run.role, "config": run.cfg.to_flat()}
        write_run_record(folder, record | {"pretrain_id": pid})
        rows = [ROW | {"post": "basic"}, ROW | {"post": "basic++"}] if run.role == "gan" else []
        (folder / layout.RUN_EVALS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
        write_status(folder, {"status": "ok" if rows else "failed"})
    pretrain = layout.pretrain_root(settings.results_root) / pid
    pretrain.mkdir(parents=True)
    row = {"step": 6, "phase": "pretrain_g", "post": "basic++", "accuracy": 0.4}
    (pretrain / layout.RUN_EVALS_FILE).write_text(json.dumps(row) + "\n")
    write_status(pretrain, {"status": "ok"})
    (pretrain / "events.out.tfevents.1").write_bytes(b"events")
    return settings, planned


def test_evals_csv_holds_every_row_with_its_run_s_identity_and_the_baseline(study):
    settings, planned = study
    frame = gather_evals(settings, planned, search=False)
    written = pd.read_csv(layout.evals_file(settings.study_dir))
    assert list(written.columns[: len(EVALS_COLUMNS)]) == list(EVALS_COLUMNS)
    assert len(frame) == len(written) == 3  # two GAN rows, no control row (it failed first), one baseline row
    gan_rows = written[written.role == "gan"]
    assert set(gan_rows.post) == {"basic", "basic++"} and set(gan_rows["cfg.optim.lr_g"]) == {0.001}
    assert set(gan_rows.trial_name) == {"lr_g=0.001,seed=0"} and set(gan_rows.status) == {"ok"}
    baseline = written[written.role == "baseline"].iloc[0]
    assert (baseline.trial_name, baseline.kind) == ("baseline,seed=0", "pretrain")
    # The study folder is complete: the baseline's record and TensorBoard run are copied in.
    assert (layout.run_dir(settings.study_dir, "baseline,seed=0") / layout.RUN_EVALS_FILE).is_file()
    assert (layout.tb_dir(settings.study_dir, "baseline,seed=0") / "events.out.tfevents.1").read_bytes() == b"events"


def _edit_run(settings, name, change):
    path = layout.run_dir(settings.study_dir, name) / layout.RUN_FILE
    run = json.loads(path.read_text())
    change(run)
    path.write_text(json.dumps(run))


def _append_row(settings, name, row):
    with open(layout.run_dir(settings.study_dir, name) / layout.RUN_EVALS_FILE, "a") as handle:
        handle.write(json.dumps(row) + "\n")


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        # issue 25, D5: a row naming another run moved itself there (identity | row)
        (
            lambda s: _append_row(s, "lr_g=0.001,seed=0", ROW | {"post": "basic", "trial_name": "control,seed=0"}),
            "evals.jsonl:3: key 'trial_name'",
        ),
        (lambda s: _append_row(s, "lr_g=0.001,seed=0", ROW | {"post": "basic", "seed": 7}), "key 'seed'"),
        # D23: run.json's name, seed and pre-training are its folder's, its plan's and its config's
        (lambda s: _edit_run(s, "lr_g=0.001,seed=0", lambda r: r.update(trial_name="x")), "names the run 'x'"),
        (
            lambda s: _edit_run(s, "lr_g=0.001,seed=0", lambda r: r["config"].update(seed=3)),
            "make the run 'lr_g=0.001,seed=3', not this folder's",
        ),
        (
            lambda s: _edit_run(s, "lr_g=0.001,seed=0", lambda r: r.update(role="control")),
            "make the run 'control,lr_g=0.001,seed=0'",
        ),
        (
            lambda s: _edit_run(s, "lr_g=0.001,seed=0", lambda r: r["config"].update({"loss.lambda": 7.0})),
            "is not the plan's gan run",
        ),
        (
            lambda s: _edit_run(s, "lr_g=0.001,seed=0", lambda r: r.update(pretrain_id="seed3-0000000000")),
            "key 'pretrain_id'",
        ),
        (lambda s: _edit_run(s, "lr_g=0.001,seed=0", lambda r: r.update(trial_id="t0")), "names the trial of runs/"),
    ],
    ids=["row-names-a-run", "row-names-a-seed", "name", "seed", "role", "config", "pretraining", "trial-id"],
)
def test_a_run_whose_record_is_not_its_own_is_refused_naming_it(study, damage, needle):
    settings, planned = study
    study_rows(settings, planned, search=False)  # the undamaged study reads
    damage(settings)
    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        study_rows(settings, planned, search=False)
    assert not layout.evals_file(settings.study_dir).exists()


def test_a_folder_the_plan_does_not_have_is_refused_unless_a_search_sampled_it(study):
    settings, planned = study
    gan = next(run for run in planned if run.role == "gan")
    cfg = gan.cfg.with_flat({"optim.lr_g": 0.002})
    folder = layout.run_dir(settings.study_dir, "lr_g=0.002,seed=0")
    folder.mkdir()
    record = {"trial_id": "t9", "trial_name": folder.name, "role": "gan", "config": cfg.to_flat()}
    write_run_record(folder, record | {"pretrain_id": pretrain_id(cfg, data_identity(None))})
    with pytest.raises(UserError, match="the study's plan has no run 'lr_g=0.002,seed=0'"):
        study_rows(settings, planned, search=False)
    rows, _ = study_rows(settings, planned, search=True)  # Optuna's samples are no planned runs
    assert len(rows) == 3


def _run(folder, record, rows, status="ok"):
    folder.mkdir(parents=True)
    write_run_record(folder, record)
    (folder / layout.RUN_EVALS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
    write_status(folder, {"status": status})


def test_a_study_missing_planned_runs_is_refused_naming_them(tmp_path):
    import pytest
    from studies import write_study

    from elgan_ray.errors import UserError
    from elgan_ray.presets import preset
    from elgan_ray.study.plan import planned_runs, varying_keys
    from elgan_ray.study.spec import load_spec
    from elgan_ray.sweep.gather import check_complete

    spec = load_spec(write_study(tmp_path, "s", {"loss.disc": ["ce", "emb"]}, seeds=1))
    base = preset("smoke").with_flat(spec.fixed)
    runs = planned_runs(spec, base, varying_keys(spec))
    results = tmp_path / "results"
    study = layout.study_dir(results, "s")
    names = [run.name for run in runs]  # control,seed=0, d=ce,seed=0, d=emb,seed=0
    record = {"trial_id": "t", "role": "gan", "config": {"seed": 0}, "pretrain_id": "p0"}
    _run(layout.run_dir(study, names[0]), record | {"trial_name": names[0], "role": "control"}, [])
    _run(layout.run_dir(study, names[1]), record | {"trial_name": names[1]}, [], status="running")  # never ended
    (layout.pretrain_root(results) / "p0").mkdir(parents=True)
    write_status(layout.pretrain_root(results) / "p0", {"status": "ok"})
    with pytest.raises(UserError) as caught:
        check_complete(study, results, runs, searched=False)
    assert f"2 planned run(s) have no record here: {names[1]}, {names[2]}" in str(caught.value)
    _run(layout.run_dir(study, names[2]), record | {"trial_name": names[2]}, [])
    write_status(layout.run_dir(study, names[1]), {"status": "failed"})  # failed is a record: the report counts it
    check_complete(study, results, runs, searched=False)
    write_status(layout.pretrain_root(results) / "p0", {"status": "running"})  # a finished run's baseline is gone
    with pytest.raises(UserError, match="1 planned run.s. have no record here: baseline p0"):
        check_complete(study, results, runs, searched=False)
