"""Study files (search_spaces/*.yaml) -> a validated SweepSpec, and its grid and scientific points.

A study file names its keys the tuning-playbook way (all keys are TrainConfig flat keys, e.g. `loss.gen`):

    study: stability                      # = the file name; results go to <results>/<study>/
    description: one line for the results index
    base: base.yaml                       # shared defaults, merged underneath (mappings key by key)
    metric: {name: accuracy, post: basic++, mode: max}
    scientific: {loss.gen: [ce, emb]}     # what the study compares: a grid, every combination
    seeds: 5                              # replicates of every configuration: seeds 0..4
    nuisance: {optim.lr_g: {loguniform: [1.0e-5, 1.0e-3]}}   # tuned per scientific point (Optuna); {} = grid
    num_samples: 8                        # search studies: configurations Optuna proposes per scientific point
    fixed: {loss.lambda: 1.0}             # constants on top of the preset chosen on the command line
    tables: [stability]                   # the paper tables the report writes
    resources: {cpu: 1, gpu: 0, workers: 1}
    scheduler: {name: asha, grace_period: 2, reduction_factor: 2}   # search studies only: early stopping (ASHA)

Distributions: {loguniform: [a, b]}, {uniform: [a, b]} (float keys), {randint: [a, b]} (integer keys, b
excluded, as in tune.randint), {choice: [v, ...]}. A fixed key of base.yaml that a study varies is dropped.
Everything is checked on load, values included (each grid point is built as a TrainConfig), so a typo
fails before any compute with one line naming the file, the YAML line and the key. Every count is bounded
(the MAX_* below; a file's size and its YAML are yaml_file.py's) and refused before anything of that size is
built. No Ray here: the translation of a spec into Ray Tune's param space is sweep/tune.py's. `scheduler` is
checked by scheduler.py; sweep/tune.py turns it into Tune's.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from elgan_ray.config import TrainConfig, flat_keys
from elgan_ray.errors import UserError, quoted
from elgan_ray.record.layout import RESERVED_NAMES
from elgan_ray.record.names import METRIC_NAMES, MODES, POSTS, SEED_KEY, is_finite_number, resource_rule
from elgan_ray.study.scheduler import check_scheduler
from elgan_ray.study.yaml_file import find_study_file, is_file, read_study_yaml

SEARCH_DIR = Path(__file__).resolve().parents[2] / "search_spaces"  # the repo's folder (editable install)
TABLES = ("stability", "baseline", "embedding", "lambda", "losses")
DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")
REQUIRED = ("study", "description", "metric", "scientific", "seeds", "nuisance", "num_samples", "fixed", "tables")
TOP_KEYS = (*REQUIRED, "base", "resources", "scheduler")
STUDY_ONLY = ("study", "description", "base", "scheduler")  # keys base.yaml may not hold
MAPPINGS = ("metric", "scientific", "nuisance", "fixed", "resources", "scheduler")  # merged key by key over base.yaml
DEFAULT_RESOURCES = {"cpu": 1.0, "gpu": 0.0, "workers": 1}
# Bounds of a study: generous for any real one (the shipped files are about 1 KB and make at most 40 GAN trials),
# far from what exhausts memory or time when the sweep builds and checks every run before it starts.
MAX_SEEDS = 100
MAX_VALUES = 100  # the values of one scientific key, or of one nuisance choice
MAX_SAMPLES = 1000  # num_samples: configurations Optuna proposes per scientific point
MAX_TRIALS = 2000  # GAN trials of a study: scientific combinations x seeds x num_samples
_FLOAT_TEXT = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")  # linear: no two ways to match a digit


@dataclass(frozen=True)
class SweepSpec:
    study: str
    description: str
    path: str  # the study file, as given or found
    metric_name: str
    metric_post: str
    metric_mode: str
    scientific: dict[str, list]  # key -> values; a grid over every combination
    seeds: int  # seeds 0..seeds-1 for every configuration
    nuisance: dict[str, dict]  # key -> {distribution: args}; empty for grid studies
    num_samples: int  # search studies: configurations proposed per scientific point; 1 for grid studies
    fixed: dict[str, Any]  # applied over the preset
    tables: tuple[str, ...]
    resources: dict  # {"cpu": float, "gpu": float, "workers": int}: defaults, the command line overrides
    # search studies: {"name": "asha", "grace_period": int (GAN-phase evaluations), "reduction_factor": float}
    scheduler: dict | None = None
    # SHA-256 of the bytes of the study file and of its base: what study.json records, and a --resume compares
    digests: dict[str, str] = field(default_factory=dict)


def load_spec(name_or_path: str, search_dir: Path | None = None) -> SweepSpec:
    """A study by name (search_dir/<name>.yaml, default the repo's search_spaces/) or by path, validated."""
    path = find_study_file(name_or_path, search_dir or SEARCH_DIR)
    study, study_lines, digest = read_study_yaml(path)
    digests = {"study_file": digest}
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], tuple[Path, int | None]] = {}  # (section[, key]) -> where it was written
    if "base" in study:
        base_name = study["base"]
        if not isinstance(base_name, str) or not base_name.endswith((".yaml", ".yml")):
            raise UserError(path, "must name a YAML file next to this one", line=study_lines.get(("base",)), key="base")
        base_path = path.parent / base_name
        if not is_file(base_path):
            line = study_lines.get(("base",))
            raise UserError(path, f"{quoted(str(base_path))} does not exist", line=line, key="base")
        base, base_lines, digests["base_file"] = read_study_yaml(base_path)
        for key in base:
            if key in STUDY_ONLY:
                raise UserError(base_path, "belongs in each study file", line=base_lines.get((key,)), key=key)
        _merge(merged, origin, base, base_path, base_lines)
    _merge(merged, origin, study, path, study_lines)
    return replace(_validate(merged, origin, path), digests=digests)


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every scientific combination crossed with every seed, as flat dicts with `seed`.

    Order: the scientific keys in file order (first key slowest), then the seed, which varies fastest.
    """
    keys = list(spec.scientific)
    combos = itertools.product(*(spec.scientific[k] for k in keys))
    return [dict(zip(keys, combo, strict=True)) | {SEED_KEY: seed} for combo in combos for seed in range(spec.seeds)]


def scientific_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every scientific combination without seeds (one `{}` when there are no scientific keys)."""
    keys = list(spec.scientific)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(spec.scientific[k] for k in keys))]


