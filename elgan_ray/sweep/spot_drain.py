"""python -m elgan_ray.sweep.spot_drain: on a spot node, turn EC2's reclaim notice into a Ray drain (reason:
preemption), so that Ray marks what dies there as preempted. Tune then does not count the lost trial as a failure
(only RAY_TRAIN_COUNT_PREEMPTION_AS_FAILURE=1 would), and Ray Train retries it on FailureConfig's own preemption
budget, unlimited by default; the trial resumes from its last checkpoint on another node.

EC2 posts the notice about two minutes ahead at the instance metadata's spot/instance-action (404 until then).
cluster.yaml starts this on every worker; on an on-demand node no notice ever comes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

METADATA = "http://169.254.169.254/latest"  # EC2's instance metadata service (IMDSv2)


def seconds_left(notice: str, now: datetime) -> int:
    """The seconds until the reclaim that an instance-action notice announces ({"action": ..., "time": ISO 8601})."""
    when = datetime.fromisoformat(json.loads(notice)["time"].replace("Z", "+00:00"))
    return max(0, int((when - now).total_seconds()))


def _get(url: str, token: str | None, method: str = "GET", timeout: float = 2.0) -> str | None:
    headers = {"X-aws-ec2-metadata-token": token} if token else {"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers, method=method), timeout=timeout) as r:
            return r.read().decode()
    except (urllib.error.URLError, OSError):
        return None  # 404 (no notice) or no metadata service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elgan_ray.sweep.spot_drain", description=__doc__.split("\n")[0])
    parser.add_argument("--address", required=True, help="the cluster's head, as `ray drain-node` takes it")
    parser.add_argument("--metadata", default=METADATA, help="the instance metadata service")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between two looks")
    parser.add_argument("--node-id", help="the node to drain (default: this machine's)")
    args = parser.parse_args(argv)
    node = args.node_id
    if node is None:
        import ray

        ray.init(address=args.address, log_to_driver=False)
        node = ray.get_runtime_context().get_node_id()
        ray.shutdown()
    while True:
        token = _get(f"{args.metadata}/api/token", None, method="PUT")
        notice = _get(f"{args.metadata}/meta-data/spot/instance-action", token)
        if notice:
            left = seconds_left(notice, datetime.now(timezone.utc))
            beside = Path(sys.executable).with_name("ray")  # the ray command of this Python's environment
            drain = [str(beside) if beside.exists() else "ray", "drain-node", "--address", args.address]
            drain += ["--node-id", node]
            drain += ["--reason", "DRAIN_NODE_REASON_PREEMPTION", "--reason-message", f"spot reclaim: {notice}"]
            drain += ["--deadline-remaining-seconds", str(left)]
            return subprocess.run(drain).returncode
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
