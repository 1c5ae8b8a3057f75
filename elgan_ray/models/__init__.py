"""The EL-GAN models, built from their configs, with their counts (`train --describe`).

tiramisu.py       the Tiramisu FC-DenseNet generator
discriminator.py  the two-headed DenseNet discriminator: patch scores and the embedding of a chosen block
memory_efficient.py  large BN-ReLU-conv layers that keep only their input maps; pool2x2.py  lean 2x2 poolings
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from elgan_ray.config import DiscriminatorConfig, GeneratorConfig
from elgan_ray.models.discriminator import Discriminator
from elgan_ray.models.tiramisu import Tiramisu

__all__ = [
    "Discriminator",
    "Tiramisu",
    "batch_norm_statistics_kept",
    "build_discriminator",
    "build_generator",
    "count_conv3x3",
    "describe",
    "parameters_frozen",
]


def build_generator(cfg: GeneratorConfig) -> Tiramisu:
    return Tiramisu(cfg)


def build_discriminator(cfg: DiscriminatorConfig) -> Discriminator:
    return Discriminator(cfg)


def count_conv3x3(module: nn.Module) -> int:
    """Number of 3x3 `Conv2d` layers (transposed convs and 1x1 convs are not counted)."""
    return sum(1 for m in module.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def describe(generator_cfg: GeneratorConfig, discriminator_cfg: DiscriminatorConfig) -> dict[str, Any]:
    """Conv and parameter counts of both models, as printed by `--describe`."""
    g, d = build_generator(generator_cfg), build_discriminator(discriminator_cfg)
    return {
        "generator": {"conv3x3": count_conv3x3(g), "params": count_params(g)},
        "discriminator": {
            "conv3x3": count_conv3x3(d),
            "params": count_params(d),
            "embedding_blocks": d.embedding_blocks,
        },
    }


@contextmanager
def batch_norm_statistics_kept(model: nn.Module) -> Iterator[None]:
    """Run `model` in train mode without moving its BatchNorm running statistics.

    Inside, each BatchNorm works on copies of its buffers, and the originals are put back on exit. Swapping
    rather than copying values back matters: the forward passes inside may be differentiated after the block
    ends, and autograd refuses tensors modified in place since they were used.
    """
    originals = [
        (module, name, buffer)
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        for name, buffer in module.named_buffers(recurse=False)
    ]
    for module, name, buffer in originals:
        setattr(module, name, buffer.clone())
    try:
        yield
    finally:
        for module, name, buffer in originals:
            setattr(module, name, buffer)


@contextmanager
def parameters_frozen(model: nn.Module) -> Iterator[None]:
    """No parameter of `model` takes a gradient inside; each gets its own requires_grad back on exit (parameters
    frozen for the whole run, such as D's beyond its embedding under eq. 5, stay frozen)."""
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(model.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)
