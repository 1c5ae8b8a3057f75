"""The EL-GAN losses as the paper's equations: tensors in, scalar out, no state.

Shapes: logits (B, 2, H, W) with class 1 = lane marking; label maps (B, 1, H, W) in [0, 1];
patch scores (B, 1, h, w) as logits; embeddings (B, C, h, w) from one dense block of D.
`generator_adversarial_loss` and `discriminator_loss` call D, but change nothing in it: they are the
one place where the configured loss combination is turned into a number, for the training steps and
for the health figures alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from elgan_ray.config import LossConfig


def lane_probability(logits: torch.Tensor) -> torch.Tensor:
    """Softmax probability of the lane class: (B, 2, H, W) -> (B, 1, H, W). This is what D sees of G."""
    return torch.softmax(logits, dim=1)[:, 1:2]


def segmentation_loss(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """L_fit of eq. (1): pixel-wise categorical cross entropy with soft targets (lane = label, background = 1 - label).

    -mean over pixels of [label * log p_lane + (1 - label) * log p_background], via log_softmax for stability.
    """
    log_p = F.log_softmax(logits, dim=1)  # (B, 2, H, W)
    target = torch.cat([1 - label, label], dim=1)  # (B, 2, H, W)
    return -(target * log_p).sum(dim=1).mean()


def adversarial_loss(score_logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross entropy of patch logits against all ones (real) or all zeros (fake).

    Eq. (2) for D: adversarial_loss(D(y), True) + adversarial_loss(D(G(x)), False). For G's L_adv in eq. (1)
    the training loop uses adversarial_loss(D(G(x)), True): the non-saturating form, -log D(G(x)), rather than
    minimising log(1 - D(G(x))), whose gradient vanishes while D rejects G's output confidently.
    """
    target = torch.ones_like(score_logits) if real else torch.zeros_like(score_logits)
    return F.binary_cross_entropy_with_logits(score_logits, target)


def embedding_loss(
    label_embedding: torch.Tensor, prediction_embedding: torch.Tensor, normalise: bool = True
) -> torch.Tensor:
    """L_emb of eqs. (3, 4): || D_e(y; x) - D_e(G(x); x) ||_2 per sample, averaged over the batch.

    With `normalise` (the default) each sample's distance is divided by sqrt(C * h * w), i.e. it is the RMS
    difference of the embeddings. The raw L2 distance grows with the square root of the embedding size, which
    differs by orders of magnitude between blocks 3, 5 and 7 and between presets; normalised, lambda = 1 weighs
    the term the same way whichever block and preset is used. normalise=False gives the paper's plain norm.
    """
    diff = (label_embedding - prediction_embedding).flatten(1)  # (B, C*h*w)
    distance = torch.linalg.vector_norm(diff, dim=1)  # (B,); its gradient at 0 is defined as 0
    if normalise:
        distance = distance / diff.shape[1] ** 0.5
    return distance.mean()


def discriminator_embedding_loss(
    label_embedding: torch.Tensor, prediction_embedding: torch.Tensor, cfg: LossConfig
) -> torch.Tensor:
    """Eq. (5), L_disc = -L_emb: D learns to pull the embeddings of label and prediction apart (cfg.disc "emb").

    As written it is unbounded: nothing stops D from growing the distance for ever, and G's L_emb with it. The
    bounded form is ours (cfg.disc "emb_unit"): -L_emb of the embeddings scaled to unit length per frame, at most 2:
    only the direction of D's features counts. It was chosen over a hinge max(0, m - L_emb) by a short measurement
    (docs/calibration.md): both kept the distance near 2 where eq. 5 grew it to 1.2e7 and collapsed G, and the
    unit form needs no margin chosen anew for each preset and distance (plain or rms)."""
    if cfg.disc == "emb_unit":
        unit = [
            e.flatten(1) / e.flatten(1).norm(dim=1, keepdim=True).clamp_min(1e-12)
            for e in (label_embedding, prediction_embedding)
        ]
        return -embedding_loss(*unit, normalise=False)
    return -embedding_loss(label_embedding, prediction_embedding, cfg.emb_norm == "rms")


def discriminate(
    discriminator: nn.Module, images: torch.Tensor, labels: torch.Tensor, prediction: torch.Tensor, emb_block: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """D sees label and prediction at the same time (the paper's Sec. 1): one forward of both for each image.

    Returns (label scores, prediction scores, label embedding, prediction embedding), scores (B, 1, h, w).
    D's BatchNorm layers therefore always normalise over labels and predictions together, in its own steps,
    in the G steps and in the health figures alike; with pure batches of either (as in a GAN whose D sees real
    or fake in turn) a small D's eval-mode decisions flip wholesale with its running statistics. One forward per
    backward is also what DDP needs.
    """
    score, embedding = discriminator(torch.cat([images, images]), torch.cat([labels, prediction]), emb_block)
    score, embedding = score.float(), embedding.float()  # under bf16 autocast too, the losses are float32
    n = len(images)
    return score[:n], score[n:], embedding[:n], embedding[n:]


def generator_adversarial_loss(
    discriminator: nn.Module, images: torch.Tensor, labels: torch.Tensor, prediction: torch.Tensor, cfg: LossConfig
) -> torch.Tensor:
    """G's L_adv of eq. (1): L_emb of eqs. (3, 4) (cfg.gen "emb") or the non-saturating BCE (cfg.gen "ce").

    prediction (B, 1, H, W) is G's lane probability; the label's embedding is a constant (no gradient).
    """
    _, prediction_score, label_embedding, prediction_embedding = discriminate(
        discriminator, images, labels, prediction, cfg.emb_block
    )
    if cfg.gen == "emb":
        return embedding_loss(label_embedding.detach(), prediction_embedding, normalise=cfg.emb_norm == "rms")
    return adversarial_loss(prediction_score, real=True)


def discriminator_loss(
    discriminator: nn.Module, images: torch.Tensor, labels: torch.Tensor, prediction: torch.Tensor, cfg: LossConfig
) -> torch.Tensor:
    """D's loss: BCE(D(y), 1) + BCE(D(G(x)), 0) (eq. 2, cfg.disc "ce"), or eq. 5 and its bounded forms."""
    label_score, prediction_score, label_embedding, prediction_embedding = discriminate(
        discriminator, images, labels, prediction, cfg.emb_block
    )
    if cfg.disc != "ce":
        return discriminator_embedding_loss(label_embedding, prediction_embedding, cfg)
    return adversarial_loss(label_score, real=True) + adversarial_loss(prediction_score, real=False)