def is_search(spec: SweepSpec) -> bool:
    """A search study (Optuna over the nuisance keys) rather than a grid."""
    return bool(spec.nuisance)


# --- merging ------------------------------------------------------------------------------------------


def _merge(merged: dict, origin: dict, data: dict, path: Path, lines: dict) -> None:
    for key, value in data.items():
        key = str(key)
        if key not in TOP_KEYS:
            raise UserError(path, f"unknown study key (known: {', '.join(TOP_KEYS)})", line=lines.get((key,)), key=key)
        if key in MAPPINGS:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise UserError(path, "must be a mapping", line=lines.get((key,)), key=key)
            section = merged.setdefault(key, {})
            for sub, sub_value in value.items():
                section[str(sub)] = sub_value
                origin[(key, str(sub))] = (path, lines.get((key, str(sub))))
        else:
            merged[key] = value
        origin[(key,)] = (path, lines.get((key,)))


# --- checking ------------------------------------------------------------------------------------------


class _Checker:
    """Raises UserErrors that point at the file and line where a key was written (study file or base.yaml)."""

    def __init__(self, origin: dict, path: Path):
        self.origin = origin
        self.path = path

    def fail(self, rule: str, section: str | None, key: str | None = None) -> NoReturn:
        """Name the file and line that set `section` (or `section.key`); section None: whichever set `key`."""
        if section is None:
            section = next((s for s in ("scientific", "fixed", "nuisance") if (s, key) in self.origin), "fixed")
        where, line = self.origin.get((section, key) if key else (section,), (self.path, None))
        if key is None:
            shown = section
        elif section in ("scientific", "nuisance", "fixed"):
            shown, rule = key, f"in {section}: {rule}"  # the flat key itself, e.g. 'loss.gen'
        else:
            shown = f"{section}.{key}"
        raise UserError(where, rule, line=line, key=shown)

    def value(self, section: str, key: str, value: Any) -> None:
        """One value of a flat key, checked by building a TrainConfig with it."""
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()) and _is_number(_DEFAULTS[key]):
            rule = f"{quoted(value)} is read as text: write numbers with a dot and a signed exponent, e.g. 1.0e-5"
            self.fail(rule, section, key)
        try:
            TrainConfig.from_flat({key: value}, source=str(self.path))
        except UserError as error:
            if error.key == key:  # a rule between keys (emb_block vs block_layers) is checked on whole points
                self.fail(error.rule, section, key)


