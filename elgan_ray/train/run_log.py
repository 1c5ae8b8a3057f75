"""What one run writes: evals.jsonl (the record every report is built from), TensorBoard, previews, the final
evaluation's validation maps (val_maps.npz), status.

Only rank 0 of a run writes. evals.jsonl is append-only during a run; on resume, rows after the
checkpoint's step are dropped first, so a run that was interrupted and resumed leaves exactly the rows
of an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams as hparams_summary

from elgan_ray.config import EvalConfig
from elgan_ray.evaluate.maps import encode
from elgan_ray.files import atomic_write_bytes, atomic_write_text
from elgan_ray.record import layout
from elgan_ray.record.names import MAIN_POST
from elgan_ray.record.runs import read_run_evals, write_status


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """The record with NaN and infinities as None: JSON has no such numbers (json.dumps would write NaN)."""
    return {k: _json_number(v) for k, v in record.items()}


class RunLog:
    """Writer of one run's record. `resume_step` > 0 drops rows (and TensorBoard events) after that step."""

    def __init__(self, out_dir: str | Path, tb_dir: str | Path | None, resume_step: int = 0):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        kept = [row for row in read_run_evals(self.out_dir) if row["step"] <= resume_step]
        atomic_write_text(self.out_dir / layout.RUN_EVALS_FILE, "".join(json.dumps(row) + "\n" for row in kept))
        # purge_step hides TensorBoard events that an interrupted run wrote after its last checkpoint.
        self.writer = SummaryWriter(str(tb_dir or self.out_dir), purge_step=resume_step or None)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def evaluation(
        self,
        step: int,
        phase: str,
        phase_step: int,
        validation: Any,
        health: dict[str, float],
        losses: dict[str, float],
    ) -> list[dict]:
        """Append one row per post-processing, and log scalars, images and the preview arrays.

        `phase_step` counts the steps done in `phase` (runs whose pre-trainings stopped at different steps line
        up on it); `losses` are the training losses since the last evaluation; `health` D's figures (health.py), empty
        before D exists. Both go into every row, so each row of evals.csv carries the state of the experiment."""
        rows = []
        for post, scores in validation.scores.items():
            row = {"step": step, "phase": phase, "phase_step": phase_step, "post": post, **scores}
            row |= {"line_width": validation.line_width, "label_width": validation.label_width, **losses, **health}
            rows.append({k: _json_number(v) for k, v in row.items()})
            suffix = "" if post == MAIN_POST else f"_{post}"
            self.scalars(step, {f"val/{name}{suffix}": value for name, value in scores.items()})
        self.scalars(step, {"val/line_width": validation.line_width, "val/label_width": validation.label_width})
        self.scalars(step, {f"health/{name}": value for name, value in health.items()})
        with open(self.out_dir / layout.RUN_EVALS_FILE, "a") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))
            handle.flush()
        self._images(step, validation)
        return rows

    def _images(self, step: int, validation: Any) -> None:
        # One row per frame: frame | label | raw prediction, as HWC images TensorBoard shows side by side.
        label = np.repeat(validation.preview_label[..., None], 3, axis=-1) * 255
        # A diverged generator gives NaN maps: shown as black rather than as whatever a NaN cast yields.
        prob = np.repeat(np.nan_to_num(validation.preview_prob, nan=0.0)[..., None], 3, axis=-1) * 255
        panels = np.concatenate([validation.preview_image, label.astype(np.uint8), prob.astype(np.uint8)], axis=2)
        self.writer.add_images("val/frame_label_prediction", panels, step, dataformats="NHWC")
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, image=validation.preview_image, label=validation.preview_label, prob=validation.preview_prob
        )
        atomic_write_bytes(self.out_dir / layout.PREVIEW_FILE, buffer.getvalue())

    def final_maps(self, maps: np.ndarray, labels: list, eval_cfg: EvalConfig) -> None:
        """val_maps.npz: the final evaluation's maps (V, H, W) and what scores them, for the report's seed
        ensembles (evaluate/maps.py has the format)."""
        atomic_write_bytes(self.out_dir / layout.VAL_MAPS_FILE, encode(maps, labels, eval_cfg))

    def finish(self, status: dict[str, Any], hparams: dict[str, Any], final: dict[str, float]) -> None:
        """status.json, and the HParams summary that lets TensorBoard compare runs by configuration."""
        write_status(self.out_dir, status)
        metric_tags = {f"val/{name}": value for name, value in final.items() if _is_finite(value)}
        exp, ssi, sei = hparams_summary({k: _hparam_value(v) for k, v in hparams.items()}, metric_tags)
        for summary in (exp, ssi, sei):
            self.writer.file_writer.add_summary(summary)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _json_number(value: Any) -> Any:
    # JSON has no NaN; a diverged run's metrics are written as null.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _hparam_value(value: Any) -> Any:
    # The HParams plugin takes numbers, strings and booleans; layer plans become strings.
    return value if isinstance(value, (bool, int, float, str)) else str(value)
