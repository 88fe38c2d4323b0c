"""Integration-test harness: real mosquitto and redis-server on free loopback ports in a
temporary directory, the project's programs, and readiness probes instead of sleeps.

Every server and program started here is stopped by its pid when the test ends, even when it
fails. Nothing here mocks Redis or the broker.
"""

import contextlib
import grp
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import paho.mqtt.client as mqtt

BUILD = os.environ.get("HB_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class TestFailure(AssertionError):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise TestFailure(f"{what}: expected {expected!r}, got {actual!r}")


def free_port():
    """A TCP port that nothing listens on right now. Chosen below the kernel's ephemeral range
    (32768-60999 here), so an outgoing connection of a parallel test cannot take it between
    this check and the server's bind."""
    while True:
        port = random.randrange(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_until(probe, timeout, what, interval=0.02):
    """Polls probe() until it returns a true value; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TestFailure(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def now_ms():
    return time.time_ns() // 1_000_000


def interval_start(t_ms, interval_s):
    return t_ms - t_ms % (interval_s * 1000)


def wait_for_interval_start(interval_s, guard_ms=150):
    """Sleeps until guard_ms after the next interval boundary, so a burst of heartbeats sent
    right away lands inside one interval. Time is what is under test here, so this waits on
    the clock, not on a server. Returns the start of that interval (ms)."""
    t = now_ms()
    start = interval_start(t, interval_s) + interval_s * 1000
    time.sleep((start + guard_ms - t) / 1000)
    return start


# Runs compared with a simulator's truth use this interval. A run of ALIGNED_DURATION started
# LEAD_MS before a boundary holds exactly one complete interval and ends just after it; that
# interval's keys live until the end of the next one, so they are all still in Redis for almost
# a whole interval while the consumer catches up and the checker compares every line of the
# truth (none skipped). A second complete interval would expire before it could be compared.
TRUTH_INTERVAL = 6
ALIGNED_DURATION = TRUTH_INTERVAL + 0.5


def start_before_boundary(interval_s=TRUTH_INTERVAL, lead_ms=300):
    """Sleeps until lead_ms before the next interval boundary and returns that boundary (ms).
    Time is what is under test, so this waits on the clock, not on a server."""
    t = now_ms()
    boundary = interval_start(t, interval_s) + interval_s * 1000
    if boundary - lead_ms - t < 50:
        boundary += interval_s * 1000
    time.sleep((boundary - lead_ms - t) / 1000)
    return boundary


def check_truth(env, redis_uri, truth, interval=TRUTH_INTERVAL, intervals=1):
    """Compares every line of the simulator's truth with Redis: exactly `intervals` complete
    intervals in it, and hb-check --verify reports every line checked, none mismatched, none
    skipped. Returns the truth's lines."""
    with open(truth) as f:
        lines = [json.loads(line) for line in f]
    check_eq(len({line["interval_start"] for line in lines}), intervals,
             "complete intervals in the truth")
    _, out, _ = env.run("checker/hb-check", "--redis", redis_uri, "--interval", interval,
                        "--verify", truth, check_rc=0)
    check_eq(out, f"verify: {len(lines)} checked, 0 mismatched, 0 skipped (expired), "
                  "0 bad lines\n", "hb-check --verify")
    return lines


def wait_for_interval_end(start_ms, interval_s, guard_ms=100):
    """Sleeps until the interval starting at start_ms is complete (plus guard_ms)."""
    end = start_ms + interval_s * 1000 + guard_ms
    delay = (end - now_ms()) / 1000
    if delay > 0:
        time.sleep(delay)


def sanitizer_env():
    """LD_PRELOAD of the sanitizer runtimes when HB_BUILD_DIR is a sanitized build: an
    instrumented plugin cannot be loaded into the uninstrumented mosquitto otherwise."""
    path = os.path.join(BUILD, "meson-info", "intro-buildoptions.json")
    try:
        with open(path) as f:
            options = json.load(f)
    except OSError:
        return {}
    sanitize = next((o["value"] for o in options if o["name"] == "b_sanitize"), "none")
    libs = []
    for name, lib in (("address", "libasan.so"), ("undefined", "libubsan.so")):
        if name in sanitize:
            found = subprocess.run(["cc", f"-print-file-name={lib}"], capture_output=True,
                                   text=True).stdout.strip()
            check(os.path.isabs(found), f"no {lib} for the sanitized plugin")
            libs.append(found)
    if not libs:
        return {}
    # ASAN_OPTIONS/LSAN_OPTIONS come from the environment (scripts/test.sh); leaks are
    # reported when the broker exits, and test_auth fails a test on any report.
    # Full malloc stacks: mosquitto is built without frame pointers, and a suppression
    # (tests/lsan.supp) must see which of its functions allocated.
    env = {"LD_PRELOAD": " ".join(libs),
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1")
           + ":fast_unwind_on_malloc=0"}
    return env


def tls_certificates(directory):
    """A CA and a server certificate for DNS name localhost signed by it, and a second CA that
    signed nothing here: {"ca", "cert", "key", "other_ca"} -> PEM files made in directory,
    readable by the broker's user (test keys, no secrets worth keeping)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    os.chmod(os.path.dirname(directory), 0o711)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, key, issuer, issuer_key, ca, san=None):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def write(fname, data):
        path = os.path.join(directory, fname)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        return path

    pem = serialization.Encoding.PEM
    files = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("hb test CA", ca_key, "hb test CA", ca_key, True)
    files["ca"] = write("ca.pem", ca.public_bytes(pem))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = cert("localhost", server_key, "hb test CA", ca_key, False, san="localhost")
    files["cert"] = write("server.pem", server.public_bytes(pem))
    files["key"] = write("server.key", server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    other_key = ec.generate_private_key(ec.SECP256R1())
    files["other_ca"] = write("other-ca.pem", cert("another CA", other_key, "another CA",
                                                   other_key, True).public_bytes(pem))
    return files



def share_with_broker(top, files, dirs=()):
    """mosquitto started as root drops to its own user before it loads plugins, so the plugin
    reads key files as that user: give them to its group, as a deployment would (0640 files,
    0750 directories), and let it pass through the test directory top."""
    if os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        return
    os.chmod(top, 0o711)
    for d in dirs:
        os.chown(d, 0, gid)
        os.chmod(d, 0o750)
    for f in files:
        os.chown(f, 0, gid)
        os.chmod(f, 0o640)


def plugin_broker_config(key_lines, extra=""):
    """A mosquitto configuration with the hb_auth plugin and its plugin_opt_ (name, value)
    pairs; "{port}" is the listener's port (see Mosquitto)."""
    plugin = os.path.abspath(os.path.join(BUILD, "plugin", "hb_auth.so"))
    check(os.path.exists(plugin), f"{plugin} is not built")
    return ("listener {port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"plugin {plugin}\n"
            + "".join(f"plugin_opt_{k} {v}\n" for k, v in key_lines)
            + "persistence false\n"
              "max_queued_messages 100000\n"
              "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            + extra)


class Process:
    """A child process with its output in a file of the test directory."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env)

    def output(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"{self.name} did not exit within {timeout}s:\n{self.tail()}")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def tail(self, lines=40):
        return "\n".join(self.output().splitlines()[-lines:])


class Redis:
    """redis-server on a free loopback port, with an append-only file so a restart keeps data
    the way a production Redis with AOF does."""

    def __init__(self, workdir, aof=True, password=None, unixsocket=False):
        self.workdir = os.path.join(workdir, f"redis-{free_port()}")
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        self.aof = aof
        self.password = password
        self.socket = os.path.join(self.workdir, "redis.sock") if unixsocket else None
        self.proc = None
        self.start()

    @property
    def uri(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.workdir, "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if self.aof else "no", "--appendfsync", "always"]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.socket:
            argv += ["--unixsocket", self.socket, "--unixsocketperm", "700"]
        self.proc = Process("redis", argv, self.workdir)
        wait_until(self._pong, 10, f"redis on port {self.port}")

    def _pong(self):
        if not self.proc.alive():
            raise TestFailure(f"redis-server exited:\n{self.proc.tail()}")
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False
        except TestFailure as e:  # "-LOADING": up, but still reading its AOF
            if "LOADING" in str(e):
                return False
            raise

    def stop(self, sig=signal.SIGTERM):
        if self.proc:
            self.proc.stop(sig)

    def cmd(self, *args, db=0):
        """Sends one command (in database db) with a fresh connection, authenticated when the
        server has a password, and returns the decoded reply."""
        commands = []
        if self.password:
            commands.append(("AUTH", self.password))
        if db:
            commands.append(("SELECT", db))
        commands.append(args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            payload = b""
            for command in commands:
                payload += f"*{len(command)}\r\n".encode()
                for a in command:
                    b = a if isinstance(a, bytes) else str(a).encode()
                    payload += b"$%d\r\n%s\r\n" % (len(b), b)
            s.sendall(payload)
            reader = s.makefile("rb")
            for _ in commands[:-1]:
                _read_reply(reader)
            return _read_reply(reader)

    def keys(self, pattern="hb:{*", db=0):
        """The count keys (hb:{account}:start); pattern "*" for every key, the consumers'
        watermark (hb:wm:{group}) and admission state (hb:plays:, hb:limits:) included."""
        return sorted(self.cmd("KEYS", pattern, db=db))

    def hash(self, key, db=0):
        flat = self.cmd("HGETALL", key, db=db)
        return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def keys_without_ttl(self):
        """Keys that exist and carry no TTL (PTTL -1). A key that expires between KEYS and its
        PTTL (-2) is not one of them."""
        return [k for k in self.keys() if self.cmd("PTTL", k) == -1]

    def snapshot(self, db=0):
        """Every key of database db with its hash contents."""
        return {k: self.hash(k, db=db) for k in self.keys(db=db)}


def _read_reply(reader):
    line = reader.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise TestFailure(f"redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = reader.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(reader) for _ in range(n)]
    raise OSError(f"bad reply {line!r}")


class Mosquitto:
    """mosquitto on a free loopback port, anonymous, with queues large enough that a slow
    consumer is not silently dropped messages. config, when given, replaces the whole
    configuration ("{port}" in it becomes the port); env adds to the broker's environment
    (e.g. LD_PRELOAD for a sanitized plugin)."""

    def __init__(self, workdir, extra_conf="", config=None, env=None):
        self.workdir = os.path.join(workdir, f"mosquitto-{free_port()}")
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.workdir, "mosquitto.conf")
        self.env = env
        with open(self.conf, "w") as f:
            if config is not None:
                f.write(self._local_plugins(config.replace("{port}", str(self.port))))
            else:
                f.write(f"listener {self.port} 127.0.0.1\n"
                        "allow_anonymous true\n"
                        "persistence false\n"
                        "max_queued_messages 100000\n"
                        "log_type error\nlog_type warning\nlog_type notice\n"
                        + extra_conf)
        self.proc = None
        self.start()

    @property
    def uri(self):
        return f"tcp://127.0.0.1:{self.port}"

    def _local_plugins(self, config):
        """mosquitto started as root drops to its own user before it loads plugins, and the
        build directory may sit where that user cannot read (a clone under /root, say). So each
        plugin is copied next to the configuration, readable by everyone, and loaded from
        there."""
        lines = []
        for line in config.splitlines():
            if line.startswith("plugin "):
                src = line.split(None, 1)[1].strip()
                dst = os.path.join(self.workdir, os.path.basename(src))
                shutil.copyfile(src, dst)
                os.chmod(dst, 0o644)
                line = f"plugin {dst}"
            lines.append(line)
        os.chmod(self.workdir, 0o755)
        os.chmod(os.path.dirname(self.workdir), 0o711)
        return "\n".join(lines) + "\n"

    def start(self):
        self.proc = Process("mosquitto", ["mosquitto", "-c", self.conf], self.workdir,
                            env=self.env)
        wait_until(self._listening, 10, f"mosquitto on port {self.port}")

    def _listening(self):
        if not self.proc.alive():
            raise TestFailure(f"mosquitto exited:\n{self.proc.tail()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        return False

    def stop(self, sig=signal.SIGTERM):
        """Stops the broker; returns its exit status."""
        if self.proc:
            return self.proc.stop(sig)
        return None


class Publisher:
    """One MQTT connection that publishes heartbeats (QoS 1, waiting for each PUBACK)."""

    def __init__(self, broker, client_id=None, username=None, password=None):
        self.client = mqtt.Client(client_id=client_id or f"test-pub-{os.getpid()}-{free_port()}",
                                  clean_session=True)
        if password is not None:
            self.client.username_pw_set(username or "device", password)
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "test publisher to connect")

    def publish(self, topic, payload=b"", qos=1, retain=False):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)
        check(info.is_published(), f"publish to {topic!r} not acknowledged")

    def heartbeat(self, account, device, **fields):
        payload = {"ts": now_ms(), "mediaId": "m-1", "bitrate": 3000}
        payload.update(fields)
        self.publish(f"hb/{account}/{device}", json.dumps(payload))

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


STATS_RE = re.compile(r"\bstats ((?:\w+=[-\d.]+ ?)+)")
SANITIZER_REPORTS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                     "runtime error:")


def parse_stats(line):
    return {k: float(v) if "." in v else int(v)
            for k, v in (kv.split("=") for kv in line.split())}


def http_get(port, path, method="GET"):
    """(status, body) of one request to a local HTTP endpoint (the consumer's metrics)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def parse_metrics(text):
    """{'name{labels}': value} of the Prometheus text format; comments skipped."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


# The consumer's counters under the names of its stats line, from its /metrics.
METRIC_STATS = {
    "received": "hb_consumer_messages_received_total",
    "accepted": "hb_consumer_heartbeats_accepted_total",
    "written": "hb_consumer_heartbeats_written_total",
    "dropped": "hb_consumer_heartbeats_dropped_total",
    "expired": "hb_consumer_heartbeats_expired_total",
    "lost": "hb_consumer_heartbeats_lost_total",
    "redis_errors": "hb_consumer_redis_errors_total",
    "queued": "hb_consumer_queue_length",
}
REJECTED_RE = re.compile(r'^hb_consumer_messages_rejected_total\{reason="(\w+)"\}$')


def metrics_as_stats(metrics):
    stats = {k: int(metrics[name]) for k, name in METRIC_STATS.items()}
    reasons = {m.group(1): int(v) for k, v in metrics.items() if (m := REJECTED_RE.match(k))}
    stats.update(reasons, rejected=sum(reasons.values()))
    return stats


class Consumer:
    """hb-consumer against the given broker(s) and Redis (a Redis or a URI), or, with args, on
    exactly those arguments and environ. It serves /metrics on a free port (unless args or
    environ choose one), is ready once /healthz says ok (Redis connected, every broker
    subscribed), and its counters are read from /metrics while it runs."""

    def __init__(self, env, brokers, redis, interval, extra=(), name="consumer", args=None,
                 environ=None, redis_ready=True):
        if args is None:
            uri = redis if isinstance(redis, str) else redis.uri
            args = ["--redis", uri, "--interval", str(interval), "--stats-interval", "1"]
            for b in brokers:
                args += ["--broker", b.uri]
            args += list(extra)
        environ = dict(environ or {})
        address = (args[args.index("--metrics") + 1] if "--metrics" in args
                   else environ.get("HB_METRICS"))
        if address is None:
            address = f"127.0.0.1:{free_port()}"
            args += ["--metrics", address]
        self.metrics_port = int(address.rsplit(":", 1)[1])
        self.proc = Process(name, [env.binary("consumer/hb-consumer"), *args], env.dir,
                            env=environ)
        self.stopped = None
        if redis_ready:
            self.wait_ready()
        else:
            self.wait_subscribed_metrics()

    def health(self):
        """(status, body) of GET /healthz; (None, reason) while nothing answers."""
        try:
            return http_get(self.metrics_port, "/healthz")
        except OSError as e:
            return None, str(e)

    def wait_ready(self, timeout=20):
        def probe():
            if not self.proc.alive():
                raise TestFailure(f"consumer exited:\n{self.proc.tail()}")
            return self.health() == (200, "ok\n")
        wait_until(probe, timeout, "consumer /healthz ok", interval=0.05)

    def wait_subscribed_metrics(self, timeout=20):
        """Ready without Redis: /metrics shows every broker subscribed. (The writer first
        connects to Redis when its first wait for heartbeats ends, up to --flush-ms later.)"""
        def probe():
            if not self.proc.alive():
                raise TestFailure(f"consumer exited:\n{self.proc.tail()}")
            try:
                m = self.metrics()
            except OSError:
                return False
            gauges = [v for k, v in m.items() if k.startswith("hb_consumer_mqtt_subscribed{")]
            return bool(gauges) and all(v == 1 for v in gauges)
        wait_until(probe, timeout, "consumer subscribed to every broker (/metrics)",
                   interval=0.05)

    def subscribed_count(self):
        return self.proc.output().count(": subscribed to ")

    def wait_subscribed(self, count, timeout=20):
        """Waits for the count-th subscription line: resubscriptions after a broker restart."""
        def probe():
            if not self.proc.alive():
                raise TestFailure(f"consumer exited:\n{self.proc.tail()}")
            return self.subscribed_count() >= count
        wait_until(probe, timeout, f"consumer subscription #{count}")

    def metrics(self):
        status, text = http_get(self.metrics_port, "/metrics")
        check_eq(status, 200, "GET /metrics status")
        return parse_metrics(text)

    def stats(self):
        """The counters now (from /metrics), or after stop() the final stats line."""
        if self.stopped is not None:
            return self.stopped
        if not self.proc.alive():
            raise TestFailure(f"consumer exited:\n{self.proc.tail()}")
        return metrics_as_stats(self.metrics())

    def wait_stats(self, predicate, timeout=20, what="consumer stats"):
        wait_until(lambda: predicate(self.stats()), timeout, what, interval=0.05)
        return self.stats()

    def stop(self, timeout=30, expect_rc=0, final_stats=True):
        """SIGTERM; checks the exit status (expect_rc) and reads the final stats line (unless
        final_stats is false: a log level above info prints none). Returns (exit status,
        final stats)."""
        rc = self.proc.stop(signal.SIGTERM, timeout)
        check_eq(rc, expect_rc, f"{self.proc.name} exit status")
        if not final_stats:
            self.stopped = {}
            return rc, self.stopped
        found = STATS_RE.findall(self.proc.output())
        check(found, f"no final stats line from the consumer:\n{self.proc.tail()}")
        self.stopped = parse_stats(found[-1])
        return rc, self.stopped


class Env:
    """One test's temporary directory and everything started in it."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"hb-{name}-")
        self._cleanup = []
        self.consumers = []
        self.brokers = []

    def binary(self, rel):
        path = os.path.abspath(os.path.join(BUILD, rel))
        check(os.access(path, os.X_OK), f"{path} is not built")
        return path

    def redis(self, **kw):
        r = Redis(self.dir, **kw)
        self._cleanup.append(r.stop)
        return r

    def mosquitto(self, **kw):
        m = Mosquitto(self.dir, **kw)
        self._cleanup.append(m.stop)
        self.brokers.append(m)
        return m

    def consumer(self, brokers, redis, interval, extra=(), name="consumer", **kw):
        c = Consumer(self, brokers, redis, interval, extra, name, **kw)
        self._cleanup.append(lambda: c.proc.stop(signal.SIGKILL))
        self.consumers.append(c)
        return c

    def publisher(self, broker, **kw):
        p = Publisher(broker, **kw)
        self._cleanup.append(p.close)
        return p

    def start(self, rel, *args, name=None):
        """Starts a project program in the background; its output goes to NAME.log."""
        p = Process(name or os.path.basename(rel), [self.binary(rel), *map(str, args)], self.dir)
        self._cleanup.append(lambda: p.stop(signal.SIGKILL))
        return p

    def run(self, rel, *args, stdin=None, timeout=120, check_rc=None):
        """Runs a project program to completion; returns (rc, stdout, stderr)."""
        p = subprocess.run([self.binary(rel), *map(str, args)], input=stdin, text=True,
                           capture_output=True, timeout=timeout)
        if check_rc is not None and p.returncode != check_rc:
            raise TestFailure(f"{rel} {' '.join(map(str, args))}: exit {p.returncode}, "
                              f"expected {check_rc}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p.returncode, p.stdout, p.stderr

    def finish(self):
        """After a scenario passed: every consumer and broker still running must stop cleanly
        (exit status 0), and no log of the test may hold a sanitizer report, so a report at
        shutdown fails the test whichever scenario it is."""
        for c in self.consumers:
            if c.proc.alive():
                c.stop()
        for b in self.brokers:
            if b.proc.alive():
                check_eq(b.stop(), 0, f"mosquitto on port {b.port}: exit status")
        for root, _, files in os.walk(self.dir):
            for f in files:
                if f.endswith(".log"):
                    with open(os.path.join(root, f), errors="replace") as fh:
                        text = fh.read()
                    for bad in SANITIZER_REPORTS:
                        check(bad not in text, f"{bad} in {f}:\n{text[-3000:]}")

    def close(self):
        for fn in reversed(self._cleanup):
            with contextlib.suppress(Exception):
                fn()


def main(scenarios):
    """Runs the scenario named in argv[1]; prints the logs of everything on failure."""
    if sys.argv[1:] == ["--list"]:
        print("\n".join(scenarios))
        return 0
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        print(f"usage: {sys.argv[0]} SCENARIO\nscenarios: {', '.join(sorted(scenarios))}")
        return 2
    name = sys.argv[1]
    env = Env(name)

    def terminated(signum, frame):
        # meson's timeout (or a Ctrl-C): fail through the cleanup below, so nothing this test
        # started outlives it.
        raise TestFailure(f"terminated by signal {signum} (a timeout?)")
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)
    try:
        scenarios[name](env)
        env.finish()
    except Exception as e:
        env.close()
        print(f"FAIL {name}: {e}", file=sys.stderr)
        for root, _, files in os.walk(env.dir):
            for f in files:
                if f.endswith(".log"):
                    with open(os.path.join(root, f), errors="replace") as fh:
                        text = fh.read()[-6000:]
                    print(f"--- {os.path.join(root, f)} (tail)\n{text}", file=sys.stderr)
        raise
    env.close()
    subprocess.run(["rm", "-rf", env.dir])
    print(f"ok {name}")
    return 0
