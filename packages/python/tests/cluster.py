"""Real RateQueue clusters for the tests: ``ratequeue start`` node processes
(packages/node/bin/ratequeue.mjs) on free loopback ports, with LevelDB data in
a temporary folder, as test/cluster/harness.ts starts them for the Node tests.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / "packages" / "node" / "bin" / "ratequeue.mjs"
ADMIN_KEY = "test-admin-key-0123456789"
CLUSTER_SECRET = "test-cluster-secret-0123456789"


def free_ports(count: int) -> List[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class NodeProcess:
    def __init__(self, node_id: str, port: int, args: List[str], log_path: Path) -> None:
        self.id = node_id
        self.port = port
        self.args = args
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.id} is already running"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["node", str(BIN), "start", *self.args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.running:
            self.proc.send_signal(sig)
            self.proc.wait()

    def status(self) -> Optional[Dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v1/status", timeout=1) as res:
                status: Dict[str, Any] = json.loads(res.read())
                return status
        except (OSError, ValueError):
            return None


class Cluster:
    """Three (or ``size``) real nodes; ``resources`` are created at bootstrap."""

    def __init__(self, size: int = 3, resources: Optional[Dict[str, Any]] = None, session_ttl_ms: Optional[int] = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rq-py-cluster-"))
        ports = free_ports(size)
        ids = [f"n{i + 1}" for i in range(size)]
        peers = ",".join(f"{node_id}=127.0.0.1:{port}" for node_id, port in zip(ids, ports))
        config = self.root / "config.json"
        config.write_text(json.dumps({"resources": resources or {}}))
        self.nodes = []
        for node_id, port in zip(ids, ports):
            args = [
                "--config", str(config),
                "--id", node_id,
                "--listen", f"127.0.0.1:{port}",
                "--peers", peers,
                "--data", str(self.root / node_id),
                "--cluster-secret", CLUSTER_SECRET,
                "--admin-key", ADMIN_KEY,
                "--log-level", "info",
                "--tick-ms", "50",
                "--election-ticks", "10",
            ]
            if session_ttl_ms is not None:
                args += ["--session-ttl-ms", str(session_ttl_ms)]
            self.nodes.append(NodeProcess(node_id, port, args, self.root / f"{node_id}.log"))
        for node in self.nodes:
            node.start()
        try:
            self.wait_for_leader()
        except Exception:
            self.stop()
            raise

    @property
    def urls(self) -> List[str]:
        return [n.url for n in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def node(self, node_id: str) -> NodeProcess:
        return next(n for n in self.nodes if n.id == node_id)

    def wait_for_leader(self, timeout_s: float = 30.0, except_id: Optional[str] = None) -> NodeProcess:
        """Waits until every running node names the same running leader; returns it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            running = [n for n in self.nodes if n.running]
            statuses = [n.status() for n in running]
            leaders = {None if s is None else s.get("leader") for s in statuses}
            if len(leaders) == 1:
                leader = next(iter(leaders))
                if leader is not None and leader != except_id:
                    node = self.node(leader)
                    own = next((s for s in statuses if s is not None and s.get("id") == leader), None)
                    if node.running and own is not None and own.get("role") == "leader":
                        return node
            time.sleep(0.05)
        raise TimeoutError(f"no agreed leader within {timeout_s} s\n{self.dump()}")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        leader = self.wait_for_leader()
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{leader.http_url}{path}", data=data, method=method)
        request.add_header("authorization", f"Bearer {ADMIN_KEY}")
        if data is not None:
            request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as res:
                text = res.read()
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path}: {err.code} {err.read()!r}") from None
        return None if not text else json.loads(text)

    def resource(self, name: str) -> Dict[str, Any]:
        result: Dict[str, Any] = self.admin("GET", f"/v1/resources/{name}")
        return result

    def create_key(self, patterns: List[str]) -> str:
        secret: str = self.admin("POST", "/v1/keys", {"name": "py", "scope": {"acquire": patterns}})["secret"]
        return secret

    def restart_all(self) -> NodeProcess:
        for n in self.nodes:
            if not n.running:
                n.start()
        return self.wait_for_leader()

    def dump(self) -> str:
        out = []
        for n in self.nodes:
            try:
                tail = n.log_path.read_text(errors="replace").splitlines()[-30:]
            except OSError:
                tail = []
            out.append(f"--- {n.id} (port {n.port}) ---\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        for n in self.nodes:
            n.kill()
        shutil.rmtree(self.root, ignore_errors=True)

