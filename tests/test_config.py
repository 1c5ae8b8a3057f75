"""Config: flat keys round-trip, presets build, bad keys and types are refused with the key named."""

import pytest

from elgan_ray.config import PRESETS, TrainConfig, flat_keys, parse_overrides, preset
from elgan_ray.errors import UserError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_flat_keys(name):
    cfg = preset(name)
    assert TrainConfig.from_flat(cfg.to_flat()) == cfg


def test_lambda_is_spelled_without_underscore_in_flat_keys():
    cfg = TrainConfig.from_flat({"loss.lambda": 3})
    assert cfg.loss.lambda_ == 3.0 and isinstance(cfg.loss.lambda_, float)
    assert "loss.lambda" in flat_keys() and "loss.lambda_" not in flat_keys()


@pytest.mark.parametrize(
    ("flat", "key", "rule"),
    [
        ({"loss.gen": "bce"}, "loss.gen", "must be one of ce, emb"),
        ({"loss.nope": 1}, "loss.nope", "unknown key"),
        ({"nope": 1}, "nope", "unknown key"),
        ({"optim.lr_g": "1e-4"}, "optim.lr_g", "expected a number"),
        ({"seed": 1.5}, "seed", "expected an integer"),
        ({"seed": True}, "seed", "expected an integer"),
        ({"generator.down_layers": [1, "a"]}, "generator.down_layers", "expected a list of integers"),
        ({"loss.emb_block": 8}, "loss.emb_block", "the discriminator has 7 blocks"),
        ({"data.height": 0}, "data.height", "must be positive"),
        ({"optim.batch_size": 0}, "optim.batch_size", "must be >= 1"),
        ({"eval.threshold": 1.5}, "eval.threshold", "must be in (0, 1)"),
    ],
)
def test_bad_values_name_the_source_key_and_rule(flat, key, rule):
    with pytest.raises(UserError) as caught:
        TrainConfig.from_flat(flat, source="study.yaml")
    message = str(caught.value)
    assert message.startswith("study.yaml") and f"'{key}'" in message and rule in message


def test_overrides_parse_yaml_scalars_and_lists():
    flat = parse_overrides(["optim.lr_g=1.0e-4", "loss.gen=ce", "generator.down_layers=[1, 2]", "seed=3"])
    assert flat == {"optim.lr_g": 1e-4, "loss.gen": "ce", "generator.down_layers": [1, 2], "seed": 3}
    cfg = preset("smoke").with_flat(flat)
    assert cfg.generator.down_layers == (1, 2) and cfg.seed == 3


@pytest.mark.parametrize("pair", ["novalue", "=3", "loss.gen=[unclosed"])
def test_malformed_overrides_are_refused(pair):
    with pytest.raises(UserError):
        parse_overrides([pair])


def test_unknown_preset_is_refused():
    with pytest.raises(UserError, match="unknown preset"):
        preset("huge")
