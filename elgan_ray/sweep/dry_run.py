"""`python -m elgan_ray.sweep STUDY --dry-run`: the runs a study would make, the generator pre-trainings they would
share, and what they would cost, without starting Ray, without training and without writing anything.

The cost is the schedule's step and evaluation counts times a short timing, here, of one step of each kind and of
one evaluation at the study's base config, with the threads a trial gets (a trial's CPUs) and, for a trial on
several workers, one worker's share of the batch (DDP's all-reduce not counted). Runs that vary the model (an
embedding block, a width) are timed at the base config too. A pre-training's G steps are an upper bound when
`schedule.pretrain_g_patience` may stop it earlier; a search study's runs are counted at the base values of
the keys Optuna samples, and to their end (a scheduler such as ASHA stops some earlier).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from elgan_ray.config import TrainConfig
from elgan_ray.record.names import CONTROL, GAN
from elgan_ray.study.plan import PlannedRun
from elgan_ray.study.spec import SweepSpec, is_search
from elgan_ray.sweep.settings import SweepSettings

POST_MAPS = 8  # rendered maps the post-processing is timed on; an evaluation's cost is scaled to its frames
FORWARD_FRAMES = 16  # frames G's forward pass is timed on (validation.predict_maps' batch)


@dataclass(frozen=True)
class Timings:
    """Seconds, measured here: one step of each kind, one evaluation, and D's health figures (after D exists)."""

    pretrain_g: float
    gan_g: float
    d: float
    evaluation: float
    health: float


def pretrainings(runs: list[PlannedRun], settings: SweepSettings) -> tuple[list[str], set[str]]:
    """Each run's generator pre-training (pretrain.pretrain_id), and which of them are already done (cached in
    <results>/_pretrain/, also by other studies)."""
    from elgan_ray.record import layout
    from elgan_ray.sweep.pretrain import data_identity, is_finished, pretrain_id

    data = data_identity(settings.data_dir)
    pids = [pretrain_id(run.cfg, data) for run in runs]
    root = layout.pretrain_root(settings.results_root)
    return pids, {pid for pid in set(pids) if is_finished(root / pid)}


