"""python -m elgan_ray.bench: the command line, and a cheap subset of stages writing the keys it measured."""

import json
import subprocess
import sys

from elgan_ray.bench.__main__ import main


def test_help_and_subset_writes_its_keys(tmp_path):
    shown = subprocess.run([sys.executable, "-m", "elgan_ray.bench", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--only" in shown.stdout and "--quick" in shown.stdout

    out = tmp_path / "bench.json"
    argv = ["--quick", "--only", "postprocess,render", "--out", str(out), "--work", str(tmp_path / "work")]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    for key in ("postprocess_ms_train_size", "postprocess_ms_720p", "render_ms"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert "evaluator_speedup_vs_port" not in result  # stages not asked for are not run
    assert result["machine"]["cores"] >= 1 and set(result["notes"]) == {"postprocess", "render"}
