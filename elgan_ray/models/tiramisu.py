"""Tiramisu FC-DenseNet generator (Jegou et al., 2017): image (B, 3, H, W) in [0, 1] -> logits (B, 2, H, W).

Down path: first 3x3 conv, then per level a dense block and a transition down (BN-ReLU-1x1 conv-dropout-maxpool).
Bottleneck dense block. Up path: per level a 3x3 transposed conv (stride 2) of the *new* feature maps of the
block below, concatenated with the skip of the same level, then a dense block. The last up block keeps its
input too (as in the paper's FC-DenseNet), and a 1x1 conv gives the two class logits (background, lane).
With the paper's plan (1..7 down, 7 bottleneck, 7..1 up) that is 1 + 28 + 7 + 28 = 64 3x3 Conv2d.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from elgan_ray.config import GeneratorConfig


class DenseLayer(nn.Sequential):
    """BN-ReLU-3x3 conv-dropout, producing `growth` new feature maps."""

    def __init__(self, in_channels: int, growth: int, dropout: float):
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, growth, 3, padding=1, bias=False),
            nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
        )


class DenseBlock(nn.Module):
    """`n_layers` dense layers, each seeing the block input and every earlier layer's output.

    forward returns (input ++ new maps, new maps): the down path keeps the first, the up path upsamples the second.
    """

    def __init__(self, in_channels: int, n_layers: int, growth: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(in_channels + i * growth, growth, dropout) for i in range(n_layers))
        self.out_channels = in_channels + n_layers * growth
        self.new_channels = n_layers * growth

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        new = []
        for layer in self.layers:
            out = layer(x)
            x = torch.cat([x, out], dim=1)
            new.append(out)
        return x, torch.cat(new, dim=1)


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
        x = self.first(x)
        skips = []
        for block, down in zip(self.down_blocks, self.trans_down, strict=True):
            x, _ = block(x)
            skips.append(x)
            x = down(x)
        _, new = self.bottleneck(x)
        for up, block, skip in zip(self.trans_up, self.up_blocks, reversed(skips), strict=True):
            x, new = block(torch.cat([up(new), skip], dim=1))
        return self.head(x)[..., :h, :w]  # (B, 2, H, W)
