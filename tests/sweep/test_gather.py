"""sweep/gather.py: evals.csv from hand-written run folders and a shared pre-training."""

from __future__ import annotations

import json

import pandas as pd

from elgan_ray.record import layout
from elgan_ray.record.names import EVALS_COLUMNS
from elgan_ray.record.runs import write_run_record, write_status
from elgan_ray.sweep.gather import gather_evals


def _run(folder, record, rows, status="ok"):
    folder.mkdir(parents=True)
    write_run_record(folder, record)
    (folder / layout.RUN_EVALS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
    write_status(folder, {"status": status})


def test_evals_csv_holds_every_row_with_its_run_s_identity_and_the_baseline(tmp_path):
    results, study = tmp_path / "results", tmp_path / "results" / "s"
    config = {"seed": 0, "loss.gen": "emb", "loss.disc": "ce", "loss.lambda": 0.02, "loss.emb_block": 7}
    config |= {"optim.lr_g": 0.001}
    row = {"step": 10, "phase": "gan", "phase_step": 4, "accuracy": 0.5, "fp": 0.1, "fn": 0.2, "f1": 0.7}
    gan = {"trial_id": "t1", "trial_name": "lr_g=0.001,seed=0", "role": "gan", "config": config, "pretrain_id": "p0"}
    _run(layout.run_dir(study, "lr_g=0.001,seed=0"), gan, [row | {"post": "basic"}, row | {"post": "basic++"}])
    control = gan | {"trial_id": "t2", "trial_name": "control,seed=0", "role": "control"}
    _run(layout.run_dir(study, "control,seed=0"), control | {"config": config | {"loss.lambda": 0.0}}, [], "failed")
    pretrain_row = {"step": 6, "phase": "pretrain_g", "post": "basic++", "accuracy": 0.4}
    _run(layout.pretrain_root(results) / "p0", {"trial_id": "p0"}, [pretrain_row])
    (layout.pretrain_root(results) / "p0" / "events.out.tfevents.1").write_bytes(b"events")

    frame = gather_evals(study, results, ("optim.lr_g", "seed"))
    written = pd.read_csv(layout.evals_file(study))
    assert list(written.columns[: len(EVALS_COLUMNS)]) == list(EVALS_COLUMNS)
    assert len(frame) == len(written) == 3  # two GAN rows, no control row (it failed first), one baseline row
    gan_rows = written[written.trial_id == "t1"]
    assert set(gan_rows.post) == {"basic", "basic++"} and set(gan_rows["cfg.optim.lr_g"]) == {0.001}
    assert set(gan_rows["lambda"]) == {0.02} and set(gan_rows.role) == {"gan"} and set(gan_rows.status) == {"ok"}
    baseline = written[written.role == "baseline"].iloc[0]
    assert (baseline.trial_name, baseline.kind, baseline.trial_id) == ("baseline,seed=0", "pretrain", "pretrain_p0")
    # The study folder is complete: the baseline's record and TensorBoard run are copied in.
    assert (layout.run_dir(study, "baseline,seed=0") / layout.RUN_EVALS_FILE).is_file()
    assert (layout.tb_dir(study, "baseline,seed=0") / "events.out.tfevents.1").read_bytes() == b"events"


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
