"""A validated study (study_spec.SweepSpec) -> the param space of a Ray Tune Tuner.

A grid study is one Tuner over every scientific combination and seed; a search study is one Tuner per
scientific point, with Optuna sampling the nuisance keys' distributions. Ray is imported inside
`to_param_space` only, so that loading and checking a study never imports Ray.
"""

from __future__ import annotations

from typing import Any

from elgan_ray.study_spec import SEED_KEY, SweepSpec, is_search, scientific_points


def to_param_space(spec: SweepSpec, scientific_point: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Ray Tune param space of a grid study, or of one scientific point of a search study.

    Grid: tune.grid_search over each scientific key and over `seed`.
    Search: the nuisance distributions and the scientific point as constants, and no `seed`: OptunaSearch
    refuses grid_search, so the sweep wraps it in Repeater(repeat=spec.seeds) and takes the seed from
    `__trial_index__`; each scientific point is its own Tuner.
    The fixed keys are not in the space: the sweep applies them to its base config (preset + fixed), so
    trials' configs, Tune's tables and Optuna see only what varies.
    """
    from ray import tune  # here, so that loading and checking a study never imports Ray

    space: dict[str, Any] = {}
    if not is_search(spec):
        if scientific_point is not None:
            raise ValueError("a grid study's param space covers all scientific points; pass none")
        for key, values in spec.scientific.items():
            space[key] = tune.grid_search(list(values))
        space[SEED_KEY] = tune.grid_search(list(range(spec.seeds)))
        return space
    points = scientific_points(spec)
    if scientific_point is None:
        if len(points) != 1:
            raise ValueError(f"{spec.study} has {len(points)} scientific points: pass one of them")
        scientific_point = points[0]
    if scientific_point not in points:
        raise ValueError(f"{scientific_point} is not a scientific point of {spec.study}")
    space.update(scientific_point)
    for key, dist in spec.nuisance.items():
        ((kind, args),) = dist.items()
        if kind == "choice":
            space[key] = tune.choice(list(args))
        else:
            space[key] = {"loguniform": tune.loguniform, "uniform": tune.uniform, "randint": tune.randint}[kind](*args)
    return space
