"""A Ray cluster of two nodes on this machine (127.0.0.1), for the cluster tests: a head, and a worker node that may
see the file system differently (its own mount namespace) and may be killed like a lost machine."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from studies import sweep_env

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cluster_env(**extra: str) -> dict[str, str]:
    # Ray's socket paths must stay under 107 bytes: a short temp folder, not pytest's deep one. Token authentication
    # stays on: every node and the driver are given the cluster's token.
    env = sweep_env() | {"RAY_TMPDIR": tempfile.mkdtemp(prefix="ray", dir="/tmp")}
    return env | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)} | extra


def start_head(env: dict[str, str], port: int, cpus: int = 1) -> None:
    command = [RAY, "start", "--head", f"--port={port}", f"--num-cpus={cpus}", "--include-dashboard=false"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def start_worker(env: dict[str, str], port: int, cpus: int = 1, hidden: Path | None = None) -> subprocess.Popen:
    """A worker node in its own session (so that it can be killed whole); with `hidden`, in its own mount namespace
    where an empty file system covers that folder: the node's own disk at the path where the others see results."""
    start = f"exec {RAY} start --address=127.0.0.1:{port} --num-cpus={cpus} --block"
    command = ["sh", "-c", start]
    if hidden is not None:
        command = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount -t tmpfs none {hidden} && {start}",
        ]
    worker = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while time.time() < deadline and alive_nodes(env, port) < 2:
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        time.sleep(1)
    assert alive_nodes(env, port) == 2, "the worker node did not join"
    return worker


def alive_nodes(env: dict[str, str], port: int) -> int:
    code = f"import ray; ray.init(address='127.0.0.1:{port}'); print(sum(n['Alive'] for n in ray.nodes()))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


def kill_node(worker: subprocess.Popen) -> None:
    """The worker node dies as a lost machine would: every process of it at once, no goodbye."""
    for pid in [*descendants(worker.pid), worker.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker.wait()


def descendants(ancestor: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [ancestor]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def stop_cluster(env: dict[str, str]) -> None:
    # Only this cluster's processes (they carry its temp folder in their arguments); `ray stop` would end every Ray
    # on the machine.
    subprocess.run(["pkill", "-9", "-f", env["RAY_TMPDIR"]], capture_output=True)


def s3_keys(client, prefix):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="elgan-results", Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def s3_text(client, key):
    return client.get_object(Bucket="elgan-results", Key=key)["Body"].read().decode()
