#!/usr/bin/python3
"""The benchmark driver (bench/run.sh calls it). In one run on this machine it starts a private
mosquitto and redis-server on free loopback ports in a temporary directory and measures:
the broker-only ceiling, hb-consumer at several offered rates, the do-nothing paho subscriber
(the floor), the Python and Node.js peers, the simulator holding connections, and latency.

Measuring: every subject prints a "stats ... received=N written=N" line each second; the driver
reads /proc/PID/stat of the subject, the broker and Redis the moment a line arrives, so a
window's CPU time and heartbeat count come from the same instant. A step counts as exact only
when the generator's sent count, the subject's own counter and the sum of the Redis hash values
agree and every key holds exactly the devices the generator used.
"""
import argparse
import csv
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
FILTER = "$share/hb-consumers/hb/+/+"
SUBJECTS = ("consumer", "floor", "python", "node")
LABEL = {
    "consumer": "hb-consumer",
    "floor": "floor (paho, does nothing)",
    "python": "Python peer",
    "node": "Node.js peer",
    "consumer-live": "hb-consumer --live",
    "consumer-base": "hb-consumer (--base-build)",
}

# Sums every hb:* hash in Redis but the dashboard's: [key, fields, sum of values, pttl, ...].
VERIFY_LUA = """
local out = {}
for _, k in ipairs(redis.call('KEYS', 'hb:*')) do
  if string.sub(k, 1, 8) ~= 'hb:dash:' then
    local s = 0
    for _, v in ipairs(redis.call('HVALS', k)) do s = s + tonumber(v) end
    table.insert(out, k)
    table.insert(out, redis.call('HLEN', k))
    table.insert(out, s)
    table.insert(out, redis.call('PTTL', k))
  end
end
return out
"""


