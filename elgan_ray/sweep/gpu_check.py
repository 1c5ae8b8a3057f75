"""CPUs and GPUs asked for are CPUs and GPUs used: no sweep that waits for ever, no trial that silently trains on CPU.

Two places can find that a resource is missing. On the machine that starts a local Ray, before anything runs: a
sweep asking each trial for more CPUs than a local Ray declares here, or more GPUs than torch sees, would leave Tune
waiting for ever ("No available node types can fulfill resource request"), so the command refuses it
(`local_shortfall`). On a cluster, where trials land on other machines, a trial (or Ray Train worker) that was given
a GPU slot but whose torch sees no CUDA device (a missing driver, a CPU build of torch) raises NoCudaError naming the
node: the trial fails and the report shows it, instead of holding a GPU reservation for hours while it trains on CPU.
"""

from __future__ import annotations

import os
import socket


class NoCudaError(RuntimeError):
    """A run was given GPUs, and torch on its node sees none."""


def _torch_build() -> str:
    import torch

    return f"torch {torch.__version__}, " + (f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build")


def local_shortfall(resource: str, per_trial: float) -> str | None:
    """Why this machine's local Ray cannot give a trial `per_trial` of `resource` ("cpu" or "gpu"; every worker of
    the trial counted), or None when it can."""
    if resource == "cpu":
        have = local_cpus()
        if per_trial <= have:
            return None
        return f"each trial needs {per_trial:g} CPU(s) but a local Ray has {have:g} here ({os.cpu_count()} cores)"
    if per_trial <= 0:
        return None
    import torch  # only when GPUs are asked for: the check costs a torch import, not a Ray start

    count = torch.cuda.device_count()
    if per_trial <= count:
        return None
    return f"each trial needs {per_trial:g} GPU(s) but torch sees {count} CUDA device(s) here ({_torch_build()})"


def local_cpus() -> float:
    """The CPUs a local Ray declares on this machine: Ray's own count (a container's CPU quota, else every core)."""
    try:
        from ray._private.utils import get_num_cpus  # what ray.init uses for its node (Ray 2.60, pinned)
    except ImportError:
        return float(os.cpu_count() or 1)
    return float(get_num_cpus())


def require_cuda(gpus: float) -> None:
    """Raise NoCudaError, naming this node, when a run given `gpus` GPUs would otherwise compute on CPU."""
    import torch

    if gpus <= 0 or torch.cuda.is_available():
        return
    try:
        from ray.util import get_node_ip_address

        node = f"{get_node_ip_address()} ({socket.gethostname()})"
    except Exception:  # noqa: BLE001 - naming the node must not hide the error itself
        node = socket.gethostname()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    raise NoCudaError(
        f"node {node}: this run was given {gpus:g} GPU(s) but torch sees no CUDA device "
        f"({_torch_build()}, CUDA_VISIBLE_DEVICES={visible}); refusing to train on CPU"
    )
