"""study_layout.py: the paths of a results folder, and the run-folder names it shares with run_log.py."""

import subprocess
import sys
from pathlib import Path

from elgan_ray.record import layout as layout
from elgan_ray.record.layout import PREVIEW_FILE, STATUS_FILE, VAL_MAPS_FILE


def test_paths_of_a_results_folder():
    study = layout.study_dir("results", "stability")
    assert study == Path("results/stability") and layout.results_root_of(study) == Path("results")
    assert layout.study_file(study) == Path("results/stability/study.json")
    assert layout.evals_file(study) == Path("results/stability/evals.csv")
    assert layout.run_dir(study, "g=ce,d=ce,seed=0") == Path("results/stability/runs/g=ce,d=ce,seed=0")
    assert layout.tb_root(study) == Path("results/stability/tb")
    assert layout.tb_dir(study, "baseline,seed=0") == Path("results/stability/tb/baseline,seed=0")
    assert [layout.tuner_name(None), layout.tuner_name(2), layout.CONTROL_TUNER] == ["tune", "tune_2", "tune_control"]
    assert layout.tuner_dir(study, "tune_2") == Path("results/stability/tune_2")
    assert layout.train_run_name("stability", "ab_00001", "g=ce") == "stability/train/ab_00001-g=ce"
    assert layout.pretrain_root("results") == Path("results/_pretrain")
    assert layout.index_file("results") == Path("results/index.csv")


def test_run_files_are_sorted_and_only_where_present(tmp_path):
    for name in ("b", "a", "c"):
        layout.run_dir(tmp_path, name).mkdir(parents=True)
    for name in ("b", "a"):
        (layout.run_dir(tmp_path, name) / layout.RUN_FILE).write_text("{}")
    assert layout.run_files(tmp_path, layout.RUN_FILE) == [tmp_path / "runs" / n / "run.json" for n in ("a", "b")]


def test_run_folder_names_agree_with_run_log():
    # The report reads these two files by study_layout's names so as not to import run_log (tensorboardX).
    assert (layout.STATUS_FILE, layout.PREVIEW_FILE, layout.VAL_MAPS_FILE) == (STATUS_FILE, PREVIEW_FILE, VAL_MAPS_FILE)


def test_the_report_imports_no_torch_ray_or_tensorboard():
    code = "import sys, elgan_ray.report, elgan_ray.report.plots\n"
    code += "print([m for m in ('torch', 'ray', 'tensorboardX') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
