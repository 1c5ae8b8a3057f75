"""A validated study (study_spec.SweepSpec) -> the param spaces of its Ray Tune Tuners.

A grid study is one Tuner over its planned runs (trial_plan.grid_plan: the controls and every scientific
combination and seed), as one grid axis whose values are the runs' points, in plan order; a search study's
controls are such a Tuner too, and its GAN trials one Tuner per scientific point, with Optuna sampling the
nuisance keys' distributions. Ray is imported inside the functions only, so that loading and checking a study
never imports Ray.
"""

from __future__ import annotations

from typing import Any

from elgan_ray.errors import quoted
from elgan_ray.study_spec import SweepSpec, is_search, scientific_points

PLAN_KEY = "run"  # a planned run's point in a Tune trial's config


def plan_space(plan: list[dict[str, Any]]) -> dict[str, Any]:
    """The param space of planned runs: one grid axis PLAN_KEY whose values are the runs' points, so Tune starts
    them in plan order (a product of per-key grids could not hold the controls beside the combinations)."""
    from ray import tune

    return {PLAN_KEY: tune.grid_search(list(plan))}


def to_param_space(spec: SweepSpec, scientific_point: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Ray Tune param space of one scientific point of a search study.

    The nuisance distributions and the scientific point as constants, and no `seed`: OptunaSearch refuses
    grid_search, so the sweep wraps it in Repeater(repeat=spec.seeds) and takes the seed from `__trial_index__`;
    each scientific point is its own Tuner. The fixed keys are not in the space: the sweep applies them to its
    base config (preset + fixed), so trials' configs, Tune's tables and Optuna see only what varies.
    """
    from ray import tune  # here, so that loading and checking a study never imports Ray

    if not is_search(spec):
        raise ValueError(f"{spec.study} is a grid study: its runs are planned (trial_plan.grid_plan, plan_space)")
    space: dict[str, Any] = {}
    points = scientific_points(spec)
    if scientific_point is None:
        if len(points) != 1:
            raise ValueError(f"{spec.study} has {len(points)} scientific points: pass one of them")
        scientific_point = points[0]
    if scientific_point not in points:
        raise ValueError(f"{quoted(scientific_point)} is not a scientific point of {spec.study}")
    space.update(scientific_point)
    for key, dist in spec.nuisance.items():
        ((kind, args),) = dist.items()
        if kind == "choice":
            space[key] = tune.choice(list(args))
        else:
            space[key] = {"loguniform": tune.loguniform, "uniform": tune.uniform, "randint": tune.randint}[kind](*args)
    return space
