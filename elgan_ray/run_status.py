"""A run's status.json: how its last process left it (`status`: ok, diverged, failed, stopped; `running` while
there is none) and its figures (train_seconds, loader_wait_seconds, workers, ...).

The training loop and Tune write it; the loop, Tune, the study files, the report and the study's cost read it,
all through read_status. JSON only: no torch, no TensorBoard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elgan_ray.errors import UserError, quoted
from elgan_ray.files import atomic_write_text, read_json_object

STATUS_NAME = "status.json"


def read_status(out_dir: str | Path) -> dict[str, Any]:
    """status.json of a run ({"status": "running"} while there is none); a damaged one is a UserError."""
    path = Path(out_dir) / STATUS_NAME
    if not path.exists():
        return {"status": "running"}
    status = read_json_object(path)
    if "status" not in status:
        raise UserError(path, "has no 'status': a status record says how its run ended")
    if not isinstance(status["status"], str):
        raise UserError(path, f"must be text, got {quoted(status['status'])}", key="status")
    return status


def write_status(out_dir: str | Path, status: dict[str, Any]) -> None:
    atomic_write_text(Path(out_dir) / STATUS_NAME, json.dumps(status, indent=1, sort_keys=True) + "\n")
