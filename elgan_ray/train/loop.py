"""One EL-GAN training run, top to bottom: pre-train G (the baseline), pre-train D, then alternate G and D.

The loop knows nothing of Ray. It is handed its config, its run settings (paths, device), a reporter
called after every evaluation, and optionally the checkpoint of a pre-trained generator to start from.
When torch.distributed is initialised (Ray Train workers), G and D are wrapped in DDP and every rank
trains on its slice of the same global batch, so one worker and N workers follow the same trajectory.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from elgan_ray.config import RunSettings, TrainConfig, pretrain_keys
from elgan_ray.data.synthetic import embedded_dataset
from elgan_ray.data.tusimple import TuSimpleDataset
from elgan_ray.errors import UserError
from elgan_ray.models import batch_norm_statistics_kept, build_discriminator, build_generator, parameters_frozen
from elgan_ray.record.layout import CHECKPOINT_FILE
from elgan_ray.record.names import LOSSES, MAIN_POST, PHASES, metric_key
from elgan_ray.record.runs import read_run_evals
from elgan_ray.train.batches import Prefetcher, batch_of_step
from elgan_ray.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from elgan_ray.train.health import discriminator_health
from elgan_ray.train.losses import discriminator_loss, generator_adversarial_loss, lane_probability, segmentation_loss
from elgan_ray.train.run_log import RunLog
from elgan_ray.train.validation import Validation, predict_maps, validate

Reporter = Callable[[int, dict[str, Any]], None]  # (step, metrics) after each evaluation, on every rank


@dataclass
class Position:
    """Where the schedule stands; saved in every checkpoint."""

    step: int = 0  # global step, counted across phases
    phase: str | None = "pretrain_g"  # None once the run is complete
    phase_step: int = 0  # steps done in the current phase
    best_accuracy: float = -1.0  # pre-training plateau detection
    evals_since_best: int = 0


@dataclass(frozen=True)
class RunResult:
    status: str  # "ok" or "diverged"
    step: int
    final: dict[str, float]  # the last evaluation's main metrics
    train_seconds: float  # time spent in this process's loop (not counting set-up)
    loader_wait_seconds: float = 0.0  # of which the loop waited for its batches


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    cfg: TrainConfig,
    settings: RunSettings,
    report: Reporter | None = None,
    phases: tuple[str, ...] = PHASES,
    init_generator: str | Path | None = None,
) -> RunResult:
    """Run the phases of `phases` in order; resume from `settings.out_dir`'s checkpoint if there is one."""
    # -- set-up ------------------------------------------------------------------------------------
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    if cfg.optim.batch_size % world:
        raise UserError("config", f"batch size {cfg.optim.batch_size} does not split over {world} workers")
    seed_everything(cfg.seed)
    device = torch.device(settings.device)
    check_precision(cfg.optim.amp, device)
    if device.type == "cuda":
        # cuDNN times its convolution algorithms once per shape and keeps the fastest (every step has the same
        # shapes). The choice may differ between runs, so GPU runs repeat only up to float rounding; CPU runs exactly.
        torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    data_root = settings.data_dir or str(embedded_dataset())
    size = (cfg.data.height, cfg.data.width)
    train_set = TuSimpleDataset(data_root, cfg.data.train_split, *size, sigma=cfg.data.sigma)
    val_set = TuSimpleDataset(data_root, "val", *size, sigma=cfg.data.sigma)
    n_train = min(len(train_set), cfg.data.train_limit or len(train_set))
    val_frames = [val_set[i] for i in range(min(len(val_set), cfg.data.val_limit or len(val_set)))]
    # channels_last: the layout mkldnn (CPU) and cuDNN convolve fastest; a cpu-preset G+D step takes a third less.
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    val_images = torch.stack([f["image"] for f in val_frames]).contiguous(memory_format=memory_format)  # (V, 3, H, W)
    val_maps = torch.stack([f["label"] for f in val_frames])  # (V, 1, H, W)
    val_labels = [val_set.labels[f["index"]] for f in val_frames]

    generator = build_generator(cfg.generator).to(device, memory_format=memory_format)
    discriminator = build_discriminator(cfg.discriminator).to(device, memory_format=memory_format)
    if cfg.optim.compile:  # nn.Module.compile, in place: the modules, and their checkpoints' keys, stay as they are
        generator.compile()
        discriminator.compile()
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.optim.lr_g, weight_decay=cfg.optim.weight_decay)
    opt_d = torch.optim.SGD(
        discriminator.parameters(),
        lr=cfg.optim.lr_d,
        momentum=cfg.optim.momentum_d,
        weight_decay=cfg.optim.weight_decay,
    )

    flat = cfg.to_flat()
    out_dir = Path(settings.out_dir)
    position = Position(phase=phases[0])
    if (out_dir / CHECKPOINT_FILE).exists():  # resume this run exactly where it stopped
        state = load_checkpoint(out_dir / CHECKPOINT_FILE, flat)
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        position = Position(**state["position"])
        set_rng_state(state["rng"])
    elif init_generator is not None:  # start from a shared pre-training (the baseline)
        state = load_checkpoint(init_generator, flat, keys=pretrain_keys(flat))
        generator.load_state_dict(state["generator"])
        opt_g.load_state_dict(state["opt_g"])
        position.step = state["position"]["step"]
        set_rng_state(state["rng"])

    # D's loss under eq. 5 and its bounded forms is a function of the embedding alone: D's later blocks and its patch
    # classifier get no gradient from it. They are frozen for the whole run, so that one process and DDP agree: in one
    # process they would stay as initialised anyway (no gradient, so SGD skips them: no momentum, no weight decay),
    # and DDP registers only parameters that require a gradient, so its reducer waits for none that never comes
    # ("Expected to have finished reduction in the prior iteration"). Not find_unused_parameters=True: it would
    # search the graph at every step to find the same, fixed set. G's ce loss still reaches G through the frozen
    # classifier (a frozen weight passes the gradient on to its input).
    if cfg.loss.disc != "ce":
        for parameter in discriminator.beyond_embedding(cfg.loss.emb_block):
            parameter.requires_grad_(False)
    # Under DDP each model is wrapped for the step that trains it; the other is used unwrapped (ray-notes).
    g_train = _wrap(generator, device)
    d_train = _wrap(discriminator, device)
    log = RunLog(out_dir, settings.tb_dir, resume_step=position.step) if rank == 0 else None
    losses: dict[str, list[float]] = {name: [] for name in LOSSES}  # the losses every evaluation row holds
    final: dict[str, float] = {}
    status = "ok"
    started = time.perf_counter()

    def evaluate(phase: str) -> tuple[Validation, dict[str, float]]:
        """The validation scores, and D's health figures once D exists (before, they would mean nothing)."""
        maps = predict_maps(generator, val_images, device)  # (V, H, W)
        validation = validate(maps, val_images, val_maps, val_labels, cfg.eval)
        if phase == "pretrain_g":
            return validation, {}
        predictions = torch.from_numpy(maps)[:, None]  # (V, 1, H, W)
        return validation, discriminator_health(
            generator, discriminator, val_images, val_maps, predictions, cfg.loss, device
        )

    # The next step's batch is prepared in a background thread while this step runs (batches.Prefetcher).
    load = partial(batch_of_step, train_set, n_train, batch_size=cfg.optim.batch_size, seed=cfg.seed)
    load = partial(load, rank=rank, world=world, pin=device.type == "cuda")  # load(step): this rank's batch
    batches = Prefetcher(load, position.step, enabled=settings.prefetch)

    # An exception (a step, or Tune stopping the trial through report) must not leave the batch thread or the
    # event writer running: Tune reuses trial processes (reuse_actors), and the events recorded so far are kept.
    # The run's own error is the one raised, even if closing the writer fails too.
    try:
        # -- the loop ----------------------------------------------------------------------------------
        while position.phase is not None:
            images, labels = batches.get(position.step)  # (b, 3, H, W), (b, 1, H, W) on the CPU
            images = images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            labels = labels.to(device, non_blocking=True)
            phase = position.phase
            if phase == "pretrain_g" or (phase == "gan" and _is_g_step(position.phase_step, cfg)):
                with_adversary = phase == "gan"
                step_losses = g_step(g_train, discriminator, opt_g, images, labels, cfg, with_adversary)
            else:
                step_losses = d_step(generator, d_train, opt_d, images, labels, cfg)
            for name, value in step_losses.items():
                losses[name].append(value)
            position.step += 1
            position.phase_step += 1

            if not all(math.isfinite(v) for v in step_losses.values()):
                # NaN or inf: nothing after this is meaningful. One last evaluation records where it happened
                # (a diverged D leaves G intact; a diverged G scores what its NaN maps give: nothing).
                status = "diverged"
                if rank == 0:
                    mean_losses = {k: float(np.mean(v)) for k, v in losses.items() if v}
                    log.evaluation(position.step, phase, position.phase_step, *evaluate(phase), mean_losses)
                final = {"accuracy": float("nan")}
                break
            if log is not None and position.step % 10 == 0:
                log.scalars(position.step, {f"train/{k}": v[-1] for k, v in losses.items() if v})

            phase_done = position.phase_step >= _phase_steps(phase, cfg)
            if position.phase_step % _eval_every(phase, cfg) and not phase_done:
                continue
            # -- evaluation, record, checkpoint --------------------------------------------------------
            mean_losses = {k: float(np.mean(v)) for k, v in losses.items() if v}
            losses = {k: [] for k in losses}
            accuracy, scores = float("nan"), {}
            if rank == 0:
                validation, health = evaluate(phase)
                log.evaluation(position.step, phase, position.phase_step, validation, health, mean_losses)
                final = {**validation.scores[MAIN_POST], "accuracy_basic": validation.scores["basic"]["accuracy"]}
                final |= {"line_width": validation.line_width, "label_width": validation.label_width}
                accuracy = final["accuracy"]
                # Every figure after every post-processing, e.g. "basic/f1": what a search study ranks by.
                scores = {metric_key(name, post): v for post, s in validation.scores.items() for name, v in s.items()}
            accuracy = _broadcast(accuracy, world)
            if phase == "pretrain_g" and cfg.schedule.pretrain_g_patience:
                if accuracy > position.best_accuracy:
                    position.best_accuracy, position.evals_since_best = accuracy, 0
                else:
                    position.evals_since_best += 1
                phase_done = phase_done or position.evals_since_best >= cfg.schedule.pretrain_g_patience
            # GAN-phase evaluations so far: the clock a search's scheduler (ASHA) compares trials on.
            gan_evaluations = -(-position.phase_step // _eval_every(phase, cfg)) if phase == "gan" else 0
            if phase_done:
                position.phase, position.phase_step = _next_phase(phase, phases, cfg)
            if rank == 0 and position.phase is None:  # the final evaluation: its maps are what a seed ensemble averages
                log.final_maps(validation.maps, val_labels, cfg.eval)
            if rank == 0:
                checkpoint = _state(generator, discriminator, opt_g, opt_d, position, flat)
                save_checkpoint(out_dir / CHECKPOINT_FILE, checkpoint)
            if report is not None:
                metrics = {"step": position.step, "phase": phase, "gan_evaluations": gan_evaluations}
                report(position.step, {**metrics, **final, **scores, **mean_losses} if rank == 0 else {})
    except BaseException:
        if log is not None:
            with contextlib.suppress(Exception):
                log.close()
        raise
    finally:
        seconds = time.perf_counter() - started  # before the prefetch thread's unused batch is waited for
        batches.close()

    if log is not None:
        try:
            if not final:  # a run resumed after its last step: its result is in the record
                last_row = (read_run_evals(out_dir) or [{}])[-1]
                final = {k: v for k, v in last_row.items() if k not in ("step", "phase", "post")}
            status_record = {"status": status, "step": position.step, "train_seconds": seconds}
            status_record["phases"] = list(phases)
            status_record["workers"] = world  # DDP ranks that trained this run (1: no Ray Train)
            status_record["loader_wait_seconds"] = batches.wait_seconds  # of train_seconds, waiting for batches
            log.finish(status_record, flat, final)
        finally:
            log.close()
    return RunResult(status, position.step, final, seconds, batches.wait_seconds)


# -- the two optimisation steps ------------------------------------------------------------------------


def g_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
    with_adversary: bool,
) -> dict[str, float]:
    """Generator: minimise L_fit (pre-training), or L_fit + lambda * L_adv, L_adv = BCE (eq. 1) or L_emb (eq. 3, 4)."""
    generator.train()
    with precision(images.device, cfg.optim.amp):
        logits = generator(images).float()  # (B, 2, H, W); the losses in float32 under bf16 too
        fit = segmentation_loss(logits, labels)
        adv = torch.zeros((), device=fit.device)
        if with_adversary:
            # D judges as it does in its own steps (train mode: BatchNorm over the label and the prediction
            # together, losses.discriminate), but the G step updates neither D's weights nor its running
            # statistics, and DDP must not see D's parameters at all (the embedding loss never reaches D's head).
            with batch_norm_statistics_kept(discriminator), parameters_frozen(discriminator):
                discriminator.train()
                adv = generator_adversarial_loss(discriminator, images, labels, lane_probability(logits), cfg.loss)
    loss = fit + cfg.loss.lambda_ * adv
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.item(), "loss_fit": fit.item(), "loss_adv": adv.item()}


