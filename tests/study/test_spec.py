"""Study files (study_spec.py) and their Tune param spaces (search_space.py): every shipped study loads, grids
have the planned size, and bad files fail with one line naming the file and the key (or the YAML line). Ray
Tune's sample classes are imported; Ray is not started."""

import time
from pathlib import Path

import pytest
import yaml

from elgan_ray.config import TrainConfig, flat_keys
from elgan_ray.errors import UserError
from elgan_ray.record.names import POSTS, SEED_KEY
from elgan_ray.study.plan import PLAN_KEY
from elgan_ray.study.spec import (
    MAX_SAMPLES,
    MAX_SEEDS,
    MAX_TRIALS,
    MAX_VALUES,
    SEARCH_DIR,
    grid_points,
    is_search,
    load_spec,
    scientific_points,
)
from elgan_ray.study.yaml_file import MAX_STUDY_BYTES
from elgan_ray.sweep.tune import plan_space, to_param_space

STUDIES = ["stability", "lambda", "embedding", "losses", "baseline", "optuna", "table2", "elgan_vs_control"]
GRID_SIZES = {
    "stability": 20,
    "lambda": 18,
    "embedding": 9,
    "losses": 12,
    "baseline": 3,
    "optuna": 2,
    "table2": 3,
    "elgan_vs_control": 20,
}


def test_every_study_file_is_shipped_and_loads():
    assert sorted(p.stem for p in SEARCH_DIR.glob("*.yaml")) == sorted([*STUDIES, "base"])
    for name in STUDIES:
        spec = load_spec(name)
        assert spec.study == name
        assert Path(spec.path).name == f"{name}.yaml"
        assert (spec.metric_name, spec.metric_post, spec.metric_mode) == ("accuracy", "basic++", "max")
        assert spec.resources == {"cpu": 1.0, "gpu": 0.0, "workers": 1}
        keys = set(flat_keys())
        assert set(spec.scientific) | set(spec.nuisance) | set(spec.fixed) <= keys
        # No key is two kinds at once: base.yaml's fixed loss.lambda is dropped where a study varies it.
        assert not set(spec.fixed) & (set(spec.scientific) | set(spec.nuisance))


@pytest.mark.parametrize("name", STUDIES)
def test_grid_sizes_and_every_point_builds_a_config(name):
    spec = load_spec(name)
    points = grid_points(spec)
    assert len(points) == GRID_SIZES[name]
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    for point in points:
        TrainConfig.from_flat(spec.fixed | point)


def test_study_plans():
    stability = load_spec("stability")
    assert stability.scientific == {"loss.gen": ["ce", "emb"], "loss.disc": ["ce", "emb"]}
    assert stability.seeds == 5 and stability.tables == ("stability",) and not is_search(stability)
    assert load_spec("embedding").scientific == {"loss.emb_block": [3, 5, 7]}
    assert load_spec("baseline").scientific == {"loss.gen": ["emb"], "loss.disc": ["ce"]}
    optuna = load_spec("optuna")
    assert is_search(optuna) and optuna.num_samples == 8 and optuna.seeds == 2
    assert set(optuna.nuisance) >= {"loss.lambda", "optim.lr_g", "optim.lr_d", "schedule.gan_steps"}


def test_grid_order_seed_fastest():
    points = grid_points(load_spec("stability"))
    assert points[:6] == [{"loss.gen": "ce", "loss.disc": "ce", SEED_KEY: s} for s in range(5)] + [
        {"loss.gen": "ce", "loss.disc": "emb", SEED_KEY: 0}
    ]
    assert scientific_points(load_spec("stability"))[-1] == {"loss.gen": "emb", "loss.disc": "emb"}
    assert scientific_points(load_spec("optuna")) == [{}]


def test_postprocessing_names_match_the_postprocessor():

    assert tuple(POSTS) == tuple(POSTS)


def test_a_grid_study_is_one_grid_axis_of_planned_points_in_plan_order():
    plan = [{"seed": 0, "loss.lambda": 0.0, "role": "control"}, {"loss.gen": "ce", "seed": 0, "role": "gan"}]
    assert plan_space(plan) == {PLAN_KEY: {"grid_search": plan}}
    with pytest.raises(ValueError):
        to_param_space(load_spec("stability"))  # its runs are planned, not sampled


