"""Fixtures of the end-to-end tests."""

import pytest
from bad_input import SMOKE_STEPS, run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dataset):
    """A finished smoke run (two evaluations, four evals.jsonl rows), trained once for this module."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = run(["elgan_ray.train", "--preset", "smoke", "--data", str(tiny_dataset), "--out", str(out), *SMOKE_STEPS])
    assert done.returncode == 0, done.stderr[-2000:]
    return out