def d_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_d: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
) -> dict[str, float]:
    """Discriminator: minimise BCE(D(label), 1) + BCE(D(G(x)), 0) (eq. 2) or -L_emb (eq. 5); G is fixed."""
    # G in train mode gives D the predictions the G step produces (batch statistics, dropout), but its BatchNorm
    # running statistics must not move: they belong to G's own steps, and G's weights do not change here.
    with torch.no_grad(), batch_norm_statistics_kept(generator), precision(images.device, cfg.optim.amp):
        generator.train()
        prediction = lane_probability(generator(images).float())  # (B, 1, H, W)
    discriminator.train()
    with precision(images.device, cfg.optim.amp):
        loss = discriminator_loss(discriminator, images, labels, prediction, cfg.loss)
    opt_d.zero_grad(set_to_none=True)
    loss.backward()
    opt_d.step()
    return {"loss_d": loss.item()}


# -- precision, schedule and distribution helpers -----------------------------------------------------


def check_precision(amp: str, device: torch.device) -> None:
    """UserError unless this device computes in `amp` (optim.amp): bf16 autocast runs on CPUs and on GPUs with
    bf16 tensor cores (compute capability 8 and up; older GPUs only emulate bf16, slower than float32)."""
    native = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    if amp == "bf16" and not (device.type == "cpu" or native):
        raise UserError("optim.amp", f"bf16 autocast needs a CPU or a GPU with native bf16 (Ampere on), not {device}")


