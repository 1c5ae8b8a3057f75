"""optim.compile: validated, off by default, and applied in place to both models where train() builds them.

Compiling for real takes minutes on CPU (measured by hand; see OptimConfig), so the test records the calls.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from elgan_ray.config import OptimConfig, RunSettings
from elgan_ray.errors import UserError
from elgan_ray.presets import preset
from elgan_ray.train.loop import train


def test_compile_is_off_by_default_and_must_be_a_bool():
    assert OptimConfig().compile is False
    assert preset("smoke").with_flat({"optim.compile": True}).optim.compile is True
    with pytest.raises(UserError, match="optim.compile"):
        preset("smoke").with_flat({"optim.compile": "yes"})
    with pytest.raises(ValueError, match="true or false"):  # built directly: the rule, which from_flat names
        OptimConfig(compile=1)


@pytest.mark.parametrize("compiled", [False, True])
def test_train_compiles_both_models_in_place(compiled, tmp_path, tiny_dataset, monkeypatch):
    """The option compiles G and D (nn.Module.compile, so no wrapper and no "_orig_mod." keys in checkpoints)."""
    calls = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *args, **kwargs: calls.append(type(self).__name__))
    cfg = preset("smoke").with_flat(
        {"optim.compile": compiled, "schedule.pretrain_g_steps": 2, "schedule.pretrain_d_steps": 1}
        | {"schedule.gan_steps": 1, "schedule.eval_every": 2, "data.val_limit": 2}
    )
    train(cfg, RunSettings(out_dir=str(tmp_path / "run"), data_dir=str(tiny_dataset)))
    assert calls == (["Tiramisu", "Discriminator"] if compiled else [])
    state = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert "first.weight" in state["generator"] and "classifier.0.weight" in state["discriminator"]
    assert state["config"]["optim.compile"] is compiled
