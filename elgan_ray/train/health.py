"""Is the experiment healthy? The figures that say whether D learns and what the adversary does to G.

A GAN phase is a test of EL-GAN only if D tells labels from predictions (otherwise the embedding loss is a
fixed random projection) and if its gradient at G's output neither vanishes nor swamps the fit gradient.
At every evaluation after D exists the training loop records, on the first HEALTH_FRAMES validation frames:

  d_acc_real, d_acc_fake  fraction of D's patch decisions that are right on labels (logit > 0) and on G's
                          predictions (logit < 0); 0.5 each is chance
  emb_distance            L_emb of eqs. (3, 4) between label and prediction at the configured block and
                          normalisation, as the generator loss computes it, averaged over the frames
  adv_fit_grad_ratio      || lambda * dL_adv/dlogits || / || dL_fit/dlogits || on the first validation batch
  adv_fit_grad_cos        cosine between dL_adv/dlogits and dL_fit/dlogits there (lambda does not change it):
                          near 1, the adversary pushes the way the pixel error does; near 0, another way

G runs in eval mode (its validation predictions); D judges each label beside its prediction in train mode, as
in its own steps and the G steps (losses.discriminate), with its BatchNorm running statistics kept; nothing is
updated.
"""

from __future__ import annotations

import torch
from torch import nn

from elgan_ray.config import LossConfig
from elgan_ray.models import batch_norm_statistics_kept
from elgan_ray.train.losses import (
    discriminate,
    embedding_loss,
    generator_adversarial_loss,
    lane_probability,
    segmentation_loss,
)

BATCH = 16  # frames per forward pass; the gradient figures use the first batch
# The figures use the first validation frames only: they are diagnostics, and at 64x128 this many frames give
# about a thousand patch decisions each for labels and predictions, for a quarter of the full set's cost.
HEALTH_FRAMES = 32


def discriminator_health(
    generator: nn.Module,
    discriminator: nn.Module,
    images: torch.Tensor,
    label_maps: torch.Tensor,
    prediction_maps: torch.Tensor,
    cfg: LossConfig,
    device: torch.device,
) -> dict[str, float]:
    """The five health figures on validation frames (N, 3, H, W), their label maps (N, 1, H, W) and G's
    predictions of them (N, 1, H, W; validation.predict_maps, computed once per evaluation)."""
    images, label_maps = images[:HEALTH_FRAMES], label_maps[:HEALTH_FRAMES]
    prediction_maps = prediction_maps[:HEALTH_FRAMES]
    modes = generator.training, discriminator.training
    generator.eval()
    discriminator.train()
    try:
        right_real = right_fake = patches = 0
        distance_sum = 0.0
        with torch.no_grad(), batch_norm_statistics_kept(discriminator):
            for start in range(0, len(images), BATCH):
                x = images[start : start + BATCH].to(device)  # (b, 3, H, W)
                y = label_maps[start : start + BATCH].to(device)  # (b, 1, H, W)
                prediction = prediction_maps[start : start + BATCH].to(device)  # (b, 1, H, W)
                score_real, score_fake, embedding_real, embedding_fake = discriminate(
                    discriminator, x, y, prediction, cfg.emb_block
                )  # scores (b, 1, h, w)
                right_real += int((score_real > 0).sum())
                right_fake += int((score_fake < 0).sum())
                patches += score_real.numel()
                distance = embedding_loss(embedding_real, embedding_fake, normalise=cfg.emb_norm == "rms")
                distance_sum += float(distance) * len(x)  # embedding_loss is a batch mean
        with batch_norm_statistics_kept(discriminator):
            ratio, cosine = adversarial_gradient(
                generator, discriminator, images[:BATCH].to(device), label_maps[:BATCH].to(device), cfg
            )
    finally:
        generator.train(modes[0])
        discriminator.train(modes[1])
    return {
        "d_acc_real": right_real / patches,
        "d_acc_fake": right_fake / patches,
        "emb_distance": distance_sum / len(images),
        "adv_fit_grad_ratio": ratio,
        "adv_fit_grad_cos": cosine,
    }


def adversarial_gradient(
    generator: nn.Module, discriminator: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: LossConfig
) -> tuple[float, float]:
    """(|| lambda * dL_adv/dlogits || / || dL_fit/dlogits ||, cosine of the two) on one batch.

    The gradients are taken at G's logits, where both terms of eq. (1) meet, so the figures do not depend on
    G's architecture; only `logits` receives a gradient (no parameter's .grad is touched).
    """
    with torch.no_grad():
        logits = generator(images)  # (B, 2, H, W)
    logits.requires_grad_(True)
    fit = segmentation_loss(logits, labels)
    adv = generator_adversarial_loss(discriminator, images, labels, lane_probability(logits), cfg)
    (grad_fit,) = torch.autograd.grad(fit, logits)
    (grad_adv,) = torch.autograd.grad(adv, logits)
    fit_norm, adv_norm = grad_fit.norm(), grad_adv.norm()
    ratio = float(cfg.lambda_ * adv_norm / fit_norm) if fit_norm > 0 else float("inf")
    cosine = float((grad_fit * grad_adv).sum() / (fit_norm * adv_norm)) if fit_norm * adv_norm > 0 else 0.0
    return ratio, cosine