def precision(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """The forward passes' precision: float32, or (bf16) autocast, where convolutions run in bfloat16 and the
    weights, the optimiser states and the losses stay float32 (bfloat16 keeps float32's range: no loss scaling)."""
    if amp == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _phase_steps(phase: str, cfg: TrainConfig) -> int:
    s = cfg.schedule
    return {"pretrain_g": s.pretrain_g_steps, "pretrain_d": s.pretrain_d_steps, "gan": s.gan_steps}[phase]


def _eval_every(phase: str, cfg: TrainConfig) -> int:
    s = cfg.schedule
    return (s.gan_eval_every or s.eval_every) if phase == "gan" else s.eval_every


def _next_phase(phase: str, phases: tuple[str, ...], cfg: TrainConfig) -> tuple[str | None, int]:
    """The next phase of this run that has steps to do (a phase of 0 steps is skipped)."""
    for later in phases[phases.index(phase) + 1 :]:
        if _phase_steps(later, cfg) > 0:
            return later, 0
    return None, 0


def _is_g_step(phase_step: int, cfg: TrainConfig) -> bool:
    """GAN phase: rounds of g_steps_per_round G steps, then d_steps_per_round D steps (paper: 300, 200)."""
    s = cfg.schedule
    return phase_step % (s.g_steps_per_round + s.d_steps_per_round) < s.g_steps_per_round


def _wrap(model: nn.Module, device: torch.device) -> nn.Module:
    if not dist.is_initialized():
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _broadcast(value: float, world: int) -> float:
    """Rank 0's evaluation result, on every rank (only rank 0 evaluates)."""
    if world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _state(generator, discriminator, opt_g, opt_d, position: Position, flat: dict[str, Any]) -> dict[str, Any]:
    return {
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "position": asdict(position),
        "rng": rng_state(),
        "config": flat,
    }
