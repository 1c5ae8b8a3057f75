"""The generator and discriminator: the paper's layer plans, shapes on every preset, embeddings, gradients."""

from __future__ import annotations

import json

import pytest
import torch

from elgan_ray.config import DISC_CHOICES, DiscriminatorConfig, GeneratorConfig
from elgan_ray.models import build_discriminator, build_generator, count_conv3x3, describe
from elgan_ray.presets import PRESETS, preset
from elgan_ray.train.losses import embedding_loss, lane_probability


def test_paper_plan_has_64_and_32_3x3_convs():
    info = describe(GeneratorConfig(), DiscriminatorConfig())
    assert info["generator"]["conv3x3"] == 64
    assert info["discriminator"]["conv3x3"] == 32
    assert info["discriminator"]["embedding_blocks"] == [3, 4, 5, 6, 7]
    # The spec's "about 4.4M parameters at growth 16".
    assert 4.0e6 < info["generator"]["params"] < 4.8e6


def test_describe_shape_and_json():
    cfg = preset("smoke")
    info = json.loads(json.dumps(describe(cfg.generator, cfg.discriminator)))
    assert set(info) == {"generator", "discriminator"}
    assert set(info["generator"]) == {"conv3x3", "params"}
    assert set(info["discriminator"]) == {"conv3x3", "params", "embedding_blocks"}
    assert all(isinstance(v, int) for v in info["generator"].values())
    g = build_generator(cfg.generator)
    assert info["generator"]["params"] == sum(p.numel() for p in g.parameters())
    assert info["generator"]["conv3x3"] == count_conv3x3(g)


def test_count_conv3x3_ignores_other_kernels():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 1, 3), torch.nn.Conv2d(1, 1, 1), torch.nn.ConvTranspose2d(1, 1, 3), torch.nn.Conv2d(1, 1, 5)
    )
    assert count_conv3x3(model) == 1


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_output_shapes_every_preset(name):
    cfg = preset(name)
    torch.manual_seed(0)
    g, d = build_generator(cfg.generator).eval(), build_discriminator(cfg.discriminator).eval()
    h, w = (64, 128) if name == "paper" else (cfg.data.height, cfg.data.width)  # paper at full size: one test below
    image = torch.rand(2, 3, h, w)
    with torch.no_grad():
        logits = g(image)
        score, embedding = d(image, lane_probability(logits), d.embedding_blocks[-1])
    assert logits.shape == (2, 2, h, w)
    assert score.shape[:2] == (2, 1) and min(score.shape[-2:]) >= 1
    assert embedding.shape[0] == 2 and embedding.shape[-2:] == score.shape[-2:]
    assert torch.isfinite(logits).all() and torch.isfinite(score).all()


@pytest.mark.parametrize("size", [(37, 75), (64, 129), (1, 1)])
def test_generator_pads_and_crops_odd_sizes(size):
    g = build_generator(preset("smoke").generator).eval()
    with torch.no_grad():
        assert g(torch.rand(1, 3, *size)).shape == (1, 2, *size)


def test_discriminator_pools_only_large_maps():
    d = build_discriminator(preset("smoke").discriminator).eval()
    with torch.no_grad():
        small, _ = d(torch.rand(1, 3, 64, 128), torch.rand(1, 1, 64, 128), 7)
        odd, _ = d(torch.rand(1, 3, 50, 70), torch.rand(1, 1, 50, 70), 7)
    assert small.shape == (1, 1, 4, 8)  # pooled 64 -> 32 -> 16 -> 8 -> 4, then kept
    assert odd.shape[0] == 1 and min(odd.shape[-2:]) >= 1