def callgrind_total(path):
    """The instructions a callgrind run counted (its "summary:" line), or None without one."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class BenchError(RuntimeError):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(probe, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout}s waiting for {what}")


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def tree_pids(root):
    """root and all its descendants (the simulator may fork workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def foreign_ticks():
    """CPU ticks (utime + stime + reaped children's) of every user-space process outside this
    driver's process tree, by pid: what other users of the machine are doing. Kernel threads
    are left out: ksoftirqd does the benchmark's own loopback networking."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ppid = int(fields[1])
        ticks = sum(int(x) for x in fields[11:15])
        procs[int(entry)] = (ppid, ticks)
    ours = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in procs.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                grew = True
    return {pid: t for pid, (ppid, t) in procs.items()
            if pid not in ours and pid != 2 and ppid != 2}


def foreign_cores(before, after, secs):
    """Cores used outside the benchmark between two foreign_ticks() snapshots; a process that
    appeared in between counts with all its time."""
    ticks = sum(t - before.get(pid, 0) for pid, t in after.items() if t >= before.get(pid, 0))
    return ticks / CLK_TCK / max(secs, 0.1)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def parse_stats(line):
    """The fields of a "stats k=v ..." line as numbers, or None."""
    at = line.find("stats ")
    if at < 0:
        return None
    fields = {}
    for k, v in re.findall(r"(\w+)=(-?\d+(?:\.\d+)?)", line[at:]):
        fields[k] = float(v) if "." in v else int(v)
    return fields if "received" in fields else None


class Process:
    """A child process whose stderr is logged to a file and scanned for stats lines; each stats
    line is stamped with the time and the CPU ticks of the watched pids at that moment."""

    def __init__(self, name, argv, logpath, watch=(), env=None, stdout=subprocess.DEVNULL):
        self.name = name
        self.logfile = open(logpath, "w")
        self.proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env,
                                     cwd=SOURCE)
        self.pid = self.proc.pid
        self.watch = list(watch)
        self.samples = []  # (wall time, fields, {pid: ticks})
        self.lines = []
        self.subscribed = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            fields = parse_stats(line)
            if fields is not None:
                t = time.time()
                ticks = {p: cpu_ticks(p) for p in [self.pid] + self.watch}
                ticks["foreign"] = foreign_ticks()
                self.samples.append((t, fields, ticks))
            elif "subscribed to" in line:
                self.subscribed.set()
            self.lines.append(line)
            self.logfile.write(line + "\n")
        self.logfile.flush()

    def processed(self):
        if not self.samples:
            return 0
        f = self.samples[-1][1]
        return f.get("written", f["received"])

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.pid}) did not stop; killing it")
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)
        self.logfile.close()
        return self.proc.returncode


class Servers:
    """A private mosquitto and redis-server for the whole run."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start_redis(self):
        self.redis_port = free_port()
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.workdir]
        self.redis_proc = subprocess.Popen(argv, stdout=open(os.path.join(self.workdir,
                                                                          "redis.log"), "w"),
                                           stderr=subprocess.STDOUT)
        self.procs.append(self.redis_proc)
        self.redis = redis.Redis(port=self.redis_port)

        def ping():
            try:
                return self.redis.ping()
            except redis.RedisError:
                return False
        wait_until(ping, 10, "redis-server")
        self.verify = self.redis.register_script(VERIFY_LUA)

    def start_broker(self, name="mosquitto", retain=False):
        port = free_port()
        conf = os.path.join(self.workdir, f"{name}.conf")
        logpath = os.path.join(self.workdir, f"{name}.log")
        with open(conf, "w") as f:
            f.write(f"""listener {port} 127.0.0.1
allow_anonymous true
persistence false
# The consumer (and every subject) must never lose a message to a full per-client queue:
max_queued_messages 0
max_queued_bytes 0
# As deploy/mosquitto.conf: QoS 1 messages in flight to one subscriber.
max_inflight_messages 1000
message_size_limit 65536
retain_available {"true" if retain else "false"}
connection_messages false
log_dest stderr
log_type error
log_type warning
log_type subscribe
""")
        proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                stderr=open(logpath, "w"))
        self.procs.append(proc)

        def listening():
            if proc.poll() is not None:
                raise BenchError(f"mosquitto exited: {open(logpath).read()[-500:]}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_until(listening, 10, "mosquitto")
        return proc, port, logpath

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Bench:
    def __init__(self, args, out):
        self.args = args
        self.out = out
        self.build = args.build
        self.tools = args.tools
        self.rows = []
        self.ceilings = []
        self.sim = None
        self.profiles = {}
        self.loads = []
        self.discarded = []
        os.makedirs(os.path.join(out, "steps"), exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix="hb-bench-")
        self.servers = Servers(self.workdir)

    # ----- helpers ---------------------------------------------------------------------

    def quiet(self, wait_s=300):
        """Waits (up to wait_s) until processes outside the benchmark use less than
        max_other_cores, measured over 2 s while the benchmark itself is idle."""
        deadline = time.monotonic() + wait_s
        said = False
        while True:
            a = foreign_ticks()
            time.sleep(2)
            other = foreign_cores(a, foreign_ticks(), 2)
            if other <= self.args.max_other_cores:
                return True
            if time.monotonic() > deadline:
                log(f"  still {other:.2f} cores busy elsewhere after {wait_s} s; going on")
                return False
            if not said:
                log(f"  {other:.2f} cores busy elsewhere; waiting for a quiet machine")
                said = True
            time.sleep(8)

    def pick_interval(self, budget_s):
        """An interval (seconds) such that the next budget_s seconds lie inside one interval, so
        every heartbeat of a step lands in one key per account and the expectation is exact."""
        now = time.time()
        interval = 3600
        while int(now // interval) != int((now + budget_s) // interval):
            interval += 1
        return interval

    def subscribe_count(self):
        with open(self.broker_log, errors="replace") as f:
            return f.read().count(FILTER)

    def start_subject(self, subject, interval, tag):
        b = f"tcp://127.0.0.1:{self.broker_port}"
        r = f"redis://127.0.0.1:{self.servers.redis_port}"
        if subject in ("consumer", "consumer-live", "consumer-base"):
            build = self.args.base_build if subject == "consumer-base" else self.build
            argv = [os.path.join(build, "consumer", "hb-consumer"), "--broker", b,
                    "--redis", r, "--interval", str(interval), "--stats-interval", "1",
                    *(["--live"] if subject == "consumer-live" else []),
                    *shlex.split(self.args.consumer_args)]
        elif subject == "floor":
            argv = [os.path.join(self.tools, "hb-nullsub"), "--broker", b, "--filter", FILTER,
                    "--stats-interval", "1"]
        elif subject == "python":
            argv = ["/usr/bin/python3", os.path.join(HERE, "python", "hb_peer.py"), "--broker",
                    b, "--redis", r, "--interval", str(interval), "--stats-interval", "1"]
        elif subject == "node":
            argv = ["node", os.path.join(HERE, "node", "hb-peer.js"), "--broker", b, "--redis",
                    r, "--interval", str(interval), "--stats-interval", "1"]
        else:
            raise BenchError(f"unknown subject {subject}")
        if getattr(self.args, "callgrind", False) and subject.startswith("consumer"):
            # Instructions, not time: a figure the rest of the machine cannot disturb.
            out = os.path.join(self.out, "steps", f"{tag}.callgrind")
            argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv]
        before = self.subscribe_count()
        p = Process(subject, argv, os.path.join(self.out, "steps", f"{tag}.log"),
                    watch=[self.broker.pid, self.servers.redis_proc.pid])

        def ready():
            if p.proc.poll() is not None:
                raise BenchError(f"{subject} exited early; see steps/{tag}.log")
            return self.subscribe_count() > before
        wait_until(ready, 20, f"{subject} to subscribe")
        return p

    def run_loadgen(self, tag, rate, count, port=None, extra=()):
        report = os.path.join(self.out, "steps", f"{tag}.loadgen.json")
        argv = [os.path.join(self.tools, "hb-loadgen"), "--port",
                str(port or self.broker_port), "--rate", str(rate), "--count", str(count),
                "--accounts", str(self.args.accounts), "--devices-per-account",
                str(self.args.devices_per_account), "--report", report, *extra]
        with open(os.path.join(self.out, "steps", f"{tag}.loadgen.log"), "w") as errf:
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errf)
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
        with open(report) as f:
            rep = json.load(f)
        rep["cpu_s"] = usage.ru_utime + usage.ru_stime
        if p.returncode != 0 or not rep["ok"]:
            raise BenchError(f"hb-loadgen failed (exit {p.returncode}); see steps/{tag}.*")
        return rep

    def verify_redis(self, rep, interval):
        """Compares Redis with the generator's report; returns (ok, detail)."""
        raw = self.servers.verify()
        start = int(rep["first_ts_ms"]) // (interval * 1000) * interval * 1000
        got = {}
        for i in range(0, len(raw), 4):
            got[raw[i].decode()] = (raw[i + 1], raw[i + 2], raw[i + 3])
        problems = []
        expected_keys = set()
        total = 0
        for a in rep["accounts"]:
            if a["heartbeats"] == 0:
                continue
            key = f"hb:{{{a['account']}}}:{start}"
            expected_keys.add(key)
            if key not in got:
                problems.append(f"{key} missing")
                continue
            fields, s, pttl = got[key]
            total += s
            if fields != a["devices"]:
                problems.append(f"{key}: {fields} devices, expected {a['devices']}")
            if s != a["heartbeats"]:
                problems.append(f"{key}: sum {s}, expected {a['heartbeats']}")
            if not 0 < pttl <= 2 * interval * 1000:
                problems.append(f"{key}: pttl {pttl}")
        extra = set(got) - expected_keys
        if extra:
            problems.append(f"{len(extra)} unexpected keys, e.g. {sorted(extra)[0]}")
        if problems:
            return False, "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""), total
        return True, f"{len(expected_keys)} keys, sum {total}", total

    @staticmethod
    def span(samples, t_first, t_last, sent):
        """The step as a whole, from the last stats sample before the first publish to the first
        sample that shows everything processed: (t_done, {pid: ticks}) or None. t_done estimates
        when the last heartbeat was processed: the sample before completion plus what was left
        at the rate of the second before it, never before the last publish."""
        def count(f):
            return f.get("written", f["received"])
        base, busy, end = None, [], None
        for sample in samples:
            if sample[0] <= t_first:
                base = sample
            elif count(sample[1]) >= sent:
                end = sample
                break
            else:
                busy.append(sample)
        if base is None or end is None:
            return None
        chain = [base] + busy
        t_done = end[0]
        if len(chain) >= 2:
            (tq, fq, _), (tp, fp, _) = chain[-2], chain[-1]
            if tp > tq and count(fp) > count(fq):
                rate = (count(fp) - count(fq)) / (tp - tq)
                t_done = min(t_done, tp + (sent - count(fp)) / rate)
        t_done = max(t_done, t_last)
        dticks = {pid: end[2][pid] - v for pid, v in base[2].items()
                  if pid != "foreign" and v is not None and end[2].get(pid) is not None}
        if "foreign" in base[2]:
            dticks["foreign"] = foreign_cores(base[2]["foreign"], end[2]["foreign"],
                                              end[0] - base[0])
        return t_done, dticks

    # ----- the steps ---------------------------------------------------------------------

    def step(self, subject, rate, count):
        """One subject at one offered rate: fresh subject, fresh Redis, one generator run."""
        offered = "max" if rate == 0 else rate
        tag = f"{subject}-{offered}"
        a = self.args
        budget = count / max(rate or 20000, 1000) + a.drain_timeout + 30
        interval = self.pick_interval(budget)
        self.servers.redis.flushall()
        load = loadavg()
        self.loads.append(load)
        log(f"{LABEL[subject]} at {offered}/s ({count} heartbeats), load {load:.2f}")
        p = self.start_subject(subject, interval, tag)
        row = {"subject": subject, "rate_offered": offered, "loadavg": load}
        try:
            # A stats sample before the first publish is the baseline of the step.
            wait_until(lambda: p.samples, 5, f"{subject}'s first stats line")
            rep = self.run_loadgen(tag, rate, count)
            # Drain: wait until the subject has processed everything or stops making progress.
            deadline = time.monotonic() + a.drain_timeout
            last_n, last_change = -1, time.monotonic()
            while time.monotonic() < deadline:
                n = p.processed()
                if n >= rep["sent"]:
                    break
                if n != last_n:
                    last_n, last_change = n, time.monotonic()
                elif time.monotonic() - last_change > 5:
                    break
                time.sleep(0.1)
            time.sleep(0.05)
        finally:
            status = p.stop()
        ir = callgrind_total(os.path.join(self.out, "steps", f"{tag}.callgrind"))
        if ir is not None:
            row["ir_per_hb"] = round(ir / max(rep["sent"], 1))
        final = p.samples[-1][1] if p.samples else {"received": 0}
        processed = final.get("written", final["received"])
        t_first, t_last = rep["first_ts_ms"] / 1000, rep["last_ts_ms"] / 1000
        span = self.span(p.samples, t_first, t_last, rep["sent"])
        row.update({
            "rate_sent": round(rep["rate_sent"]),
            "gen_max_lag_ms": rep["max_lag_ms"],
            "gen_us_per_hb": round(rep["cpu_s"] * 1e6 / rep["sent"], 2),
            "sent": rep["sent"],
            "processed": processed,
        })
        notes = []
        if status != 0:
            notes.append(f"exit status {status}")
        if span is None:
            notes.append("not all processed, or no baseline sample")
        else:
            t_done, dticks = span
            n = rep["sent"]
            row["window_s"] = round(t_done - t_first, 2)
            row["drain_s"] = round(t_done - t_last, 2)
            row["achieved_per_s"] = round(n / (t_done - t_first))
            for key, pid in (("cpu_us_per_hb", p.pid), ("broker_us_per_hb", self.broker.pid),
                             ("redis_us_per_hb", self.servers.redis_proc.pid)):
                if pid in dticks:
                    row[key] = round(dticks[pid] / CLK_TCK * 1e6 / n, 2)
            # CPU used meanwhile by processes outside the benchmark (other users of the machine).
            if "foreign" in dticks:
                row["other_cores"] = round(dticks["foreign"], 2)
        if "latency_p50_ms" in final:
            row["latency_p50_ms"] = final["latency_p50_ms"]
            row["latency_p99_ms"] = final["latency_p99_ms"]
        exact = processed == rep["sent"] == rep["acked"]
        if not exact:
            notes.append(f"processed {processed} of {rep['sent']}")
        for k in ("rejected", "dropped", "expired", "redis_errors"):
            if final.get(k):
                exact = False
                notes.append(f"{k}={final[k]}")
        if subject != "floor":
            ok, detail, total = self.verify_redis(rep, interval)
            row["redis_sum"] = total
            exact = exact and ok
            if not ok:
                notes.append("redis: " + detail)
        row["exact"] = "yes" if exact else "no"
        if rate and rep["rate_sent"] < 0.97 * rate:
            notes.append(f"generator behind (sent {rep['rate_sent']:.0f}/s)")
        row["note"] = "; ".join(notes)
        log(f"  achieved {row.get('achieved_per_s', '?')}/s, "
            f"{row.get('cpu_us_per_hb', '?')} us/hb, exact {row['exact']} {row['note']}")
        self.rows.append(row)
        return row

    def ceiling(self, end=False):
        """Broker-only throughput. mosquitto_sub exits after the expected count (-C), so its
        exit time ends the measurement."""
        a = self.args
        count = a.ceiling_count
        b = ["-p", str(self.broker_port)]
        sub_argv = ["mosquitto_sub", *b, "-q", "1", "-t", FILTER, "-C", str(count), "-F", ".",
                    "-N"]

        def measure(tag, publisher):
            for attempt in range(1 + a.retries):
                row = measure_once(tag, publisher)
                if row["other_cores"] <= a.max_other_cores or attempt == a.retries:
                    break
                log(f"  disturbed: other processes used {row['other_cores']} cores; repeating")
                self.discarded.append(row)
                self.quiet()
            log(f"ceiling {tag}: {row['achieved_per_s']}/s")
            self.ceilings.append(row)

        def measure_once(tag, publisher):
            before = self.subscribe_count()
            sub = subprocess.Popen(sub_argv, stdout=subprocess.DEVNULL)
            wait_until(lambda: self.subscribe_count() > before, 10, "mosquitto_sub")
            broker0, foreign0 = cpu_ticks(self.broker.pid), foreign_ticks()
            t0 = time.time()
            info = publisher()
            t_pub = time.time()
            # wait4 rather than wait: mosquitto_sub's CPU time comes with its exit status.
            deadline = time.monotonic() + a.drain_timeout
            while True:
                pid, status, usage = os.wait4(sub.pid, os.WNOHANG)
                if pid == sub.pid:
                    sub.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    sub.kill()
                    sub.wait()
                    raise BenchError(f"{tag}: mosquitto_sub did not receive all {count} "
                                     "messages")
                time.sleep(0.005)
            t1 = time.time()
            start = info.get("first_ts_ms", t0 * 1000) / 1000
            rate = count / (t1 - start)
            row = {"subject": tag, "rate_offered": "max", "sent": count, "processed": count,
                   "exact": "yes", "achieved_per_s": round(rate), "window_s": round(t1 - start, 2),
                   "broker_us_per_hb": round((cpu_ticks(self.broker.pid) - broker0) / CLK_TCK
                                             * 1e6 / count, 2),
                   "cpu_us_per_hb": round((usage.ru_utime + usage.ru_stime) * 1e6 / count, 2),
                   "other_cores": round(foreign_cores(foreign0, foreign_ticks(), t1 - t0), 2),
                   "loadavg": loadavg(), "note": info.get("note", "")}
            if "rate_sent" in info:
                row["rate_sent"] = round(info["rate_sent"])
                row["gen_us_per_hb"] = round(info["cpu_s"] * 1e6 / count, 2)
            else:
                row["rate_sent"] = round(count / (t_pub - t0))
            return row

        # 1. mosquitto_pub -l -> mosquitto -> mosquitto_sub. One mosquitto_pub -l at QoS 1 loses
        # what is still queued in it at end of input (2.0.11, past ~35k lines), so the lines go
        # in chunks of 25,000, one mosquitto_pub each, back to back.
        chunk = 25000
        lines = os.path.join(self.workdir, "lines.txt")
        payload = ('{"ts":1795290976123,"mediaId":"m-1","bitrate":3000,"playTime":12.5,'
                   '"agent":{"os":"Android","browser":"ExoPlayer","device":"Pixel 7"}}\n')
        with open(lines, "w") as f:
            f.write(payload * chunk)
        chunks = count // chunk

        def pub_lines():
            script = (f'for i in $(seq {chunks}); do mosquitto_pub -p {self.broker_port} -q 1 '
                      f'-M 1000 -t hb/acct0000/acct0000-d00000 -l < "{lines}" || exit 1; done')
            subprocess.run(["bash", "-c", script], check=True)
            return {"note": f"{chunks} × mosquitto_pub -l -M 1000 of {chunk} lines, one topic"}
        if count % chunk:
            raise BenchError("ceiling count must be a multiple of 25000")
        if not end:
            measure("ceiling: mosquitto_pub -l -> mosquitto_sub", pub_lines)

        # 2. The load generator at full speed -> mosquitto -> mosquitto_sub; measured again at
        # the end of the run (end=True), and the higher of the two counts.
        def gen():
            rep = self.run_loadgen("ceiling-loadgen-sub", 0, count)
            rep["note"] = f"{a.accounts * a.devices_per_account} device topics"
            return rep
        if end:
            measure("ceiling: hb-loadgen -> mosquitto_sub (end of run)", gen)
            return
        measure("ceiling: hb-loadgen -> mosquitto_sub", gen)

        # 3. The generator alone into the broker, nobody subscribed: can it outrun the ceiling?
        rep = self.run_loadgen("generator-alone", 0, count)
        row = {"subject": "generator alone (no subscriber)", "rate_offered": "max",
               "sent": rep["sent"], "processed": rep["acked"], "exact": "n.a.",
               "achieved_per_s": round(rep["rate_sent"]), "rate_sent": round(rep["rate_sent"]),
               "gen_us_per_hb": round(rep["cpu_s"] * 1e6 / rep["sent"], 2),
               "loadavg": loadavg(), "note": "publish + PUBACK only; no delivery"}
        log(f"generator alone: {rep['rate_sent']:.0f}/s")
        self.ceilings.append(row)

    def simulator(self):
        """hb-sim holding connections against a fresh broker, with hb-consumer writing and
        hb-check comparing with the truth."""
        a = self.args
        sim_bin = os.path.join(self.build, "publisher-sim", "hb-sim")
        if not os.access(sim_bin, os.X_OK):
            self.sim = {"error": f"{sim_bin} not built"}
            return
        broker, port, blog = self.servers.start_broker("mosquitto-sim")
        self.servers.redis.flushall()
        devices = a.sim_devices
        accounts = max(1, devices // 100)
        per = devices // accounts
        devices = accounts * per
        # Keys live until the end of the interval after their own: with 20 s intervals the last
        # complete interval of the truth is still in Redis when hb-check runs right after.
        interval = 20
        ramp = devices / a.sim_connect_rate
        duration = int(ramp + a.sim_hold + 2 * interval + 2)
        truth = os.path.join(self.out, "steps", "sim-truth.jsonl")
        consumer = Process("consumer", [os.path.join(self.build, "consumer", "hb-consumer"),
                                        "--broker", f"tcp://127.0.0.1:{port}", "--redis",
                                        f"redis://127.0.0.1:{self.servers.redis_port}",
                                        "--interval", str(interval), "--stats-interval", "5"],
                           os.path.join(self.out, "steps", "sim-consumer.log"))
        wait_until(lambda: consumer.subscribed.is_set(), 20, "consumer to subscribe")
        time.sleep(0.5)  # let the broker settle after the consumer's connect before the baseline
        broker_rss0, base_fds = rss_kib(broker.pid), fd_count(broker.pid)
        argv = [sim_bin, "--broker", f"tcp://127.0.0.1:{port}", "--accounts", str(accounts),
                "--devices-per-account", str(per), "--heartbeat", "5", "--interval",
                str(interval), "--duration", str(duration), "--churn", "0", "--qos", "1",
                "--connect-rate", str(a.sim_connect_rate), "--truth", truth, "--json"]
        log(f"simulator: {devices} devices, connect rate {a.sim_connect_rate}/s, "
            f"{duration} s")
        sim_out = open(os.path.join(self.out, "steps", "sim.json"), "w")
        sim = Process("hb-sim", argv, os.path.join(self.out, "steps", "sim.log"),
                      stdout=sim_out)
        t0 = time.time()
        timeline = []  # (t, broker fds, sim rss, broker rss, sim processes)
        while sim.proc.poll() is None:
            pids = tree_pids(sim.pid)
            rss = sum(r for r in (rss_kib(p) for p in pids) if r)
            timeline.append((time.time() - t0, fd_count(broker.pid) or base_fds, rss,
                             rss_kib(broker.pid), len(pids)))
            time.sleep(0.1)
        sim.stop()
        sim_out.close()
        consumer.stop()
        try:
            with open(os.path.join(self.out, "steps", "sim.json")) as f:
                summary = json.loads(f.read().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            summary = {}
        peak = max(timeline, key=lambda r: r[1]) if timeline else None
        reached = peak[1] - base_fds if peak else 0
        # Connect rate: from the first to 99 % of the peak connection count (broker fds).
        t_start = next((r[0] for r in timeline if r[1] > base_fds), None)
        t_full = next((r[0] for r in timeline if r[1] - base_fds >= 0.99 * reached), None)
        # Memory: when all are connected and a few seconds have passed (steady state).
        steady = [r for r in timeline if t_full is not None and t_full + 2 <= r[0]]
        at = steady[len(steady) // 2] if steady else peak
        check = subprocess.run([os.path.join(self.build, "checker", "hb-check"), "--redis",
                                f"redis://127.0.0.1:{self.servers.redis_port}", "--interval",
                                str(interval), "--verify", truth], capture_output=True,
                               text=True)
        with open(os.path.join(self.out, "steps", "sim-check.log"), "w") as f:
            f.write(check.stdout + check.stderr)
        out = (check.stdout + check.stderr).strip()
        m = re.search(r"(\d+) checked, (\d+) mismatched, (\d+) skipped", out)
        compared = int(m.group(1)) if m else 0  # "checked" counts compared ones only
        self.sim = {
            "devices": devices,
            "interval_s": interval,
            "verify_compared": compared,
            "verify_ok": check.returncode == 0 and compared > 0,
            "sim_reported_connect_rate": summary.get("connect_rate"),
            "sim_reported_bytes_per_conn": summary.get("memory_per_connection_bytes"),
            "sim_reported_workers": summary.get("workers"),
            "connected_max": summary.get("connected_max", reached),
            "broker_connections_seen": reached,
            "connect_rate_limit": a.sim_connect_rate,
            "connect_seconds": round(t_full - t_start, 2) if t_full and t_start else None,
            "sim_rss_mib": round(at[2] / 1024, 1) if at else None,
            "sim_processes": at[4] if at else None,
            # The simulator's own baseline is its first sample (a few connections at most).
            "sim_kib_per_conn": round((at[2] - timeline[0][2]) / (at[1] - timeline[0][1]), 2)
            if at and at[1] > timeline[0][1] else None,
            "broker_rss_mib": round(at[3] / 1024, 1) if at else None,
            "broker_kib_per_conn": round((at[3] - broker_rss0) / (at[1] - base_fds), 2)
            if at and at[1] > base_fds else None,
            "published": summary.get("published"),
            "acked": summary.get("acked"),
            "errors": summary.get("errors"),
            "verify_exit": check.returncode,
            "verify_tail": out.splitlines()[-1:] if out else [],
        }
        if self.sim["connect_seconds"]:
            self.sim["connect_rate"] = round(reached / max(self.sim["connect_seconds"], 0.1))
        broker.terminate()
        broker.wait(10)
        log(f"simulator: {self.sim}")

    def profile(self, subject, rate):
        """perf samples (cpu-clock) of one subject at one rate, top symbols and libraries."""
        a = self.args
        count = int(rate * a.duration)
        tag = f"profile-{subject}-{rate}"
        interval = self.pick_interval(a.duration + a.drain_timeout + 30)
        self.servers.redis.flushall()
        p = self.start_subject(subject, interval, tag)
        data = os.path.join(self.workdir, f"{tag}.perf")
        perf = None
        try:
            gen = threading.Thread(target=self.run_loadgen, args=(tag, rate, count))
            gen.start()
            time.sleep(a.warmup)
            perf = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999",
                                   "--call-graph", "dwarf,8192", "-p", str(p.pid), "-o", data,
                                   "--", "sleep", str(max(2, a.duration - a.warmup - 1))],
                                  capture_output=True, text=True)
            gen.join()
        finally:
            p.stop()
        if perf is None or perf.returncode != 0 or not os.path.exists(data):
            self.profiles[subject] = {"error": (perf.stderr if perf else "")[-300:]}
            return

        def report(*opts):
            r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", *opts],
                               capture_output=True, text=True)
            rows = []
            for line in r.stdout.splitlines():
                m = re.match(r"\s*([\d.]+)%\s+(?:([\d.]+)%\s+)?(\S.*)$", line)
                if m:
                    rows.append((float(m.group(1)), re.sub(r"\s+", " ", m.group(3)).strip()))
            return rows
        own = ("hb-consumer ", "hb-nullsub ", "libcjson", "libhiredis")
        reports = {
            "dso": report("--no-children", "--sort", "dso", "--percent-limit", "0.3"),
            "dso,sym": report("--no-children", "--sort", "dso,sym", "--percent-limit", "0.8"),
            "comm": report("--no-children", "--sort", "comm"),
            # Inclusive time of the project's own functions and of cJSON and hiredis (dwarf
            # call graphs; a stack the unwinder could not follow counts for its leaf only).
            "own": [r for r in report("--children", "--sort", "dso,sym", "--percent-limit",
                                      "0.3") if r[1].startswith(own)][:14],
        }
        with open(os.path.join(self.out, "steps", f"{tag}.txt"), "w") as f:
            for sort, rows in reports.items():
                f.write(f"# {sort}\n")
                f.writelines(f"{pct:6.2f}%  {what}\n" for pct, what in rows)
        self.profiles[subject] = {"rate": rate, **reports}
        log(f"profile {subject}: {reports['comm']} {reports['own'][:4]}")

    # ----- the run -----------------------------------------------------------------------

    def matrix_rate(self, rate, best, saturated):
        """Every subject at one offered rate (0 = max): consumer and floor a.repeat times,
        interleaved, the peers once. A subject whose median run at this rate fell short of
        what was sent, or any run was not exact, is saturated: higher rates skip it."""
        a = self.args
        top = max([c["achieved_per_s"] for c in self.ceilings
                   if c["subject"].startswith("ceiling")] + [0])
        order = []
        for rep in range(a.repeat if rate else 1):
            order += [(s, rep) for s in a.subjects if rep == 0 or s in ("consumer", "floor")]
        for subject, rep in order:
            if rate and subject in saturated:
                if rep == 0:
                    self.rows.append({"subject": subject, "rate_offered": rate,
                                      "exact": "skipped",
                                      "note": f"saturated at {saturated[subject]}/s"})
                continue
            if rate:
                count = int(rate * a.duration)
            else:
                # Offer more than the subject can take, but not so much that draining the
                # backlog takes long.
                ceiling = max(top, 20000)
                count = int(a.duration * min(1.2 * ceiling,
                                             max(2 * best.get(subject, ceiling), 0.6 * ceiling)))
            for attempt in range(1 + a.retries):
                row = self.step(subject, rate, count)
                other = row.get("other_cores", 0)
                # A generator that cannot keep a rate far below the ceiling means something
                # outside the benchmark slowed the machine down.
                slowed = bool(rate and top and rate <= 0.75 * top
                              and row.get("rate_sent", rate) < 0.97 * rate)
                disturbed = other > a.max_other_cores or slowed
                if not disturbed or attempt == a.retries:
                    break
                # This step says more about the rest of the machine than about the subject:
                # keep it aside and run it again once the machine is quiet.
                log(f"  disturbed: other processes used {other} cores"
                    f"{', generator behind' if slowed else ''}; repeating")
                self.rows.remove(row)
                self.discarded.append(row)
                self.quiet()
            notes = [row.get("note")]
            if attempt:
                notes.append(f"attempt {attempt + 1}")
            if disturbed:
                notes.append("disturbed")
            row["note"] = "; ".join(filter(None, notes))
            row["rep"] = rep + 1
            row["disturbed"] = disturbed
            best[subject] = max(best.get(subject, 0), row.get("achieved_per_s", 0))
        if not rate:
            return
        for subject in a.subjects:
            runs = [r for r in self.rows if r["subject"] == subject
                    and r["rate_offered"] == rate and r.get("exact") != "skipped"]
            if not runs or subject in saturated:
                continue
            achieved = statistics.median(r.get("achieved_per_s", 0) for r in runs)
            sent = statistics.median(r.get("rate_sent", rate) for r in runs)
            if achieved < 0.95 * sent or any(r["exact"] != "yes" for r in runs):
                saturated[subject] = rate

    def run(self):
        a = self.args
        self.servers.start_redis()
        self.broker, self.broker_port, self.broker_log = self.servers.start_broker()
        try:
            self.quiet()
            if not a.skip_ceiling:
                self.ceiling()
            best = {}
            saturated = {}
            for rate in a.rates + [0]:
                self.matrix_rate(rate, best, saturated)
            if not a.skip_ceiling:
                self.ceiling(end=True)
            if a.profile_rate:
                for subject in ("consumer", "floor"):
                    if shutil.which("perf"):
                        self.profile(subject, a.profile_rate)
            if a.sim_devices:
                self.simulator()
        finally:
            self.servers.stop_all()
            shutil.rmtree(self.workdir, ignore_errors=True)


