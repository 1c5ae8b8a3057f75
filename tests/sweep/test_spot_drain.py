"""sweep/spot_drain.py: EC2's reclaim notice (from a stand-in of the metadata service on 127.0.0.1) becomes a Ray drain
of the node with reason preemption, on a real 2-node Ray cluster on loopback."""

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from loopback import cluster_env, free_port, start_head, start_worker, stop_cluster

from elgan_ray.sweep.spot_drain import seconds_left


def test_a_notice_gives_the_seconds_to_the_reclaim():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert seconds_left('{"action": "terminate", "time": "2026-01-01T12:02:00Z"}', now) == 120
    assert seconds_left('{"action": "stop", "time": "2026-01-01T11:59:00Z"}', now) == 0


class Metadata(BaseHTTPRequestHandler):
    """IMDSv2 as a spot node sees it two minutes before a reclaim: a session token, then the notice."""

    def do_PUT(self):  # noqa: N802 (http.server's names)
        self._answer(200, "a-token" if self.path == "/latest/api/token" else "")

    def do_GET(self):  # noqa: N802
        if self.path == "/latest/meta-data/spot/instance-action" and self.headers["X-aws-ec2-metadata-token"]:
            when = (datetime.now(timezone.utc) + timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._answer(200, json.dumps({"action": "terminate", "time": when}))
        else:
            self._answer(404, "")

    def _answer(self, code, body):
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def ask(env, port, expression):
    """The value of a Python expression about the cluster, from a driver that joins it."""
    code = "import json, ray, ray._private.state; "
    code += f"ray.init(address='127.0.0.1:{port}'); print(json.dumps({expression}))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.ray
def test_a_reclaim_notice_drains_the_node_as_preempted():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env, port = cluster_env(), free_port()
    try:
        start_head(env, port)
        start_worker(env, port)
        not_head = "[n['NodeID'] for n in ray.nodes() if 'node:__internal_head__' not in n['Resources']]"
        (worker,) = ask(env, port, not_head)
        metadata = f"http://127.0.0.1:{server.server_address[1]}/latest"
        drain = [sys.executable, "-m", "elgan_ray.sweep.spot_drain", "--address", f"127.0.0.1:{port}"]
        drain += ["--node-id", worker, "--metadata", metadata, "--every", "0.2"]
        done = subprocess.run(drain, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        deadline = time.time() + 60
        while time.time() < deadline and worker in ask(env, port, "[n['NodeID'] for n in ray.nodes() if n['Alive']]"):
            time.sleep(1)
        nodes = ask(
            env, port, "{n['NodeID']: [n['Alive'], n['DeathReason'], n['DeathReasonMessage']] for n in ray.nodes()}"
        )
    finally:
        stop_cluster(env)
        server.shutdown()
    from ray.core.generated.common_pb2 import NodeDeathInfo

    # An idle node drained for preemption leaves at once; Ray records why: what died there was preempted.
    alive, reason, message = nodes[worker]
    assert not alive and reason == NodeDeathInfo.Reason.Value("AUTOSCALER_DRAIN_PREEMPTED")
    assert message.startswith("spot reclaim: ") and '"action": "terminate"' in message
    assert sum(alive for alive, _, _ in nodes.values()) == 1  # the head stays
