"""study/scheduler.py: a search study's `scheduler` key checked (one line naming file, line and key), and a grid
study refusing one. (ASHA's judging: tests/sweep/test_tune.py; the ASHA run: tests/e2e/test_search_scheduler.py.)"""

from pathlib import Path

import pytest

from elgan_ray.errors import UserError
from elgan_ray.study.spec import SEARCH_DIR, load_spec

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
