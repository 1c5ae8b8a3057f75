"""Every training hyperparameter, declared once with its default, and flat dotted keys (presets: presets.py).

`TrainConfig` holds what a study may vary (it is what Tune samples and what a checkpoint records);
`RunSettings` holds the infrastructure of one run (paths, device), which never changes the result.
Configs become flat dicts (`{"loss.gen": "emb", ...}`) only at the Ray and command-line boundary;
`from_flat` refuses unknown keys and wrong types, so a typo in a sweep fails before any compute.
This module imports no torch, so the evaluator and the sweep driver start fast.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from elgan_ray.errors import UserError, quoted
from elgan_ray.plain_yaml import load_plain

LOSS_CHOICES = ("ce", "emb")  # the generator's adversarial term
# The discriminator's loss: eq. 2 (ce), eq. 5 as written (emb, unbounded), and a bounded form of eq. 5 that the
# paper does not describe (ours): the distance of unit-length embeddings (emb_unit; train/losses.py).
DISC_CHOICES = ("ce", "emb", "emb_unit")
EMB_NORMS = ("rms", "plain")
AMP_CHOICES = ("fp32", "bf16")
TRAIN_SPLITS = ("train", "trainval")
# Bounds of sizes and counts: generous for any real run, far from sizes that exhaust memory. Training size: at
# most a TuSimple frame; sigma in training pixels; channels: first_conv and growth; levels: of G, each halves the
# map; blocks: of D; layers: per level or block; widest: first_conv + growth x layers (the paper's G: 608).
IMAGE_HEIGHT, IMAGE_WIDTH = 720, 1280  # a TuSimple frame; labels are in its pixel coordinates
MAX_HEIGHT, MAX_WIDTH = IMAGE_HEIGHT, IMAGE_WIDTH
MAX_SEED = 2**32  # seeds are in [0, MAX_SEED): numpy takes no more
MAX_SIGMA, MAX_BATCH = 64.0, 1024
MAX_CHANNELS, MAX_LEVELS, MAX_BLOCKS, MAX_LAYERS, MAX_WIDEST = 1024, 10, 16, 64, 4096
MAX_LANES = 64  # eval.max_lanes: a TuSimple frame has at most 5
MAX_OVERRIDE_CHARS = 1000  # one key=value on the command line


# Keys that fix what a pre-trained generator is: a GAN trial may start from a pre-training only if these match.
PRETRAIN_KEYS_PREFIXES = (
    "seed",
    "data.",
    "generator.",
    "eval.",
    "optim.batch_size",
    "optim.lr_g",
    "optim.weight_decay",
)
PRETRAIN_KEYS_EXACT = ("schedule.pretrain_g_steps", "schedule.pretrain_g_patience", "schedule.eval_every", "optim.amp")


# Keys that records written by earlier versions carry and this version no longer has: a stored config (a checkpoint's,
# a run.json's) is read without them. A user's config naming one is still refused as unknown.
RETIRED_KEYS = {
    "loss.emb_margin": "the hinge form of eq. 5, removed for emb_unit in round 3 (docs/calibration.md)",
}


def without_retired(flat: dict[str, Any]) -> dict[str, Any]:
    """A stored flat config without the keys this version retired (RETIRED_KEYS)."""
    return {key: value for key, value in flat.items() if key not in RETIRED_KEYS}


def pretrain_keys(flat: dict[str, Any]) -> list[str]:
    """The flat config keys that determine a generator pre-training."""
    return sorted(k for k in flat if k.startswith(PRETRAIN_KEYS_PREFIXES) or k in PRETRAIN_KEYS_EXACT)


@dataclass(frozen=True)
class DataConfig:
    height: int = 64  # training size: frames and label maps are resized to this (the cpu preset's)
    width: int = 128
    sigma: float = 1.0  # Gaussian width of the rendered label lines, in training pixels (paper: 1)
    train_limit: int = 0  # use only the first N training frames (0 = all): for smoke runs
    val_limit: int = 0  # evaluate on the first N validation frames (0 = all)
    # The frames G and D train on: "train" (every labelled sequence but the validation one: Tables 1, 3, 4) or
    # "trainval" (all of them, as the paper's test-set models: Table 2; the validation figures are then of frames
    # seen in training, and the report says so).
    train_split: str = "train"

    def __post_init__(self) -> None:
        _require(self.train_split in TRAIN_SPLITS, f"must be one of {', '.join(TRAIN_SPLITS)}", "data.train_split")
        _in_range(self.height, 1, MAX_HEIGHT, "data.height")
        _in_range(self.width, 1, MAX_WIDTH, "data.width")
        _in_range(self.sigma, 0, MAX_SIGMA, "data.sigma", low_open=True)
        _require(self.train_limit >= 0 and self.val_limit >= 0, "limits must be >= 0", "data.val_limit")


@dataclass(frozen=True)
class GeneratorConfig:
    """Tiramisu FC-DenseNet layer plan (Jegou et al.); the paper's is 7 levels, 64 3x3 convs."""

    first_conv: int = 48  # channels of the first 3x3 conv
    growth: int = 16  # channels each dense layer adds
    down_layers: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)  # dense layers per level; up path mirrors it
    bottleneck_layers: int = 7
    dropout: float = 0.2

    def __post_init__(self) -> None:
        key = "generator.down_layers"
        _require(1 <= len(self.down_layers) <= MAX_LEVELS, f"needs 1 to {MAX_LEVELS} levels", key)
        _require(all(1 <= n <= MAX_LAYERS for n in self.down_layers), f"each level needs 1 to {MAX_LAYERS} layers", key)
        _in_range(self.bottleneck_layers, 1, MAX_LAYERS, "generator.bottleneck_layers")
        _in_range(self.first_conv, 1, MAX_CHANNELS, "generator.first_conv")
        _in_range(self.growth, 1, MAX_CHANNELS, "generator.growth")
        _in_range(self.dropout, 0, 1, "generator.dropout", high_open=True)
        widest = self.first_conv + self.growth * (sum(self.down_layers) + self.bottleneck_layers)
        _require(widest <= MAX_WIDEST, f"the widest layer would have {widest} channels (at most {MAX_WIDEST})", key)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """DenseNet discriminator: two heads (image; label or prediction) for the first `head_blocks`
    dense blocks, concatenated, then shared blocks and a fully-convolutional patch-GAN classifier."""

    first_conv: int = 32  # channels of each head's first 3x3 conv
    growth: int = 12
    # Dense layers per block, heads included. Each head has its own 3x3 stem and head blocks, so the 3x3 convs
    # are 2 * (1 + head layers) + shared layers; the paper plan gives 2 * (1 + 2 + 2) + 3 + 4 + 4 + 5 + 6 = 32.
    block_layers: tuple[int, ...] = (2, 2, 3, 4, 4, 5, 6)
    head_blocks: int = 2
    compression: float = 0.5  # transition layers keep this fraction of channels
    dropout: float = 0.0

    def __post_init__(self) -> None:
        key = "discriminator.block_layers"
        _require(len(self.block_layers) > self.head_blocks >= 1, "need more blocks than head blocks", key)
        _require(len(self.block_layers) <= MAX_BLOCKS, f"at most {MAX_BLOCKS} blocks", key)
        _require(all(1 <= n <= MAX_LAYERS for n in self.block_layers), f"blocks need 1 to {MAX_LAYERS} layers", key)
        _in_range(self.first_conv, 1, MAX_CHANNELS, "discriminator.first_conv")
        _in_range(self.growth, 1, MAX_CHANNELS, "discriminator.growth")
        _require(0 < self.compression <= 1, "compression must be in (0, 1]", "discriminator.compression")
        _in_range(self.dropout, 0, 1, "discriminator.dropout", high_open=True)
        widest = 2 * self.first_conv + self.growth * sum(self.block_layers)  # two heads, before compression
        _require(widest <= MAX_WIDEST, f"the widest layer would have {widest} channels (at most {MAX_WIDEST})", key)


