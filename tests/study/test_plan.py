"""trial_plan.py: which runs a study makes, with a fit-only control per seed and nothing run twice."""

from __future__ import annotations

from studies import write_study

from elgan_ray.presets import preset
from elgan_ray.record.names import CONTROL, GAN
from elgan_ray.study.plan import ROLE_KEY, grid_plan, is_control, search_controls
from elgan_ray.study.spec import load_spec


def plan_of(tmp_path, scientific, seeds=2, **fields):
    spec = load_spec(str(write_study(tmp_path, "plan", scientific, seeds=seeds, **fields)))
    return grid_plan(spec, preset("smoke").with_flat(spec.fixed))


def test_the_stability_study_gets_one_control_per_seed_first_then_its_grid():
    spec = load_spec("stability")
    plan = grid_plan(spec, preset("cpu").with_flat(spec.fixed))
    roles = [p[ROLE_KEY] for p in plan]
    assert roles == [CONTROL] * 5 + [GAN] * 20
    assert [p["seed"] for p in plan[:5]] == [0, 1, 2, 3, 4]  # distinct pre-trainings start first
    assert all(p["loss.lambda"] == 0.0 and not {"loss.gen", "loss.disc"} & set(p) for p in plan[:5])
    assert [p["seed"] for p in plan[5:10]] == [0, 1, 2, 3, 4]  # seeds fastest within the grid


def test_a_lambda_grid_holding_zero_is_its_own_control(tmp_path):
    plan = plan_of(tmp_path, {"loss.lambda": [0.0, 0.1]})
    assert [(p[ROLE_KEY], p["loss.lambda"], p["seed"]) for p in plan] == [
        (CONTROL, 0.0, 0),
        (CONTROL, 0.0, 1),
        (GAN, 0.1, 0),
        (GAN, 0.1, 1),
    ]


def test_keys_that_reach_g_only_through_the_adversary_share_a_control(tmp_path):
    plan = plan_of(tmp_path, {"loss.emb_block": [3, 7], "optim.lr_d": [1.0e-3, 1.0e-2]}, seeds=1)
    assert sum(p[ROLE_KEY] == CONTROL for p in plan) == 1 and sum(p[ROLE_KEY] == GAN for p in plan) == 4


def test_keys_that_change_g_get_a_control_each(tmp_path):
    plan = plan_of(tmp_path, {"optim.lr_g": [1.0e-3, 2.0e-3]}, seeds=1)
    controls = [p for p in plan if p[ROLE_KEY] == CONTROL]
    assert sorted(p["optim.lr_g"] for p in controls) == [1.0e-3, 2.0e-3]


def test_is_control_and_search_controls():
    base = preset("smoke").to_flat()
    assert is_control(base | {"loss.lambda": 0.0}, base)
    assert not is_control(base | {"loss.lambda": 0.0, "loss.gen": "ce" if base["loss.gen"] == "emb" else "emb"}, base)
    assert not is_control(base | {"loss.lambda": 0.5}, base)
    spec = load_spec("optuna")
    assert search_controls(spec) == [{"seed": s, "loss.lambda": 0.0, ROLE_KEY: CONTROL} for s in range(spec.seeds)]