def test_every_valid_embedding_block():
    cfg = preset("smoke").discriminator
    d = build_discriminator(cfg).eval()
    image, lane_map = torch.rand(2, 3, 64, 128), torch.rand(2, 1, 64, 128)
    shapes = []
    with torch.no_grad():
        scores = []
        for block in d.embedding_blocks:
            score, embedding = d(image, lane_map, block)
            scores.append(score)
            shapes.append(tuple(embedding.shape))
            assert embedding.shape[0] == 2 and torch.isfinite(embedding).all()
    # The score does not depend on the embedding choice; each embedding is its block's full output.
    assert all(torch.equal(scores[0], s) for s in scores)
    assert [s[1] for s in shapes] == [block.out_channels for block in d.blocks]
    assert shapes[0][-2:] == (16, 32)  # block 3 follows three 2x poolings of 64x128
    for bad in (1, cfg.head_blocks, len(cfg.block_layers) + 1):
        with pytest.raises(ValueError, match="emb_block"):
            d(image, lane_map, bad)


def test_embedding_blocks_follow_the_plan():
    d = build_discriminator(DiscriminatorConfig(block_layers=(1, 1, 1, 1, 1), head_blocks=1))
    assert d.embedding_blocks == [2, 3, 4, 5]


def test_embedding_loss_trains_g_not_the_patch_head():
    cfg = preset("smoke")
    g, d = build_generator(cfg.generator), build_discriminator(cfg.discriminator)
    d.eval().requires_grad_(False)
    image, label = torch.rand(2, 3, 64, 128), (torch.rand(2, 1, 64, 128) > 0.9).float()
    logits = g(image)
    logits.retain_grad()
    d.requires_grad_(True)  # to see which of D's weights the loss would reach
    _, label_embedding = d(image, label, 5)
    _, prediction_embedding = d(image, lane_probability(logits), 5)
    embedding_loss(label_embedding.detach(), prediction_embedding).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert all(p.grad is not None for p in g.parameters() if p.dim() > 1)
    assert all(p.grad is None for p in d.classifier.parameters())
    assert all(p.grad is None for p in d.blocks[-1].parameters())  # block 7 lies after the block-5 embedding
    assert any(p.grad is not None for p in d.map_head.parameters())


def test_paper_preset_one_training_step_at_720x1280():
    """The published models at TuSimple's full size: one G step (embedding loss) and one D step, batch 1."""
    from elgan_ray.train.loop import d_step, g_step

    torch.manual_seed(0)
    cfg = preset("paper")
    g, d = build_generator(cfg.generator), build_discriminator(cfg.discriminator)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3)
    opt_d = torch.optim.SGD(d.parameters(), lr=1e-3, momentum=0.9)
    image = torch.rand(1, 3, 720, 1280)
    label = (torch.rand(1, 1, 720, 1280) > 0.97).float()
    before = g.first.weight.detach().clone()
    g_losses = g_step(g, d, opt_g, image, label, cfg, with_adversary=True)
    d_losses = d_step(g, d, opt_d, image, label, cfg)
    assert all(torch.isfinite(torch.tensor(v)) for v in (*g_losses.values(), *d_losses.values()))
    assert not torch.equal(before, g.first.weight)
    with torch.no_grad():
        score, _ = d.eval()(image, label, 7)
    assert score.shape == (1, 1, 11, 20)  # six 2x poolings of 720x1280


@pytest.mark.parametrize("disc", DISC_CHOICES)
@pytest.mark.parametrize("emb_block", [3, 5, 7])
def test_the_parameters_d_loss_never_reaches_are_those_beyond_its_embedding(disc, emb_block):
    """What the loop freezes under eq. 5 (discriminator.beyond_embedding) is exactly what D's loss gives no gradient."""
    from elgan_ray.config import LossConfig
    from elgan_ray.train.losses import discriminator_loss

    torch.manual_seed(0)
    cfg = preset("smoke")
    discriminator = build_discriminator(cfg.discriminator)
    images, labels, prediction = torch.rand(2, 3, 64, 128), torch.rand(2, 1, 64, 128), torch.rand(2, 1, 64, 128)
    loss_cfg = LossConfig(disc=disc, emb_block=emb_block)
    discriminator_loss(discriminator, images, labels, prediction, loss_cfg).backward()
    untouched = {id(p) for p in discriminator.parameters() if p.grad is None}
    expected = set() if disc == "ce" else {id(p) for p in discriminator.beyond_embedding(emb_block)}
    assert untouched == expected
    assert len(discriminator.beyond_embedding(7)) == 4  # the classifier's BatchNorm and 1x1 conv