def test_search_param_space_maps_distributions_to_tune():
    from ray.tune.search.sample import Categorical, Float, Integer, LogUniform, Uniform

    spec = load_spec("optuna")
    space = to_param_space(spec)
    assert SEED_KEY not in space  # seeds come from Repeater's __trial_index__
    assert not any(isinstance(v, dict) and "grid_search" in v for v in space.values())  # OptunaSearch refuses it
    lr = space["optim.lr_g"]
    assert isinstance(lr, Float) and isinstance(lr.get_sampler(), LogUniform)
    assert (lr.lower, lr.upper) == (1.0e-4, 3.0e-3)
    assert isinstance(space["schedule.gan_steps"], Categorical)
    assert space["schedule.gan_steps"].categories == [200, 400, 800]
    assert not set(space) & set(spec.fixed)  # fixed keys stay out; the sweep applies them

    custom = _load(
        {"nuisance": {"loss.lambda": {"uniform": [0.5, 2]}, "schedule.eval_every": {"randint": [10, 20]}}},
        scientific={"loss.gen": ["ce", "emb"]},
        num_samples=3,
    )
    with pytest.raises(ValueError, match="2 scientific points"):
        to_param_space(custom)
    space = to_param_space(custom, {"loss.gen": "ce"})
    assert space["loss.gen"] == "ce"
    assert isinstance(space["loss.lambda"].get_sampler(), Uniform)
    assert isinstance(space["schedule.eval_every"], Integer)
    assert (space["schedule.eval_every"].lower, space["schedule.eval_every"].upper) == (10, 20)


def test_optuna_with_repeater_accepts_the_search_space():
    # What the sweep builds: Repeater(OptunaSearch) proposes the nuisance keys and a repeat index per seed.
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    spec = load_spec("optuna")
    searcher = Repeater(OptunaSearch(seed=0), repeat=spec.seeds)
    assert searcher.set_search_properties("accuracy", "max", to_param_space(spec))
    first, second = searcher.suggest("t0"), searcher.suggest("t1")
    assert (first["__trial_index__"], second["__trial_index__"]) == (0, 1)
    assert first["optim.lr_g"] == second["optim.lr_g"]  # the same configuration, another seed


# --- bad files ------------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "study") -> Path:
    base = (SEARCH_DIR / "base.yaml").read_text()
    (tmp_path / "base.yaml").write_text(base)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _load(extra: dict, tmp_path: Path | None = None, **top):
    import tempfile

    folder = Path(tmp_path or tempfile.mkdtemp())
    doc = {"study": "study", "description": "a test", "base": "base.yaml", "scientific": {}} | top | extra
    return load_spec(str(_write(folder, yaml.safe_dump(doc, sort_keys=False))))


GOOD = """\
study: study
description: a test
base: base.yaml
scientific:
  loss.gen: [ce, emb]
seeds: 2
"""


def _error(tmp_path: Path, text: str, name: str = "study") -> UserError:
    path = _write(tmp_path, text, name)
    with pytest.raises(UserError) as info:
        load_spec(str(path))
    assert info.value.source == str(path) or info.value.source.endswith("base.yaml")
    return info.value


def test_a_good_custom_file_loads_by_path(tmp_path):
    spec = load_spec(str(_write(tmp_path, GOOD)))
    assert len(grid_points(spec)) == 4 and spec.fixed["loss.emb_block"] == 7
    assert "loss.lambda" not in spec.fixed  # lambda is the preset's: calibrated per scale


def test_unknown_config_key_names_file_line_and_key(tmp_path):
    error = _error(tmp_path, GOOD.replace("loss.gen: [ce, emb]", "loss.gen: [ce]\n  loss.genn: [ce]"))
    assert error.key == "loss.genn" and error.line == 6
    assert "study.yaml:6: key 'loss.genn'" in str(error)


def test_unknown_value_names_the_key(tmp_path):
    error = _error(tmp_path, GOOD.replace("[ce, emb]", "[ce, bogus]"))
    assert error.key == "loss.gen" and error.line == 5 and "ce, emb" in error.rule


def test_unknown_study_key_and_unknown_table(tmp_path):
    assert _error(tmp_path, GOOD + "seedz: 3\n").key == "seedz"
    assert _error(tmp_path, GOOD + "tables: [tabel1]\n").key == "tables"
    assert _error(tmp_path, GOOD + "metric: {post: basic+}\n").key == "metric.post"
    assert _error(tmp_path, GOOD + "resources: {gpus: 1}\n").key == "resources.gpus"


