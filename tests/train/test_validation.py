"""train/validation.py: line widths on hand-made maps, and a validation scored as the evaluator scores it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elgan_ray.config import EvalConfig
from elgan_ray.data.labels import H_SAMPLES, LaneLabel, render_lane_map
from elgan_ray.evaluate.maps import score_maps
from elgan_ray.record.names import POSTS
from elgan_ray.train.validation import PREVIEW_FRAMES, mean_line_width, predict_maps, validate


def test_mean_line_width_is_the_mean_horizontal_run_of_pixels_above_the_threshold():
    maps = np.zeros((2, 4, 10), np.float32)
    maps[0, :, 2:5] = 0.9  # runs of 3 on four rows
    maps[1, :2, 0:1] = 0.9  # runs of 1 at the left edge on two rows
    maps[1, 2:, 7:10] = 0.4  # below the threshold: not a line
    assert mean_line_width(maps, 0.5) == pytest.approx((4 * 3 + 2 * 1) / 6)
    assert mean_line_width(np.zeros((1, 3, 3)), 0.5) == 0.0


def test_validate_scores_the_maps_with_every_post_processing_and_keeps_a_preview():
    lanes = [[x if y >= 300 else -2 for y in H_SAMPLES] for x in (400, 800)]
    labels = [LaneLabel(f"clips/{i}/20.jpg", tuple(map(tuple, lanes)), tuple(H_SAMPLES)) for i in range(6)]
    maps = np.stack([render_lane_map(x.lanes, x.h_samples, 32, 64, sigma=1.0) for x in labels]).astype(np.float32)
    images = torch.rand(6, 3, 32, 64)
    eval_cfg = EvalConfig(threshold=0.5)
    result = validate(maps, images, torch.from_numpy(maps)[:, None], labels, eval_cfg)
    assert set(result.scores) == set(POSTS)
    assert result.scores == score_maps(maps, labels, eval_cfg)  # the evaluator's own numbers
    assert result.line_width == pytest.approx(result.label_width)  # the maps are the labels
    assert result.preview_image.shape == (PREVIEW_FRAMES, 32, 64, 3) and result.preview_image.dtype == np.uint8
    assert result.preview_prob.shape == (PREVIEW_FRAMES, 32, 64)


def test_predict_maps_are_lane_probabilities_in_eval_mode_and_restore_the_mode():
    class Constant(torch.nn.Module):
        def forward(self, images):
            logits = torch.zeros(len(images), 2, *images.shape[2:])
            logits[:, 1] = 0.0 if self.training else 2.0  # eval mode gives the lane class a logit of 2
            return logits

    model = Constant().train()
    maps = predict_maps(model, torch.rand(5, 3, 4, 6), torch.device("cpu"), batch=2)
    assert maps.shape == (5, 4, 6) and maps.dtype == np.float32
    assert np.allclose(maps, 1 / (1 + np.exp(-2.0)))
    assert model.training