@dataclass(frozen=True)
class LossConfig:
    gen: str = "emb"  # generator adversarial term: "ce" (eq. 1 with BCE) or "emb" (eq. 3, 4)
    disc: str = "ce"  # discriminator loss: one of DISC_CHOICES; "ce" (eq. 2) or "emb" (eq. 5) are the paper's
    lambda_: float = 1.0  # weight of the adversarial term (flat key "loss.lambda"); paper: 1
    emb_block: int = 7  # dense block of D whose output is the embedding (paper: 3, 5, 7)
    # How the embedding distance of eq. (3, 4) is scaled: "plain" is the paper's L2 norm; "rms" divides it by
    # sqrt(embedding size), so that one lambda weighs the term alike for every block and preset (losses.py).
    emb_norm: str = "rms"

    def __post_init__(self) -> None:
        _require(self.gen in LOSS_CHOICES, f"must be one of {', '.join(LOSS_CHOICES)}", "loss.gen")
        _require(self.emb_norm in EMB_NORMS, f"must be one of {', '.join(EMB_NORMS)}", "loss.emb_norm")
        _require(self.disc in DISC_CHOICES, f"must be one of {', '.join(DISC_CHOICES)}", "loss.disc")
        _require(self.lambda_ >= 0 and math.isfinite(self.lambda_), "must be finite and >= 0", "loss.lambda")
        _require(self.emb_block >= 1, "must be >= 1", "loss.emb_block")