def test_bad_types(tmp_path):
    assert "integer" in _error(tmp_path, GOOD + "fixed: {loss.emb_block: 2.5}\n").rule
    assert _error(tmp_path, GOOD.replace("seeds: 2", "seeds: two")).key == "seeds"
    assert _error(tmp_path, GOOD.replace("[ce, emb]", "ce")).key == "loss.gen"
    assert _error(tmp_path, GOOD + "fixed: {generator.down_layers: [1, x]}\n").key == "generator.down_layers"


def test_float_written_without_a_dot_is_explained(tmp_path):
    error = _error(tmp_path, GOOD + "fixed: {optim.lr_g: 1e-4}\n")
    assert error.key == "optim.lr_g" and "1.0e-5" in error.rule
    error = _error(tmp_path, GOOD + "nuisance: {optim.lr_d: {loguniform: [1e-5, 1.0e-3]}}\nnum_samples: 2\n")
    assert error.key == "optim.lr_d" and "1.0e-5" in error.rule


def test_bad_distributions(tmp_path):
    def nuisance(text):
        return _error(tmp_path, GOOD + f"nuisance: {{{text}}}\nnum_samples: 2\n")

    assert "low > 0" in nuisance("optim.lr_g: {loguniform: [0.0, 1.0]}").rule
    assert "low < high" in nuisance("optim.lr_g: {uniform: [1.0, 0.5]}").rule
    assert "integer keys" in nuisance("optim.lr_g: {randint: [1, 5]}").rule
    assert "randint or choice" in nuisance("schedule.gan_steps: {uniform: [1.0, 5.0]}").rule
    assert nuisance("optim.lr_g: {normal: [0.0, 1.0]}").key == "optim.lr_g"
    assert nuisance("loss.gen: {choice: [ce, gan]}").key == "loss.gen"
    assert "both scientific and nuisance" in nuisance("loss.gen: {choice: [ce, emb]}").rule


def test_rules_between_keys(tmp_path):
    assert "seeds" in _error(tmp_path, GOOD + "fixed: {seed: 3}\n").rule
    assert _error(tmp_path, GOOD + "fixed: {loss.gen: emb}\n").key == "loss.gen"  # scientific and fixed
    assert _error(tmp_path, GOOD + "num_samples: 4\n").key == "num_samples"  # grid studies repeat with seeds
    # Fine alone, wrong together: the embedding block must exist in the discriminator.
    error = _error(tmp_path, GOOD + "fixed: {loss.emb_block: 6, discriminator.block_layers: [1, 1, 1]}\n")
    assert error.key == "loss.emb_block" and "3 blocks" in error.rule


def test_study_name_must_match_the_file(tmp_path):
    assert _error(tmp_path, GOOD, name="other").key == "study"


def test_yaml_syntax_error_names_the_line(tmp_path):
    error = _error(tmp_path, GOOD.replace("seeds: 2", "seeds: [2\nfixed: {}"))
    assert error.line is not None and error.line >= 6 and "not valid YAML" in error.rule
    assert _error(tmp_path, GOOD + "seeds: 3\n").line == 7  # a key written twice


def test_unsafe_yaml_is_refused(tmp_path):
    error = _error(tmp_path, GOOD + "fixed: !!python/object/apply:os.system [echo hi]\n")
    assert "not valid YAML" in error.rule


def test_errors_in_base_name_base_yaml(tmp_path):
    path = _write(tmp_path, GOOD)
    base = (SEARCH_DIR / "base.yaml").read_text()
    (tmp_path / "base.yaml").write_text(base.replace("loss.emb_block: 7", "loss.emb_blok: 7"))
    with pytest.raises(UserError) as info:
        load_spec(str(path))
    line = base.splitlines().index("  loss.emb_block: 7") + 1
    assert info.value.source == str(tmp_path / "base.yaml")
    assert (info.value.line, info.value.key) == (line, "loss.emb_blok")


def test_unknown_study_name_lists_the_studies():
    with pytest.raises(UserError, match="stability"):
        load_spec("stabilty")


# --- issue 13: bounded files, counts and ranges ------------------------------------------------------------


