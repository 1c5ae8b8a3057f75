"""ensemble.py and val_maps.py: seed ensembles recomputed independently on synthetic maps; the maps file round trip."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from elgan_ray.config import EvalConfig
from elgan_ray.data.labels import H_SAMPLES, LaneLabel, render_lane_map
from elgan_ray.errors import UserError
from elgan_ray.evaluate import maps as val_maps
from elgan_ray.evaluate.metric import score_predictions
from elgan_ray.evaluate.postprocess import OUR_MAX_LANES, OUR_MIN_AREA, lanes_from_map
from elgan_ray.record import layout
from elgan_ray.report.ensemble import COLUMNS, ensemble_scores, most_accurate, study_ensembles

H, W = 64, 128
X0 = (300, 560, 820, 1080)  # four straight lanes, x at the bottom row


def _labels(n_frames: int = 3) -> list[LaneLabel]:
    labels = []
    for f in range(n_frames):
        lanes = tuple(tuple(int(x + (y - 710) * (0.3 + 0.1 * i) + 7 * f) for y in H_SAMPLES) for i, x in enumerate(X0))
        labels.append(LaneLabel(f"clips/{f}/20.jpg", lanes, H_SAMPLES))
    return labels


def _maps(labels: list[LaneLabel], missing: int | None) -> np.ndarray:
    """(V, H, W) uint8 maps of the labels with lane `missing` left out (a seed that misses one lane)."""
    maps = []
    for label in labels:
        lanes = [lane for i, lane in enumerate(label.lanes) if i != missing]
        maps.append(render_lane_map(lanes, label.h_samples, H, W, sigma=1.5))
    return val_maps.quantise(np.stack(maps))


def _score(maps: np.ndarray, labels: list[LaneLabel], post: str) -> float:
    """The TuSimple accuracy of float maps, written out: post-process each map, score the lot."""
    lanes = [lanes_from_map(m, x.h_samples, method=post, threshold=0.5) for m, x in zip(maps, labels, strict=True)]
    return score_predictions(lanes, labels).accuracy


def test_ensembles_of_one_to_n_seeds_are_the_mean_maps_scored():
    labels = _labels()
    seeds = [_maps(labels, missing) for missing in (0, 1, 2)]  # each seed misses a different lane
    rows = ensemble_scores(iter(seeds), labels, EvalConfig())
    assert [(r["n_models"], r["post"]) for r in rows] == [(k, p) for k in (1, 2, 3) for p in ("basic", "basic++")]
    for row in rows:
        k, post = row["n_models"], row["post"]
        mean = np.mean([s.astype(np.float64) / 255 for s in seeds[:k]], axis=0)  # (V, H, W)
        assert row["accuracy"] == pytest.approx(_score(mean, labels, post))
        singles = [_score(s / 255, labels, post) for s in seeds[:k]]
        assert row["member_accuracy_mean"] == pytest.approx(np.mean(singles))
    # Two seeds that each miss a lane leave both lanes at 0.5 (not above the threshold); three seeds see every
    # lane at least twice in three: the ensemble finds all four lanes that no seed found alone.
    perfect = _score(_maps(labels, None) / 255, labels, "basic++")
    by = {(r["n_models"], r["post"]): r for r in rows}
    assert by[3, "basic++"]["accuracy"] == pytest.approx(perfect)
    assert by[3, "basic++"]["member_accuracy_mean"] < perfect


def test_a_maps_file_from_before_the_filters_were_keys_scores_as_its_run_did(tmp_path):
    labels = _labels(2)
    maps = np.stack([render_lane_map(x.lanes, x.h_samples, H, W) for x in labels]).astype(np.float32)
    buffer = io.BytesIO()  # the old format: no max_lanes, and min_area 0 stood for our filter's 10
    records = [
        {"raw_file": x.raw_file, "lanes": [list(v) for v in x.lanes], "h_samples": list(x.h_samples)} for x in labels
    ]
    arrays = {"maps": val_maps.quantise(maps), "labels": np.array(json.dumps(records)), "threshold": np.float64(0.5)}
    np.savez_compressed(buffer, min_area=np.int64(0), **arrays)
    path = tmp_path / layout.VAL_MAPS_FILE
    path.write_bytes(buffer.getvalue())
    stored = val_maps.read(path)
    assert stored.eval_cfg == EvalConfig(threshold=0.5, min_area=OUR_MIN_AREA, max_lanes=OUR_MAX_LANES)


def test_maps_file_round_trip_keeps_what_scoring_needs(tmp_path):
    labels = _labels(2)
    maps = np.stack([render_lane_map(x.lanes, x.h_samples, H, W) for x in labels]).astype(np.float32)
    maps[0, 0, 0] = np.nan  # a diverged generator's map: stored as 0
    maps[0, 0, 1:4] = [0.5, np.nextafter(np.float32(0.5), np.float32(1)), 1.0]  # at, just above the threshold
    path = tmp_path / layout.VAL_MAPS_FILE
    path.write_bytes(val_maps.encode(maps, labels, EvalConfig(threshold=0.4, min_area=7, max_lanes=3)))
    stored = val_maps.read(path)
    assert stored.labels == labels and stored.eval_cfg == EvalConfig(threshold=0.4, min_area=7, max_lanes=3)
    assert stored.maps.dtype == np.uint8 and list(stored.maps[0, 0, :4]) == [0, 127, 128, 255]
    assert np.array_equal(stored.maps / 255 > 0.5, maps > 0.5)  # thresholded as the run's own maps were
    assert np.abs(stored.maps / 255 - np.nan_to_num(maps)).max() <= 0.5 / 255 + 1e-7
    whole = path.read_bytes()
    for damaged in (b"not an npz", whole[:100]):  # a foreign file; a truncated one (a zip without its directory)
        path.write_bytes(damaged)
        with pytest.raises(UserError, match="not a run's validation maps"):
            val_maps.read(path)


def _study(tmp_path, statuses: dict[str, list[str]]) -> tuple:
    """A study folder whose methods' seeds kept maps; `statuses` per method, seed by seed."""
    labels = _labels(2)
    rows = []
    for method, seeds in statuses.items():
        role = method if method in ("baseline", "control") else "gan"
        for seed, status in enumerate(seeds):
            name = f"{method},seed={seed}"
            run = tmp_path / "runs" / name
            run.mkdir(parents=True)
            (run / layout.VAL_MAPS_FILE).write_bytes(
                val_maps.encode(_maps(labels, seed % 4) / 255, labels, EvalConfig())
            )
            maps = _maps(labels, seed % 4)
            image = np.zeros((len(labels), H, W, 3), np.uint8)
            np.savez(run / "preview.npz", image=image, label=_maps(labels, None) / 255, prob=maps / 255)
            row = {"trial_id": name, "kind": "pretrain" if role == "baseline" else "gan", "role": role}
            row |= {
                "trial_name": name,
                "seed": seed,
                "gen_loss": "emb",
                "disc_loss": method.split("d=")[-1] if role == "gan" else "ce",
                "lambda": 1.0,
            }
            row |= {"emb_block": 7, "phase": "pretrain_g" if role == "baseline" else "gan", "step": 1}
            row |= {"accuracy": 0.5 + 0.1 * seed, "fp": 0.2, "fn": 0.3, "f1": 0.7, "status": status}
            rows += [row | {"post": post} for post in ("basic", "basic++")]
    return pd.DataFrame(rows), labels


