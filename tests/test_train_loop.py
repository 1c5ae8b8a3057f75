"""The training loop on the smoke preset: determinism, exact resume, shared pre-training, TensorBoard, divergence."""

import json
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from elgan_ray.config import RunSettings
from elgan_ray.presets import preset
from elgan_ray.run_log import read_evals, read_status
from elgan_ray.train_loop import train


def smoke_settings(tmp_path, name, dataset):
    return RunSettings(out_dir=str(tmp_path / name), data_dir=str(dataset), run_name=name)


def test_same_seed_gives_identical_records(tmp_path, tiny_dataset):
    cfg = preset("smoke")
    train(cfg, smoke_settings(tmp_path, "a", tiny_dataset))
    train(cfg, smoke_settings(tmp_path, "b", tiny_dataset))
    rows_a, rows_b = read_evals(tmp_path / "a"), read_evals(tmp_path / "b")
    phases = {row["phase"] for row in rows_a}
    assert phases == {"pretrain_g", "pretrain_d", "gan"}
    assert {row["post"] for row in rows_a} == {"basic", "basic++"}
    assert rows_a == rows_b


def test_a_different_seed_changes_the_record(tmp_path, tiny_dataset):
    train(preset("smoke"), smoke_settings(tmp_path, "a", tiny_dataset))
    train(preset("smoke").with_flat({"seed": 1}), smoke_settings(tmp_path, "b", tiny_dataset))
    losses_a = [row["loss_g"] for row in read_evals(tmp_path / "a") if "loss_g" in row]
    losses_b = [row["loss_g"] for row in read_evals(tmp_path / "b") if "loss_g" in row]
    assert losses_a != losses_b


class Interrupt(Exception):
    pass


def test_resumed_run_writes_the_same_record_as_an_uninterrupted_one(tmp_path, tiny_dataset):
    cfg = preset("smoke")
    train(cfg, smoke_settings(tmp_path, "whole", tiny_dataset))
    evaluations = []

    def crash_after_third_evaluation(step, metrics):
        evaluations.append(step)
        if len(evaluations) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, smoke_settings(tmp_path, "resumed", tiny_dataset), report=crash_after_third_evaluation)
    assert read_status(tmp_path / "resumed")["status"] == "running"
    train(cfg, smoke_settings(tmp_path, "resumed", tiny_dataset))
    assert read_evals(tmp_path / "resumed") == read_evals(tmp_path / "whole")


def test_shared_pretraining_then_gan_equals_one_whole_run(tmp_path, tiny_dataset):
    cfg = preset("smoke")
    train(cfg, smoke_settings(tmp_path, "whole", tiny_dataset))
    train(cfg, smoke_settings(tmp_path, "pre", tiny_dataset), phases=("pretrain_g",))
    train(
        cfg,
        smoke_settings(tmp_path, "gan", tiny_dataset),
        phases=("pretrain_d", "gan"),
        init_generator=tmp_path / "pre" / "checkpoint.pt",
    )
    split = read_evals(tmp_path / "pre") + read_evals(tmp_path / "gan")
    assert split == read_evals(tmp_path / "whole")


def test_tensorboard_events_hold_scalars_images_and_hparams(tmp_path, tiny_dataset):
    train(preset("smoke"), smoke_settings(tmp_path, "run", tiny_dataset))
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("val/accuracy", "val/accuracy_basic", "val/f1", "val/line_width", "train/loss_g", "train/loss_d"):
        assert tag in tags["scalars"], tag
    assert "val/frame_label_prediction" in tags["images"]
    assert events.Scalars("val/accuracy")[-1].step == read_evals(tmp_path / "run")[-1]["step"]
    assert "hparams" in events.PluginTagToContent("hparams") or events.PluginTagToContent("hparams")


def test_absurd_learning_rate_ends_as_diverged(tmp_path, tiny_dataset):
    cfg = preset("smoke").with_flat({"optim.lr_g": 1.0e30, "optim.lr_d": 1.0e30})
    result = train(cfg, smoke_settings(tmp_path, "nan", tiny_dataset))
    assert result.status == "diverged"
    assert read_status(tmp_path / "nan")["status"] == "diverged"


def test_describe_reports_the_paper_conv_counts():
    done = subprocess.run(
        [sys.executable, "-m", "elgan_ray.train", "--describe", "--preset", "paper"],
        capture_output=True,
        text=True,
        check=True,
    )
    described = json.loads(done.stdout)
    assert described["generator"]["conv3x3"] == 64
    assert described["discriminator"]["conv3x3"] == 32
    assert described["discriminator"]["embedding_blocks"][-1] == 7
    assert described["generator"]["params"] > 1_000_000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["loss.gen=bogus"], "loss.gen"),
        (["nokey=1"], "nokey"),
        (["optim.lr_g=fast"], "optim.lr_g"),
        (["--preset", "smoke", "--data", "/nonexistent/tusimple"], "/nonexistent/tusimple"),
    ],
)
def test_train_cli_refuses_bad_input_in_one_line(tmp_path, args, needle):
    done = subprocess.run(
        [sys.executable, "-m", "elgan_ray.train", "--out", str(tmp_path / "out"), *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert needle in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
