"""Tiramisu FC-DenseNet generator (Jegou et al., 2017): image (B, 3, H, W) in [0, 1] -> logits (B, 2, H, W).

Down path: first 3x3 conv, then per level a dense block and a transition down (BN-ReLU-1x1 conv-dropout-maxpool).
Bottleneck dense block. Up path: per level a 3x3 transposed conv (stride 2) of the *new* feature maps of the
block below, concatenated with the skip of the same level, then a dense block. The last up block keeps its
input too (as in the paper's FC-DenseNet), and a 1x1 conv gives the two class logits (background, lane).
With the paper's plan (1..7 down, 7 bottleneck, 7..1 up) that is 1 + 28 + 7 + 28 = 64 3x3 Conv2d.

Feature maps travel as lists and are concatenated only inside the layers that read them, where large layers
recompute the concatenation and its normalisation in the backward pass instead of keeping them (recompute.py).
The layers stay nn.Sequential (BN, ReLU, conv, ...) so that the state-dict keys, and old checkpoints, still fit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from elgan_ray.config import GeneratorConfig
from elgan_ray.models.memory_efficient import Feature, bn_relu_conv, concatenated, convolved, max_pool_2x2


class DenseLayer(nn.Sequential):
    """BN-ReLU-3x3 conv-dropout, producing `growth` new feature maps."""

    def __init__(self, in_channels: int, growth: int, dropout: float):
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, growth, 3, padding=1, bias=False),
            nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
        )

    def forward(self, features: list[Feature]) -> torch.Tensor:
        """The maps the layer reads, in channel order -> its `growth` new maps (B, growth, H, W)."""
        bn, _, conv, dropout = self
        return dropout(bn_relu_conv(features, bn, conv))


class DenseBlock(nn.Module):
    """`n_layers` dense layers, each seeing the block input and every earlier layer's output.

    forward takes the input as a list of maps and returns (input maps + new maps, new maps), as lists: the down
    path keeps the first, the up path upsamples the second.
    """

    def __init__(self, in_channels: int, n_layers: int, growth: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(in_channels + i * growth, growth, dropout) for i in range(n_layers))
        self.out_channels = in_channels + n_layers * growth
        self.new_channels = n_layers * growth

    def forward(self, features: list[Feature]) -> tuple[list[Feature], list[Feature]]:
        features = list(features)
        n_in = len(features)
        for layer in self.layers:
            features.append(layer(features))
        return features, features[n_in:]


class TransitionDown(nn.Sequential):
    """BN-ReLU-1x1 conv-dropout-maxpool 2x2: halves the resolution, keeps the channel count."""

    def __init__(self, channels: int, dropout: float):
        super().__init__(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
            nn.MaxPool2d(2),
        )

    def forward(self, features: list[Feature]) -> torch.Tensor:
        """The maps of one level -> (B, C, H/2, W/2)."""
        bn, _, conv, dropout, _ = self
        return max_pool_2x2(dropout(bn_relu_conv(features, bn, conv)))


class Tiramisu(nn.Module):
    """FC-DenseNet; pads the input to a multiple of 2**levels and crops the logits back."""

    def __init__(self, cfg: GeneratorConfig, in_channels: int = 3, n_classes: int = 2):
        super().__init__()
        g, p = cfg.growth, cfg.dropout
        self.levels = len(cfg.down_layers)
        self.first = nn.Conv2d(in_channels, cfg.first_conv, 3, padding=1, bias=False)
        channels = cfg.first_conv
        self.down_blocks, self.trans_down, skip_channels = nn.ModuleList(), nn.ModuleList(), []
        for n in cfg.down_layers:
            block = DenseBlock(channels, n, g, p)
            self.down_blocks.append(block)
            channels = block.out_channels
            skip_channels.append(channels)
            self.trans_down.append(TransitionDown(channels, p))
        self.bottleneck = DenseBlock(channels, cfg.bottleneck_layers, g, p)
        upsampled = self.bottleneck.new_channels
        self.trans_up, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        for n, skip in zip(reversed(cfg.down_layers), reversed(skip_channels), strict=True):
            self.trans_up.append(nn.ConvTranspose2d(upsampled, upsampled, 3, stride=2, padding=1, output_padding=1))
            block = DenseBlock(upsampled + skip, n, g, p)
            self.up_blocks.append(block)
            upsampled = block.new_channels
        self.head = nn.Sequential(
            nn.BatchNorm2d(self.up_blocks[-1].out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(self.up_blocks[-1].out_channels, n_classes, 1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        m = 2**self.levels
        # Zero padding on the right and bottom to a multiple of 2**levels; cropped off the logits below.
        x = F.pad(image * 2 - 1, (0, -w % m, 0, -h % m))  # (B, 3, H', W'), centred on 0
        features = convolved(self.first, x)  # (B, first_conv, H', W'), or made again where read if large
        skips = []
        for block, down in zip(self.down_blocks, self.trans_down, strict=True):
            features, _ = block(features)
            skips.append(features)
            features = [down(features)]
        _, new = self.bottleneck(features)
        for up, block, skip in zip(self.trans_up, self.up_blocks, reversed(skips), strict=True):
            features, new = block([up(concatenated(new)), *skip])
        logits = bn_relu_conv(features, self.head[0], self.head[2])  # (B, 2, H', W')
        return logits[..., :h, :w]  # (B, 2, H, W)
