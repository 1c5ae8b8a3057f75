"""The dense networks' BN-ReLU-conv layers, lean in memory on large maps (memory-efficient DenseNets, Pleiss et al.).

A naive dense layer concatenates every earlier map into a new tensor, normalises all of it into another, and
autograd keeps both for the backward pass, so a block's memory grows with the square of its depth: the paper's
G+D step took 8.4 GiB per 720x1280 frame on CPU. Here feature maps travel as lists, each stored once by the layer
that made it, and a large layer runs as one autograd Function that keeps only its input maps and BatchNorm's
per-channel statistics. Its backward pass goes map by map: normalise the map again, then back through the
conv's input channels that read it (a conv's gradients split exactly by input channel), ReLU and BatchNorm. So
beside the stored maps a layer holds a few tensors the size of one map, never one the width of the layer.
The widest maps, G's first conv and D's stems (cheap convs of 1-3 channels), are not stored at all but made
again where read (ConvOutput); max pooling keeps a byte per output (pool2x2.py), and average pooling runs
inside the layer whose 1x1 conv it follows.

BatchNorm's running statistics move once per forward pass, in the forward pass: the backward pass normalises with
fresh batch statistics of the same maps (the same numbers) and never touches the running ones. Nothing random runs
inside (dense layers apply their dropout to the Function's output), so there is no random state to replay; and
the gradients it returns follow from what the forward pass saw, so g_step unfreezing D between its forward pass
and backward() changes nothing.

Small layers (all of the cpu and smoke presets') run as the plain modules did, operation for operation, so those
presets' numbers do not change: there the lean path would cost time for little memory (RECOMPUTE_MIN_BYTES).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import torch
import torch.nn.functional as F
from torch import nn

from elgan_ray.models.pool2x2 import MaxPool2x2, spread

# Layers (and max-pooled maps, and stems' outputs) smaller than this run as the plain modules did. Measured on
# CPU, one thread, CPU time per step: at the cpu preset, whose largest layer input is 8.4 MB (G's head, batch
# 8 at 64x128), the lean path everywhere took 1.9x as long (G pre-training step 123 -> 232 ms, D step 116 ->
# 202 ms), its many small maps each paying for their own BatchNorm and conv calls, to save 55 of 166 MiB of
# peak growth; at the paper preset, 360x640, whose full-size layers start at 47 MiB, it is 5% faster than the
# naive layers (G step 4.8 -> 4.4 s). 16 MiB lies between the two, about twice the cpu preset's largest layer.
RECOMPUTE_MIN_BYTES = 16 * 2**20
PIECE_CHANNELS = 16  # the paper's growth: the width of the maps that the dense layers make


@dataclass(frozen=True)
class ConvOutput:
    """Some output channels of conv(source), left unmade: a cheap conv of a thin input (G's first conv, D's stems,
    1-3 channels in) whose wide output would be the largest map kept. The lean layers that read it make it again
    where they need it, one piece at a time."""

    source: torch.Tensor  # (B, C_in, H, W)
    conv: nn.Conv2d  # stride 1, "same" padding, no bias
    channels: slice  # of its output channels

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight[self.channels]  # (C, C_in, k, k); a view, so the gradient reaches the conv

    @property
    def shape(self) -> tuple[int, int, int, int]:
        b, _, h, w = self.source.shape
        return b, self.channels.stop - self.channels.start, h, w

    @property
    def nbytes(self) -> int:
        b, c, h, w = self.shape
        return b * c * h * w * self.source.element_size()

    def make(self) -> torch.Tensor:
        conv = self.conv
        return F.conv2d(self.source, self.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)


Feature = torch.Tensor | ConvOutput


def convolved(conv: nn.Conv2d, source: torch.Tensor) -> list[Feature]:
    """conv(source) (stride 1, same padding, no bias) as a list of maps: the map itself while small; once large,
    ConvOutputs of at most PIECE_CHANNELS channels each, so that no map made again is wider than a layer's."""
    whole = ConvOutput(source, conv, slice(0, conv.out_channels))
    if whole.nbytes < RECOMPUTE_MIN_BYTES:
        return [conv(source)]
    starts = range(0, conv.out_channels, PIECE_CHANNELS)
    return [ConvOutput(source, conv, slice(a, min(a + PIECE_CHANNELS, conv.out_channels))) for a in starts]


