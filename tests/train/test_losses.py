"""The paper's losses against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from elgan_ray.train.losses import (
    adversarial_loss,
    discriminate,
    discriminator_embedding_loss,
    embedding_loss,
    generator_adversarial_loss,
    lane_probability,
    segmentation_loss,
)


def test_lane_probability_is_the_softmax_lane_class():
    logits = torch.tensor([0.0, 0.0, 1.0, -3.0]).view(1, 2, 1, 2)  # pixel 1: (0, 1); pixel 2: (0, -3)
    prob = lane_probability(logits)
    assert prob.shape == (1, 1, 1, 2)
    expected = torch.tensor([1 / (1 + math.exp(-1)), 1 / (1 + math.exp(3))])
    assert torch.allclose(prob.flatten(), expected)


def test_segmentation_loss_soft_target_closed_form():
    # Two pixels: logits (a, b) per pixel; soft label t: loss = -(t log p_lane + (1 - t) log p_bg), averaged.
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0]]).view(1, 2, 1, 2)  # background row, lane row
    label = torch.tensor([0.3, 1.0]).view(1, 1, 1, 2)
    per_pixel = []
    for bg, lane, t in [(0.5, 2.0, 0.3), (-1.0, 0.0, 1.0)]:
        log_z = math.log(math.exp(bg) + math.exp(lane))
        per_pixel.append(-(t * (lane - log_z) + (1 - t) * (bg - log_z)))
    assert segmentation_loss(logits, label).item() == pytest.approx(sum(per_pixel) / 2, rel=1e-6)


def test_segmentation_loss_matches_cross_entropy_for_hard_labels():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 5, 7)
    label = (torch.rand(2, 1, 5, 7) > 0.5).float()
    expected = torch.nn.functional.cross_entropy(logits, label[:, 0].long())
    assert segmentation_loss(logits, label).item() == pytest.approx(expected.item(), rel=1e-6)


def test_adversarial_loss_real_and_fake():
    scores = torch.tensor([0.0, 2.0, -1.0]).view(1, 1, 1, 3)
    real = sum(math.log1p(math.exp(-s)) for s in (0.0, 2.0, -1.0)) / 3  # -log sigmoid(s)
    fake = sum(math.log1p(math.exp(s)) for s in (0.0, 2.0, -1.0)) / 3  # -log(1 - sigmoid(s))
    assert adversarial_loss(scores, real=True).item() == pytest.approx(real, rel=1e-6)
    assert adversarial_loss(scores, real=False).item() == pytest.approx(fake, rel=1e-6)
    assert adversarial_loss(torch.zeros(2, 1, 3, 3), real=True).item() == pytest.approx(math.log(2))


def test_embedding_loss_zero_symmetric_and_l2():
    torch.manual_seed(0)
    a, b = torch.randn(3, 4, 2, 5), torch.randn(3, 4, 2, 5)
    assert embedding_loss(a, a).item() == 0.0
    assert embedding_loss(a, b).item() == pytest.approx(embedding_loss(b, a).item())
    raw = torch.stack([torch.sqrt(((a[i] - b[i]) ** 2).sum()) for i in range(3)]).mean()
    assert embedding_loss(a, b, normalise=False).item() == pytest.approx(raw.item(), rel=1e-6)
    assert embedding_loss(a, b).item() == pytest.approx(raw.item() / math.sqrt(4 * 2 * 5), rel=1e-6)


def test_embedding_loss_normalised_is_size_independent():
    # A constant difference of 1 gives 1 for any embedding size once normalised.
    for shape in [(2, 3, 4, 4), (2, 50, 11, 20)]:
        assert embedding_loss(torch.ones(shape), torch.zeros(shape)).item() == pytest.approx(1.0)


def test_embedding_loss_gradient_is_finite_at_zero():
    a = torch.randn(2, 3, 4, 4)
    b = a.clone().requires_grad_(True)
    embedding_loss(a, b).backward()
    assert torch.isfinite(b.grad).all()


def test_discriminator_embedding_loss_is_the_negative_and_its_bounded_forms_are_bounded():
    from elgan_ray.config import LossConfig

    torch.manual_seed(1)
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    eq5 = discriminator_embedding_loss(a, b, LossConfig(disc="emb"))
    assert eq5.item() == pytest.approx(-embedding_loss(a, b).item())
    far = discriminator_embedding_loss(a, 100 * b, LossConfig(disc="emb"))
    assert far < 10 * eq5  # unbounded: pulling the embeddings apart lowers it without limit
    # Unit-length embeddings: the distance of directions, at most 2 however far apart the embeddings are.
    unit = LossConfig(disc="emb_unit")
    assert -2.0 <= discriminator_embedding_loss(a, 100 * b, unit).item() <= 0.0
    assert discriminator_embedding_loss(a, -a, unit).item() == pytest.approx(-2.0)


class RecordingDiscriminator(torch.nn.Module):
    """A stand-in D that records the batches it sees: score = mean of the map, embedding = the map itself."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, image, lane_map, emb_block):
        self.seen.append(len(lane_map))
        return lane_map.mean(dim=(2, 3), keepdim=True), lane_map


def test_d_sees_each_label_beside_its_prediction_in_one_forward():
    d = RecordingDiscriminator()
    images, labels, prediction = torch.zeros(3, 3, 4, 4), torch.ones(3, 1, 4, 4), torch.zeros(3, 1, 4, 4)
    label_score, prediction_score, label_emb, prediction_emb = discriminate(d, images, labels, prediction, 7)
    assert d.seen == [6]  # one pass of both halves: BatchNorm always spans a label and a prediction
    assert torch.equal(label_emb, labels) and torch.equal(prediction_emb, prediction)
    assert label_score.shape == prediction_score.shape == (3, 1, 1, 1)


@pytest.mark.parametrize("norm", ["rms", "plain"])
def test_generator_embedding_loss_follows_emb_norm_and_leaves_the_label_constant(norm):
    from elgan_ray.config import LossConfig

    d = RecordingDiscriminator()
    images, labels = torch.zeros(2, 3, 4, 4), torch.ones(2, 1, 4, 4)
    prediction = torch.zeros(2, 1, 4, 4, requires_grad=True)
    loss = generator_adversarial_loss(d, images, labels, prediction, LossConfig(gen="emb", emb_norm=norm))
    # Every pixel differs by 1: the plain L2 norm is sqrt(16) = 4 (eq. 3-4), its RMS 1.
    assert loss.item() == pytest.approx(4.0 if norm == "plain" else 1.0)
    loss.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
