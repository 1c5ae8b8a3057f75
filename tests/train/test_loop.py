"""The training loop on the smoke preset: determinism, exact resume, shared pre-training, TensorBoard, divergence."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from elgan_ray.config import DISC_CHOICES, RunSettings
from elgan_ray.models import build_discriminator, build_generator
from elgan_ray.presets import preset
from elgan_ray.record.runs import read_run_evals, read_status
from elgan_ray.train.loop import d_step, g_step, seed_everything, train


def smoke_settings(tmp_path, name, dataset):
    return RunSettings(out_dir=str(tmp_path / name), data_dir=str(dataset), run_name=name)


def test_same_seed_gives_identical_records(tmp_path, tiny_dataset):
    cfg = preset("smoke")
    train(cfg, smoke_settings(tmp_path, "a", tiny_dataset))
    train(cfg, smoke_settings(tmp_path, "b", tiny_dataset))
    rows_a, rows_b = read_run_evals(tmp_path / "a"), read_run_evals(tmp_path / "b")
    phases = {row["phase"] for row in rows_a}
    assert phases == {"pretrain_g", "pretrain_d", "gan"}
    assert {row["post"] for row in rows_a} == {"basic", "basic++"}
    assert rows_a == rows_b


def test_a_different_seed_changes_the_record(tmp_path, tiny_dataset):
    train(preset("smoke"), smoke_settings(tmp_path, "a", tiny_dataset))
    train(preset("smoke").with_flat({"seed": 1}), smoke_settings(tmp_path, "b", tiny_dataset))
    losses_a = [row["loss_g"] for row in read_run_evals(tmp_path / "a") if "loss_g" in row]
    losses_b = [row["loss_g"] for row in read_run_evals(tmp_path / "b") if "loss_g" in row]
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
    assert read_run_evals(tmp_path / "resumed") == read_run_evals(tmp_path / "whole")


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
    split = read_run_evals(tmp_path / "pre") + read_run_evals(tmp_path / "gan")
    assert split == read_run_evals(tmp_path / "whole")


def test_tensorboard_events_hold_scalars_images_and_hparams(tmp_path, tiny_dataset):
    train(preset("smoke"), smoke_settings(tmp_path, "run", tiny_dataset))
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("val/accuracy", "val/accuracy_basic", "val/f1", "val/line_width", "train/loss_g", "train/loss_d"):
        assert tag in tags["scalars"], tag
    assert "val/frame_label_prediction" in tags["images"]
    assert events.Scalars("val/accuracy")[-1].step == read_run_evals(tmp_path / "run")[-1]["step"]
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


HEALTH = ("d_acc_real", "d_acc_fake", "emb_distance", "adv_fit_grad_ratio", "adv_fit_grad_cos")


def test_every_row_after_d_exists_carries_finite_health_figures(tmp_path, tiny_dataset):
    cfg = preset("smoke").with_flat({"schedule.gan_eval_every": 3})
    train(cfg, smoke_settings(tmp_path, "run", tiny_dataset))
    rows = read_run_evals(tmp_path / "run")
    for row in rows:
        if row["phase"] == "pretrain_g":
            assert not set(HEALTH) & set(row)  # no D yet: no figure that would mean nothing
        else:
            assert all(math.isfinite(row[k]) for k in HEALTH), row
            assert 0 <= row["d_acc_real"] <= 1 and 0 <= row["d_acc_fake"] <= 1 and -1 <= row["adv_fit_grad_cos"] <= 1
    # The GAN phase is evaluated on its own interval, counted in its own steps, and at its end.
    gan_steps = sorted({row["phase_step"] for row in rows if row["phase"] == "gan"})
    assert gan_steps == list(range(3, cfg.schedule.gan_steps + 1, 3))
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    events.Reload()
    assert {f"health/{k}" for k in HEALTH} <= set(events.Tags()["scalars"])


def test_the_control_has_no_adversarial_gradient(tmp_path, tiny_dataset):
    train(preset("smoke").with_flat({"loss.lambda": 0.0}), smoke_settings(tmp_path, "control", tiny_dataset))
    gan_rows = [row for row in read_run_evals(tmp_path / "control") if row["phase"] == "gan"]
    assert gan_rows and all(row["adv_fit_grad_ratio"] == 0 and row["loss_adv"] >= 0 for row in gan_rows)


def batch_norm_statistics(model):
    return {name: buffer.clone() for name, buffer in model.named_buffers() if "running" in name}


def test_a_d_step_leaves_g_and_a_g_step_leaves_d_as_they_were():
    cfg = preset("smoke")
    torch.manual_seed(0)
    generator, discriminator = build_generator(cfg.generator), build_discriminator(cfg.discriminator)
    images, labels = torch.rand(4, 3, 64, 128), torch.rand(4, 1, 64, 128)
    opt_g = torch.optim.Adam(generator.parameters())
    opt_d = torch.optim.SGD(discriminator.parameters(), lr=0.1)
    g_before, g_weights = batch_norm_statistics(generator), [p.clone() for p in generator.parameters()]
    d_step(generator, discriminator, opt_d, images, labels, cfg)
    assert all(torch.equal(g_before[k], v) for k, v in batch_norm_statistics(generator).items())
    assert all(torch.equal(a, b) for a, b in zip(g_weights, generator.parameters(), strict=True))
    d_before, d_weights = batch_norm_statistics(discriminator), [p.clone() for p in discriminator.parameters()]
    g_step(generator, discriminator, opt_g, images, labels, cfg, with_adversary=True)
    assert all(torch.equal(d_before[k], v) for k, v in batch_norm_statistics(discriminator).items())
    assert all(torch.equal(a, b) for a, b in zip(d_weights, discriminator.parameters(), strict=True))
    assert any(not torch.equal(g_before[k], v) for k, v in batch_norm_statistics(generator).items())  # G's own step


def test_pretraining_stops_at_its_plateau_within_the_budget(tmp_path, tiny_dataset):
    cfg = preset("smoke").with_flat({"schedule.pretrain_g_steps": 200, "schedule.pretrain_g_patience": 2})
    cfg = cfg.with_flat({"schedule.eval_every": 2, "optim.lr_g": 1.0e-5})  # barely learns: a plateau comes soon
    result = train(cfg, smoke_settings(tmp_path, "pre", tiny_dataset), phases=("pretrain_g",))
    accuracy = [(row["step"], row["accuracy"]) for row in read_run_evals(tmp_path / "pre") if row["post"] == "basic++"]
    best_step, best = max(accuracy, key=lambda pair: pair[1])  # the first best, as the loop keeps it
    assert result.step < 200 and result.step == accuracy[-1][0]
    assert result.step == best_step + 2 * 2  # two evaluations without a new best end it
    assert all(value <= best for step, value in accuracy if step > best_step)


def test_every_evaluation_reports_every_figure_after_every_post_processing(tmp_path, tiny_dataset):
    """What a search study ranks by (its metric.name after metric.post) reaches the reporter as e.g. basic/f1."""
    reported = []
    cfg = preset("smoke").with_flat({"schedule.pretrain_d_steps": 0, "schedule.gan_steps": 0})
    train(cfg, smoke_settings(tmp_path, "run", tiny_dataset), report=lambda step, metrics: reported.append(metrics))
    rows = read_run_evals(tmp_path / "run")
    assert len(reported) == len(rows) // 2 >= 2  # one report per evaluation, one row per post-processing
    for metrics, step in zip(reported, sorted({row["step"] for row in rows}), strict=True):
        for row in (r for r in rows if r["step"] == step):
            for name in ("accuracy", "fp", "fn", "f1"):
                assert metrics[f"{row['post']}/{name}"] == row[name]


# Every phase, one G round and one D round of the GAN phase (3 + 2 steps), one evaluation per phase.
SHORT_SCHEDULE = {"schedule.pretrain_g_steps": 2, "schedule.pretrain_d_steps": 2, "schedule.gan_steps": 5}
SHORT_SCHEDULE |= {"schedule.eval_every": 5}


def _ddp_every_loss(rank: int, port: int, out: str, data: str) -> None:
    """One rank of a 2-process gloo group: the smoke run of every loss combination under DDP."""
    import os

    import torch.distributed as dist

    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        for gen in ("ce", "emb"):
            for disc in DISC_CHOICES:
                cfg = preset("smoke").with_flat({"loss.gen": gen, "loss.disc": disc} | SHORT_SCHEDULE)
                train(cfg, smoke_settings(Path(out), f"{gen}-{disc}", data))
    finally:
        dist.destroy_process_group()


def test_ddp_trains_every_loss_combination(tmp_path, tiny_dataset):
    """2 gloo ranks (no Ray) through every phase of every G and D loss: under eq. 5 and its bounded forms D's
    classifier gets no gradient, and DDP must not wait for one; it stays as initialised, as in one process."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:  # a free port for the process group's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_ddp_every_loss, args=(port, str(tmp_path), str(tiny_dataset)), nprocs=2)
    cfg = preset("smoke")
    seed_everything(cfg.seed)  # as train() builds them: G, then D
    build_generator(cfg.generator)
    initial = build_discriminator(cfg.discriminator).state_dict()["classifier.2.weight"]
    for gen in ("ce", "emb"):
        for disc in DISC_CHOICES:
            run = tmp_path / f"{gen}-{disc}"
            assert read_status(run)["status"] == "ok" and read_status(run)["workers"] == 2, run
            weights = torch.load(run / "checkpoint.pt", weights_only=False)["discriminator"]["classifier.2.weight"]
            assert torch.equal(weights, initial) == (disc != "ce"), run


def test_a_checkpoint_of_an_earlier_version_with_a_retired_key_still_loads(tmp_path, tiny_dataset):
    """Round 3 removed loss.emb_margin; checkpoints written while it existed (the default study's pre-trainings)
    must still seed GAN runs, while a user naming the key is refused as before."""
    from elgan_ray.config import RETIRED_KEYS, TrainConfig
    from elgan_ray.errors import UserError
    from elgan_ray.train.checkpoint import load_checkpoint, save_checkpoint

    cfg = preset("smoke").with_flat(SHORT_SCHEDULE)
    train(cfg, smoke_settings(tmp_path, "old", tiny_dataset))
    path = tmp_path / "old" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    state["config"] = state["config"] | {"loss.emb_margin": 1.0}  # as the code of 6d4801d..77ced3e wrote it
    save_checkpoint(path, state)
    flat = cfg.to_flat()
    loaded = load_checkpoint(path, flat, keys=sorted(flat))
    assert not set(RETIRED_KEYS) & set(loaded["config"])
    with pytest.raises(UserError, match="unknown key"):
        TrainConfig.from_flat(flat | {"loss.emb_margin": 1.0})