# ----- outputs -----------------------------------------------------------------------------

CSV_FIELDS = ["subject", "rate_offered", "rep", "rate_sent", "achieved_per_s", "exact", "drain_s",
              "sent",
              "processed", "redis_sum", "cpu_us_per_hb", "broker_us_per_hb", "redis_us_per_hb",
              "gen_us_per_hb", "gen_max_lag_ms", "latency_p50_ms", "latency_p99_ms", "window_s",
              "other_cores",
              "loadavg", "note"]


def fmt(v, digits=1):
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def by(rows, subject, offered):
    """The step of subject at offered; with repetitions, one merged row: the median of each
    number over the runs that have it, exact only if every run was, notes joined."""
    runs = [r for r in rows if r["subject"] == subject and r["rate_offered"] == offered]
    if len(runs) <= 1:
        return runs[0] if runs else None
    merged = {"subject": subject, "rate_offered": offered, "runs": len(runs)}
    for key in CSV_FIELDS:
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if values and key not in ("rep",):
            mid = statistics.median(values)
            merged[key] = round(mid) if all(isinstance(v, int) for v in values) else mid
            if key in ("cpu_us_per_hb", "achieved_per_s"):
                merged[key + "_range"] = (min(values), max(values))
    exact = {r.get("exact") for r in runs}
    merged["exact"] = "yes" if exact == {"yes"} else ("skipped" if exact == {"skipped"}
                                                      else "no")
    merged["note"] = "; ".join(sorted({r["note"] for r in runs if r.get("note")}))
    return merged


