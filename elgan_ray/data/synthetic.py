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
from pathlib import Path

import cv2
import numpy as np

from elgan_ray.data.labels import H_SAMPLES, VALIDATION_SEQUENCE
from elgan_ray.data.render import TextureBank, render_scene
from elgan_ray.data.scene import sample_scene, scene_labels, sequence_look
from elgan_ray.errors import UserError
from elgan_ray.files import atomic_directory, check_writable, publish_staging, read_json_object, staging_directory

EMBEDDED_VERSION = "v1"  # bump when the generator changes: cached sets and pre-trainings are keyed on it
EMBEDDED_SIZES = (400, 100, 100)  # train, val, test frames of the embedded default dataset
MARKER = "synthetic.json"  # says what made a folder, so `synth` may overwrite its own output but no other
TRAIN_SEQUENCES = ("0313-1", "0313-2", "0531")  # as TuSimple: the two 0313 clips share label_data_0313.json
TEST_SEQUENCE = "0530"
MAX_FRAMES = 100_000  # per split: TuSimple itself has 3,626 training and 2,782 test frames


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

    A split with 0 frames gets no label file. `out` may be new, empty, or exactly a synthetic dataset this
    code wrote (nothing else in it): anything else is refused, so no file of the user's is ever deleted.
    """
    out = Path(out)
    for name, n in (("--train", n_train), ("--val", n_val), ("--test", n_test)):
        if not 0 <= n <= MAX_FRAMES:
            raise UserError(name, f"frame count must be in [0, {MAX_FRAMES:,}], got {n}")
    if n_train + n_val + n_test == 0:
        raise UserError("--train/--val/--test", "nothing to write: every frame count is 0")
    if out.is_symlink():
        raise UserError(out, "is a symbolic link: give the folder itself, or a new path")
    check_writable(out, "folder")
    _check_replaceable(out)
    with atomic_directory(out) as staging:
        _write_frames(staging, n_train, n_val, n_test, seed, progress)
        _check_replaceable(out)  # again: the user may have put a file in it while the frames were made
    return out


def _check_replaceable(out: Path) -> None:
    """UserError unless `out` is absent, an empty folder, or exactly a dataset written by _write_frames."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not out.is_dir() or not (out / MARKER).is_file():
        raise UserError(out, "exists and is not an empty folder or an earlier synthetic dataset: choose another")
    try:
        meta = read_json_object(out / MARKER)  # a regular file, bounded; deep nesting included, a UserError
        counts = [meta[split] for split in ("train", "val", "test")]
        ours = meta["generator"] == "elgan_ray.data.synthetic"
        ours = ours and all(type(n) is int and 0 <= n <= MAX_FRAMES for n in counts)
    except (UserError, TypeError, KeyError):
        ours = False
    if not ours:
        raise UserError(out / MARKER, "was not written by `synth`, so the folder is no earlier dataset: choose another")
    expected = _dataset_paths(*counts)
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if name not in expected or path.is_symlink() or path.is_dir() != expected[name]:
            rule = f"was not written by `synth` and would be deleted with {out}: move it, or choose another folder"
            raise UserError(path, rule)


def _dataset_paths(n_train: int, n_val: int, n_test: int) -> dict[str, bool]:
    """Every path (relative, posix) a dataset of these counts holds -> whether it is a folder."""
    paths = {MARKER: False}
    for label_file, sequence, index in _frames_of_split(n_train, n_val, n_test):
        raw_file = f"clips/{sequence}/{clip_id(sequence, index)}/20.jpg"
        paths[label_file] = paths[raw_file] = False
        parts = raw_file.split("/")
        paths.update({"/".join(parts[:k]): True for k in range(1, len(parts))})
    return paths


def embedded_dataset(cache_dir: str | Path | None = None) -> Path:
    """The project's default dataset (seed 0, EMBEDDED_SIZES), generated on first use and cached.

    Lives in `cache_dir`, else $ELGAN_RAY_CACHE, else ~/.cache/elgan_ray, as synthetic-<version>. Safe when
    several processes (Ray trials) ask at once: a lock lets one of them generate while the others wait, and
    the folder appears by one atomic rename, so whoever finds it finds it complete.
    """
    root, origin = _cache_root(cache_dir)
    final = root / f"synthetic-{EMBEDDED_VERSION}"
    if (final / MARKER).is_file():
        return final
    try:
        check_writable(root, "folder")
    except UserError as error:
        raise UserError(f"{origin} {root}", error.rule) from None
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".synthetic-{EMBEDDED_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here while one generates
        if (final / MARKER).is_file():
            return final
        staging = staging_directory(final)
        try:
            _write_frames(staging, *EMBEDDED_SIZES, seed=0, progress=sys.stderr.isatty())
            publish_staging(staging, final)  # fails if a process without the lock (other host) won the race
        except OSError:
            if not (final / MARKER).is_file():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _cache_root(cache_dir: str | Path | None) -> tuple[Path, str]:
    """The cache folder and where it came from: cache_dir, else $ELGAN_RAY_CACHE, else ~/.cache/elgan_ray.

    A home folder that does not exist is not created (it would be a folder at a path such as /nonexistent).
    """
    if cache_dir:
        return Path(cache_dir), "cache folder"
    if os.environ.get("ELGAN_RAY_CACHE"):
        return Path(os.environ["ELGAN_RAY_CACHE"]), "ELGAN_RAY_CACHE"
    home = Path.home()
    if not home.is_dir():
        raise UserError(f"HOME {home}", "the home folder does not exist: set ELGAN_RAY_CACHE to a writable folder")
    return home / ".cache" / "elgan_ray", "the cache folder in HOME"
