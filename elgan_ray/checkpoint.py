"""Training checkpoints: written atomically, read with `torch.load(weights_only=True)`, checked against the config.

A checkpoint holds G, D, both optimizers, the schedule position and every RNG state, so that a resumed
run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from elgan_ray.errors import UserError
from elgan_ray.files import atomic_write_bytes

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """Every random state the loop draws from, in types that weights_only loading accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    kind, keys, pos, has_gauss, cached = state["numpy"]
    torch.set_rng_state(state["torch"])
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Serialise to memory first, then replace the file in one rename: an interrupted write leaves the old one."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, config: dict[str, Any] | None = None, keys: list[str] | None = None) -> dict:
    """Load a checkpoint safely; if `config` is given, its `keys` (default: all) must match the saved config."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "checkpoint file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError):
        raise UserError(path, "not a readable checkpoint (truncated, corrupt or not made by torch.save)") from None
    if not isinstance(state, dict) or "config" not in state or "generator" not in state:
        raise UserError(path, "not an elgan_ray checkpoint (no config or generator)")
    if config is not None:
        for key in keys or sorted(set(config) | set(state["config"])):
            if state["config"].get(key) != config.get(key):
                saved = state["config"].get(key)
                raise UserError(
                    path, f"checkpoint from another configuration: {key} is {saved!r} there, {config.get(key)!r} here"
                )
    return state
