"""The reaper of a sweep's local Ray: what is left of that Ray when the sweep's driver is killed outright.

A local Ray shares its driver's fate: ray.init starts the GCS server and the raylet so that they end with the
driver, even after a kill -9. The raylet's two agents (ray::DashboardAgent, ray::RuntimeEnvAgent) do not: once the
raylet is gone they report it to the GCS, which is gone too, and wait for it (Ray 2.60 publishes that error with a
fixed 60 s timeout, and reconnects first), so after a kill -9 of the driver about 180 MB of orphans stay for one to
three minutes. Ray has no setting for it.

So the sweep starts this small process beside its local Ray (`watch`). It notes, once a second, every process that
descends from the driver (the Ray processes, the agents, the trials), with its start time; it waits on a pipe from
the driver, whose end closes however the driver ends; then it kills (SIGKILL) each noted process that is still the
same process (same pid, same start time), and ends. After a clean end, Ray has already stopped them all and there is
nothing to kill. Ctrl-C, which a terminal sends to the whole process group, is ignored: the driver stops its own Ray
then, and the reaper stays to see that it did. Linux only (it reads /proc); elsewhere it waits and does nothing.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

POLL_SECONDS = 1.0
_watching: list[subprocess.Popen] = []  # the driver keeps the pipe's writing end open for as long as it lives


def watch() -> None:
    """Start the reaper of this process's local Ray (call it right after ray.init started one)."""
    reaper = subprocess.Popen(
        [sys.executable, "-m", "elgan_ray.sweep.reaper"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _watching.append(reaper)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    driver, me = os.getppid(), os.getpid()
    noted: dict[int, str] = {}  # pid -> its start time, as /proc/<pid>/stat gives it
    while True:
        noted |= {pid: started for pid, started in descendants(driver).items() if pid != me}
        ready, _, _ = select.select([sys.stdin], [], [], POLL_SECONDS)
        if ready and not os.read(sys.stdin.fileno(), 4096):  # end of file: the driver has ended
            break
    for pid, started in noted.items():
        if _stat(pid)[1] == started:  # still that process, not a new one with its pid
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def descendants(ancestor: int) -> dict[int, str]:
    """The processes below `ancestor` in the process tree: pid -> start time (clock ticks since boot, as text)."""
    stats = {}
    for path in Path("/proc").glob("[0-9]*"):
        parent, started = _stat(int(path.name))
        if started:
            stats[int(path.name)] = (parent, started)
    found = {}
    for pid, (_, started) in stats.items():
        node = pid
        while node in stats and node != ancestor:
            node = stats[node][0]
        if node == ancestor and pid != ancestor:
            found[pid] = started
    return found


def _stat(pid: int) -> tuple[int, str]:
    """(parent pid, start time) of a process; (0, "") when there is none."""
    try:
        # The command name is in parentheses and may hold spaces; state, parent pid ... follow it.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), fields[19]
    except (OSError, IndexError, ValueError):
        return 0, ""


if __name__ == "__main__":
    main()
