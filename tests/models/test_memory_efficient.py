"""The memory-efficient layers (models/memory_efficient.py) against the naive dense networks they replace.

The reference is the models' old forward pass, kept here only as a test oracle: each dense layer concatenates
every earlier map into a new tensor and runs its Sequential (BN, ReLU, conv, dropout) on it. It runs on the same
modules, so the two sides share their weights and buffers layout exactly.
"""

from __future__ import annotations

import copy
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from elgan_ray.models import batch_norm_statistics_kept, build_discriminator, build_generator, memory_efficient
from elgan_ray.models.discriminator import MIN_POOL_SIDE
from elgan_ray.models.memory_efficient import bn_relu_conv
from elgan_ray.presets import preset
from elgan_ray.train.loop import d_step, g_step

# A tiny G and D with dropout in both, so that the masks are checked too; 32x64 frames pool three times in D.
TINY = {
    "generator.first_conv": 8,
    "generator.growth": 4,
    "generator.down_layers": [1, 2],
    "generator.bottleneck_layers": 2,
    "generator.dropout": 0.2,
    "discriminator.first_conv": 6,
    "discriminator.growth": 4,
    "discriminator.block_layers": [1, 2, 1, 2],
    "discriminator.dropout": 0.1,
    "loss.emb_block": 4,
}
SIZE = (32, 64)


# -- the reference: the naive forward passes ------------------------------------------------------------------


