"""Where the record lives: a local folder, or a URI that Ray's storage layer takes (s3://bucket/prefix, gs://...).

With a URI every process works in a node-local mirror of it (the same path on every node: the temp folder and a
digest of the URI) and copies through pyarrow.fs, as Ray's own storage layer does: a process pushes what it wrote
(a trial its run folder at every evaluation, the sweep study.json, evals.csv and the report) and pulls what it
reads (a restarted trial its run folder, the gather every run's record, the report a study folder). Every path of
layout.py is then a mirror path, and its object is at the same relative path under the URI. With a local folder
the mirror is the folder itself, and pushing and pulling do nothing.

An S3-compatible store (MinIO, Ceph, a test server) is named by AWS_ENDPOINT_URL, the variable every AWS SDK
reads, pyarrow's S3FileSystem included: set it for the sweep and on every node. Credentials come from the usual
chain (the environment, ~/.aws, a node's instance profile). No torch and no Ray here: the report uses it too.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from elgan_ray.errors import UserError

# What a pull of a study leaves behind: the checkpoints (tens of MB each at full size, read only by the trial that
# resumes) and Ray's own folders (Tune and Train read them through their storage layer).
NOT_PULLED = ("checkpoint.pt",)


def is_uri(results: str | Path) -> bool:
    return "://" in str(results)


def mirror_root(results: str | Path) -> Path:
    """The local folder that stands for `results`: itself, or for a URI a node-local mirror of it."""
    if not is_uri(results):
        return Path(results)
    digest = hashlib.sha256(str(results).rstrip("/").encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "elgan_ray_store" / digest


def uri_of(results: str, local: Path) -> str:
    """The URI of a mirror path."""
    relative = Path(local).relative_to(mirror_root(results)).as_posix()
    return str(results).rstrip("/") + ("" if relative == "." else f"/{relative}")


def _filesystem(results: str):
    """pyarrow's file system for the URI, and the path of the results root in it."""
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(str(results).rstrip("/"))
    except (pyarrow.ArrowInvalid, OSError) as error:
        raise UserError(results, f"not a storage URI pyarrow can open ({error})") from None


def _path(results: str, local: Path) -> tuple[object, str]:
    fs, root = _filesystem(results)
    relative = Path(local).relative_to(mirror_root(results)).as_posix()
    return fs, str(PurePosixPath(root) / relative) if relative != "." else root


def exists(results: str | Path, local: Path) -> bool:
    """Whether the file or folder at mirror path `local` exists in the store (locally: on disk)."""
    if not is_uri(results):
        return Path(local).exists()
    import pyarrow.fs

    fs, path = _path(str(results), local)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def push(results: str | Path, local: Path, to: Path | None = None) -> None:
    """Copy mirror file or folder `local` (recursively, hidden temporary files left out) to the store, at mirror
    path `to` (default: its own). A missing one is skipped. Locally: nothing."""
    local = Path(local)
    if not is_uri(results) or not local.exists():
        return
    import pyarrow.fs

    to = Path(to or local)
    fs, _ = _filesystem(str(results))
    if local.is_dir():
        files = sorted(p for p in local.rglob("*") if p.is_file() and not p.name.startswith("."))
        pairs = [(file, to / file.relative_to(local)) for file in files]
    else:
        pairs = [(local, to)]
    for file, target in pairs:
        pyarrow.fs.copy_files(str(file), _path(str(results), target)[1], pyarrow.fs.LocalFileSystem(), fs)


def pull(results: str | Path, local: Path, into: Path | None = None, skip: Iterable[str] = ()) -> bool:
    """Replace folder `into` (default: `local` itself) with the store's copy of mirror folder `local`, leaving out
    files named in `skip`; False when the store has none (then `into` is removed too: a mirror holds nothing the
    store does not, such as an older study's run of the same name). Locally: nothing."""
    if not is_uri(results):
        return Path(local).exists()
    import pyarrow.fs

    fs, path = _path(str(results), local)
    found = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=True, allow_not_found=True))
    files = [info for info in found if info.type == pyarrow.fs.FileType.File]
    into = Path(into or local)
    if not files:
        shutil.rmtree(into, ignore_errors=True)
        return False
    staging = into.with_name(f".{into.name}.{secrets.token_hex(4)}.pulling")  # filled, then renamed
    for info in files:
        relative = PurePosixPath(info.path).relative_to(path)
        if relative.name in skip:
            continue
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        pyarrow.fs.copy_files(info.path, str(staging / relative), fs, pyarrow.fs.LocalFileSystem())
    staging.mkdir(parents=True, exist_ok=True)
    if into.exists():
        shutil.rmtree(into)
    staging.rename(into)
    return True


def write_probe(results: str | Path, local: Path, text: str) -> None:
    """Write a small file at mirror path `local` straight to the store (and to the mirror)."""
    local = Path(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text)
    push(results, local)


def read_text(results: str | Path, local: Path) -> str | None:
    """A small file's text, read from the store (not the mirror); None when it is not there."""
    if not is_uri(results):
        return Path(local).read_text() if Path(local).is_file() else None
    fs, path = _path(str(results), local)
    try:
        with fs.open_input_stream(path) as stream:
            return stream.readall().decode()
    except (FileNotFoundError, OSError):
        return None


def remove(results: str | Path, local: Path) -> None:
    """Delete mirror file or folder `local` and the store's copy of it."""
    import pyarrow.fs

    local = Path(local)
    if local.is_dir():
        shutil.rmtree(local, ignore_errors=True)
    else:
        local.unlink(missing_ok=True)
    if is_uri(results):
        fs, path = _path(str(results), local)
        kind = fs.get_file_info(path).type
        if kind == pyarrow.fs.FileType.Directory:
            fs.delete_dir(path)
        elif kind == pyarrow.fs.FileType.File:
            fs.delete_file(path)


def pull_study(results: str | Path, study_dir: Path) -> None:
    """A study's record from the store into the mirror, as the gather and the report read it: study.json, evals.csv,
    every run folder (no checkpoints), the pre-trainings the runs started from, and index.csv. Locally: nothing."""
    if not is_uri(results):
        return
    from elgan_ray.record import layout
    from elgan_ray.record.runs import read_run_record

    root = mirror_root(results)
    runs = Path(study_dir) / layout.RUNS_DIR
    pull(results, runs, skip=NOT_PULLED)
    for single in (layout.study_file(study_dir), layout.evals_file(study_dir), layout.index_file(root)):
        text = read_text(results, single)
        if text is not None:
            single.parent.mkdir(parents=True, exist_ok=True)
            single.write_text(text)
    pids = {read_run_record(path)[0].get("pretrain_id") for path in layout.run_files(study_dir, layout.RUN_FILE)}
    for pid in sorted(p for p in pids if isinstance(p, str)):
        pull(results, layout.pretrain_root(root) / pid, skip=NOT_PULLED)


def push_report(results: str | Path, study_dir: Path, written: Iterable[Path]) -> None:
    """What the gather and the report wrote into the mirror, to the store: evals.csv, study.json, the report's
    files, index.csv, and the baselines' copies (runs/baseline*, tb/baseline*). Locally: nothing."""
    from elgan_ray.record import layout

    study_dir = Path(study_dir)
    baselines = [*study_dir.glob(f"{layout.RUNS_DIR}/baseline*"), *study_dir.glob(f"{layout.TB_DIR}/baseline*")]
    for path in [layout.evals_file(study_dir), layout.study_file(study_dir), *written, *baselines]:
        push(results, path)