@dataclass(frozen=True)
class ScheduleConfig:
    """The paper's schedule: pre-train G (the baseline), pre-train D, then alternate G and D."""

    pretrain_g_steps: int = 10_000  # budget; stops earlier at a validation plateau
    pretrain_g_patience: int = 0  # evaluations without improvement that end pre-training (0 = off)
    pretrain_d_steps: int = 10_000
    gan_steps: int = 20_000  # G and D steps of the alternating phase, counted together
    g_steps_per_round: int = 300
    d_steps_per_round: int = 200
    eval_every: int = 1_000  # steps of a phase between validation evaluations (and checkpoints); also at its end
    # The GAN phase's own interval (0 = eval_every): Table 3's variance "over training" needs many evaluations of
    # the GAN phase, while the pre-trainings need few.
    gan_eval_every: int = 0

    def __post_init__(self) -> None:
        for name in ("pretrain_g_steps", "pretrain_d_steps", "gan_steps", "pretrain_g_patience", "gan_eval_every"):
            _require(getattr(self, name) >= 0, "must be >= 0", f"schedule.{name}")
        for name in ("g_steps_per_round", "d_steps_per_round", "eval_every"):
            _require(getattr(self, name) >= 1, "must be >= 1", f"schedule.{name}")


@dataclass(frozen=True)
class OptimConfig:
    batch_size: int = 8  # global batch; split across workers under DDP
    lr_g: float = 1e-3  # Adam, generator
    lr_d: float = 1e-3  # SGD, discriminator (the paper found SGD more stable for D)
    momentum_d: float = 0.9
    weight_decay: float = 1e-4
    # Precision of G's and D's forward passes: "fp32", or "bf16" autocast (convolutions in bfloat16, weights,
    # optimiser states and losses in float32), about twice as fast on GPUs with bf16 tensor cores.
    amp: str = "fp32"
    # torch.compile G and D in place (state-dict keys unchanged). Off by default: at the cpu preset on CPU the
    # compiled steps took 7-20% more CPU time and compiling took ~6 minutes per process; dropout then draws
    # inductor's masks, not eager's. Untried on GPUs.
    compile: bool = False

    def __post_init__(self) -> None:
        _require(self.amp in AMP_CHOICES, f"must be one of {', '.join(AMP_CHOICES)}", "optim.amp")
        _require(isinstance(self.compile, bool), "must be true or false", "optim.compile")
        _in_range(self.batch_size, 1, MAX_BATCH, "optim.batch_size")
        for name in ("lr_g", "lr_d", "momentum_d", "weight_decay"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value >= 0, "must be finite and >= 0", f"optim.{name}")


@dataclass(frozen=True)
class EvalConfig:
    threshold: float = 0.5  # probability above which a pixel is lane marking
    # Our post-processing filters, off (0) by default as the paper describes none (postprocess.py): the smallest
    # connected component kept, in training pixels, and the most lanes kept per frame, the biggest first.
    min_area: int = 0
    max_lanes: int = 0

    def __post_init__(self) -> None:
        _require(0 < self.threshold < 1, "must be in (0, 1)", "eval.threshold")
        _in_range(self.min_area, 0, MAX_HEIGHT * MAX_WIDTH, "eval.min_area")
        _in_range(self.max_lanes, 0, MAX_LANES, "eval.max_lanes")


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        # One seed seeds Python, numpy and torch; numpy takes seeds in [0, 2**32).
        _require(0 <= self.seed < MAX_SEED, "must be in [0, 2**32)", "seed")
        n_blocks = len(self.discriminator.block_layers)
        _require(
            self.loss.emb_block <= n_blocks,
            f"the discriminator has {n_blocks} blocks",
            "loss.emb_block",
        )

    def to_flat(self) -> dict[str, Any]:
        """Flat dotted keys with JSON-friendly values (tuples become lists)."""
        return _flatten(self)

    @classmethod
    def from_flat(cls, flat: dict[str, Any], base: TrainConfig | None = None, source: str = "config") -> TrainConfig:
        """Apply flat dotted keys over `base` (default: the dataclass defaults); refuse unknown keys and bad types."""
        return _replace_flat(base or cls(), flat, source)

    def with_flat(self, flat: dict[str, Any], source: str = "config") -> TrainConfig:
        """A copy with some flat keys replaced, validated like from_flat."""
        return _replace_flat(self, flat, source)


@dataclass(frozen=True)
class RunSettings:
    """Infrastructure of one run: where data and outputs live and where it computes. Not hyperparameters."""

    out_dir: str  # evals.jsonl, checkpoints, preview arrays
    data_dir: str | None = None  # None = the embedded synthetic dataset
    tb_dir: str | None = None  # TensorBoard run folder (None = out_dir)
    device: str = "cpu"
    channels_last: bool = True  # models and frames in the NHWC layout: faster convolutions on CPU and GPU
    prefetch: bool = True  # prepare the next batch in a background thread while a step runs (batches.py)
    cudnn_benchmark: bool = True  # on CUDA, let cuDNN pick the fastest convolution algorithm per shape
    run_name: str = ""  # shown in TensorBoard and logs


