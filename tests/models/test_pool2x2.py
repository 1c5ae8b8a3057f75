"""The 2x2 poolings' lean backward passes (models/pool2x2.py) against torch's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from elgan_ray.models.pool2x2 import MaxPool2x2, spread


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("size", [(8, 12), (9, 13)])
def test_max_pool_matches_torch(layout, size):
    """MaxPool2x2 against F.max_pool2d: values, gradients (ties included, odd sizes cropped) and the layout of the
    input gradient."""
    torch.manual_seed(0)
    x = torch.randint(0, 3, (2, 5, *size)).float().contiguous(memory_format=layout)  # many ties
    grad = torch.randn(2, 5, size[0] // 2, size[1] // 2)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, out_ref = MaxPool2x2.apply(ours), F.max_pool2d(theirs, 2)
    assert torch.equal(out, out_ref)
    out.backward(grad)
    out_ref.backward(grad)
    assert torch.equal(ours.grad, theirs.grad)
    assert ours.grad.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("size", [(8, 12), (9, 13)])
def test_spread_is_average_pooling_s_gradient_times_four(size):
    """spread(grad, x) / 4 is avg_pool2d's input gradient: each window's pixels share its gradient, and a last odd
    row or column gets none; in x's layout."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, *size).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(2, 5, size[0] // 2, size[1] // 2)
    F.avg_pool2d(x, 2).backward(grad)
    ours = spread(grad, x) / 4
    torch.testing.assert_close(ours, x.grad, rtol=0, atol=0)
    assert ours.is_contiguous(memory_format=torch.channels_last)
