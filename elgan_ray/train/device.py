"""Which torch device a command runs on: the default (a GPU when torch sees one) and the check of one asked for."""

from __future__ import annotations

from elgan_ray.errors import UserError, quoted


def default_device() -> str:
    """cuda when torch sees a CUDA device, else cpu: a GPU machine trains on its GPU unless told otherwise."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(text: str) -> None:
    """UserError unless `text` names a torch device this machine has: cpu, cuda, cuda:N or mps."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise UserError("--device", f"{quoted(text)} is not a device (cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device", f"{quoted(text)}: CUDA is not available (torch {torch.__version__})")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UserError(
                "--device", f"{quoted(text)}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("--device", f"{quoted(text)}: MPS is not available on this machine")
    elif device.type != "cpu":
        raise UserError("--device", f"{quoted(text)}: training runs on cpu, cuda, cuda:N or mps")
