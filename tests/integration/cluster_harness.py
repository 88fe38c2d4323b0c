"""A real Redis Cluster for the integration tests: six redis-server processes (three masters, one
replica each) on free loopback ports in the test directory, joined by `redis-cli --cluster
create`, with readiness probed (cluster_state:ok and one agreed slot map on every live node,
replicas linked), never waited for by the clock. Every node is stopped by its pid at the end.
"""

import os
import signal
import socket
import subprocess

from harness import Process, TestFailure, _read_reply, check, free_port, wait_until


class ClusterNode:
    """One redis-server with cluster mode on; its client and bus ports are both chosen here."""

    def __init__(self, workdir, name, port, bus_port, node_timeout_ms):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port
        self.bus_port = bus_port
        self.node_timeout_ms = node_timeout_ms
        self.proc = None
        self.start()

    def start(self):
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(self.bus_port),
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--dir", self.dir, "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.proc = Process(self.name, argv, self.dir)
        wait_until(self._pong, 10, f"{self.name} on port {self.port}")

    def _pong(self):
        if not self.proc.alive():
            raise TestFailure(f"{self.name} exited:\n{self.proc.tail()}")
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def cmd(self, *args):
        """One command on a fresh connection; the decoded reply (an error raises TestFailure)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            payload = f"*{len(args)}\r\n".encode()
            for a in args:
                b = a if isinstance(a, bytes) else str(a).encode()
                payload += b"$%d\r\n%s\r\n" % (len(b), b)
            s.sendall(payload)
            return _read_reply(s.makefile("rb"))

    def info(self, section):
        text = self.cmd("INFO", section)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def cluster_info(self):
        text = self.cmd("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def node_id(self):
        return self.cmd("CLUSTER", "MYID")

    def stop(self, sig=signal.SIGTERM):
        if self.proc:
            self.proc.stop(sig)


class Cluster:
    """masters x (1 + replicas) nodes joined into one cluster, ready when the constructor
    returns."""

    def __init__(self, env, masters=3, replicas=1, node_timeout_ms=2000):
        self.env = env
        ports = set()
        while len(ports) < 2 * masters * (1 + replicas):
            ports.add(free_port())
        ports = sorted(ports)
        self.nodes = []
        env._cleanup.append(self.stop)
        for i in range(masters * (1 + replicas)):
            self.nodes.append(ClusterNode(env.dir, f"redis-node{i}", ports[2 * i],
                                          ports[2 * i + 1], node_timeout_ms))
        create = subprocess.run(
            ["redis-cli", "--cluster", "create",
             *[f"127.0.0.1:{n.port}" for n in self.nodes],
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=120)
        check(create.returncode == 0, f"redis-cli --cluster create failed:\n{create.stdout}"
                                      f"\n{create.stderr}")
        self.wait_ready(masters)

    @property
    def uri(self):
        """Two seeds only: the client must learn the other nodes from the cluster itself."""
        return f"redis-cluster://127.0.0.1:{self.nodes[0].port},127.0.0.1:{self.nodes[1].port}"

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def by_port(self, port):
        return next(n for n in self.nodes if n.port == port)

    def slot_map(self, node=None):
        """[(start, end, master port)] sorted, as node (or the first live node) sees it."""
        node = node or self.live()[0]
        return sorted((r[0], r[1], r[2][1]) for r in node.cmd("CLUSTER", "SLOTS"))

    def masters(self):
        return sorted({self.by_port(p) for _, _, p in self.slot_map()}, key=lambda n: n.port)

    def master_of(self, slot):
        for start, end, port in self.slot_map():
            if start <= slot <= end:
                return self.by_port(port)
        raise TestFailure(f"slot {slot} has no master")

    def replica_of(self, master):
        for n in self.live():
            info = n.info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port:
                return n
        raise TestFailure(f"no replica of {master.name}")

    def _ready(self, masters):
        nodes = self.live()
        maps = set()
        for n in nodes:
            try:
                info = n.cluster_info()
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                    return False
                maps.add(tuple(self.slot_map(n)))
                repl = n.info("replication")
            except (OSError, TestFailure):
                return False
            if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                return False
        if len(maps) != 1:
            return False
        return len({p for _, _, p in next(iter(maps))}) == masters

    def wait_ready(self, masters=3, timeout=60):
        """Until every live node says cluster_state:ok, all agree on one slot map served by
        `masters` masters, and every replica's link to its master is up."""
        wait_until(lambda: self._ready(masters), timeout, "the cluster to be ready", 0.1)

    def snapshot(self, pattern="*"):
        """{key: {field: value}} read from every master directly (not through rcluster)."""
        out = {}
        for m in self.masters():
            for key in m.cmd("KEYS", pattern):
                flat = m.cmd("HGETALL", key)
                out[key] = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
        return out

    def stop(self):
        for n in self.nodes:
            n.stop(signal.SIGKILL)


def tool_lines(proc, kind):
    """The tool's lines starting with kind, parsed into {name: int} (plus 'what')."""
    out = []
    for line in proc.output().splitlines():
        parts = line.split()
        if parts and parts[0] == kind:
            out.append({k: int(v) for k, v in (p.split("=", 1) for p in parts[1:])})
    return out


def tool_last(proc, kind="progress"):
    """The last progress (or done) line's counters, {} before the first."""
    lines = tool_lines(proc, kind)
    return lines[-1] if lines else {}
