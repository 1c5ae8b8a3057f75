"""A sweep's settings: what every trial needs besides its own config, and its TrainConfig from a Tune config.

The command (__main__.py) builds them; the Tune edge (tune.py) hands them to every trial. They sit below both, so
that neither of the two imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elgan_ray.config import TrainConfig
from elgan_ray.record import layout, store
from elgan_ray.record.names import MAIN_POST, SEED_KEY, metric_key

# A search study's seeds: Optuna takes no grid, so tune.py wraps it in Tune's Repeater, which runs each proposed
# configuration once per seed and hands the repeat's number to the trial under this key: trial_config makes it the
# trial's seed.
REPEAT_INDEX = "__trial_index__"


@dataclass(frozen=True)
class SweepSettings:
    """What every trial of a sweep needs besides its own config; passed to trials with tune.with_parameters."""

    study: str
    results_root: str  # absolute; on a cluster, storage every node sees, or (storage) the URI's node-local mirror
    base_flat: dict[str, Any]  # the preset with the study's fixed keys applied
    varying: tuple[str, ...]  # config keys that differ between trials: they name trials and TensorBoard runs
    data_dir: str | None
    workers_per_trial: int
    cpus_per_worker: float
    gpus_per_worker: float
    cluster: bool = False  # joined an existing (possibly autoscaling) cluster
    predict: str | None = None  # --predict SPLIT: every finished run writes its submission file of this split
    # What Tune ranks a search's trials by: the study's metric.name after metric.post (names.metric_key), max or min.
    metric: str = metric_key("accuracy", MAIN_POST)
    metric_mode: str = "max"
    storage: str | None = None  # --results as a storage URI (record/store.py): trials push their runs there

    @property
    def study_dir(self) -> Path:
        return layout.study_dir(self.results_root, self.study)

    @property
    def ray_storage(self) -> str:
        """Where Tune and Train keep their own records (RunConfig.storage_path): the results root or its URI."""
        return self.storage or self.results_root

    def ray_path(self, local: Path) -> str:
        """A results path as Ray's storage layer takes it: the path, or its URI."""
        return store.uri_of(self.storage, local) if self.storage else str(local)

    def trial_config(self, config: dict[str, Any]) -> TrainConfig:
        flat = {k: v for k, v in config.items() if k != REPEAT_INDEX}
        if REPEAT_INDEX in config:
            flat[SEED_KEY] = int(config[REPEAT_INDEX])
        base = TrainConfig.from_flat(self.base_flat, source=self.study)
        return base.with_flat(flat, source=f"trial of {self.study}")

    def concurrency(self, requested: int, cpus: float, gpus: float, capacity: int | None = None) -> int | None:
        """Trials at once: what was asked; on a joined cluster what it can run at its largest (`capacity`, from its
        node types: more would wait on the head, each multi-worker trial holding about a GB there); locally as many
        as `cpus` and `gpus` (the machine's) hold, at least one."""
        if requested:
            return requested
        if self.cluster:
            return capacity
        fits = int(cpus // (self.cpus_per_worker * self.workers_per_trial))
        if self.gpus_per_worker:
            fits = min(fits, int(gpus // (self.gpus_per_worker * self.workers_per_trial)))
        return max(1, fits)
