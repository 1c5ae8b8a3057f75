"""python -m elgan_ray.bench: the command line, and a cheap subset of stages writing the keys it measured."""

import json
import os
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


def test_gpu_stage_writes_its_keys_null_without_cuda(tmp_path, monkeypatch):
    import torch

    from elgan_ray.bench import gpu
    from elgan_ray.bench.__main__ import STAGES

    assert STAGES["gpu"] == gpu.KEYS  # the command's list of keys is the stage's
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also where the tests run on a GPU machine
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "gpu", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    result = json.loads(out.read_text())
    assert {key: result[key] for key in gpu.KEYS} == dict.fromkeys(gpu.KEYS)
    assert "not measured" in result["notes"]["gpu"]


def test_bf16_peaks_by_device_name():
    from elgan_ray.bench.gpu import bf16_peak_tflops

    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989
    assert bf16_peak_tflops("NVIDIA H100 PCIe") == 756
    assert bf16_peak_tflops("NVIDIA H200") == 989
    assert bf16_peak_tflops("NVIDIA A100-SXM4-80GB") == 312
    assert bf16_peak_tflops("NVIDIA L4") == 121
    assert bf16_peak_tflops("NVIDIA L40S") == 362
    assert bf16_peak_tflops("Tesla T4") is None


def test_bench_removes_the_scratch_folder_it_made(tmp_path):
    """Issue 25, D18: without --work, every bench left an elgan_bench_* folder in the system's temp folder."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = os.environ | {"TMPDIR": str(scratch), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "elgan_ray.bench", "--quick", "--only", "render", "--out", str(tmp_path / "b.json")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert isinstance(json.loads((tmp_path / "b.json").read_text())["render_ms"], float)  # it did measure
    assert list(scratch.glob("elgan_bench_*")) == []