def time_steps(cfg: TrainConfig, settings: SweepSettings, val_frames: int, reps: int = 2) -> Timings:
    """A short timing of each step kind and of one evaluation at cfg, as a trial of these settings runs them."""
    import numpy as np
    import torch

    from elgan_ray.data.labels import H_SAMPLES, LaneLabel, render_lane_map
    from elgan_ray.evaluate.maps import score_maps
    from elgan_ray.models import build_discriminator, build_generator
    from elgan_ray.train.health import HEALTH_FRAMES, discriminator_health
    from elgan_ray.train.timing import frame_lanes, median_time, step_times
    from elgan_ray.train.validation import predict_maps

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(settings.cpus_per_worker)))  # as sweep/tune.py's _limit_threads
    try:
        device = "cuda" if settings.gpus_per_worker and torch.cuda.is_available() else "cpu"
        size = (cfg.data.height, cfg.data.width)
        batch = max(1, cfg.optim.batch_size // settings.workers_per_trial)  # one worker's share under DDP
        images, labels = torch.rand(batch, 3, *size), (torch.rand(batch, 1, *size) > 0.9).float()
        steps = step_times(cfg, images, labels, reps, device=device, count_flops=False)
        # An evaluation: G over the validation frames, then every post-processing of each map, scored.
        # As train() holds them: channels_last models and frames.
        g = build_generator(cfg.generator).to(device, memory_format=torch.channels_last)
        frames = torch.rand(min(val_frames, FORWARD_FRAMES), 3, *size).contiguous(memory_format=torch.channels_last)
        forward = median_time(lambda: predict_maps(g, frames, torch.device(device)), 1) * val_frames / len(frames)
        rng = np.random.default_rng(0)
        lanes = [frame_lanes(rng) for _ in range(POST_MAPS)]
        truth = [LaneLabel("f.jpg", tuple(tuple(x.tolist()) for x in ls), tuple(H_SAMPLES)) for ls in lanes]
        maps = [render_lane_map(ls, H_SAMPLES, *size, sigma=cfg.data.sigma).astype(np.float32) for ls in lanes]
        scoring = median_time(lambda: score_maps(maps, truth, cfg.eval), 1)
        # D's health figures, on the first HEALTH_FRAMES validation frames as the loop computes them.
        d = build_discriminator(cfg.discriminator).to(device, memory_format=torch.channels_last)
        probe_images = torch.rand(min(val_frames, HEALTH_FRAMES), 3, *size)
        probe_images = probe_images.contiguous(memory_format=torch.channels_last)
        probe = torch.rand(len(probe_images), 1, *size)
        health = median_time(
            lambda: discriminator_health(g, d, probe_images, probe, probe, cfg.loss, torch.device(device)), 1
        )
    finally:
        torch.set_num_threads(threads)
    evaluation = forward + scoring * val_frames / POST_MAPS
    return Timings(steps["pretrain_g"], steps["gan_g"], steps["d"], evaluation, health)


def phase_counts(cfg: TrainConfig) -> dict[str, int]:
    """Steps of each kind and evaluations of each phase of one pre-training and one trial (as train/loop.py runs them:
    an evaluation every eval_every steps of a phase and at its end)."""
    s = cfg.schedule
    rounds, rest = divmod(s.gan_steps, s.g_steps_per_round + s.d_steps_per_round)
    gan_g = rounds * s.g_steps_per_round + min(rest, s.g_steps_per_round)
    return {
        "pretrain_g": s.pretrain_g_steps,
        "pretrain_g_evals": math.ceil(s.pretrain_g_steps / s.eval_every),
        "pretrain_d": s.pretrain_d_steps,
        "pretrain_d_evals": math.ceil(s.pretrain_d_steps / s.eval_every),
        "gan_g": gan_g,
        "gan_d": s.gan_steps - gan_g,
        "gan_evals": math.ceil(s.gan_steps / (s.gan_eval_every or s.eval_every)),
    }


def pretrain_seconds(cfg: TrainConfig, t: Timings) -> float:
    n = phase_counts(cfg)
    return n["pretrain_g"] * t.pretrain_g + n["pretrain_g_evals"] * t.evaluation


def trial_seconds(cfg: TrainConfig, t: Timings) -> float:
    """A control's or GAN trial's own training: D's pre-training and the GAN phase, with their evaluations."""
    n = phase_counts(cfg)
    steps = n["pretrain_d"] * t.d + n["gan_g"] * t.gan_g + n["gan_d"] * t.d
    return steps + (n["pretrain_d_evals"] + n["gan_evals"]) * (t.evaluation + t.health)


def dry_run(
    spec: SweepSpec,
    base: TrainConfig,
    settings: SweepSettings,
    runs: list[PlannedRun],
    max_concurrent: int,
    val_frames: int,
) -> str:
    """The text `sweep --dry-run` prints: every run (study/plan.py's planned_runs), the pre-trainings they share,
    and the cost estimate."""
    pids, done = pretrainings(runs, settings)
    shared = {pid: [run for run, p in zip(runs, pids, strict=True) if p == pid] for pid in dict.fromkeys(pids)}
    controls = sum(run.role == CONTROL for run in runs)
    lines = [f"runs ({len(runs)}: {controls} controls, {len(runs) - controls} GAN trials)"]
    width = max(len(run.name) for run in runs)
    sampled = f" + {', '.join(spec.nuisance)} sampled by Optuna" if is_search(spec) else ""
    for run in runs:
        params = " ".join(f"{k}={v}" for k, v in run.params.items()) + (sampled if run.role == GAN else "")
        lines.append(f"  {run.role:<7} {run.name:<{width}}  {params}")
    lines.append(f"generator pre-trainings shared ({len(shared)}, {len(done)} of them done)")
    for pid, users in shared.items():
        state = " [done]" if pid in done else ""
        lines.append(f"  {pid}  seed {users[0].cfg.seed}: the baseline of {len(users)} runs{state}")

    t = time_steps(base, settings, val_frames)
    pre = {pid: pretrain_seconds(users[0].cfg, t) * (pid not in done) for pid, users in shared.items()}
    own = [trial_seconds(run.cfg, t) for run in runs]
    total = sum(own) + sum(pretrain_seconds(users[0].cfg, t) for users in shared.values())
    longest = max(pre[pid] + seconds for pid, seconds in zip(pids, own, strict=True))  # a trial waits for its G
    import torch

    # as tune.py decides it, from this machine's cores and GPUs instead of Ray's resources
    slots = settings.concurrency(max_concurrent, len(os.sched_getaffinity(0)), torch.cuda.device_count())
    wall = longest if slots is None else max((sum(own) + sum(pre.values())) / slots, longest)
    return "\n".join(lines + _estimate_lines(base, settings, t, total, wall, slots, val_frames))


def _estimate_lines(
    base: TrainConfig, settings: SweepSettings, t: Timings, total: float, wall: float, slots: int | None, frames: int
) -> list[str]:
    n = phase_counts(base)
    bound = " (an upper bound: patience may end it earlier)" if base.schedule.pretrain_g_patience else ""
    cpus, gpus = (each * settings.workers_per_trial for each in (settings.cpus_per_worker, settings.gpus_per_worker))
    at_once = "no limit to trials at once (a cluster)" if slots is None else f"{slots} trial(s) at once"
    threads = max(1, int(settings.cpus_per_worker))
    return [
        f"estimate (timed here with the {threads} torch thread(s) a trial gets, base config at "
        f"{base.data.height}x{base.data.width}, batch {base.optim.batch_size}):",
        f"  one step: G pre-training {t.pretrain_g:.3f} s, GAN G {t.gan_g:.3f} s, D {t.d:.3f} s; one evaluation "
        f"of {frames} frames {t.evaluation:.2f} s, D's health figures {t.health:.2f} s",
        f"  a pre-training: {n['pretrain_g']} G steps{bound}, {n['pretrain_g_evals']} evaluations: "
        f"about {pretrain_seconds(base, t):,.0f} s",
        f"  a run: {n['pretrain_d']} D steps, then {n['gan_g']} G and {n['gan_d']} D steps, "
        f"{n['pretrain_d_evals'] + n['gan_evals']} evaluations: about {trial_seconds(base, t):,.0f} s",
        f"  total: about {total:,.0f} trial-seconds, {total * cpus / 3600:.3g} CPU-hours and "
        f"{total * gpus / 3600:.3g} GPU-hours reserved ({cpus:g} CPU(s), {gpus:g} GPU(s) per trial)",
        f"  wall time: about {wall:,.0f} s ({wall / 3600:.2g} h) with {at_once}, packed without idle slots",
        "  (pre-trainings already done are not redone; Ray's start-up and the report are not counted)",
    ]
