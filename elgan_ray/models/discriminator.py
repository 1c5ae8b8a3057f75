"""EL-GAN discriminator: a DenseNet that scores (image, lane map) pairs patch-wise and exposes its embeddings.

Two heads, one for the image (B, 3, H, W) and one for the label or prediction map (B, 1, H, W), each a 3x3 conv
and the first `head_blocks` dense blocks; their outputs are concatenated and go through the shared blocks,
then a fully-convolutional patch-GAN classifier (BN-ReLU-1x1 conv to one logit per patch, no sigmoid).

Counting: each head has its own convs, so every head block is counted twice. The paper plan
(2 heads x (3x3 stem + 2 + 2 layers) + 3 + 4 + 4 + 5 + 6 shared layers) has 10 + 22 = 32 3x3 convs; the
transitions and the classifier are 1x1.

Blocks are numbered 1..n with the head blocks first, so the embedding of block 3 is the first shared block's
output and that of block n the last block's output, just before the classifier (the paper's 3, 5, 7).

Pooling plan: a transition (BN-ReLU-1x1 conv with `compression`) follows every block but the last, and it also
average-pools 2x2 only while the shorter side of the map is at least MIN_POOL_SIDE. So 720x1280 frames are pooled
after every block (11x20 patches), and 64x128 smoke inputs stop at 4x8 patches instead of vanishing.
"""

from __future__ import annotations

import torch
from torch import nn

from elgan_ray.config import DiscriminatorConfig
from elgan_ray.models.memory_efficient import Feature, bn_relu_conv, convolved
from elgan_ray.models.tiramisu import DenseBlock

MIN_POOL_SIDE = 8  # pool only maps whose shorter side is at least this (the pooled side is then >= 4)


class Transition(nn.Module):
    """BN-ReLU-1x1 conv (channel compression), then 2x2 average pooling while the map is large enough."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True), nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, features: list[Feature]) -> torch.Tensor:
        """The maps of a block (or of both heads) -> (B, C_out, h, w), pooled while large enough."""
        bn, _, conv = self.conv
        return bn_relu_conv(features, bn, conv, pool=min(features[0].shape[-2:]) >= MIN_POOL_SIDE)


class Head(nn.Module):
    """One input's stem (3x3 conv) and its own first dense blocks; records each block's output."""

    def __init__(self, in_channels: int, cfg: DiscriminatorConfig):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, cfg.first_conv, 3, padding=1, bias=False)
        self.blocks, self.transitions = nn.ModuleList(), nn.ModuleList()
        channels = cfg.first_conv
        for i, n in enumerate(cfg.block_layers[: cfg.head_blocks]):
            block = DenseBlock(channels, n, cfg.growth, cfg.dropout)
            self.blocks.append(block)
            channels = block.out_channels
            if i < cfg.head_blocks - 1:  # the transition after the last head block acts on the concatenation
                compressed = _compress(channels, cfg.compression)
                self.transitions.append(Transition(channels, compressed))
                channels = compressed
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> list[list[Feature]]:
        """Each head block's output, as its list of maps."""
        features = convolved(self.stem, x * 2 - 1)  # inputs in [0, 1], centred on 0; made again if large
        outputs = []
        for i, block in enumerate(self.blocks):
            features, _ = block(features)
            outputs.append(features)
            if i < len(self.transitions):
                features = [self.transitions[i](features)]
        return outputs


class Discriminator(nn.Module):
    """forward(image, lane_map, emb_block) -> (patch logits (B, 1, h, w), embedding of block emb_block)."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.head_blocks = cfg.head_blocks
        self.n_blocks = len(cfg.block_layers)
        self.image_head = Head(3, cfg)
        self.map_head = Head(1, cfg)
        channels = 2 * self.image_head.out_channels  # the heads' outputs are concatenated
        self.transitions, self.blocks = nn.ModuleList(), nn.ModuleList()
        for n in cfg.block_layers[cfg.head_blocks :]:
            compressed = _compress(channels, cfg.compression)
            self.transitions.append(Transition(channels, compressed))
            block = DenseBlock(compressed, n, cfg.growth, cfg.dropout)
            self.blocks.append(block)
            channels = block.out_channels
        self.classifier = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, 1, 1))

    @property
    def embedding_blocks(self) -> list[int]:
        """Blocks whose output can serve as the embedding: the shared ones (both inputs conditioned on)."""
        return list(range(self.head_blocks + 1, self.n_blocks + 1))

    def beyond_embedding(self, emb_block: int) -> list[nn.Parameter]:
        """The parameters that block emb_block's embedding does not depend on: the later shared blocks (with their
        transitions) and the patch classifier. A loss of the embedding alone (eq. 5) gives them no gradient."""
        shared = enumerate(zip(self.transitions, self.blocks, strict=True), start=self.head_blocks + 1)
        later = [module for number, pair in shared if number > emb_block for module in pair]
        return [p for module in [*later, self.classifier] for p in module.parameters()]

    def forward(self, image: torch.Tensor, lane_map: torch.Tensor, emb_block: int) -> tuple[torch.Tensor, torch.Tensor]:
        if emb_block not in self.embedding_blocks:
            raise ValueError(f"emb_block must be one of {self.embedding_blocks}, got {emb_block}")
        features = self.image_head(image)[-1] + self.map_head(lane_map)[-1]  # the heads' maps, image first
        for number, (transition, block) in enumerate(zip(self.transitions, self.blocks, strict=True), start=1):
            features, _ = block([transition(features)])
            if number + self.head_blocks == emb_block:
                embedding = torch.cat(features, dim=1)  # (B, C_k, h_k, w_k)
        score = bn_relu_conv(features, self.classifier[0], self.classifier[2])  # (B, 1, h, w)
        return score, embedding


def _compress(channels: int, compression: float) -> int:
    return max(1, int(channels * compression))