def parse_overrides(pairs: list[str], source: str = "command line") -> dict[str, Any]:
    """['optim.lr_g=1e-4', 'loss.gen=ce'] -> flat dict; values are parsed as YAML scalars or lists.

    A value is plain YAML of at most MAX_OVERRIDE_CHARS characters: anchors and aliases (&a, *a) are refused,
    since a few hundred bytes of nested aliases stand for billions of values.
    """
    flat: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UserError(source, f"{quoted(pair)} is not of the form key=value")
        key = key.strip()
        if len(pair) > MAX_OVERRIDE_CHARS:
            raise UserError(source, f"{len(pair):,} characters long (at most {MAX_OVERRIDE_CHARS})", key=key)
        try:
            flat[key] = load_plain(text) if text.strip() else ""
        except (yaml.YAMLError, ValueError) as error:  # ValueError: an integer past Python's 4300 digits
            reason = (str(error).strip().splitlines() or ["not YAML"])[0]
            raise UserError(source, f"cannot parse the value {quoted(text)} ({reason})", key=key) from None
    return flat


def flat_keys() -> list[str]:
    """Every flat key a TrainConfig accepts."""
    return list(TrainConfig().to_flat())


# --- flat <-> nested conversion -------------------------------------------------------------------


def _require(condition: bool, rule: str, key: str) -> None:
    if not condition:
        raise _ConfigRuleError(rule, key)


def _in_range(value: float, low: float, high: float, key: str, low_open: bool = False, high_open: bool = False) -> None:
    """value must lie in [low, high] (or an open end): the rule names the interval. NaN is never in range."""
    above = low < value if low_open else low <= value
    below = value < high if high_open else value <= high
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    _require(above and below, f"must be in {interval}", key)


class _ConfigRuleError(ValueError):
    """A value that breaks a rule; from_flat turns it into a UserError naming the source."""

    def __init__(self, rule: str, key: str):
        super().__init__(rule)
        self.rule = rule
        self.key = key


def _flat_name(f: dataclasses.Field) -> str:
    # `lambda` is a Python keyword, so its field is `lambda_`; the flat key drops the underscore.
    return f.name.rstrip("_")


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = prefix + _flat_name(f)
        if dataclasses.is_dataclass(value):
            flat.update(_flatten(value, key + "."))
        else:
            flat[key] = list(value) if isinstance(value, tuple) else value
    return flat


def _replace_flat(base: TrainConfig, flat: dict[str, Any], source: str) -> TrainConfig:
    grouped: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    sections = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for key, value in flat.items():
        section, dot, name = str(key).partition(".")
        if not dot:
            if section not in sections or dataclasses.is_dataclass(getattr(base, section)):
                raise UserError(source, "unknown key", key=key)
            top[section] = _coerce(typing.get_type_hints(TrainConfig)[section], value, source, key)
            continue
        if section not in sections or not dataclasses.is_dataclass(getattr(base, section)):
            raise UserError(source, "unknown key", key=key)
        section_obj = getattr(base, section)
        by_flat = {_flat_name(f): f for f in dataclasses.fields(section_obj)}
        if name not in by_flat:
            raise UserError(source, f"unknown key (known: {', '.join(sorted(by_flat))})", key=key)
        f = by_flat[name]
        hint = typing.get_type_hints(type(section_obj))[f.name]
        grouped.setdefault(section, {})[f.name] = _coerce(hint, value, source, key)
    try:
        changes: dict[str, Any] = dict(top)
        for section, values in grouped.items():
            changes[section] = dataclasses.replace(getattr(base, section), **values)
        return dataclasses.replace(base, **changes)
    except _ConfigRuleError as error:
        raise UserError(source, error.rule, key=error.key) from None


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    """Check one value against its declared type; ints are accepted where floats are declared."""
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            value = float(value) if ok else value
        except OverflowError:  # an integer beyond any float
            raise UserError(source, f"{quoted(value)} is too large for a number", key=key) from None
    elif hint is str:
        ok = isinstance(value, str)
    elif typing.get_origin(hint) is tuple:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        value = tuple(value) if ok else value
    else:  # pragma: no cover - every declared field has one of the types above
        raise TypeError(f"unsupported config type {hint}")
    if not ok:
        names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
        expected = names.get(hint, "a list of integers")
        raise UserError(source, f"expected {expected}, got {quoted(value)}", key=key)
    return value