_DEFAULTS = TrainConfig().to_flat()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _in_range(value: Any, low: float, high: float, integer: bool = False, low_open: bool = False) -> bool:
    """A number (an int where integer) in [low, high], or (low, high] where low_open; NaN never is."""
    if not (isinstance(value, int) if integer else _is_number(value)) or isinstance(value, bool):
        return False
    return (low < value if low_open else low <= value) and value <= high


def _validate(raw: dict[str, Any], origin: dict, path: Path) -> SweepSpec:
    check = _Checker(origin, path)
    for key in REQUIRED:
        if key not in raw:
            check.fail(f"missing (neither {path.name} nor its base sets it)", key)
    study = raw["study"]
    if not isinstance(study, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", study):
        check.fail("must be a name of letters, digits, '_' or '-' (it names the results folder)", "study")
    if study != path.stem:
        check.fail(f"must be the file's name '{path.stem}', so that two files never share a results folder", "study")
    if study in RESERVED_NAMES:  # a results folder's shared pre-trainings and index, not a study's folder
        check.fail(
            f"'{study}' is reserved: every study of a results folder shares {', '.join(RESERVED_NAMES)}", "study"
        )
    if not isinstance(raw["description"], str) or not raw["description"].strip():
        check.fail("must be a line of text", "description")

    metric = raw["metric"]
    for key, allowed in (("name", METRIC_NAMES), ("post", POSTS), ("mode", MODES)):
        if metric.get(key) not in allowed:
            check.fail(f"must be one of {', '.join(allowed)}, got {quoted(metric.get(key))}", "metric", key)
    for key in metric:
        if key not in ("name", "post", "mode"):
            check.fail("unknown key (known: name, post, mode)", "metric", key)

    known = set(flat_keys())
    for section in ("scientific", "nuisance", "fixed"):
        for key in raw[section]:
            if key == SEED_KEY:
                check.fail("set `seeds: N` instead; seeds 0..N-1 are a grid axis of every study", section, key)
            if key not in known:
                check.fail("unknown config key (see elgan_ray.config.flat_keys())", section, key)

    scientific: dict[str, list] = {}
    for key, values in raw["scientific"].items():
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
            check.fail(f"must be a list of 1 to {MAX_VALUES} values", "scientific", key)
        for value in values:
            check.value("scientific", key, value)
        if any(values.count(v) > 1 for v in values):
            check.fail("lists a value twice", "scientific", key)
        scientific[key] = [_normal(key, v) for v in values]

    nuisance = {key: _check_distribution(check, key, dist) for key, dist in raw["nuisance"].items()}

    fixed: dict[str, Any] = {}
    for key, value in raw["fixed"].items():
        if key in scientific or key in nuisance:
            where, _ = origin[("fixed", key)]
            if where == path:
                check.fail("is also scientific or nuisance: a key is one of the three", "fixed", key)
            continue  # a default of base.yaml that this study varies
        check.value("fixed", key, value)
        fixed[key] = _normal(key, value)
    both = set(scientific) & set(nuisance)
    if both:
        check.fail("is both scientific and nuisance", "nuisance", sorted(both)[0])

    seeds, num_samples = raw["seeds"], raw["num_samples"]
    for key, value, high in (("seeds", seeds, MAX_SEEDS), ("num_samples", num_samples, MAX_SAMPLES)):
        if not _in_range(value, 1, high, integer=True):
            check.fail(f"must be an integer from 1 to {high:,}, got {quoted(value)}", key)
    if not nuisance and num_samples != 1:
        check.fail("must be 1 for a grid study (empty nuisance): repeat runs with `seeds`", "num_samples")
    combinations = math.prod(len(values) for values in scientific.values())
    if combinations * seeds * num_samples > MAX_TRIALS:  # checked before any of them is built
        check.fail(
            f"{combinations:,} combinations x {seeds} seeds x {num_samples} samples would make "
            f"{combinations * seeds * num_samples:,} GAN trials (at most {MAX_TRIALS:,})",
            "scientific",
        )

    tables = raw["tables"] or []
    if not isinstance(tables, list):
        check.fail(f"must be a list drawn from {', '.join(TABLES)}", "tables")
    for table in tables:
        if table not in TABLES:
            check.fail(f"unknown table {quoted(table)} (known: {', '.join(TABLES)})", "tables")

    resources = dict(DEFAULT_RESOURCES)
    for key, value in raw.get("resources", {}).items():
        if key not in DEFAULT_RESOURCES:
            check.fail(f"unknown key (known: {', '.join(DEFAULT_RESOURCES)})", "resources", key)
        rule = resource_rule(key, value)
        if rule:
            check.fail(f"{rule}, got {quoted(value)}", "resources", key)
        resources[key] = value if key == "workers" else float(value)

    scheduler = check_scheduler(check.fail, raw["scheduler"], is_search=bool(nuisance)) if "scheduler" in raw else None

    spec = SweepSpec(
        study=study,
        description=raw["description"].strip(),
        path=str(path),
        metric_name=metric["name"],
        metric_post=metric["post"],
        metric_mode=metric["mode"],
        scientific=scientific,
        seeds=seeds,
        nuisance=nuisance,
        num_samples=num_samples,
        fixed=fixed,
        tables=tuple(tables),
        resources=resources,
        scheduler=scheduler,
    )
    # Values that are fine alone may clash together (emb_block and the discriminator's blocks): build them all.
    for point in scientific_points(spec):
        try:
            TrainConfig.from_flat(fixed | point, source=str(path))
        except UserError as error:
            check.fail(f"{error.rule} (with {point or 'the fixed keys'})", None, error.key)
    return spec


def _normal(key: str, value: Any) -> Any:
    """Floats declared as floats stay floats (YAML `1` for loss.lambda becomes 1.0), so trial names agree."""
    return float(value) if isinstance(_DEFAULTS[key], float) and _is_number(value) else value


def _check_distribution(check: _Checker, key: str, dist: Any) -> dict[str, Any]:
    if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        check.fail(
            f"must be one distribution, e.g. {{loguniform: [a, b]}} (known: {', '.join(DISTRIBUTIONS)})",
            "nuisance",
            key,
        )
    ((kind, args),) = dist.items()
    default = _DEFAULTS[key]
    if kind == "choice":
        if not isinstance(args, list) or not 2 <= len(args) <= MAX_VALUES:
            check.fail(f"choice needs a list of 2 to {MAX_VALUES} values", "nuisance", key)
        for value in args:
            check.value("nuisance", key, value)
        return {kind: [_normal(key, v) for v in args]}
    if not isinstance(args, list) or len(args) != 2:
        check.fail(f"{kind} needs [low, high]", "nuisance", key)
    for value in args:
        if isinstance(value, str):
            check.value("nuisance", key, value)  # explains 1e-5 read as text
        if not is_finite_number(value):
            check.fail(f"{kind} bounds must be finite numbers, got {quoted(value)}", "nuisance", key)
    low, high = args
    if not low < high:
        check.fail(f"{kind} needs low < high, got [{quoted(low)}, {quoted(high)}]", "nuisance", key)
    if kind == "randint":
        if not (isinstance(default, int) and not isinstance(default, bool)):
            check.fail("randint is for integer keys; use uniform or loguniform", "nuisance", key)
        if not (isinstance(low, int) and isinstance(high, int)):
            check.fail("randint bounds must be integers", "nuisance", key)
        check.value("nuisance", key, low)
        check.value("nuisance", key, high - 1)  # high is excluded, as in tune.randint
        return {kind: [low, high]}
    if not isinstance(default, float):
        check.fail(
            f"{kind} samples floats but this key takes {type(default).__name__}: use randint or choice", "nuisance", key
        )
    if kind == "loguniform" and low <= 0:
        check.fail("loguniform needs low > 0", "nuisance", key)
    check.value("nuisance", key, float(low))
    check.value("nuisance", key, float(high))
    return {kind: [float(low), float(high)]}