def naive_block(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    new = []
    for layer in block.layers:
        out = nn.Sequential.forward(layer, x)  # BN, ReLU, conv, dropout on the whole concatenation
        x = torch.cat([x, out], dim=1)
        new.append(out)
    return x, torch.cat(new, dim=1)


def naive_generator(g: nn.Module, image: torch.Tensor) -> torch.Tensor:
    h, w = image.shape[-2:]
    m = 2**g.levels
    x = g.first(F.pad(image * 2 - 1, (0, -w % m, 0, -h % m)))
    skips = []
    for block, down in zip(g.down_blocks, g.trans_down, strict=True):
        x, _ = naive_block(block, x)
        skips.append(x)
        x = nn.Sequential.forward(down, x)
    _, new = naive_block(g.bottleneck, x)
    for up, block, skip in zip(g.trans_up, g.up_blocks, reversed(skips), strict=True):
        x, new = naive_block(block, torch.cat([up(new), skip], dim=1))
    return g.head(x)[..., :h, :w]


def naive_transition(transition: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = transition.conv(x)
    return F.avg_pool2d(x, 2) if min(x.shape[-2:]) >= MIN_POOL_SIDE else x


def naive_head(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = head.stem(x * 2 - 1)
    for i, block in enumerate(head.blocks):
        x, _ = naive_block(block, x)
        if i < len(head.transitions):
            x = naive_transition(head.transitions[i], x)
    return x


def naive_discriminator(d: nn.Module, image: torch.Tensor, lane_map: torch.Tensor, emb_block: int):
    x = torch.cat([naive_head(d.image_head, image), naive_head(d.map_head, lane_map)], dim=1)
    embedding = x
    for number, (transition, block) in enumerate(zip(d.transitions, d.blocks, strict=True), start=1):
        x, _ = naive_block(block, naive_transition(transition, x))
        if number + d.head_blocks == emb_block:
            embedding = x
    return d.classifier(x), embedding


def naive_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` (same weights and buffers, its own) that runs the naive forward pass."""
    reference = copy.deepcopy(model)
    forward = naive_generator if hasattr(model, "levels") else naive_discriminator
    reference.forward = types.MethodType(forward, reference)
    return reference


@pytest.fixture
def lean(monkeypatch):
    """Every layer takes the memory-efficient path, however small, and stems are made again in several pieces."""
    monkeypatch.setattr(memory_efficient, "RECOMPUTE_MIN_BYTES", 0)
    monkeypatch.setattr(memory_efficient, "PIECE_CHANNELS", 3)


def tiny(amp: str = "fp32"):
    return preset("smoke").with_flat(TINY | {"optim.amp": amp})


def frames(batch: int = 2, layout=torch.channels_last) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    images = torch.rand(batch, 3, *SIZE).contiguous(memory_format=layout)
    return images, (torch.rand(batch, 1, *SIZE) > 0.9).float()


def models(cfg, layout=torch.channels_last) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return (
        build_generator(cfg.generator).to(memory_format=layout),
        build_discriminator(cfg.discriminator).to(memory_format=layout),
    )


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    # SGD keeps float differences in the gradients as small in the weights (Adam's first steps would not).
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def bn_key(prefix: str) -> list[str]:
    return [f"{prefix}.{name}" for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


def dense_layer_keys(prefix: str) -> list[str]:
    return [*bn_key(f"{prefix}.0"), f"{prefix}.2.weight"]


def test_state_dict_keys_are_the_old_ones():
    """Checkpoints of the naive models load: the keys, as the old modules named them, and the shapes are kept."""
    from elgan_ray.config import DiscriminatorConfig, GeneratorConfig

    g = build_generator(GeneratorConfig(first_conv=4, growth=2, down_layers=(1,), bottleneck_layers=1, dropout=0.1))
    d = build_discriminator(DiscriminatorConfig(first_conv=4, growth=2, block_layers=(1, 1, 1)))
    old_g = ["first.weight", *dense_layer_keys("down_blocks.0.layers.0"), *dense_layer_keys("trans_down.0")]
    old_g += [*dense_layer_keys("bottleneck.layers.0"), "trans_up.0.weight", "trans_up.0.bias"]
    old_g += [*dense_layer_keys("up_blocks.0.layers.0"), *bn_key("head.0"), "head.2.weight", "head.2.bias"]
    old_d = []
    for head in ("image_head", "map_head"):
        old_d += [f"{head}.stem.weight", *dense_layer_keys(f"{head}.blocks.0.layers.0")]
        old_d += [*dense_layer_keys(f"{head}.blocks.1.layers.0"), *dense_layer_keys(f"{head}.transitions.0.conv")]
    old_d += [*dense_layer_keys("transitions.0.conv"), *dense_layer_keys("blocks.0.layers.0")]
    old_d += [*bn_key("classifier.0"), "classifier.2.weight", "classifier.2.bias"]
    assert list(g.state_dict()) == old_g
    assert list(d.state_dict()) == old_d
    # A state dict written by one model loads strictly into a fresh one of the same plan.
    build_generator(g_cfg := preset("smoke").generator).load_state_dict(build_generator(g_cfg).state_dict())


@pytest.mark.parametrize(
    ("path", "amp", "layout"),
    [
        ("lean", "fp32", torch.channels_last),
        ("lean", "fp32", torch.contiguous_format),
        ("plain", "fp32", torch.channels_last),
        ("plain", "bf16", torch.channels_last),
    ],
)
def test_training_steps_match_the_naive_models(path, amp, layout, request):
    """Pre-training, GAN G and D steps (train.loop's own), twice: same losses, weights and BatchNorm statistics.
    (The lean path in bf16 is compared on gradients below: bf16 rounding grows over steps of a model this small.)"""
    if path == "lean":
        request.getfixturevalue("lean")
    cfg = tiny(amp)
    g, d = models(cfg, layout)
    g_ref, d_ref = naive_copy(g), naive_copy(d)
    opts, opts_ref = (sgd(g), sgd(d)), (sgd(g_ref), sgd(d_ref))
    images, labels = frames(layout=layout)
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if amp == "fp32" else {"rtol": 2e-2, "atol": 2e-3}
    for step in range(2):
        losses = []
        for generator, discriminator, (opt_g, opt_d) in ((g, d, opts), (g_ref, d_ref, opts_ref)):
            torch.manual_seed(10 + step)  # the same dropout masks on both sides, if drawn in the same order
            pre = g_step(generator, discriminator, opt_g, images, labels, cfg, with_adversary=False)
            gan = g_step(generator, discriminator, opt_g, images, labels, cfg, with_adversary=True)
            losses.append(pre | gan | d_step(generator, discriminator, opt_d, images, labels, cfg))
        for key in losses[1]:
            assert losses[0][key] == pytest.approx(losses[1][key], rel=tolerance["rtol"], abs=tolerance["atol"]), key
    for model, reference in ((g, g_ref), (d, d_ref)):
        reference_state = reference.state_dict()
        for key, value in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                assert torch.equal(value, reference_state[key]), key  # counted once per forward pass
            else:
                torch.testing.assert_close(value, reference_state[key], **tolerance, msg=key)
    # The steps did move the statistics and the weights: the comparison above is not of untouched values.
    # G counts its own steps only (d_step keeps its statistics), D its d_steps (g_step keeps them).
    assert int(g.head[0].num_batches_tracked) == 4 and int(d.classifier[0].num_batches_tracked) == 2
    assert not torch.equal(g.first.weight, models(cfg, layout)[0].first.weight)


def test_bf16_gradients_match_the_naive_models(lean):
    """Under bf16 autocast the lean models round differently in a few places (a stem's conv backward per reader,
    summed in float32), so their gradients match the naive models' to bf16 rounding, far inside bf16's own error."""
    from elgan_ray.train.losses import lane_probability, segmentation_loss

    cfg = tiny()
    g, d = models(cfg)
    images, labels = frames()

    def gradients(generator, discriminator, amp: bool) -> torch.Tensor:
        torch.manual_seed(2)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = generator(images).float()
            score, embedding = discriminator(images, lane_probability(logits), cfg.loss.emb_block)
            loss = segmentation_loss(logits, labels) + score.float().mean() + embedding.float().square().mean()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in (*generator.parameters(), *discriminator.parameters())])

    lean_bf16 = gradients(g, d, amp=True)
    naive_bf16, naive_fp32 = (gradients(naive_copy(g), naive_copy(d), amp) for amp in (True, False))
    error = (lean_bf16 - naive_bf16).norm() / naive_bf16.norm()
    bf16_error = (naive_bf16 - naive_fp32).norm() / naive_fp32.norm()
    assert error < 0.01 and error < bf16_error / 10


def test_running_statistics_move_once_per_forward_pass(lean):
    """The backward pass normalises again but leaves the running statistics where the forward pass put them."""
    g, _ = models(tiny())
    image, _ = frames()
    for _ in range(3):
        logits = g(image)
        moved = {k: v.clone() for k, v in g.state_dict().items() if "running" in k or "num_batches" in k}
        logits.square().mean().backward()
        assert all(torch.equal(v, g.state_dict()[k]) for k, v in moved.items())
    assert all(int(m.num_batches_tracked) == 3 for m in g.modules() if isinstance(m, nn.BatchNorm2d))
    assert not torch.equal(g.head[0].running_mean, torch.zeros_like(g.head[0].running_mean))


def test_g_step_leaves_the_discriminator_alone(lean):
    """g_step runs D in train mode inside batch_norm_statistics_kept, frozen, and unfreezes it before backward():
    D's statistics, weights and gradients stay untouched although its layers' backward passes run afterwards."""
    cfg = tiny()
    g, d = models(cfg)
    images, labels = frames()
    before = copy.deepcopy(d.state_dict())
    g_step(g, d, torch.optim.SGD(g.parameters(), lr=0.1), images, labels, cfg, with_adversary=True)
    assert all(torch.equal(value, d.state_dict()[key]) for key, value in before.items())
    assert all(p.grad is None for p in d.parameters())
    assert all(p.requires_grad for p in d.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_statistics_kept_around_a_lean_forward_pass(lean):
    """batch_norm_statistics_kept with a backward pass after the block: the buffers it restored stay as they were."""
    g, _ = models(tiny())
    image, _ = frames()
    before = copy.deepcopy(g.state_dict())
    with batch_norm_statistics_kept(g):
        logits = g(image)
    logits.square().mean().backward()
    assert all(torch.equal(value, g.state_dict()[key]) for key, value in before.items())
    assert g.first.weight.grad is not None


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("pool", [False, True])
def test_layer_matches_the_plain_layer(training, amp, pool, monkeypatch):
    """One BN-ReLU-conv over three maps, train and eval mode, float32 and bf16 autocast, and with D's average
    pooling after a 1x1 conv: output, gradients and running statistics."""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(14).train(training)
    conv = nn.Conv2d(14, 5, 1, bias=False) if pool else nn.Conv2d(14, 5, 3, padding=1, bias=True)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2)
    maps = [torch.randn(3, c, 12, 20).contiguous(memory_format=torch.channels_last) for c in (6, 4, 4)]
    results = []
    for threshold in (0, 2**62):
        monkeypatch.setattr(memory_efficient, "RECOMPUTE_MIN_BYTES", threshold)
        layer_bn, layer_conv = copy.deepcopy(bn), copy.deepcopy(conv)
        inputs = [m.clone().requires_grad_() for m in maps]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = bn_relu_conv([m.bfloat16() if amp else m for m in inputs], layer_bn, layer_conv, pool=pool)
        (out.float() * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        grads = [t.grad for t in (*inputs, *layer_bn.parameters(), *layer_conv.parameters())]
        results.append((out, grads, layer_bn.running_mean, layer_bn.running_var, layer_bn.num_batches_tracked))
    (out, grads, *stats), (out_ref, grads_ref, *stats_ref) = results
    assert out.dtype == out_ref.dtype == (torch.bfloat16 if amp else torch.float32)
    assert out.shape == out_ref.shape == ((3, 5, 6, 10) if pool else (3, 5, 12, 20))
    # In bf16, the pooled layer's weight gradient sums the windows' means, rounded to bf16 (a few bf16 steps).
    close = {"rtol": 2e-2, "atol": 1e-3} if amp and pool else {"rtol": 1e-4, "atol": 1e-5}
    torch.testing.assert_close(out, out_ref, **close)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref, **close)
    for stat, stat_ref in zip(stats, stats_ref, strict=True):
        torch.testing.assert_close(stat, stat_ref, rtol=0, atol=0)


def saved_bytes(fn) -> int:
    """Bytes of the distinct storages autograd keeps for backward while fn() runs."""
    storages = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def test_lean_layer_keeps_only_its_input_maps(monkeypatch):
    """The memory claim: a layer over three maps keeps the maps themselves (and per-channel statistics), where the
    plain layer also keeps their concatenation and its normalised copy."""
    bn, conv = nn.BatchNorm2d(24), nn.Conv2d(24, 8, 3, padding=1, bias=False)
    maps = [torch.randn(2, 8, 32, 32, requires_grad=True) for _ in range(3)]
    inputs = sum(m.numel() * m.element_size() for m in maps)
    monkeypatch.setattr(memory_efficient, "RECOMPUTE_MIN_BYTES", 0)
    lean_bytes = saved_bytes(lambda: bn_relu_conv(maps, bn, conv))
    monkeypatch.setattr(memory_efficient, "RECOMPUTE_MIN_BYTES", 2**62)
    plain_bytes = saved_bytes(lambda: bn_relu_conv(maps, bn, conv))
    assert inputs <= lean_bytes < inputs * 1.05
    assert plain_bytes >= 2 * inputs


def test_lean_models_keep_a_fraction_of_the_naive_ones(monkeypatch):
    """What a GAN G step's forward pass keeps for backward (G, then D on label and prediction): the lean path
    keeps no concatenation, no normalised copy and no stem output."""
    from elgan_ray.train.losses import lane_probability

    cfg = tiny()
    g, d = models(cfg)
    images, _ = frames()

    def forward():
        d(images, lane_probability(g(images)), cfg.loss.emb_block)

    monkeypatch.setattr(memory_efficient, "RECOMPUTE_MIN_BYTES", 0)
    lean_bytes = saved_bytes(forward)
    monkeypatch.setattr(memory_efficient, "RECOMPUTE_MIN_BYTES", 2**62)
    assert lean_bytes < saved_bytes(forward) / 3


def test_adversarial_gradient_through_lean_models(lean):
    """health.adversarial_gradient takes torch.autograd.grad at G's logits only, through D: same figures."""
    from elgan_ray.train.health import adversarial_gradient

    cfg = tiny()
    g, d = models(cfg)
    images, labels = frames()
    figures = []
    for generator, discriminator in ((g, d), (naive_copy(g), naive_copy(d))):
        torch.manual_seed(3)
        with batch_norm_statistics_kept(discriminator):
            figures.append(adversarial_gradient(generator.eval(), discriminator.train(), images, labels, cfg.loss))
    assert figures[0] == pytest.approx(figures[1], rel=1e-4)
    assert figures[0][0] > 0
