"""Helpers of the fault matrix (test_faults.py): a fleet of devices that number their heartbeats
("seq") and remember, per interval, which devices sent one (the truth), and the comparison of
each complete interval with that truth through hb-check."""

import json
import threading
import time
import urllib.error
import urllib.request

from harness import check, check_eq, free_port, interval_start, now_ms, wait_until

GUARD_MS = 300  # no heartbeat this close to a boundary: binning by receive time stays exact


class Fleet:
    """n_accounts x per_account devices on one MQTT connection (the broker sees one client; the
    consumer sees distinct topics, which is what it counts)."""

    def __init__(self, publisher, n_accounts, per_account, interval):
        self.pub = publisher
        self.interval = interval
        self.devices = [(f"fa{a:03d}", f"fa{a:03d}-d{d}") for a in range(n_accounts)
                        for d in range(per_account)]
        self.seq = {dev: 0 for _, dev in self.devices}
        self.truth = {}  # interval start -> {account: set(devices)}
        self.sent = 0

    @property
    def accounts(self):
        return sorted({a for a, _ in self.devices})

    def _wait_clear_of_boundary(self):
        while True:
            t = now_ms()
            into = t - interval_start(t, self.interval)
            if GUARD_MS <= into <= self.interval * 1000 - GUARD_MS:
                return
            time.sleep(0.05)

    def round(self, skip=False):
        """One heartbeat of every device, all acknowledged. skip: the devices number a heartbeat
        that never reaches the broker (what a lost heartbeat looks like to the consumer)."""
        if skip:
            for _, dev in self.devices:
                self.seq[dev] += 1
            return 0
        self._wait_clear_of_boundary()
        start = interval_start(now_ms(), self.interval)
        infos = []
        for account, dev in self.devices:
            payload = json.dumps({"ts": now_ms(), "seq": self.seq[dev]})
            self.seq[dev] += 1
            infos.append(self.pub.client.publish(f"hb/{account}/{dev}", payload, qos=1))
            self.truth.setdefault(start, {}).setdefault(account, set()).add(dev)
        for info in infos:
            info.wait_for_publish(timeout=20)
            check(info.is_published(), "a heartbeat was not acknowledged")
        check(interval_start(now_ms(), self.interval) == start, "a round crossed a boundary")
        self.sent += len(self.devices)
        return len(self.devices)

    def run_for(self, seconds, period=1.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            began = time.monotonic()
            self.round()
            time.sleep(max(0.0, period - (time.monotonic() - began)))


def read_interval(env, redis, interval, start, accounts, group=None):
    """hb-check --json --devices of the interval starting at start: (exit status, {account:
    set(devices)}, complete flags)."""
    args = ["--redis", redis.uri, "--interval", interval, "--json", "--devices",
            "--at", (start + interval * 1000) // 1000, "-"]
    if group:
        args = ["--share-group", group] + args
    rc, out, err = env.run("checker/hb-check", *args, stdin="\n".join(accounts) + "\n")
    check(rc in (0, 4), f"hb-check exit {rc}: {err}")
    rows = [json.loads(line) for line in out.splitlines()]
    got = {r["account"]: set(r.get("device_ids", [])) for r in rows if r["devices"]}
    return rc, got, {r.get("complete", True) for r in rows}


def wait_complete(env, redis, interval, start, accounts, timeout=None):
    """Waits until hb-check says the interval is complete; returns what it read then."""
    result = {}

    def probe():
        rc, got, _ = read_interval(env, redis, interval, start, accounts)
        result["got"] = got
        return rc == 0
    wait_until(probe, timeout or interval, f"interval {start} complete", interval=0.2)
    return result["got"]


class Verifier:
    """Compares every interval from first on with the fleet's truth as soon as hb-check says it
    is complete, on its own thread, so each interval is read while its keys live (they expire
    one interval after the interval's end) whatever the scenario does meanwhile."""

    def __init__(self, env, redis, fleet, first):
        self.env, self.redis, self.fleet = env, redis, fleet
        self.next = first
        self.stop_after = None
        self.wrong, self.done, self.error = {}, [], None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            step = self.fleet.interval * 1000
            while self.stop_after is None or self.next <= self.stop_after:
                if now_ms() < self.next + step:
                    time.sleep(0.05)
                    continue
                start = self.next
                got = wait_complete(self.env, self.redis, self.fleet.interval, start,
                                    self.fleet.accounts, timeout=self.fleet.interval * 0.9)
                want = {a: set(d) for a, d in self.fleet.truth.get(start, {}).items() if d}
                if got != want:
                    self.wrong[start] = (sum(map(len, want.values())), sum(map(len, got.values())))
                self.done.append(start)
                self.next += step
        except Exception as e:  # reported by finish()
            self.error = e

    def finish(self, last, exact=True):
        """Waits until every interval up to last (a start) is compared; checks them."""
        self.stop_after = last
        self.thread.join(timeout=(last - self.next) / 1000 + 3 * self.fleet.interval + 10)
        check(not self.thread.is_alive(), "the verifier did not finish")
        if self.error is not None:
            raise self.error
        check(self.done, "no interval compared")
        if exact:
            check_eq(self.wrong, {}, "intervals differing from the truth (want, got devices)")
        return self.wrong


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            values[name] = float(value)
    return values


def healthz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics_args():
    port = free_port()
    return port, ["--metrics", f"127.0.0.1:{port}"]
