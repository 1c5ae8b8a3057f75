"""A search study's scheduler: the `scheduler` key of a study YAML, checked, and as Ray Tune's scheduler.

    scheduler: {name: asha, grace_period: 2, reduction_factor: 2}

ASHA (asynchronous successive halving) stops a search's weak trials early: it judges each trial after
`grace_period` evaluations of its GAN phase, then after grace_period x reduction_factor^k, and stops a trial
below the top 1/reduction_factor of those judged there before it. The clock is the GAN phase's evaluations
(the loop reports them as `gan_evaluations`), not Tune's training_iteration: that also counts the D
pre-training's evaluations (where G, and so the metric, does not move), the shared generator pre-training's
when a trial happens to compute it, and starts again at 1 when Tune restarts a trial that resumes half way.
A stopped trial keeps its rows; the sweep marks it `stopped` (sweep/tune.py's mark_stopped) and the report counts
it and leaves it out of the stability statistics.

Only a search study (nuisance keys to tune) takes a scheduler. A grid study's runs are the replicates its tables
compare (Table 3 is the spread over seeds), and stopping the unstable runs early would hide the very
instability the table measures. Ray is imported inside `tune_scheduler` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

SCHEDULERS = ("asha",)
SCHEDULER_KEYS = ("name", "grace_period", "reduction_factor")
CLOCK = "gan_evaluations"  # the reported metric ASHA measures a trial's age in
# ASHA stops any trial whose clock reaches max_t. A trial ends by its own schedule instead: max_t is out of reach.
NEVER = 1_000_000


def check_scheduler(fail: Callable[..., Any], scheduler: dict[str, Any], is_search: bool) -> dict[str, Any]:
    """{name, grace_period, reduction_factor}, checked; `fail(rule, section, key=None)` raises the UserError
    that names the study file and line (study/spec.py's checker)."""
    if not is_search:
        fail(
            "early stopping is for search studies only (nuisance keys to tune): this grid study's runs are the "
            "replicates its tables compare (Table 3: the spread over seeds), and stopping the unstable runs early "
            "would hide the very instability the table measures",
            "scheduler",
        )
    for key in scheduler:
        if key not in SCHEDULER_KEYS:
            fail(f"unknown key (known: {', '.join(SCHEDULER_KEYS)})", "scheduler", key)
    for key in SCHEDULER_KEYS:
        if key not in scheduler:
            fail(f"'{key}' missing, e.g. scheduler: {{name: asha, grace_period: 2, reduction_factor: 2}}", "scheduler")
    name, grace, factor = (scheduler[key] for key in SCHEDULER_KEYS)
    if name not in SCHEDULERS:
        fail(f"unknown scheduler {name!r} (known: {', '.join(SCHEDULERS)})", "scheduler", "name")
    if not isinstance(grace, int) or isinstance(grace, bool) or not 1 <= grace < NEVER:
        fail(f"must be an integer >= 1 (GAN-phase evaluations), got {grace!r}", "scheduler", "grace_period")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 1:
        fail(f"must be a number > 1, got {factor!r}", "scheduler", "reduction_factor")
    return {"name": name, "grace_period": grace, "reduction_factor": float(factor)}