def concatenated(features: Sequence[Feature]) -> torch.Tensor:
    """The maps as one tensor along channels (B, sum C_i, H, W); a single map as it is."""
    maps = [f.make() if isinstance(f, ConvOutput) else f for f in features]
    return maps[0] if len(maps) == 1 else torch.cat(maps, dim=1)


def bn_relu_conv(features: Sequence[Feature], bn: nn.BatchNorm2d, conv: nn.Conv2d, pool: bool = False) -> torch.Tensor:
    """conv(relu(bn(cat(features)))), average-pooled 2x2 if `pool` (then the conv must be 1x1): (B, C_out, H, W)
    or (B, C_out, H/2, W/2), from maps (B, C_i, H, W) that together match bn and conv (an affine BatchNorm2d, a
    zero-padded Conv2d). On large maps the pooling is part of the lean layer, whose backward pass then never
    makes the conv's full-size gradient."""
    if sum(_nbytes(f) for f in features) < RECOMPUTE_MIN_BYTES:
        y = conv(F.relu(bn(concatenated(features)), inplace=True))  # as the plain modules did
        return F.avg_pool2d(y, 2) if pool else y
    layer = _Layer(
        training=bn.training or bn.running_mean is None,
        running_mean=bn.running_mean,
        running_var=bn.running_var,
        momentum=_count_batch(bn),
        eps=bn.eps,
        conv=conv,
        made_by=tuple(f.conv if isinstance(f, ConvOutput) else None for f in features),
        pool=pool,
    )
    if pool and not layer.pointwise:
        raise ValueError("the lean layer pools only after a 1x1 conv (whose gradient then splits by window)")
    inputs = [t for f in features for t in ((f.source, f.weight) if isinstance(f, ConvOutput) else (f,))]
    return _BatchNormReluConv.apply(layer, bn.weight, bn.bias, conv.weight, conv.bias, *inputs)


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """F.max_pool2d(x, 2); on large maps through MaxPool2x2, which keeps one byte per output for backward."""
    return MaxPool2x2.apply(x) if _nbytes(x) >= RECOMPUTE_MIN_BYTES else F.max_pool2d(x, 2)


