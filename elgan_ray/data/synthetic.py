"""A synthetic dataset in TuSimple's exact layout: dash-camera highway frames with their lane labels.

Stands in for the real benchmark in tests, smoke runs and the embedded default study data. A frame is a
pure function of (seed, sequence, index): scene.py draws the scene's parameters and labels, render.py its
pixels; this module spreads frames over TuSimple's sequences and writes them, all or nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from elgan_ray.data.labels import H_SAMPLES, VALIDATION_SEQUENCE
from elgan_ray.data.render import TextureBank, render_scene
from elgan_ray.data.scene import sample_scene, scene_labels, sequence_look
from elgan_ray.errors import UserError
from elgan_ray.files import atomic_directory

EMBEDDED_VERSION = "v1"  # bump when the generator changes: cached sets and pre-trainings are keyed on it
EMBEDDED_SIZES = (400, 100, 100)  # train, val, test frames of the embedded default dataset
MARKER = "synthetic.json"  # says what made a folder, so `synth` may overwrite its own output but no other
TRAIN_SEQUENCES = ("0313-1", "0313-2", "0531")  # as TuSimple: the two 0313 clips share label_data_0313.json
TEST_SEQUENCE = "0530"


def make_frame(seed: int, sequence: str, index: int, bank: TextureBank | None = None):
    """One frame and its lanes, a pure function of (seed, sequence, index): (BGR uint8, lanes, JPEG quality)."""
    code = int("".join(c for c in sequence if c.isdigit()))
    look = sequence_look(np.random.default_rng([seed, code]))
    rng = np.random.default_rng([seed, code, index])
    scene = sample_scene(rng, look)
    frame = render_scene(scene, rng, bank or TextureBank(seed))
    return frame, scene_labels(scene), scene.jpeg


# -- the dataset on disk ----------------------------------------------------------------------------


def _frames_of_split(n_train: int, n_val: int, n_test: int) -> list[tuple[str, str, int]]:
    """(label file, sequence, index) of every frame, as TuSimple spreads them over its sequences."""
    n_0531 = n_train // 8  # TuSimple: 0531 holds about a tenth of the training frames, the rest is 0313
    n_0313_2 = (n_train - n_0531) // 2
    counts = [
        ("label_data_0313.json", "0313-1", n_train - n_0531 - n_0313_2),
        ("label_data_0313.json", "0313-2", n_0313_2),
        ("label_data_0531.json", "0531", n_0531),
        (f"label_data_{VALIDATION_SEQUENCE}.json", VALIDATION_SEQUENCE, n_val),
        ("test_label.json", TEST_SEQUENCE, n_test),
    ]
    return [(name, seq, i) for name, seq, n in counts for i in range(n)]


def clip_id(sequence: str, index: int) -> str:
    """A clip folder name like TuSimple's: small numbers in 0313, 19-digit timestamps elsewhere."""
    if sequence.startswith("0313"):
        return str(60 * (index + 1) + (20 if sequence.endswith("2") else 0))
    base = {"0531": 1492626047222176976, "0530": 1492626760788443246}.get(sequence, 1494452381594376146)
    return str(base + 2_000_000_000 * index)  # clips of a drive are a couple of seconds apart


def _write_frames(folder: Path, n_train: int, n_val: int, n_test: int, seed: int, progress: bool) -> None:
    """Generate every frame into `folder` and write the label files (one JSON line per frame)."""
    from tqdm import tqdm

    bank = TextureBank(seed)
    lines: dict[str, list[str]] = {}
    frames = _frames_of_split(n_train, n_val, n_test)
    for name, sequence, index in tqdm(frames, desc="synth", unit="frame", disable=not progress, file=sys.stderr):
        frame, lanes, quality = make_frame(seed, sequence, index, bank)
        raw_file = f"clips/{sequence}/{clip_id(sequence, index)}/20.jpg"
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, "cv2 failed to encode a frame"
        (folder / raw_file).parent.mkdir(parents=True, exist_ok=True)
        (folder / raw_file).write_bytes(jpeg.tobytes())
        # Key order and spacing as in TuSimple's own files.
        lines.setdefault(name, []).append(
            json.dumps({"lanes": lanes, "h_samples": list(H_SAMPLES), "raw_file": raw_file})
        )
    for name, rows in lines.items():
        (folder / name).write_text("".join(row + "\n" for row in rows))
    meta = {"generator": "elgan_ray.data.synthetic", "version": EMBEDDED_VERSION, "seed": seed}
    meta |= {"train": n_train, "val": n_val, "test": n_test}
    (folder / MARKER).write_text(json.dumps(meta, indent=1) + "\n")


def write_synthetic_dataset(
    out: str | Path, n_train: int, n_val: int, n_test: int, seed: int, progress: bool = True
) -> Path:
    """Write a synthetic TuSimple-layout dataset to `out`, all or nothing; the same seed gives the same bytes.

    A split with 0 frames gets no label file. `out` may be new, empty, or an earlier synthetic dataset.
    """
    out = Path(out)
    for name, n in (("--train", n_train), ("--val", n_val), ("--test", n_test)):
        if n < 0:
            raise UserError(name, f"frame count must be >= 0, got {n}")
    if n_train + n_val + n_test == 0:
        raise UserError("--train/--val/--test", "nothing to write: every frame count is 0")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise UserError(out, "exists and is not an empty folder or an earlier synthetic dataset: choose another")
    with atomic_directory(out) as staging:
        _write_frames(staging, n_train, n_val, n_test, seed, progress)
    return out


def embedded_dataset(cache_dir: str | Path | None = None) -> Path:
    """The project's default dataset (seed 0, EMBEDDED_SIZES), generated on first use and cached.

    Lives in `cache_dir`, else $ELGAN_RAY_CACHE, else ~/.cache/elgan_ray, as synthetic-<version>. Safe when
    several processes (Ray trials) ask at once: a lock lets one of them generate while the others wait, and
    the folder appears by one atomic rename, so whoever finds it finds it complete.
    """
    root = Path(cache_dir or os.environ.get("ELGAN_RAY_CACHE") or Path.home() / ".cache" / "elgan_ray")
    final = root / f"synthetic-{EMBEDDED_VERSION}"
    if (final / MARKER).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".synthetic-{EMBEDDED_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here while one generates
        if (final / MARKER).is_file():
            return final
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=root))
        try:
            _write_frames(staging, *EMBEDDED_SIZES, seed=0, progress=sys.stderr.isatty())
            os.rename(staging, final)  # fails if a process without the lock (other host) won the race
        except OSError:
            if not (final / MARKER).is_file():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final
