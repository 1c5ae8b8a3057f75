"""Training checkpoints: written atomically, read with `torch.load(weights_only=True)`, checked against the config.

A checkpoint holds G, D, both optimizers, the schedule position and every RNG state, so that a resumed
run continues exactly where the interrupted one stopped. Loading checks all of that structure (the weights
against the models the checkpoint's own config builds), so a damaged or hand-made checkpoint is refused in
one line instead of failing inside the training loop.
"""

from __future__ import annotations

import io
import pickle
import random
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from elgan_ray.config import TrainConfig, without_retired
from elgan_ray.errors import UserError, quoted
from elgan_ray.files import atomic_write_bytes, open_regular

# The fields of loop.Position, the schedule's place (a test keeps the two in step; importing loop.py
# here would make a cycle, since it imports this module).
# A checkpoint holds G, D and both optimizers: ~200 MB at the paper's size; the bound only keeps a device out.
MAX_CHECKPOINT_BYTES = 16 << 30
POSITION_FIELDS = ("step", "phase", "phase_step", "best_accuracy", "evals_since_best")


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
    try:
        # A regular file (a FIFO or a device is refused as such), read through the descriptor that was checked.
        with open_regular(path, MAX_CHECKPOINT_BYTES, "checkpoint file") as handle, warnings.catch_warnings():
            # A refused file is reported in our one line; torch's own warnings about it (an unusual pickle
            # protocol, a TorchScript archive) would add lines to stderr.
            warnings.simplefilter("ignore")
            state = torch.load(handle, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError):
        raise UserError(path, "not a readable checkpoint (truncated, corrupt or not made by torch.save)") from None
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or "generator" not in state:
        raise UserError(path, "not an elgan_ray checkpoint (no config or generator)")
    state["config"] = without_retired(state["config"])  # a checkpoint of an earlier version stays loadable
    if config is not None:
        for key in keys or sorted(set(config) | set(state["config"])):
            if state["config"].get(key) != config.get(key):
                saved, here = quoted(state["config"].get(key)), quoted(config.get(key))
                raise UserError(path, f"checkpoint from another configuration: {key} is {saved} there, {here} here")
    _check_structure(path, state)
    return state


def _check_structure(path: Path, state: dict[str, Any]) -> None:
    """Every part the training loop restores, with the types it needs; the weights those of the config's models."""

    def refuse(rule: str) -> None:
        raise UserError(path, f"not a complete elgan_ray checkpoint: {rule}")

    from elgan_ray.models import build_discriminator, build_generator

    for part in ("generator", "discriminator", "opt_g", "opt_d", "position", "rng"):
        if not isinstance(state.get(part), dict):
            refuse(f"'{part}' is missing or not a mapping")
    try:
        cfg = TrainConfig.from_flat(state["config"], source=str(path))
    except UserError as error:
        refuse(f"its config is not valid ({error.rule}, key {error.key})")
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        models = {"generator": build_generator(cfg.generator), "discriminator": build_discriminator(cfg.discriminator)}
    for (name, model), opt in zip(models.items(), ("opt_g", "opt_d"), strict=True):
        saved, wanted = state[name], model.state_dict()
        if set(saved) != set(wanted) or any(
            not isinstance(saved[k], torch.Tensor) or saved[k].shape != v.shape for k, v in wanted.items()
        ):
            refuse(f"'{name}' does not hold the weights of the model its config describes")
        if not _optimizer_state_fits(state[opt], len(list(model.parameters()))):
            refuse(f"'{opt}' is not the optimizer state of the {name}")
    if set(state["position"]) != set(POSITION_FIELDS) or not isinstance(state["position"]["step"], int):
        refuse(f"'position' must hold exactly {', '.join(POSITION_FIELDS)}")
    rng = state["rng"]
    numpy_ok = isinstance(rng.get("numpy"), (list, tuple)) and len(rng["numpy"]) == 5
    numpy_ok = numpy_ok and isinstance(rng["numpy"][1], torch.Tensor)
    python_ok = isinstance(rng.get("python"), (list, tuple)) and len(rng["python"]) == 3
    if not (isinstance(rng.get("torch"), torch.Tensor) and numpy_ok and python_ok):
        refuse("'rng' must hold the torch, numpy and python random states")


def _optimizer_state_fits(opt: dict[str, Any], n_params: int) -> bool:
    """An optimizer state_dict over n_params parameters: param_groups that list them, per-parameter state."""
    groups = opt.get("param_groups")
    if not isinstance(opt.get("state"), dict) or not isinstance(groups, list):
        return False
    if not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
        return False
    if sum(len(g["params"]) for g in groups) != n_params:
        return False
    return all(isinstance(k, int) and 0 <= k < n_params and isinstance(v, dict) for k, v in opt["state"].items())
