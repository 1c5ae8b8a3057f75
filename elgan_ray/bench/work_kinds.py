"""Where a training step's time goes: the profiler's kernels (or, on CPU, aten operators) grouped into kinds of work.

The grouping is a pure function of the names, so that it is tested without a GPU; the profiling takes a device
argument and runs on CPU too, where the kinds come from aten operators' self CPU time instead of kernel time.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

# Kind -> pattern over kernel or operator names, tried in this order (the first match wins): cuDNN's channel
# padding (nhwcAddPaddingKernel), BatchNorm's cudnn::bn_* kernels and layout conversions (cuDNN's nchwToNhwc,
# copies) before "convolution", which also matches "cudnn"; the optimisers' multi-tensor kernels before
# "elementwise"; "cat" as a word, so that "scatter" stays out.
KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    ("padding", r"padding"),
    ("batch_norm", r"batch_?norm|\bbn_|::bn_|welford"),
    ("cat", r"\bcat\b|catarray|concat"),
    ("pooling", r"pool|upsample"),
    ("copy", r"copy|contiguous|transpose|nchwtonhwc|nhwctonchw"),
    ("convolution", r"conv|gemm|xmma|cutlass|wgrad|dgrad|fprop|winograd|cudnn|implicit|sm\d\d_"),
    ("optimizer", r"adam|sgd|multi_tensor|foreach|lerp|addcmul|addcdiv"),
    ("reduction", r"reduce|\bsum\b|\bmean\b|norm"),
    ("elementwise", r"elementwise|threshold|relu|clamp|\badd|\bmul|\bsub|\bdiv|fill|where|dropout|bernoulli|softmax"),
)
TOP = 5  # kinds reported


def kind_of(name: str) -> str:
    """The kind of work a kernel or operator name stands for; "other" when no pattern matches."""
    lowered = name.lower()
    return next((kind for kind, pattern in KIND_PATTERNS if re.search(pattern, lowered)), "other")


def top_kinds(times: Iterable[tuple[str, float]], n: int = TOP) -> list[dict[str, Any]]:
    """The n kinds with the most time, as [{kind, share}] with share = the kind's time over all the time given."""
    by_kind: dict[str, float] = defaultdict(float)
    for name, seconds in times:
        by_kind[kind_of(name)] += seconds
    total = sum(by_kind.values())
    if total <= 0:
        return []
    ranked = sorted(by_kind.items(), key=lambda item: -item[1])[:n]
    return [{"kind": kind, "share": round(seconds / total, 4)} for kind, seconds in ranked]


def profile_kinds(steps: Iterable[Callable[[], Any]], device: str) -> list[dict[str, Any]]:
    """Run each step once under torch.profiler: the top kinds of GPU kernel time (device "cuda") or of aten
    operators' self CPU time (device "cpu")."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as profiler:
        for step in steps:
            step()
    events = profiler.key_averages()
    if cuda:
        times = [(e.key, e.self_device_time_total) for e in events if e.device_type == DeviceType.CUDA]
    else:  # leaf aten operators carry the self time; autograd's and Python's wrappers are left out
        times = [(e.key, e.self_cpu_time_total) for e in events if e.key.startswith("aten::")]
    return top_kinds(times)