def ceiling_value(b, strict=True):
    """The broker-only ceiling. As the issue defines it (strict=False): the best mosquitto ->
    mosquitto_sub pipeline. Strict: the highest broker-only rate measured at all, the paho
    floor subscriber's included; the targets are judged against this one."""
    cands = [(c["achieved_per_s"], c["subject"]) for c in b.ceilings
             if c["subject"].startswith("ceiling")]
    for o in (b.args.rates + ["max"]) if strict else []:
        floor = by(b.rows, "floor", o)
        if floor and floor.get("achieved_per_s") and floor["exact"] == "yes":
            cands.append((floor["achieved_per_s"],
                          f"hb-loadgen -> paho floor subscriber, offered {fmt(o)}"))
    return max(cands) if cands else (None, None)


def results_md(b):
    a = b.args
    offered = a.rates + ["max"]
    out = []
    out.append("| offered/s | achieved/s (consumer) | exact? | CPU µs/hb consumer | floor | "
               "Python | Node.js | consumer / floor | latency p50 / p99 ms |")
    out.append("|---:|---:|:---:|---:|---:|---:|---:|---:|---:|")
    for o in offered:
        c = by(b.rows, "consumer", o) or {}
        cells = [fmt(o if o != "max" else f"max ({fmt(c.get('rate_sent'))})"),
                 fmt(c.get("achieved_per_s")), c.get("exact", "–")]
        for s in SUBJECTS:
            r = by(b.rows, s, o) or {}
            v = r.get("cpu_us_per_hb")
            cell = fmt(v, 2)
            if r.get("cpu_us_per_hb_range"):
                lo, hi = r["cpu_us_per_hb_range"]
                cell += f" ({lo:.1f}–{hi:.1f})"
            if r.get("exact") == "skipped":
                cell = "sat."
            elif v is not None and r.get("achieved_per_s") and o != "max" and \
                    r["achieved_per_s"] < 0.95 * o:
                cell += f" (sat. {fmt(r['achieved_per_s'])}/s)"
            elif v is not None and r.get("exact") != "yes":
                cell += " (inexact)"
            cells.append(cell)
        f = by(b.rows, "floor", o) or {}
        ratio = (c["cpu_us_per_hb"] / f["cpu_us_per_hb"]
                 if c.get("cpu_us_per_hb") and f.get("cpu_us_per_hb") else None)
        if o == "max":
            cells.append("n/a (unequal rates)" if ratio else "–")
        else:
            cells.append(f"{ratio:.2f}×" if ratio else "–")
        lat = c.get("latency_p50_ms")
        cells.append(f"{fmt(lat)} / {fmt(c.get('latency_p99_ms'))}" if lat is not None else "–")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Every run (µs/hb = CPU time, user + system, of the subject's process per "
               "heartbeat over the step; broker and Redis: those processes' CPU per heartbeat "
               "over the same span; other cores = CPU used meanwhile by processes outside the "
               "benchmark, a step above "
               f"{b.args.max_other_cores} was set aside and run again; the summary above "
               "shows the median of the runs and their range):")
    out.append("")
    out.append("| subject | offered/s | run | sent/s | achieved/s | exact? | drain s | µs/hb | "
               "broker µs/hb | Redis µs/hb | p50 / p99 ms | other cores | note |")
    out.append("|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---|")
    for s in SUBJECTS:
        for o in offered:
            for r in [r for r in b.rows if r["subject"] == s and r["rate_offered"] == o]:
                lat = (f"{fmt(r.get('latency_p50_ms'))} / {fmt(r.get('latency_p99_ms'))}"
                       if r.get("latency_p50_ms") is not None else "–")
                out.append(f"| {LABEL[s]} | {fmt(o)} | {fmt(r.get('rep'))} | "
                           f"{fmt(r.get('rate_sent'))} | {fmt(r.get('achieved_per_s'))} | "
                           f"{r.get('exact', '–')} | {fmt(r.get('drain_s'))} | "
                           f"{fmt(r.get('cpu_us_per_hb'), 2)} | "
                           f"{fmt(r.get('broker_us_per_hb'), 2)} | "
                           f"{fmt(r.get('redis_us_per_hb'), 2)} | {lat} | "
                           f"{fmt(r.get('other_cores'), 2)} | {r.get('note', '')} |")
    out.append("")
    out.append("Ceiling (broker only, QoS 1, shared subscription):")
    out.append("")
    out.append("| pipeline | messages | publisher sent/s | delivered/s | publisher µs/msg | "
               "broker µs/msg | mosquitto_sub µs/msg | note |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for c in b.ceilings:
        out.append(f"| {c['subject']} | {fmt(c['sent'])} | {fmt(c.get('rate_sent'))} | "
                   f"{fmt(c['achieved_per_s']) if c['subject'].startswith('ceiling') else '–'}"
                   f" | {fmt(c.get('gen_us_per_hb'), 2)} | {fmt(c.get('broker_us_per_hb'), 2)} |"
                   f" {fmt(c.get('cpu_us_per_hb'), 2)} | {c.get('note', '')} |")
    top, what = ceiling_value(b)
    if top:
        out.append("")
        out.append(f"Ceiling used for the targets: **{top:,}/s** ({what}).")
    if b.sim:
        s = b.sim
        out.append("")
        out.append("Simulator holding connections (hb-sim against a fresh mosquitto, "
                   "hb-consumer writing, hb-check --verify against the truth):")
        out.append("")
        if "error" in s:
            out.append(f"not run: {s['error']}")
        else:
            out.append("| devices | connected (sim) | connections seen by broker | connect time s |"
                       " connect rate/s (limit) | sim RSS MiB (procs) | sim KiB/conn | "
                       "broker RSS MiB | broker KiB/conn | published / acked | verify |")
            out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            verify = (f"exact ({s['verify_compared']} account-intervals)" if s["verify_ok"]
                      else f"FAILED: exit {s['verify_exit']}, {s['verify_compared']} compared")
            out.append(f"| {fmt(s['devices'])} | {fmt(s['connected_max'])} | "
                       f"{fmt(s['broker_connections_seen'])} | {fmt(s['connect_seconds'])} | "
                       f"{fmt(s.get('connect_rate'))} ({fmt(s['connect_rate_limit'])}) | "
                       f"{fmt(s['sim_rss_mib'])} ({fmt(s['sim_processes'])}) | "
                       f"{fmt(s['sim_kib_per_conn'], 2)} | {fmt(s['broker_rss_mib'])} | "
                       f"{fmt(s['broker_kib_per_conn'], 2)} | {fmt(s['published'])} / "
                       f"{fmt(s['acked'])} | {verify} |")
            out.append("")
            out.append(f"KiB/conn = VmRSS growth ÷ connections (simulator: all its processes; "
                       f"baseline its first sample). hb-sim's own report: "
                       f"{fmt(s.get('sim_reported_connect_rate'))} connections/s, "
                       f"{fmt(s.get('sim_reported_bytes_per_conn'))} bytes per connection "
                       f"(its proportional set size over parent and "
                       f"{fmt(s.get('sim_reported_workers'))} worker(s)); "
                       f"{s['interval_s']} s intervals, a heartbeat every 5 s.")
    return "\n".join(out) + "\n"


def targets_md(b):
    """The two targets, computed: met or missed, and by how much."""
    out = []
    ratios = []
    for o in b.args.rates:
        c, f = by(b.rows, "consumer", o), by(b.rows, "floor", o)
        if c and f and c.get("cpu_us_per_hb") and f.get("cpu_us_per_hb"):
            ratios.append((o, c["cpu_us_per_hb"] / f["cpu_us_per_hb"], c["cpu_us_per_hb"],
                           f["cpu_us_per_hb"]))
    for o, ratio, cu, fu in ratios:
        verdict = "met" if ratio <= 1.25 else f"missed by {(ratio / 1.25 - 1) * 100:.0f} %"
        out.append(f"- CPU per heartbeat at {o:,}/s: consumer {cu:.2f} µs, floor {fu:.2f} µs, "
                   f"**{ratio:.2f}×** (target ≤ 1.25×: {verdict}; the consumer's extra "
                   f"{cu - fu:.2f} µs/hb against an allowance of {0.25 * fu:.2f} µs).")
    top, what = ceiling_value(b)
    fixed = [r for r in (by(b.rows, "consumer", o) for o in b.args.rates + ["max"])
             if r and r.get("exact") == "yes" and r.get("achieved_per_s")]
    if top and fixed:
        best = max(fixed, key=lambda r: r["achieved_per_s"])
        pct = best["achieved_per_s"] / top * 100
        verdict = "met" if pct >= 90 else f"missed by {90 - pct:.0f} points"
        out.append(f"- End-to-end sustained throughput with exact counts: "
                   f"**{best['achieved_per_s']:,}/s** (offered {fmt(best['rate_offered'])}) = "
                   f"**{pct:.0f} %** of the broker-only ceiling {top:,}/s ({what}); "
                   f"target ≥ 90 %: {verdict}.")
        sub_top, sub_what = ceiling_value(b, strict=False)
        if sub_top and sub_top != top:
            out.append(f"  Against the ceiling as the issue defines it, with mosquitto_sub as "
                       f"the subscriber ({sub_top:,}/s, {sub_what}), that is "
                       f"{best['achieved_per_s'] / sub_top * 100:.0f} %; the stricter ceiling "
                       f"above is the one judged.")
    return "\n".join(out) + "\n"


def write_csv(b, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in b.ceilings + b.rows:
            w.writerow(r)


def plot(b, out):
    """plot.png: achieved rate and CPU per heartbeat against the offered rate."""
    data = os.path.join(out, "plot.dat")
    with open(data, "w") as f:
        for s in SUBJECTS:
            f.write(f"# {s}\n")
            for o in b.args.rates + ["max"]:
                r = by(b.rows, s, o)
                if not r or not r.get("achieved_per_s"):
                    continue
                x = r["rate_offered"] if r["rate_offered"] != "max" else r.get("rate_sent")
                f.write(f"{x / 1000:.3f} {r['achieved_per_s'] / 1000:.3f} "
                        f"{r.get('cpu_us_per_hb', 'NaN')}\n")
            f.write("\n\n")
    top, _ = ceiling_value(b)
    xmax = max([r.get("rate_sent") or 0 for r in b.rows] + [1]) / 1000 * 1.05
    titles = [LABEL[s] for s in SUBJECTS]
    title = f"hb benchmark {os.path.basename(out)} ({b.machine['cpu']}, {b.machine['cores']} cores)"
    ceiling_line = (f'set arrow from 0,{top / 1000:.3f} to {xmax:.1f},{top / 1000:.3f} nohead '
                    f'dt 2 lc rgb "gray40"\n'
                    f'set label "broker-only ceiling {top / 1000:.1f}k/s" at {xmax * 0.02:.2f},'
                    f'{top / 1000 * 1.03:.3f} tc rgb "gray40"' if top else "")
    gp = f"""set terminal pngcairo size 1400,600 font "sans,11"
set output "{os.path.join(out, 'plot.png')}"
set datafile missing "NaN"
set multiplot layout 1,2 title "{title}"
set key top left
set grid
set xrange [0:{xmax:.1f}]
set xlabel "offered heartbeats/s (thousands; last point = max)"
set ylabel "achieved heartbeats/s (thousands)"
set title "Throughput"
{ceiling_line}
plot x title "offered" dt 3 lc rgb "gray60", \\
  "{data}" index 0 using 1:2 with linespoints lc rgb "#1f77b4" pt 7 lw 2 title "{titles[0]}", \\
  "{data}" index 1 using 1:2 with linespoints lc rgb "#2ca02c" pt 5 lw 2 title "{titles[1]}", \\
  "{data}" index 2 using 1:2 with linespoints lc rgb "#ff7f0e" pt 9 lw 2 title "{titles[2]}", \\
  "{data}" index 3 using 1:2 with linespoints lc rgb "#9467bd" pt 11 lw 2 title "{titles[3]}"
unset arrow
unset label
set title "CPU time per heartbeat (user + system)"
set ylabel "µs per heartbeat (log scale)"
set logscale y
set key top right
plot "{data}" index 0 using 1:3 with linespoints lc rgb "#1f77b4" pt 7 lw 2 title "{titles[0]}", \\
  "{data}" index 1 using 1:3 with linespoints lc rgb "#2ca02c" pt 5 lw 2 title "{titles[1]}", \\
  "{data}" index 2 using 1:3 with linespoints lc rgb "#ff7f0e" pt 9 lw 2 title "{titles[2]}", \\
  "{data}" index 3 using 1:3 with linespoints lc rgb "#9467bd" pt 11 lw 2 title "{titles[3]}"
unset multiplot
"""
    with open(os.path.join(out, "plot.gp"), "w") as f:
        f.write(gp)
    r = subprocess.run(["gnuplot", os.path.join(out, "plot.gp")], capture_output=True,
                       text=True)
    if r.returncode != 0:
        log(f"gnuplot failed: {r.stderr[-500:]}")


def run_text(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(build):
    info = {}
    lscpu = run_text(["lscpu"])
    m = re.search(r"Model name:\s*(.+)", lscpu)
    info["cpu"] = m.group(1).strip() if m else platform.processor()
    info["cores"] = os.cpu_count()
    info["kernel"] = platform.release()
    with open("/proc/meminfo") as f:
        info["mem_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    m = re.search(r"Hypervisor vendor:\s*(.+)", lscpu)
    info["hypervisor"] = m.group(1).strip() if m else "none reported"
    pkgs = ["mosquitto", "libmosquitto1", "libpaho-mqtt1.3", "libhiredis0.14", "libcjson1",
            "redis-server", "python3", "python3-paho-mqtt", "python3-redis", "nodejs",
            "gnuplot-nox", "linux-perf"]
    info["packages"] = {}
    for p in pkgs:
        v = run_text(["dpkg-query", "-W", "-f", "${Version}", p])
        if v:
            info["packages"][p] = v
    for mod in ("mqtt", "ioredis"):
        try:
            with open(os.path.join(HERE, "node", "node_modules", mod, "package.json")) as f:
                info["packages"][f"npm {mod}"] = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            pass
    info["node"] = run_text(["node", "--version"])
    info["hb"] = run_text([os.path.join(build, "consumer", "hb-consumer"), "--version"])
    info["commit"] = run_text(["git", "-C", SOURCE, "rev-parse", "--short", "HEAD"])
    info["dirty"] = bool(run_text(["git", "-C", SOURCE, "status", "--porcelain",
                                   "--untracked-files=no"]))
    info["buildtype"] = ""
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            for o in json.load(f):
                if o["name"] in ("buildtype", "b_sanitize"):
                    info[o["name"]] = o["value"]
    except (OSError, ValueError):
        pass
    return info


def top_processes():
    """The busiest processes right now (what else was running)."""
    out = run_text(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"])
    return [" ".join(l.split()) for l in out.splitlines()[:5]]


def profile_md(b):
    out = []
    for subject in ("consumer", "floor"):
        p = b.profiles.get(subject)
        if not p:
            continue
        if "error" in p:
            out.append(f"- {LABEL[subject]}: perf failed: {p['error']}")
            continue
        threads = ", ".join(f"{what} {pct:.1f} %" for pct, what in p["comm"])
        out.append(f"**{LABEL[subject]}** at {p['rate']:,}/s (`perf record -e cpu-clock "
                   f"--call-graph dwarf`; threads: {threads}).")
        out.append("")
        out.append("| % of samples | library (self time) |")
        out.append("|---:|---|")
        out.extend(f"| {pct:.1f} | `{what}` |" for pct, what in p["dso"][:9])
        out.append("")
        out.append("| % | hottest functions (self time) |")
        out.append("|---:|---|")
        out.extend(f"| {pct:.1f} | `{what}` |" for pct, what in p["dso,sym"][:12])
        out.append("")
        if p.get("own"):
            out.append("| % | the program's own functions, cJSON and hiredis (inclusive) |")
            out.append("|---:|---|")
            out.extend(f"| {pct:.1f} | `{what}` |" for pct, what in p["own"])
            out.append("")
    return "\n".join(out) + "\n"


NO_PROFILE = "Not profiled in this run (BENCH_PROFILE_RATE=0 or perf missing)."
NOTES_BEGIN = "<!-- notes:begin (kept by bench/bench.py across runs) -->"
NOTES_END = "<!-- notes:end -->"
ADMISSION_BEGIN = "<!-- admission:begin"
ADMISSION_END = "<!-- admission:end -->"
LIVE_BEGIN = "<!-- live:begin"  # issue 11's figures (bench/live_dash.py), kept as they are
LIVE_END = "<!-- live:end -->"


def benchmarks_md(b, stamp, results, conditions):
    m = b.machine
    path = os.path.join(SOURCE, "BENCHMARKS.md")
    notes = f"{NOTES_BEGIN}\n{NOTES_END}"
    admission = ""  # bench/admission.py's section, kept as it is
    if os.path.exists(path):
        text = open(path).read()
        i, j = text.find(NOTES_BEGIN), text.find(NOTES_END)
        if i >= 0 and j > i:
            notes = text[i:j + len(NOTES_END)]
        i, j = text.find(ADMISSION_BEGIN), text.find(ADMISSION_END)
        if i >= 0 and j > i:
            admission = text[i:j + len(ADMISSION_END)] + "\n\n"
        i, j = text.find(LIVE_BEGIN), text.find(LIVE_END)
        if i >= 0 and j > i:
            admission += text[i:j + len(LIVE_END)] + "\n\n"
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    return f"""# Benchmarks

Written by `bash bench/run.sh` (see [bench/README.md](bench/README.md)); the numbers below are
from the run of **{stamp}**, whose raw files are in `bench/results/{stamp}/` and copied to
[`bench/latest/`](bench/latest/) (`results.csv`, `results.md`, `plot.png`, per-step logs).

![throughput and CPU per heartbeat](bench/latest/plot.png)

## Machine and conditions

- CPU: {m['cpu']}, {m['cores']} cores ({m['hypervisor']} hypervisor), {m['mem_gib']} GiB;
  kernel {m['kernel']}; Debian packages: {pk}; Node.js {m['node']}.
- Code: {m['hb']}, commit {m['commit']}{' with uncommitted changes' if m['dirty'] else ''},
  build type {m.get('buildtype', '?')}, sanitizers {m.get('b_sanitize', 'none')}.
- {conditions}
- All servers on loopback in one temporary directory: mosquitto with `max_inflight_messages
  1000` (as `deploy/mosquitto.conf`), unlimited per-client queue, persistence off;
  redis-server with no RDB/AOF. Every subject subscribes to `{FILTER}` with QoS 1; the
  generator publishes QoS 1 to {b.args.accounts} accounts × {b.args.devices_per_account}
  devices (`hb/acctNNNN/acctNNNN-dNNNNN`) over 4 connections.
- Everything shares the same 2 cores: generator, broker, subject and Redis compete for CPU,
  so throughput here is bounded by the machine, not by any one program.

## Targets

{targets_md(b)}
## Results

{results}
## Profile

{profile_md(b) if b.profiles else NO_PROFILE}
{admission}## Notes

{notes}
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", required=True, help="meson build dir with hb-consumer, hb-sim")
    p.add_argument("--tools", required=True, help="dir with hb-loadgen and hb-nullsub")
    p.add_argument("--out", required=True, help="results dir (bench/results/<stamp>)")
    p.add_argument("--rates", default="5000,10000,20000,40000,50000,60000,70000,80000")
    p.add_argument("--subjects", default=",".join(SUBJECTS))
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--repeat", type=int, default=3, help="runs of consumer and floor per rate")
    p.add_argument("--retries", type=int, default=2, help="reruns of a disturbed step")
    p.add_argument("--max-other-cores", type=float, default=0.15,
                   help="CPU (in cores) other processes may use during a step")
    p.add_argument("--drain-timeout", type=float, default=60)
    p.add_argument("--accounts", type=int, default=200)
    p.add_argument("--devices-per-account", type=int, default=1000)
    p.add_argument("--ceiling-count", type=int, default=1000000)
    p.add_argument("--skip-ceiling", action="store_true")
    p.add_argument("--sim-devices", type=int, default=10000)
    p.add_argument("--sim-connect-rate", type=int, default=5000)
    p.add_argument("--sim-hold", type=float, default=15)
    p.add_argument("--profile-rate", type=int, default=40000)
    p.add_argument("--write-docs", action="store_true", help="rewrite BENCHMARKS.md")
    p.add_argument("--consumer-args", default="", help="extra hb-consumer options, to compare")
    p.add_argument("--mode", default="full")
    args = p.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r]
    args.subjects = [s for s in args.subjects.split(",") if s]

    stamp = os.path.basename(os.path.normpath(args.out))
    os.makedirs(args.out, exist_ok=True)
    b = Bench(args, args.out)
    b.machine = machine_info(args.build)
    load0, busy0 = loadavg(), top_processes()
    started = time.time()
    log(f"results in {args.out}; load average {load0:.2f}")
    b.run()
    elapsed = time.time() - started
    load1 = loadavg()
    conditions = (f"Run ({args.mode}) took {elapsed / 60:.1f} min; load average "
                  f"{load0:.2f} at the start, {load1:.2f} at the end, before the steps "
                  f"{min(b.loads or [0]):.2f}–{max(b.loads or [0]):.2f} (our own previous step "
                  f"included). Busiest processes at the start: {'; '.join(busy0)}. "
                  f"Steps set aside because other processes used more than "
                  f"{args.max_other_cores} cores meanwhile (each run again): "
                  f"{len(b.discarded)}.")
    results = results_md(b)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(f"# hb benchmark {stamp}\n\n{conditions}\n\n## Targets\n\n{targets_md(b)}\n"
                f"## Results\n\n{results}")
        if b.profiles:
            f.write(f"\n## Profile\n\n{profile_md(b)}")
    write_csv(b, os.path.join(args.out, "results.csv"))
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({"machine": b.machine, "args": vars(args), "rows": b.rows,
                   "ceilings": b.ceilings, "sim": b.sim, "profiles": b.profiles,
                   "discarded": b.discarded,
                   "conditions": conditions}, f, indent=1)
    plot(b, args.out)
    if args.write_docs:
        latest = os.path.join(HERE, "latest")
        shutil.rmtree(latest, ignore_errors=True)
        shutil.copytree(args.out, latest)
        with open(os.path.join(SOURCE, "BENCHMARKS.md"), "w") as f:
            f.write(benchmarks_md(b, stamp, results, conditions))
        log("BENCHMARKS.md rewritten")
    print(results)
    log(f"done in {elapsed / 60:.1f} min: {args.out}")


def on_signal(signum, frame):
    raise BenchError(f"stopped by signal {signum}")


if __name__ == "__main__":
    # Turn SIGTERM/SIGINT into an exception so every server and subject is stopped by pid.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        main()
    except BenchError as e:
        log(f"failed: {e}")
        sys.exit(1)
