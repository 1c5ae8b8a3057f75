"""Validation of a generator: lane maps -> post-processing -> the official TuSimple scores.

Called by the training loop at every evaluation; knows nothing of Ray or of files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from elgan_ray.config import EvalConfig
from elgan_ray.data.labels import LaneLabel
from elgan_ray.evaluate.maps import score_maps
from elgan_ray.train.losses import lane_probability

PREVIEW_FRAMES = 4  # validation frames kept for TensorBoard images and the report's prediction figure


@dataclass(frozen=True)
class Validation:
    """The scores of one evaluation, one dict per post-processing, plus a few maps to look at."""

    scores: dict[str, dict[str, float]]  # post -> {accuracy, fp, fn, f1}
    line_width: float  # mean horizontal width of predicted lines, training pixels
    label_width: float  # the same measured on the label maps
    preview_image: np.ndarray  # (N, H, W, 3) uint8 RGB
    preview_label: np.ndarray  # (N, H, W) float32
    preview_prob: np.ndarray  # (N, H, W) float32
    maps: np.ndarray | None = None  # (V, H, W) float32: every frame's map (what a run's final val_maps.npz keeps)


@torch.no_grad()
def predict_maps(generator: torch.nn.Module, images: torch.Tensor, device: torch.device, batch: int = 16) -> np.ndarray:
    """Lane probability maps of a stack of frames (N, 3, H, W) -> (N, H, W) float32, in eval mode."""
    was_training = generator.training
    generator.eval()
    maps = []
    for start in range(0, len(images), batch):
        logits = generator(images[start : start + batch].to(device))  # (b, 2, H, W)
        maps.append(lane_probability(logits)[:, 0].float().cpu().numpy())  # (b, H, W)
    generator.train(was_training)
    return np.concatenate(maps) if maps else np.zeros((0,) + tuple(images.shape[2:]), np.float32)


def mean_line_width(maps: np.ndarray, threshold: float) -> float:
    """Mean length of the horizontal runs of pixels above threshold: how thick the lines are."""
    binary = maps > threshold  # (N, H, W)
    pixels = int(binary.sum())
    # A run starts where a pixel is on and its left neighbour is off.
    starts = int((binary[..., 1:] & ~binary[..., :-1]).sum() + binary[..., 0].sum())
    return pixels / starts if starts else 0.0


def validate(
    maps: np.ndarray,
    images: torch.Tensor,
    label_maps: torch.Tensor,
    labels: list[LaneLabel],
    eval_cfg: EvalConfig,
) -> Validation:
    """Score a generator's maps (N, H, W) of validation frames (N, 3, H, W) with every post-processing."""
    scores = score_maps(maps, labels, eval_cfg)
    label_np = label_maps[:, 0].numpy()  # (N, H, W)
    n = min(PREVIEW_FRAMES, len(maps))
    return Validation(
        scores=scores,
        line_width=mean_line_width(maps, eval_cfg.threshold),
        label_width=mean_line_width(label_np, 0.5),
        preview_image=(images[:n].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8),
        preview_label=label_np[:n].astype(np.float32),
        preview_prob=maps[:n].astype(np.float32),
        maps=maps,
    )
