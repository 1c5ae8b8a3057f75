"""The layout of a results folder: every path the sweep, the trials, the report and the bench use under <results>/.

<results>/
  index.csv, .index.lock    one row per study run (report/index.py), and its writers' lock
  .<study>.sweep.lock       the lock of the one sweep that runs <study> (lock.py; a study name has no dot)
  _pretrain/<id>/           the shared generator pre-trainings, cached across studies (sweep/pretrain.py)
  <study>/
    study.json              what ran, with which command and preset, when
    runs/<name>/            one folder per GAN trial: run.json, evals.jsonl, status.json, checkpoint.pt, preview.npz,
                            val_maps.npz (the final evaluation's maps: the report's seed ensembles)
    runs/baseline,seed=N/   a copy of the shared pre-training's evals.jsonl, preview and maps (the baseline)
    tb/<name>/              one TensorBoard run per trial, and one per baseline pre-training
    tune/                   Ray Tune's record of a grid study's runs: its controls and GAN trials
    tune_control/, tune_<i>/  a search study's: its controls, and one Tuner per scientific point
    train/<trial>-<run>/    Ray Train's record of a run on several workers
    evals.csv               every evaluation of every run, gathered from the runs' own evals.jsonl
    summary.csv, final.csv, pairwise.csv, health.csv, table.md/.tex, stability.png/.pdf, curves.png, health.png,
    widths.png, predictions.png,
    ensemble.csv, ensemble.png
                            the report (report/)

Every file name of the record is here, a run folder's included, and nowhere else. Tune's and Train's folders are
their records, not ours: the report reads evals.csv, study.json and runs/ only. Paths only, no I/O and no heavy
imports, so that every stage (the report without torch, Ray or TensorBoard) uses this module.
"""

from __future__ import annotations

from pathlib import Path

PRETRAIN_DIR = "_pretrain"
INDEX_FILE = "index.csv"
RESERVED_NAMES = (PRETRAIN_DIR, INDEX_FILE)  # what every study of a results folder shares: no study's name
STUDY_FILE = "study.json"
EVALS_FILE = "evals.csv"
RUNS_DIR = "runs"
RUN_FILE = "run.json"
TB_DIR = "tb"
# A run folder's files (a control's, a GAN trial's, a shared pre-training's): its identity (run.json, above), its
# record of evaluations (record/runs.py), its status, the checkpoint it resumes from, the frames of its last
# evaluation (train/run_log.py) and its final validation maps (evaluate/maps.py).
RUN_EVALS_FILE = "evals.jsonl"
STATUS_FILE = "status.json"
CHECKPOINT_FILE = "checkpoint.pt"
PREVIEW_FILE = "preview.npz"
VAL_MAPS_FILE = "val_maps.npz"


def predictions_file(split: str) -> str:
    """A run's TuSimple submission file of a split (predict/), beside its record."""
    return f"predictions_{split}.json"


def scores_file(split: str) -> str:
    """The official scores of a run's submission file of a split (predict/), for the report."""
    return f"scores_{split}.json"


# The report's files in a study folder (report.py's tables, plots.py's figures); checked writable before it writes.
REPORT_STAGING = "report"  # the report is written into <study>/.report.<random>.partial first, then moved in
REPORT_FILES = ("summary.csv", "final.csv", "pairwise.csv", "health.csv", "ensemble.csv", "test.csv", "table.md")
REPORT_FILES += ("table.tex",)
REPORT_FILES += ("stability.png", "stability.pdf", "curves.png", "health.png", "widths.png", "ensemble.png")
REPORT_FILES += ("predictions.png",)


def study_dir(results_root: str | Path, study: str) -> Path:
    return Path(results_root) / study


def results_root_of(study_dir: Path) -> Path:
    """The results root a study folder lies in (where index.csv and _pretrain/ are)."""
    return Path(study_dir).parent


def study_file(study_dir: Path) -> Path:
    return Path(study_dir) / STUDY_FILE


def evals_file(study_dir: Path) -> Path:
    return Path(study_dir) / EVALS_FILE


def run_dir(study_dir: Path, name: str) -> Path:
    return Path(study_dir) / RUNS_DIR / name


def run_files(study_dir: Path, file_name: str) -> list[Path]:
    """runs/<name>/<file_name> of every run of a study that has one, sorted."""
    return sorted(Path(study_dir).glob(f"{RUNS_DIR}/*/{file_name}"))


def tb_root(study_dir: Path) -> Path:
    """The folder to point TensorBoard at: every run of the study."""
    return Path(study_dir) / TB_DIR


def tb_dir(study_dir: Path, name: str) -> Path:
    return tb_root(study_dir) / name


CONTROL_TUNER = "tune_control"  # a search study's controls (a grid study's are in its one Tuner)


def tuner_name(index: int | None) -> str:
    """A grid study's Tuner, or (index) the Tuner of one scientific point of a search study."""
    return "tune" if index is None else f"tune_{index}"


def tuner_dir(study_dir: Path, name: str) -> Path:
    """Where Tune keeps the Tuner `name`: Tuners are stored in the study folder (RunConfig.storage_path)."""
    return Path(study_dir) / name


def train_run_name(study: str, trial_id: str, run: str) -> str:
    """Ray Train's name for a multi-worker run, relative to the results root (its storage_path)."""
    return f"{study}/train/{trial_id}-{run}"


def pretrain_root(results_root: str | Path) -> Path:
    return Path(results_root) / PRETRAIN_DIR


def index_file(results_root: str | Path) -> Path:
    return Path(results_root) / INDEX_FILE


def index_lock(results_root: str | Path) -> Path:
    return Path(results_root) / ".index.lock"


def study_lock(results_root: str | Path, study: str) -> Path:
    """The lock a sweep holds on its study for as long as it runs (beside the study folder, which it may create)."""
    return Path(results_root) / f".{study}.sweep.lock"
