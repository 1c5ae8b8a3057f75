"""The Ray session of a sweep: a local Ray of this machine's own (whatever RAY_ADDRESS says) or the cluster at
--address, and SIGTERM turned into the end Tune and run_cli expect while Ray holds the signal handlers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from elgan_ray.errors import Terminated, UserError, handle_sigterm, quoted
from elgan_ray.sweep import reaper

# A trial whose Train workers hold the CPUs and GPUs needs somewhere to wait that takes none of theirs: a
# fraction of a CPU would keep a 2-worker group off a 2-CPU machine (or a 4-CPU GPU node) for good. Ray
# refuses a trial of no resources at all, so the waiting trials hold this custom resource instead; the local
# Ray and cluster.yaml's head node declare it.
DRIVER_RESOURCE = "elgan_trial_driver"
DRIVER_SLOTS = 1000


def start_ray(address: str | None) -> None:
    """Join the cluster at `address` (--address), or start a local Ray of this machine with its dashboard off.

    Without --address the sweep starts its own Ray whatever RAY_ADDRESS or a `ray start` on this machine says (Ray
    would join those, and then refuse the resources a local Ray declares); it says so when RAY_ADDRESS is set.
    Afterwards SIGTERM ends the sweep as run_cli says ("terminated", 143) again: ray.init replaces that handler with
    its own."""
    if address:  # __main__.py's check_inputs has seen it answer (probe_address)
        try:
            ray.init(address=address, log_to_driver=True)
        except (ConnectionError, ValueError, RuntimeError) as error:
            rule = f"cannot join the Ray cluster at {quoted(address)}: {_first_line(error)}"
            raise UserError("--address", rule) from None
    else:
        ignored = os.environ.pop("RAY_ADDRESS", None)  # also for the trials' processes, which inherit the environment
        if ignored:
            note = f"note: RAY_ADDRESS={ignored} is ignored: a sweep joins a cluster only with --address"
            print(note, file=sys.stderr)
        ray.init(
            address="local",
            include_dashboard=False,
            configure_logging=False,
            resources={DRIVER_RESOURCE: DRIVER_SLOTS},
        )
        reaper.watch()  # a kill -9 of this process must not leave Ray's agents behind for minutes
    if threading.current_thread() is threading.main_thread():
        handle_sigterm()


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [error.__class__.__name__])[0][:300]


@contextmanager
def sigterm_stops_tune() -> Iterator[None]:
    """SIGTERM while Tune runs: Tune is asked to stop as Ctrl-C asks it (it saves its state and ends its trials), and
    Terminated is raised once Tuner.fit has returned, so the sweep ends with "terminated" and 143 (run_cli).

    Raising in the signal handler itself, as run_cli's does, would land in the middle of Ray's C code (ray.wait):
    a SystemError, or an abort. Tune handles SIGUSR1 as it handles Ctrl-C, for as long as fit runs."""
    stopped = threading.Event()
    outside = signal.getsignal(signal.SIGUSR1)  # what holds SIGUSR1 until fit installs Tune's handler

    def stop(signum: int, frame: object) -> None:
        stopped.set()
        tunes = signal.getsignal(signal.SIGUSR1)
        if callable(tunes) and tunes is not outside:
            tunes(signal.SIGUSR1, frame)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        yield
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if stopped.is_set():
        raise Terminated
