"""Outputs a user cannot write, for every command that writes, and the bench's bad flags.

Each case must exit with status 2 and print one line naming the file (or flag, or key) and the rule, with no
traceback and nothing half-written left behind (bad_input.py has the contract and the helpers)."""

import pytest
from bad_input import assert_user_error, check_case, folder, run_unprivileged, train

CASES = {
    "bench-out-is-a-folder": (  # an unfixed bench fails only after the whole benchmark (here one quick stage)
        lambda t, d: ["elgan_ray.bench", "--quick", "--only", "render", "--out", str(folder(t / "bench_out"))],
        "bench_out",
    ),
    # issue 25, D21: an empty selection ran every stage (--only "") or none (--only ",,,") and exited 0
    "bench-only-empty": (
        lambda t, d: ["elgan_ray.bench", "--quick", "--only", "", "--out", str(t / "b.json")],
        "--only: no stage named",
        {"timeout": 120},
    ),
    "bench-only-commas": (
        lambda t, d: ["elgan_ray.bench", "--quick", "--only", ",,,", "--out", str(t / "b.json")],
        "--only: no stage named",
        {"timeout": 120},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_dataset):
    check_case(CASES, case, tmp_path, tiny_dataset)


@pytest.mark.parametrize("command", ["train", "synth", "show", "sweep", "bench"])
def test_an_output_the_user_cannot_write_is_refused_before_the_work(tmp_path, tiny_dataset, command):
    """Issue 13, defect 11: an unwritable output folder gave a PermissionError traceback after the work."""
    read_only = folder(tmp_path / "ro")
    read_only.chmod(0o555)
    target = read_only / "out"
    argv = {
        "train": train(tmp_path, tiny_dataset, out=target),
        "synth": ["elgan_ray.data", "synth", "--out", str(target), "--train", "2", "-q"],
        "show": ["elgan_ray.data", "show", str(tiny_dataset), "--out", str(target) + ".png", "--n", "1"],
        "sweep": ["elgan_ray.sweep", "stability", "--results", str(target), "--data", str(tiny_dataset)],
        "bench": ["elgan_ray.bench", "--quick", "--only", "render", "--out", str(target) + ".json"],
    }[command]
    assert_user_error(run_unprivileged(argv), str(read_only))
    read_only.chmod(0o755)
    assert list(read_only.iterdir()) == []
