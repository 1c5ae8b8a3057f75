"""lock.py: one owner at a time, a gone owner's lock taken over by exactly one process, never someone else's."""

import os
import socket
import subprocess
import sys
import time

from elgan_ray import lock as lock_module
from elgan_ray.lock import OwnerLock, parse_owner


def dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_held_lock_is_refused_naming_its_owner_and_released_only_by_it(tmp_path):
    path = tmp_path / "a" / "b" / "x.lock"
    first = OwnerLock(path, make_parents=True)
    assert first.acquire()
    owner = parse_owner(path.read_bytes())
    assert (owner.host, owner.pid) == (socket.gethostname(), os.getpid()) and abs(owner.since - time.time()) < 60
    second = OwnerLock(path)
    assert not second.acquire() and second.holder == owner
    assert f"host {socket.gethostname()}, pid {os.getpid()}, since " in str(second.holder)
    second.release()  # not its lock: nothing happens
    assert path.exists()
    first.release()
    assert not path.exists() and not (tmp_path / "a").exists()  # the folders it made, empty again, removed
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_dead_owner_s_lock_is_taken_over_and_a_live_one_s_is_not(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text(f"{socket.gethostname()} {dead_pid()} {time.time():.6f} 0123456789abcdef\n")
    taker = OwnerLock(path)
    assert taker.acquire()
    assert parse_owner(path.read_bytes()).pid == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.lock"]  # no takeover token, no temporary file left
    taker.release()
    # The older two-field line ("host pid") of a live process: held.
    path.write_text(f"{socket.gethostname()} {os.getppid()}\n")
    assert not OwnerLock(path).acquire()


def test_a_reused_pid_does_not_keep_a_dead_owner_s_lock(tmp_path):
    """A lock whose pid is alive now, but as a process that started after the lock was taken: its owner is gone."""
    started = lock_module._started(os.getpid())
    if started is None:
        return  # no /proc: a pid's start time cannot be known here, and an alive pid keeps its lock
    path = tmp_path / "x.lock"
    path.write_text(f"{socket.gethostname()} {os.getpid()} {started - 100:.6f} 0123456789abcdef\n")
    taker = OwnerLock(path)
    assert taker.acquire()
    taker.release()
    path.write_text(f"{socket.gethostname()} {os.getpid()} {started + 1:.6f} 0123456789abcdef\n")
    assert not OwnerLock(path).acquire()  # taken by this very process: alive


def test_another_host_s_lock_is_held_until_it_has_not_been_touched_for_the_stale_time(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text(f"elsewhere.example 1 {time.time():.6f} 0123456789abcdef\n")
    assert not OwnerLock(path).acquire()
    old = time.time() - lock_module.STALE_SECONDS - 5
    os.utime(path, (old, old))
    assert OwnerLock(path).acquire()


def test_a_held_lock_is_kept_fresh(tmp_path):
    path = tmp_path / "x.lock"
    held = OwnerLock(path, refresh=0.05)
    assert held.acquire()
    os.utime(path, (0, 0))
    deadline = time.time() + 30
    while path.stat().st_mtime == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert path.stat().st_mtime > 0
    held.release()


RACER = """
import sys, time
from pathlib import Path
from elgan_ray.lock import OwnerLock
path, go = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
lock = OwnerLock(path)
won = lock.acquire()
print("won" if won else "lost", flush=True)
time.sleep(2)  # hold it while the others try
if won:
    lock.release()
"""


def test_of_many_processes_taking_over_one_dead_owner_s_lock_exactly_one_wins(tmp_path):
    """Taking over never unlinks what it only looked at: however the takers interleave, one holds the lock."""
    path, go = tmp_path / "x.lock", tmp_path / "go"
    for attempt in range(3):
        path.write_text(f"{socket.gethostname()} {dead_pid()} {time.time():.6f} 0123456789abcde{attempt}\n")
        go.unlink(missing_ok=True)
        racers = [
            subprocess.Popen([sys.executable, "-c", RACER, str(path), str(go)], stdout=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        time.sleep(1.0)  # every racer started and waiting
        go.touch()
        outcomes = sorted(racer.communicate(timeout=120)[0].strip() for racer in racers)
        assert outcomes == ["lost"] * 5 + ["won"], outcomes
        assert not path.exists() and not list(tmp_path.glob("*.takeover"))
