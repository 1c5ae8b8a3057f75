"""Which runs a study makes: its GAN trials, and a fit-only control for every seed, each with its role.

A GAN phase changes G in two ways at once: it trains G further on L_fit, and it adds the adversary. The
control separates the two. It is the same run as a GAN trial (same pre-trained G, same D pre-training, same
schedule, steps and batches) with lambda = 0, so G's steps are fit steps only; D still trains beside it, so its
health figures say what a D of the base config would have told G. The keys that reach G only through lambda
(ADVERSARY_KEYS: the loss combination, D's model and optimiser) take the study's base values in the control,
so one control serves every GAN group of a seed. A grid point that is
already such a run (a lambda study with 0 in its grid) is the control; nothing is run twice.

Roles, as evals.csv names them (record/names.py): `baseline` (the shared generator pre-training), `control`, `gan`.
Also here: the keys that vary between a study's runs and the names they give the runs, the list of runs a sweep
hands to Tune (planned_runs: what the plan line and the dry run count), and the envelope (PLAN_KEY) a planned run's
point travels in through Tune. Pure functions of a study and its base config: no Ray, no files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elgan_ray.config import TrainConfig
from elgan_ray.record.names import CONTROL, GAN, LAMBDA_KEY, SEED_KEY, label
from elgan_ray.study.spec import SweepSpec, grid_points, is_search, scientific_points

ROLE_KEY = "role"  # in a planned run's point: "control" or "gan"
PLAN_KEY = "run"  # a planned run's point in a Tune trial's config (sweep/tune.py's plan_space puts it there)
# Keys that reach G only through the adversary, so at lambda 0 they change nothing in G: the loss combination,
# and D's own model and optimiser. (D's and G's schedule keys stay: they decide which batches G's steps see.)
ADVERSARY_KEYS = ("loss.gen", "loss.disc", "loss.emb_block", "loss.emb_norm", "optim.lr_d", "optim.momentum_d")
ADVERSARY_PREFIXES = ("discriminator.",)


def is_adversary_key(key: str) -> bool:
    return key in ADVERSARY_KEYS or key.startswith(ADVERSARY_PREFIXES)


def control_point(point: dict[str, Any]) -> dict[str, Any]:
    """The control of a trial's point: lambda 0, the adversary keys left to their base values, the rest kept."""
    return {k: v for k, v in point.items() if not is_adversary_key(k) and k != ROLE_KEY} | {LAMBDA_KEY: 0.0}


def is_control(flat: dict[str, Any], base_flat: dict[str, Any]) -> bool:
    """Whether a run's whole config is a control's: lambda 0 and the adversary keys at their base values."""
    return flat[LAMBDA_KEY] == 0 and all(flat[k] == base_flat[k] for k in flat if is_adversary_key(k))


def grid_plan(spec: SweepSpec, base: TrainConfig) -> list[dict[str, Any]]:
    """Every run of a grid study as a flat point with its ROLE_KEY: the controls first, then the GAN trials.

    Seeds vary fastest within each, so the first runs a sweep starts need distinct pre-trainings, which they
    compute on demand while the later runs of the same seeds find them done.
    """
    base_flat = base.to_flat()
    controls, trials, covered = [], [], []
    for point in grid_points(spec):
        flat = base.with_flat(point).to_flat()
        if is_control(flat, base_flat):
            covered.append(flat)
            controls.append(point | {ROLE_KEY: CONTROL})
        else:
            trials.append(point | {ROLE_KEY: GAN})
    for point in trials:
        control = control_point(point)
        flat = base.with_flat(control).to_flat()
        if flat not in covered:
            covered.append(flat)
            controls.append(control | {ROLE_KEY: CONTROL})
    controls.sort(key=lambda p: p[SEED_KEY])  # stable: by seed, then in order of first appearance
    return controls + trials


def search_controls(spec: SweepSpec) -> list[dict[str, Any]]:
    """A search study's controls: one per seed at the base config (the sampled keys keep their base values)."""
    return [{SEED_KEY: seed, LAMBDA_KEY: 0.0, ROLE_KEY: CONTROL} for seed in range(spec.seeds)]


def config_point(point: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(role, config keys) of a planned point; a point without a role is a GAN trial (a search study's)."""
    return point.get(ROLE_KEY, GAN), {k: v for k, v in point.items() if k != ROLE_KEY}


def trial_point(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(role, config keys) of a Tune trial's config: a planned run's point (in its PLAN_KEY envelope), or a search
    algorithm's sample."""
    return config_point(config.get(PLAN_KEY, config))


def varying_keys(spec: SweepSpec) -> tuple[str, ...]:
    """Config keys that differ between the trials of a study: the scientific and nuisance keys, and the seed."""
    keys = [k for k, values in spec.scientific.items() if len(values) > 1 or is_search(spec)]
    keys += list(spec.nuisance)
    return tuple(keys) + (SEED_KEY,)


def run_name(flat: dict[str, Any], varying: tuple[str, ...], role: str = GAN) -> str:
    """A trial's name from what differs between trials, e.g. 'g=emb,d=ce,seed=3'; a control's from what differs
    between controls, e.g. 'control,seed=3' (it shares no name with a GAN trial)."""
    if role != CONTROL:
        return label({key: flat[key] for key in varying})
    kept = {key: flat[key] for key in varying if not (is_adversary_key(key) or key == LAMBDA_KEY)}
    return ",".join([CONTROL, label(kept)] if kept else [CONTROL])


def baseline_name(seed: int) -> str:
    return f"baseline,{SEED_KEY}={seed}"


@dataclass(frozen=True)
class PlannedRun:
    role: str  # control or gan
    name: str  # as its run folder will be named (run_name)
    params: dict[str, Any]  # the keys the plan sets; a search study's sampled keys are not known yet
    cfg: TrainConfig


def planned_runs(spec: SweepSpec, base: TrainConfig, varying: tuple[str, ...]) -> list[PlannedRun]:
    """The study's controls and GAN trials over `base` (the preset with the study's fixed keys), in the order the
    sweep hands them to Tune; a search study's GAN trials at the base values of the keys Optuna samples."""
    if is_search(spec):
        points = search_controls(spec)
        for point in scientific_points(spec):
            points += [point | {SEED_KEY: seed} for _ in range(spec.num_samples) for seed in range(spec.seeds)]
    else:
        points = grid_plan(spec, base)
    runs = []
    for point in points:
        role, params = config_point(point)
        cfg = base.with_flat(params, source=f"trial of {spec.study}")
        runs.append(PlannedRun(role, run_name(cfg.to_flat(), varying, role), params, cfg))
    return runs
