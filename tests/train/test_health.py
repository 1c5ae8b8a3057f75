"""train/health.py: D's health figures on hand-made models, and that computing them changes nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from elgan_ray.config import LossConfig
from elgan_ray.models import build_discriminator, build_generator
from elgan_ray.presets import preset
from elgan_ray.train.health import HEALTH_FRAMES, adversarial_gradient, discriminator_health
from elgan_ray.train.losses import lane_probability, segmentation_loss


class _Judge(nn.Module):
    """A D that says 'label' (+5) where the map is 1 and 'prediction' (-5) elsewhere, its embedding the map."""

    def forward(self, image, lane_map, emb_block):
        return (lane_map * 10 - 5)[:, :, ::8, ::8], lane_map


def _frames(n: int = 4):
    torch.manual_seed(0)
    images = torch.rand(n, 3, 16, 32)
    labels = torch.zeros(n, 1, 16, 32)
    labels[..., 16:] = 1.0  # the right half of every frame
    return images, labels


def test_patch_accuracies_count_right_decisions_and_the_distance_is_the_generator_loss():
    images, labels = _frames()
    generator = build_generator(preset("smoke").generator)
    predictions = torch.zeros_like(labels)  # all 'prediction': everywhere the judge says -5
    cfg = LossConfig(gen="emb", disc="ce", lambda_=0.5, emb_block=1, emb_norm="plain")
    health = discriminator_health(generator, _Judge(), images, labels, predictions, cfg, torch.device("cpu"))
    assert health["d_acc_fake"] == 1.0  # every prediction patch judged fake
    assert health["d_acc_real"] == pytest.approx(0.5)  # the label's left half (zeros) is judged fake too
    # The plain L2 distance between the embeddings (the maps): the square root of the 16 x 16 ones of a frame.
    assert health["emb_distance"] == pytest.approx(16.0)


def test_the_gradient_ratio_scales_with_lambda_and_the_cosine_does_not():
    images, labels = _frames()
    generator = build_generator(preset("smoke").generator)
    discriminator = build_discriminator(preset("smoke").discriminator)
    figures = {}
    for lambda_ in (0.1, 0.4):
        cfg = LossConfig(gen="emb", disc="ce", lambda_=lambda_, emb_block=7)
        figures[lambda_] = adversarial_gradient(generator, discriminator.train(), images, labels, cfg)
    (ratio_a, cos_a), (ratio_b, cos_b) = figures[0.1], figures[0.4]
    assert ratio_b == pytest.approx(4 * ratio_a, rel=1e-4)
    assert cos_b == pytest.approx(cos_a, abs=1e-5) and -1 <= cos_a <= 1
    # The fit gradient it compares with is dL_fit/dlogits, nothing else.
    logits = generator.eval()(images).detach().requires_grad_(True)
    (fit,) = torch.autograd.grad(segmentation_loss(logits, labels), logits)
    assert fit.norm() > 0 and lane_probability(logits).shape == labels.shape


def test_computing_the_figures_updates_no_weight_no_statistic_and_keeps_the_modes():
    images, labels = _frames(HEALTH_FRAMES + 2)  # more frames than the figures use
    generator = build_generator(preset("smoke").generator).train()
    discriminator = build_discriminator(preset("smoke").discriminator).eval()
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (generator, discriminator)]
    predictions = torch.rand_like(labels)
    cfg = LossConfig(lambda_=1.0, emb_block=7)
    discriminator_health(generator, discriminator, images, labels, predictions, cfg, torch.device("cpu"))
    for model, state in zip((generator, discriminator), before, strict=True):
        for key, value in model.state_dict().items():
            assert torch.equal(value, state[key]), key
        assert all(p.grad is None for p in model.parameters())
    assert generator.training and not discriminator.training
