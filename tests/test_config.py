"""Config: flat keys round-trip, presets build, bad keys and types are refused with the key named."""

import pytest

from elgan_ray.config import TrainConfig, flat_keys, parse_overrides
from elgan_ray.errors import UserError
from elgan_ray.presets import PRESETS, preset


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
        ({"data.height": 0}, "data.height", "must be in [1, 720]"),
        ({"optim.batch_size": 0}, "optim.batch_size", "must be in [1, 1024]"),
        ({"eval.threshold": 1.5}, "eval.threshold", "must be in (0, 1)"),
        # issue 13, defect 8: every range where it is declared
        ({"seed": -1}, "seed", "must be in [0, 2**32)"),
        ({"seed": 2**32}, "seed", "must be in [0, 2**32)"),
        ({"data.sigma": float("inf")}, "data.sigma", "must be in (0, 64]"),
        ({"data.sigma": float("nan")}, "data.sigma", "must be in (0, 64]"),
        ({"data.width": 10**12}, "data.width", "must be in [1, 1280]"),
        ({"discriminator.dropout": 5}, "discriminator.dropout", "must be in [0, 1)"),
        ({"discriminator.first_conv": -3}, "discriminator.first_conv", "must be in [1, 1024]"),
        ({"discriminator.growth": 0}, "discriminator.growth", "must be in [1, 1024]"),
        ({"generator.bottleneck_layers": 0}, "generator.bottleneck_layers", "must be in [1, 64]"),
        ({"generator.down_layers": [1] * 11}, "generator.down_layers", "needs 1 to 10 levels"),
        ({"generator.first_conv": 1024, "generator.growth": 1024}, "generator.down_layers", "widest layer"),
        ({"optim.lr_g": float("inf")}, "optim.lr_g", "must be finite and >= 0"),
        ({"optim.momentum_d": float("nan")}, "optim.momentum_d", "must be finite and >= 0"),
        ({"optim.batch_size": 10**6}, "optim.batch_size", "must be in [1, 1024]"),
        ({"optim.lr_g": 10**400}, "optim.lr_g", "too large for a number"),
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


@pytest.mark.parametrize(
    ("pair", "rule"),
    [
        ("loss.gen=&a ce", "anchors and aliases"),
        ("generator.down_layers=[&a 1, *a]", "anchors and aliases"),
        ("loss.gen=" + "x" * 2000, "characters long"),
        ("loss.gen=!!python/object/apply:os.system [echo]", "cannot parse"),
    ],
)
def test_overrides_refuse_aliases_long_values_and_tags(pair, rule):
    """Issue 13, defect 4: a few hundred bytes of nested aliases stood for billions of values, and the error message
    printed them all; aliases are refused, values are bounded, and messages quote values briefly."""
    with pytest.raises(UserError, match=rule) as caught:
        parse_overrides([pair])
    assert len(str(caught.value)) < 300


def test_error_messages_quote_values_briefly():
    nested = ["lol"] * 9
    for _ in range(8):
        nested = [nested] * 9  # 9**9 strings, shared: cheap to hold, gigabytes to print
    with pytest.raises(UserError) as caught:
        TrainConfig.from_flat({"loss.gen": nested})
    assert len(str(caught.value)) < 300 and "expected a string" in str(caught.value)


def test_unknown_preset_is_refused():
    with pytest.raises(UserError, match="unknown preset"):
        preset("huge")


def test_the_paper_preset_is_the_paper_as_written():
    """docs/fidelity.md: eq. 4's plain L2 distance at lambda 1, the paper's models, schedule and batch."""
    from elgan_ray.presets import preset

    cfg = preset("paper")
    assert (cfg.loss.emb_norm, cfg.loss.lambda_, cfg.loss.gen, cfg.loss.disc) == ("plain", 1.0, "emb", "ce")
    assert (cfg.data.height, cfg.data.width, cfg.data.sigma, cfg.optim.batch_size) == (720, 1280, 1.0, 8)
    assert (cfg.schedule.pretrain_d_steps, cfg.schedule.g_steps_per_round, cfg.schedule.d_steps_per_round) == (
        10_000,
        300,
        200,
    )
    assert (cfg.eval.min_area, cfg.eval.max_lanes, cfg.data.train_split) == (0, 0, "train")
