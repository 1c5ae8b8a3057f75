"""The backward passes of 2x2 poolings without their full-size inputs: the lean layers' memory savings would be
lost if a pooling after them kept its input (max_pool2d keeps it, and int64 indices; avg_pool2d keeps it for its
shape). MaxPool2x2 keeps a byte per output; spread() is average pooling's gradient, for the lean layer that pools.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class MaxPool2x2(torch.autograd.Function):
    """2x2 max pooling that keeps, for backward, only which of its window's 4 pixels each output came from.

    max_pool2d keeps its full-size input and int64 indices; one byte per output is all its backward pass uses.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        pooled, indices = F.max_pool2d(x, 2, return_indices=True)  # (B, C, H/2, W/2); indices into H*W
        row, column = indices // x.shape[-1] % 2, indices % x.shape[-1] % 2  # within the window
        ctx.save_for_backward((2 * row + column).to(torch.uint8))
        del indices, row, column
        ctx.input = shape_and_layout(x)
        return pooled

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (window_position,) = ctx.saved_tensors
        h, w = grad.shape[-2:]
        # Each output's gradient goes to the pixel its maximum came from (the windows do not overlap).
        grad_input = zeros(ctx.input, grad)
        for row in (0, 1):
            for column in (0, 1):
                taken = window_position == 2 * row + column
                grad_input[..., row : 2 * h : 2, column : 2 * w : 2] = torch.where(taken, grad, 0)
        return grad_input


def spread(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Each pooled gradient copied to the 4 pixels of its window, in a tensor like `like` (a last odd row or
    column, which 2x2 pooling drops, gets zeros)."""
    h, w = grad.shape[-2:]
    grad_input = zeros(shape_and_layout(like), grad)
    grad_input[..., : 2 * h, : 2 * w] = F.interpolate(grad, scale_factor=2.0, mode="nearest")
    return grad_input


def zeros(like: tuple[torch.Size, bool], grad: torch.Tensor) -> torch.Tensor:
    """A pooling's input gradient, zeros: the input's shape and layout, the gradient's dtype and device."""
    shape, channels_last = like
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, dtype=grad.dtype, device=grad.device, memory_format=layout).zero_()


def shape_and_layout(x: torch.Tensor) -> tuple[torch.Size, bool]:
    """All a pooling's backward pass needs of its input: its shape, and whether it is channels_last."""
    return x.shape, x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