@dataclass(frozen=True)
class _Layer:
    """What the Function needs of the BatchNorm and conv modules, as they were at the forward pass."""

    training: bool  # normalise with batch statistics (and move the running ones)
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    momentum: float
    eps: float
    conv: nn.Conv2d  # its stride, padding, dilation and groups; the weights come as Function inputs
    made_by: tuple[nn.Conv2d | None, ...]  # per feature: None for a map, the conv of a ConvOutput
    pool: bool  # average-pool the (1x1) conv's output 2x2

    def running(self, channels: slice) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The running statistics of these channels: views, so that BatchNorm's update lands in the buffers."""
        return tuple(None if s is None else s[channels] for s in (self.running_mean, self.running_var))

    @property
    def pointwise(self) -> bool:
        """Whether the conv is 1x1 (stride 1, no padding, no groups): each output pixel reads its own pixel."""
        conv = self.conv
        return (conv.kernel_size, conv.stride, conv.padding, conv.groups) == ((1, 1), (1, 1), (0, 0), 1)

    def convolve(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding, self.conv.dilation, self.conv.groups)

    def features(self, inputs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        """The Function's inputs per feature: (map,), or (source, weight) of a ConvOutput."""
        grouped, i = [], 0
        for conv in self.made_by:
            n = 1 if conv is None else 2
            grouped.append(tuple(inputs[i : i + n]))
            i += n
        return grouped

    def make(self, k: int, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Feature k's map: the stored one, or its conv applied again."""
        conv = self.made_by[k]
        if conv is None:
            return parts[0]
        return F.conv2d(parts[0], parts[1], None, conv.stride, conv.padding, conv.dilation, conv.groups)

    def channel_slices(self, features: Sequence[tuple[torch.Tensor, ...]]) -> list[slice]:
        """Each feature's channels in the concatenation."""
        # A map's width is its channels; a made one's, its weight's output channels.
        widths = [parts[0].shape[1] if len(parts) == 1 else parts[1].shape[0] for parts in features]
        ends = list(accumulate(widths))
        return [slice(end - width, end) for width, end in zip(widths, ends, strict=True)]


class _BatchNormReluConv(torch.autograd.Function):
    """conv(relu(bn(cat(features)))), saving only the features (or what makes them) and BN's statistics."""

    @staticmethod
    def forward(ctx, layer: _Layer, bn_weight, bn_bias, conv_weight, conv_bias, *inputs):
        features = layer.features(inputs)
        slices = layer.channel_slices(features)
        # BatchNorm map by map: the same per-channel statistics as over the concatenation, and the running ones
        # move here, once. Each normalised map goes straight into the conv's input, which is not kept; a narrowing
        # 1x1 conv (G's head, D's classifier), which splits exactly by input channel, takes them one by one.
        device = inputs[0].device.type
        conv_dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else conv_weight.dtype
        # By map pays where the conv narrows: its float32 sum and one map's share (2 C_out) against the input (C).
        by_map = layer.pointwise and len(features) > 1 and 2 * conv_weight.shape[0] < slices[-1].stop
        y = None  # (B, C, H, W), or the 1x1 conv's float32 sum (B, C_out, H, W)
        means, invstds = [], []
        for k, (parts, channels) in enumerate(zip(features, slices, strict=True)):
            x = layer.make(k, parts)  # (B, C_k, H, W)
            z, mean, invstd = torch.native_batch_norm(
                x,
                bn_weight[channels],
                bn_bias[channels],
                *layer.running(channels),
                layer.training,
                layer.momentum,
                layer.eps,
            )
            del x
            z = z.relu_()
            if by_map:
                partial = _float_conv(z, conv_weight[:, channels].to(conv_dtype))
                y = partial if y is None else y.add_(partial)
            elif len(features) == 1:
                y = z
            else:
                y = _empty_concatenation(z, slices[-1].stop) if y is None else y
                y[:, channels] = z
            means.append(mean)
            invstds.append(invstd)
            del z
        if by_map:  # rounded once, as the one conv rounds its float32 sums (to bf16 under autocast)
            out = y if conv_bias is None else y.add_(conv_bias.to(conv_dtype).float().view(1, -1, 1, 1))
            out = out.to(conv_dtype)
        else:
            out = layer.convolve(y, conv_weight, conv_bias)  # (B, C_out, H, W)
        del y
        out = F.avg_pool2d(out, 2) if layer.pool else out  # (B, C_out, h, w)
        ctx.layer, ctx.slices = layer, slices
        ctx.conv_dtype = out.dtype  # bfloat16 under autocast: the backward pass repeats autocast's casts
        ctx.autocast = device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)
        ctx.save_for_backward(bn_weight, bn_bias, conv_weight, conv_bias, *inputs, *means, *invstds)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        layer, slices, dtype = ctx.layer, ctx.slices, ctx.conv_dtype
        bn_weight, bn_bias, conv_weight, conv_bias, *saved = ctx.saved_tensors
        n = len(saved) - 2 * len(slices)
        features = layer.features(saved[:n])
        means, invstds = saved[n : n + len(slices)], saved[n + len(slices) :]
        needs_bn_weight, needs_bn_bias, needs_conv_weight, needs_conv_bias = ctx.needs_input_grad[1:5]
        needs_inputs = layer.features(ctx.needs_input_grad[5:])
        grad_out = grad_out.to(dtype)  # (B, C_out, h, w)
        conv = layer.conv
        bias_sizes = None if conv_bias is None else list(conv_bias.shape)
        device, autocast, autocast_dtype = ctx.autocast

        # Map by map: make it and normalise it again, then back through the conv's slice of input channels that
        # reads it (a conv's gradients split exactly by input channel), ReLU, BatchNorm and the map's own conv.
        grads_inputs, grads_bn_weight, grads_bn_bias, grads_conv_weight = [], [], [], []
        grad_conv_bias = None
        for k, (parts, channels) in enumerate(zip(features, slices, strict=True)):
            with torch.autocast(device, dtype=autocast_dtype, enabled=autocast):  # as the forward pass made it
                x = layer.make(k, parts)  # (B, C_k, H, W)
            running = (None, None) if layer.training else layer.running(channels)
            z, _, _ = torch.native_batch_norm(
                x, bn_weight[channels], bn_bias[channels], *running, layer.training, 0.0, layer.eps
            )  # as the forward pass normalised it (batch statistics again, or the running ones)
            y = z.relu_()  # (B, C_k, H, W)
            del z
            # Under pooling, the 1x1 conv's gradients come from the pooled gradient directly: the weight's from the
            # windows' means, the input's as a quarter of each window's, spread over its pixels (the same numbers
            # as through a full-size gradient, which is never made).
            grad_y, grad_weight, grad_bias = _conv_backward(
                conv,
                grad_out,
                (F.avg_pool2d(y, 2) if layer.pool else y).to(dtype),
                conv_weight[:, channels].to(dtype).contiguous(),
                bias_sizes,
                [True, needs_conv_weight, needs_conv_bias and k == 0],
            )
            grad_y = grad_y.to(x.dtype)  # (B, C_k, h, w)
            if layer.pool:
                grad_y = spread(grad_y / 4, y)  # (B, C_k, H, W)
            # ReLU's backward in place: grad_y is this function's own tensor, and a mask would be one more.
            grad_z = torch.ops.aten.threshold_backward.grad_input(grad_y, y, 0, grad_input=grad_y)
            del y, grad_y
            grad_x, grad_bn_weight, grad_bn_bias = torch.ops.aten.native_batch_norm_backward(
                grad_z,
                x,
                bn_weight[channels],
                *layer.running(channels),
                means[k],
                invstds[k],
                layer.training,
                layer.eps,
                [any(needs_inputs[k]), needs_bn_weight, needs_bn_bias],
            )
            del grad_z
            grads_inputs.extend(_through_maker(layer.made_by[k], parts, x, grad_x, needs_inputs[k]))
            grads_bn_weight.append(grad_bn_weight)
            grads_bn_bias.append(grad_bn_bias)
            grads_conv_weight.append(grad_weight)
            grad_conv_bias = grad_bias if k == 0 else grad_conv_bias
        return (
            None,
            torch.cat(grads_bn_weight) if needs_bn_weight else None,
            torch.cat(grads_bn_bias) if needs_bn_bias else None,
            torch.cat(grads_conv_weight, dim=1).to(conv_weight.dtype) if needs_conv_weight else None,
            grad_conv_bias.to(conv_bias.dtype) if needs_conv_bias else None,
            *grads_inputs,
        )


def _through_maker(
    conv: nn.Conv2d | None,
    parts: tuple[torch.Tensor, ...],
    x: torch.Tensor,
    grad_x: torch.Tensor | None,
    needs: tuple[bool, ...],
) -> tuple[torch.Tensor | None, ...]:
    """A feature's gradient as the Function's inputs take it: the map's own, or its source's and conv weight's."""
    if conv is None:
        return (grad_x,)
    if grad_x is None:
        return None, None
    source, weight = parts
    grad_source, grad_weight, _ = _conv_backward(
        conv, grad_x, source.to(x.dtype), weight.to(x.dtype), None, [needs[0], needs[1], False]
    )
    return (
        None if grad_source is None else grad_source.to(source.dtype),
        None if grad_weight is None else grad_weight.to(weight.dtype),
    )


def _float_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv in float32 without autocast: exact products of bf16 values, summed in float32."""
    with torch.autocast(x.device.type, enabled=False):
        return F.conv2d(x.float(), weight.float())


def _conv_backward(
    conv: nn.Conv2d,
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias_sizes: list[int] | None,
    wanted: list[bool],
) -> tuple[torch.Tensor | None, ...]:
    """The gradients of conv (its stride, padding...) at input x and `weight`: (input, weight, bias) as wanted."""
    return torch.ops.aten.convolution_backward(
        grad_out, x, weight, bias_sizes, conv.stride, conv.padding, conv.dilation, False, [0, 0], conv.groups, wanted
    )


def _empty_concatenation(first: torch.Tensor, channels: int) -> torch.Tensor:
    """An uninitialised (B, channels, H, W) tensor like the concatenation's first map: its type and layout."""
    b, _, h, w = first.shape
    layout = torch.channels_last if first.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return torch.empty((b, channels, h, w), dtype=first.dtype, device=first.device, memory_format=layout)


def _nbytes(feature: Feature) -> int:
    return feature.nbytes if isinstance(feature, ConvOutput) else feature.numel() * feature.element_size()


def _count_batch(bn: nn.BatchNorm2d) -> float:
    """What _BatchNorm.forward does before normalising: count the batch, and return the running average's factor."""
    if not (bn.training and bn.track_running_stats):
        return 0.0 if bn.momentum is None else bn.momentum
    bn.num_batches_tracked.add_(1)
    return 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
