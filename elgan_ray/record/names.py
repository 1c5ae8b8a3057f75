"""The record's vocabulary, each word defined once: the phases, post-processings, metrics, roles, kinds, statuses
and health figures that evals.jsonl, evals.csv, status.json and study.json hold; the evals.csv columns and the
config keys they stand for; the rules a trial's resources obey. Plain Python: every stage imports this.
"""

from __future__ import annotations

import math
from typing import Any

# The version of the record a sweep writes (study.json's record_version). 1 (or none): evals.csv may lack `role`
# (inferred from `kind`) and `phase_step`, run.json `role`, study.json `resources` and `metric`, rows D's health
# figures; report/inputs.py's upgrade() reads such a study as a version-2 one. 2: every one of them is written.
RECORD_VERSION = 2
SEED_KEY = "seed"  # the config key of a run's seed; a grid axis of every study
LAMBDA_KEY = "loss.lambda"  # the adversary's weight: 0 in a fit-only control
PHASES = ("pretrain_g", "pretrain_d", "gan")  # a run's phases, in order (evals.jsonl's `phase`)
KINDS = ("gan", "pretrain")  # how a run trained (evals.csv's `kind`): a control or GAN trial, or a G pre-training
POSTS = ("basic", "basic++")  # the paper's post-processings (evals.jsonl's `post`)
MAIN_POST = "basic++"  # the post-processing of every headline number, as in Table 3
METRIC_NAMES = ("accuracy", "fp", "fn", "f1")  # the TuSimple figures of every evaluation row
# Their ranges (evals.jsonl and evals.csv alike), from the official rules (evaluate/metric.py, docs/tusimple-metric.md)
# for frames of at most TUSIMPLE_MAX_LANES labelled lanes, as TuSimple's are. Per image, accuracy is the sum of the gt
# lanes' best line accuracies and FN the missed gt lanes, each over min(4, gt lanes); with five, the worst lane is
# dropped and one miss forgiven, so both stay in [0, 1]. FP is (predicted - matched) / predicted, and the official
# matching is not one to one: one predicted lane may match several gt lanes, so `matched` can pass `predicted` and FP
# go below 0 (-0.0025 on real maps here), at the least 1 - 5 = -4 (one predicted lane matching five gt lanes). F1 =
# 2PR / (P + R), P = 1 - FP, R = P / (P + FN), then passes 1 as well: at most 2 * 5 / (5 + 1) (P = 5, R = 1).
TUSIMPLE_MAX_LANES = 5
METRIC_RANGES = {"accuracy": (0.0, 1.0), "fp": (1.0 - TUSIMPLE_MAX_LANES, 1.0), "fn": (0.0, 1.0)}
METRIC_RANGES["f1"] = (0.0, 2 * TUSIMPLE_MAX_LANES / (TUSIMPLE_MAX_LANES + 1))
LOSSES = ("loss_g", "loss_fit", "loss_adv", "loss_d")  # the training losses since the last evaluation, in its rows
MODES = ("max", "min")  # a study's metric.mode
# A run's role in the experiment (evals.csv's `role`): the shared generator pre-training of its seed, the fit-only
# control of its seed (lambda 0), or a GAN trial.
BASELINE, CONTROL, GAN = "baseline", "control", "gan"
ROLES = (BASELINE, CONTROL, GAN)
# A run's final status (status.json, evals.csv's `status`): `running` while it has none; `stopped` is a search
# trial that the study's scheduler (ASHA) ended early, whose rows are kept but which has no final evaluation.
STATUSES = ("ok", "diverged", "failed", "running", "stopped")
# D's health figures (train/health.py), in every evaluation row after D exists.
HEALTH = ("d_acc_real", "d_acc_fake", "emb_distance", "adv_fit_grad_ratio", "adv_fit_grad_cos")
# evals.csv names the config keys the paper's tables are about by these columns; any other key that varies
# between a study's trials is the column cfg.<key>.
CONFIG_COLUMNS = {"loss.gen": "gen_loss", "loss.disc": "disc_loss", LAMBDA_KEY: "lambda", "loss.emb_block": "emb_block"}
NAMED_CONFIG = tuple(CONFIG_COLUMNS.values())
CONFIG_PREFIX = "cfg."
# evals.csv's columns, in order; a study adds cfg.* columns, phase_step, the figures of every row (line and label
# width, losses, health) after these.
EVALS_COLUMNS = ("trial_id", "kind", "role", "trial_name", SEED_KEY, *NAMED_CONFIG)
EVALS_COLUMNS += ("phase", "step", "post", *METRIC_NAMES, "status")
# Short names of config keys in run names and group labels, e.g. 'g=emb,d=ce'; any other key keeps its last part.
SHORT_NAMES = {"loss.gen": "g", "loss.disc": "d", "loss.lambda": "lambda", "loss.emb_block": "emb", SEED_KEY: "seed"}
# A trial's resources (a study's `resources`, the sweep's flags, study.json): key -> (low, high). Workers per trial
# (Ray Train, DDP); CPUs per worker (> 0) and GPUs per worker (fractions allowed).
RESOURCE_RANGES = {"cpu": (0.0, 1024.0), "gpu": (0.0, 64.0), "workers": (1, 1024)}
RESOURCE_STEP = (
    0.0001  # Ray's finest fraction of a CPU or GPU (ray_constants.MIN_RESOURCE_GRANULARITY): Ray refuses finer
)


def config_column(key: str) -> str:
    """The evals.csv column of a config key: gen_loss for loss.gen, cfg.<key> for a key without a name."""
    return CONFIG_COLUMNS.get(key, CONFIG_PREFIX + key)


def column_key(column: str) -> str:
    """The config key of an evals.csv config column (config_column's inverse)."""
    named = {column: key for key, column in CONFIG_COLUMNS.items()}
    return named.get(column, column.removeprefix(CONFIG_PREFIX))


def label(values: dict[str, Any]) -> str:
    """'g=emb,d=ce,seed=3' from config keys and their values, floats to 3 significant digits: a run's name and a
    group's label."""
    parts = []
    for key, value in values.items():
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{SHORT_NAMES.get(key, key.rsplit('.', 1)[-1])}={text}")
    return ",".join(parts)


def metric_key(name: str, post: str) -> str:
    """The key under which a run reports a metric after a post-processing to Tune, e.g. 'basic++/accuracy'."""
    return f"{post}/{name}"


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite: not NaN, not inf, not an int too large for a float."""
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def resource_rule(key: str, value: Any) -> str | None:
    """Why `value` is no trial resource `key` (cpu, gpu, workers: RESOURCE_RANGES), or None when it is one."""
    low, high = RESOURCE_RANGES[key]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key == "workers":
        ok, wanted = isinstance(value, int) and number and low <= value <= high, f"an integer from {low} to {high:,}"
    else:
        inside = number and (low < value if key == "cpu" else low <= value) and value <= high
        ok = inside and abs(value / RESOURCE_STEP - round(value / RESOURCE_STEP)) < 1e-6
        span = f"above {low:g} and at most {high:g}" if key == "cpu" else f"from {low:g} to {high:g}"
        wanted = f"a number {span} in steps of {RESOURCE_STEP:g} (Ray's finest fraction)"
    return None if ok else f"must be {wanted}"
