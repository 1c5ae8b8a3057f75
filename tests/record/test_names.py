"""record/names.py: the record's vocabulary, and the labels, columns and rules built from it."""

from __future__ import annotations

import pytest

from elgan_ray.config import TrainConfig, flat_keys
from elgan_ray.record import names


def test_every_config_column_names_a_config_key_and_back():
    for key in ("loss.gen", "loss.disc", "loss.lambda", "loss.emb_block", "optim.lr_g", "discriminator.growth"):
        assert key in flat_keys()
        assert names.column_key(names.config_column(key)) == key
    assert names.config_column("loss.gen") == "gen_loss" and names.config_column("optim.lr_g") == "cfg.optim.lr_g"
    assert set(names.NAMED_CONFIG) <= set(names.EVALS_COLUMNS)


def test_labels_say_what_differs_in_short():
    assert names.label({"loss.gen": "emb", "loss.disc": "ce", "seed": 3}) == "g=emb,d=ce,seed=3"
    assert names.label({"optim.lr_g": 0.00012345, "loss.lambda": 0.0}) == "lr_g=0.000123,lambda=0"
    assert names.label({}) == ""


def test_a_metric_key_names_the_figure_and_its_post_processing():
    keys = {names.metric_key(name, post) for name in names.METRIC_NAMES for post in names.POSTS}
    assert len(keys) == len(names.METRIC_NAMES) * len(names.POSTS) and "basic/f1" in keys


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("cpu", [0.5, 1, 1024], [0, -1, 1025, float("nan"), True, "1"]),
        ("gpu", [0, 0.25, 64], [-0.1, 65, float("inf"), None]),
        ("workers", [1, 1024], [0, 1.5, 1025, False]),
    ],
)
def test_resource_rules(key, good, bad):
    assert all(names.resource_rule(key, value) is None for value in good)
    assert all(names.resource_rule(key, value) for value in bad)


def test_the_seed_key_and_the_roles_are_what_the_config_and_the_plan_use():
    assert names.SEED_KEY in TrainConfig().to_flat() and names.LAMBDA_KEY in TrainConfig().to_flat()
    assert names.ROLES == (names.BASELINE, names.CONTROL, names.GAN)
    assert names.is_finite_number(1) and not names.is_finite_number(10**400) and not names.is_finite_number(True)
