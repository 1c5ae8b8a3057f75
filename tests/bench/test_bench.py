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


def test_kinds_of_work_from_kernel_and_operator_names():
    from elgan_ray.bench.work_kinds import kind_of

    expected = {
        "void cudnn::bn_fw_tr_1C11_kernel_NHWC<__nv_bfloat16, float, 512, true, 1>": "batch_norm",
        "void at::native::batch_norm_collect_statistics_kernel<float, float, float, 512>": "batch_norm",
        "aten::native_batch_norm_backward": "batch_norm",
        "void at::native::(anonymous namespace)::CatArrayBatchedCopy<float, unsigned int, 4, 64, 64>": "cat",
        "aten::cat": "cat",
        "void nhwcAddPaddingKernel<__nv_bfloat16>(int, int, int, int, __nv_bfloat16 const*)": "padding",
        "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x128x64": "convolution",
        "void cudnn::cnn::wgrad_alg0_engine<float, 128, 6, 7, 3, 3, 5, false, 512>": "convolution",
        "aten::mkldnn_convolution": "convolution",
        "aten::convolution_backward": "convolution",
        "void at::native::(anonymous namespace)::avg_pool2d_backward_out_cuda_frame_nhwc<float>": "pooling",
        "aten::max_pool2d_with_indices": "pooling",
        "void at::native::vectorized_elementwise_kernel<4, at::native::threshold_kernel_impl>": "elementwise",
        "aten::masked_fill_": "elementwise",
        "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdam>": "optimizer",
        "void cudnn::ops::nchwToNhwcKernel<float, float, float, false, true>": "copy",
        "aten::scatter_": "other",  # "cat" only as a word
    }
    assert {name: kind_of(name) for name in expected} == expected


def test_top_kinds_are_the_largest_shares_of_all_time():
    from elgan_ray.bench.work_kinds import top_kinds

    times = [("aten::native_batch_norm", 30), ("aten::native_batch_norm_backward", 20), ("aten::cat", 10)]
    times += [("aten::mkldnn_convolution", 25), ("aten::add_", 5), ("aten::copy_", 4), ("aten::sum", 3)]
    times += [("aten::max_pool2d_with_indices", 2), ("aten::scatter_", 1)]
    kinds = top_kinds(times)
    assert [k["kind"] for k in kinds] == ["batch_norm", "convolution", "cat", "elementwise", "copy"]
    assert kinds[0]["share"] == 0.5 and kinds[1]["share"] == 0.25  # of all 100, the kinds left out included
    assert top_kinds([]) == [] and len(top_kinds(times, n=2)) == 2


def test_profiled_kinds_of_a_cpu_step():
    """The profiler part on CPU: a smoke-preset G+D pair, grouped from aten operators' self CPU time."""
    import torch

    from elgan_ray.bench.work_kinds import profile_kinds
    from elgan_ray.presets import preset
    from elgan_ray.train.timing import training_steps

    torch.manual_seed(0)
    images, labels = torch.rand(2, 3, 64, 128), (torch.rand(2, 1, 64, 128) > 0.9).float()
    steps = training_steps(preset("smoke"), images, labels)
    kinds = profile_kinds((steps["gan_g"], steps["d"]), "cpu")
    assert 1 <= len(kinds) <= 5
    assert {"convolution", "batch_norm"} <= {k["kind"] for k in kinds}
    shares = [k["share"] for k in kinds]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1


def test_paper_memory_stage_measures_in_a_fresh_process(tmp_path, monkeypatch):
    """The stage's plumbing on the smoke preset (the paper's step takes a minute or two): a positive growth of the
    peak RSS, measured in a spawned process, and its target."""
    from elgan_ray.bench import step_memory
    from elgan_ray.bench.__main__ import STAGES, TARGETS

    assert STAGES["paper_memory"] == step_memory.KEYS
    assert TARGETS["paper_peak_mib_per_frame_cpu"] == ("<=", 2100)
    assert TARGETS["gpu_images_per_s_bf16"] == (">=", 65) and TARGETS["gpu_peak_gib_per_frame_bf16"] == ("<=", 1)
    monkeypatch.setattr(step_memory, "PRESET", "smoke")  # passed to the spawned process as an argument
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "paper_memory", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    result = json.loads(out.read_text())
    assert 0 < result["paper_peak_mib_per_frame_cpu"] < 2100 and result["met"]["paper_peak_mib_per_frame_cpu"]
    assert "spawned process" in result["notes"]["paper_peak_mib_per_frame_cpu"]


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
