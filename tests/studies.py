"""Small study files for the sweep tests (a few steps over search_spaces/base.yaml) and the command that runs them.

Imported by the test modules (pytest puts tests/ on the path); not a conftest fixture because module-scoped
fixtures and plain helpers need it too.
"""

import os
import sys
from pathlib import Path

import yaml

QUICK_SCHEDULE = {"schedule.pretrain_g_steps": 4, "schedule.gan_steps": 8, "schedule.eval_every": 4}


def write_study(folder, name: str, scientific: dict, seeds: int, **fields):
    """A study YAML over search_spaces/base.yaml with a few-step schedule; `fixed` entries add to that schedule."""
    base = Path(__file__).resolve().parent.parent / "search_spaces" / "base.yaml"
    fixed = QUICK_SCHEDULE | fields.pop("fixed", {})
    doc = {"study": name, "description": f"{name}: a study for tests", "base": str(base), "scientific": scientific}
    doc |= {"seeds": seeds, "fixed": fixed, "tables": ["losses"]} | fields
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def tiny_study_file(folder, **fields):
    """The tiny study of issue 25's reproducers: one loss, one seed (one GAN trial and its control), a few steps."""
    return write_study(folder, "tiny", {"loss.gen": ["emb"]}, seeds=1, tables=["stability"], **fields)


def sweep_command(study, results, data, *extra) -> list[str]:
    """`python -m elgan_ray.sweep STUDY --preset smoke --results RESULTS --data DATA [extra...]`."""
    command = [sys.executable, "-m", "elgan_ray.sweep", str(study), "--preset", "smoke"]
    return command + ["--results", str(results), "--data", str(data), *extra]


def sweep_env() -> dict[str, str]:
    # Each trial gets one CPU; one torch thread per trial keeps two trials from fighting over two cores.
    return os.environ | {"OMP_NUM_THREADS": "1"}


def ray_processes(ancestor: int, *titles: bytes) -> list[int]:
    """Pids of the processes below `ancestor` whose title (Ray renames its processes, e.g. ray::ImplicitFunc.train
    for a Tune trial, ray::DashboardAgent) starts with one of `titles`."""
    from elgan_ray.sweep.reaper import descendants

    found = []
    for pid in descendants(ancestor):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(titles):
                found.append(pid)
        except OSError:
            continue  # it ended while we looked
    return found


def trial_processes(ancestor: int) -> list[int]:
    """Pids of the Tune trial processes under one process tree."""
    return ray_processes(ancestor, b"ray::ImplicitFunc.train")