def test_study_ensembles_per_method_from_ok_runs_in_seed_order(tmp_path):
    statuses = {"baseline": ["ok"] * 3, "control": ["ok"] * 3, "g=emb,d=ce": ["ok", "diverged", "ok", "ok"]}
    evals, labels = _study(tmp_path, statuses | {"g=emb,d=emb": ["ok"]})
    table, spreads = study_ensembles(tmp_path, evals)
    assert list(table.columns) == list(COLUMNS)
    sizes = table.groupby(["group", "post"])["n_models"].apply(list).to_dict()
    assert sizes["baseline", "basic++"] == [1, 2, 3] and sizes["control", "basic"] == [1, 2, 3]
    assert sizes["d=ce", "basic++"] == [1, 2, 3]  # the diverged seed 1 takes no part
    assert list(table[table.group == "d=ce"].seeds.drop_duplicates()) == ["0", "0 2", "0 2 3"]
    assert list(table.group.drop_duplicates()) == ["baseline", "control", "d=ce", "d=emb"]  # study_frame's order
    assert spreads["d=ce"].n_models == 3 and spreads["d=emb"].n_models == 1
    # The spread is the per-pixel std of the seeds' first frames.
    maps = [_maps(labels, s % 4)[:3] / 255 for s in (0, 2, 3)]
    np.testing.assert_allclose(spreads["d=ce"].std, np.std(maps, axis=0), atol=1e-6)
    assert most_accurate(table, ["d=ce", "d=emb"]) == "d=ce"  # d=emb has no ensemble of 2


def test_runs_of_other_frames_are_refused(tmp_path):
    evals, _ = _study(tmp_path, {"control": ["ok", "ok"], "g=emb,d=ce": ["ok"]})
    other = _labels(3)
    (tmp_path / "runs" / "control,seed=1" / layout.VAL_MAPS_FILE).write_bytes(
        val_maps.encode(_maps(other, 0) / 255, other, EvalConfig())
    )
    with pytest.raises(UserError, match="an ensemble averages maps of one set"):
        study_ensembles(tmp_path, evals)


def test_the_report_writes_ensembles_and_the_uncertainty_column(tmp_path):
    from elgan_ray.report import write_report
    from elgan_ray.report.inputs import read_study_evals

    study = tmp_path / "results" / "stab"
    statuses = {"baseline": ["ok"] * 2, "control": ["ok"] * 2, "g=emb,d=ce": ["ok"] * 3, "g=emb,d=emb": ["ok"] * 2}
    evals, _ = _study(study, statuses)
    evals.to_csv(study / "evals.csv", index=False)
    written, _ = write_report(study)
    for name in ("ensemble.csv", "ensemble.png", "predictions.png"):
        assert written[name] == study / name and (study / name).stat().st_size > 0
    table = pd.read_csv(study / "ensemble.csv", dtype={"seeds": str})
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 2 * (2 + 2 + 3 + 2)  # post x (ensembles of 1..n per method)
    pd.testing.assert_frame_equal(
        table, study_ensembles(study, read_study_evals(study / "evals.csv"))[0].astype(table.dtypes)
    )