def test_every_count_is_bounded_before_anything_of_its_size_is_built(tmp_path):
    """Defect 6: `seeds: 1000000000000` built every grid point (6 GB in 30 s) before any message."""
    assert f"from 1 to {MAX_SEEDS}" in _error(tmp_path, GOOD.replace("seeds: 2", "seeds: 1000000000000")).rule
    assert _error(tmp_path, GOOD.replace("seeds: 2", f"seeds: {MAX_SEEDS + 1}")).key == "seeds"
    many = f"[{', '.join(str(i / 10) for i in range(MAX_VALUES + 1))}]"
    assert f"1 to {MAX_VALUES} values" in _error(tmp_path, GOOD.replace("[ce, emb]", many)).rule
    lambdas = f"[{', '.join(str(i / 10) for i in range(MAX_VALUES))}]"  # x 2 losses x 11 seeds: 2,200 trials
    body = GOOD.replace("loss.gen: [ce, emb]", f"loss.gen: [ce, emb]\n  loss.lambda: {lambdas}")
    error = _error(tmp_path, body.replace("seeds: 2", "seeds: 11"))
    assert error.key == "scientific" and f"at most {MAX_TRIALS:,}" in error.rule
    search = GOOD + "nuisance: {optim.lr_g: {loguniform: [1.0e-5, 1.0e-3]}}\n"
    assert _error(tmp_path, search + f"num_samples: {MAX_SAMPLES + 1}\n").key == "num_samples"
    assert "2 to 100 values" in _error(tmp_path, GOOD + f"nuisance: {{loss.lambda: {{choice: {many}}}}}\n").rule
    assert len(grid_points(load_spec(str(_write(tmp_path, GOOD.replace("seeds: 2", "seeds: 100")))))) == 200


@pytest.mark.parametrize(
    "resources",
    ["{cpu: .inf}", "{cpu: .nan}", "{cpu: 0}", "{cpu: 1" + "0" * 400 + "}", "{gpu: -1}", "{gpu: .inf}"]
    + ["{workers: 0}", "{workers: 2.5}", "{workers: 5000}", "{cpu: '1'}"],
)
def test_resources_are_finite_numbers_in_their_ranges(tmp_path, resources):
    """Defect 8: `resources: {cpu: .inf}` was accepted; the sweep's flags share these ranges."""
    error = _error(tmp_path, GOOD + f"resources: {resources}\n")
    assert error.key.startswith("resources.") and "must be" in error.rule


@pytest.mark.parametrize(
    "body, needle",
    [
        (GOOD + "# caf\xe9\n", "not UTF-8"),  # defect 13: one Latin-1 byte in a comment, named with its line
        (GOOD + "#" * MAX_STUDY_BYTES + "\n", f"larger than {MAX_STUDY_BYTES:,} bytes"),
        (GOOD + "fixed: {loss.lambda: &a 1.0, optim.lr_g: *a}\n", "anchors and aliases"),  # defect 4
        (GOOD + "fixed: {generator.down_layers: " + "[" * 2000 + "}\n", "nested deeper"),  # a RecursionError
        (GOOD + "fixed: {seed_x: " + "9" * 5000 + "}\n", "cannot be read"),  # past Python's 4300 digits
        (GOOD + "fixed: {seed_x: 2024-13-45}\n", "cannot be read"),  # a date PyYAML cannot make
        (GOOD + "fixed: {loss.lambda: '" + "1" * 60_000 + "x'}\n", "expected a number"),  # linear, not squared
        (GOOD.replace("base.yaml", "b" * 5000 + ".yaml"), "does not exist"),  # a name too long for the system
        (GOOD + "k" * 1000 + ": 1\n", "unknown study key"),  # the key is cut short in the line, not the rule
    ],
    ids=["latin-1", "too-large", "aliases", "deep", "huge-integer", "bad-date", "long-number-text", "long-base"]
    + ["long-key"],
)
def test_a_study_file_is_bounded_utf8_plain_yaml(tmp_path, body, needle):
    path = tmp_path / "study.yaml"
    (tmp_path / "base.yaml").write_text((SEARCH_DIR / "base.yaml").read_text())
    path.write_bytes(body.encode("latin-1") if "\xe9" in body else body.encode())
    started = time.perf_counter()
    with pytest.raises(UserError) as info:
        load_spec(str(path))
    assert time.perf_counter() - started < 10  # the number-as-text pattern once took minutes on 60,000 digits
    assert needle in info.value.rule and info.value.source == str(path) and needle in str(info.value)
    assert len(str(info.value)) < 400  # every value it quotes is cut short
    if "\xe9" in body:
        assert info.value.line == len(GOOD.splitlines()) + 1
