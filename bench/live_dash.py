#!/usr/bin/env python3
"""Issue 11's two figures (bench/run.sh live): the live viewer count's cost on hb-consumer's hot
path (CPU per heartbeat with and without --live at one offered rate, interleaved A B / B A, the
ratio taken inside each round) and the dashboard's load time with 200,000 devices filled through
the real consumer (GET /dashboard/data on hb-api --dashboard, and the page in headless Chromium).
It reuses bench.py's servers, steps and verification; nothing here measures differently.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

import bench
from bench import Bench, BenchError, free_port, loadavg, log, wait_until

API_KEY = "bench-live-dash-key"


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class LiveDash(Bench):
    def ab(self, base, other, rate, rounds):
        """Rounds of (base, other), order alternating, other's CPU per heartbeat over base's
        taken inside each round."""
        count = int(rate * self.args.duration)
        out = []
        for rnd in range(rounds):
            order = (base, other) if rnd % 2 == 0 else (other, base)
            got = {}
            for subject in order:
                row = self.step(subject, rate, count)
                row["rep"] = rnd + 1
                got[subject] = row
                if subject == "consumer-live":
                    row["live_media_retained"] = self.retained("live/media/m-1")
                    log(f"  retained live/media/m-1: {row['live_media_retained']}")
            b, o = got[base], got[other]
            ratio = None
            key = "ir_per_hb" if b.get("ir_per_hb") else "cpu_us_per_hb"
            if b.get(key) and o.get(key):
                ratio = round(o[key] / b[key], 3)
            out.append({"round": rnd + 1, "order": " ".join(order), "base": b, "live": o,
                        "ratio": ratio})
            log(f"  round {rnd + 1}: {other} / {base} = {ratio}")
        return out

    def retained(self, topic):
        """The broker's retained message on topic (the live count the consumer published last),
        so a run shows the live table was exercised; None if there is none."""
        r = subprocess.run(["mosquitto_sub", "-p", str(self.broker_port), "-t", topic, "-C", "1",
                            "-W", "3", "--retained-only"], capture_output=True, text=True)
        return r.stdout.strip() or None

    def dashboard(self, rate, devices, requests, page):
        """Fills the aggregates with `devices` distinct devices through hb-consumer, then times
        GET /dashboard/data (and the page) on a fresh hb-api --dashboard."""
        a = self.args
        count = devices  # every device heartbeats once: accounts x devices_per_account = devices
        interval = self.pick_interval(count / rate + a.drain_timeout + 120)
        self.servers.redis.flushall()
        tag = f"dash-{int(time.time())}"
        load = loadavg()
        log(f"dashboard: filling {devices} devices at {rate}/s, load {load:.2f}")
        p = self.start_subject("consumer", interval, tag)
        try:
            wait_until(lambda: p.samples, 5, "the consumer's first stats line")
            rep = self.run_loadgen(tag, rate, count)
            wait_until(lambda: p.processed() >= rep["sent"], a.drain_timeout, "the consumer")
            start_ms = int(rep["first_ts_ms"]) // (interval * 1000) * interval * 1000
            vkey = f"hb:dash:{{hbdash}}:v:{start_ms}"
            wait_until(lambda: int(self.servers.redis.hget(vkey, "viewers") or 0) >= devices,
                       30, f"{vkey} viewers = {devices}", interval=0.2)
        finally:
            p.stop()
        port = free_port()
        keyfile = os.path.join(self.workdir, "k.secret")
        with open(keyfile, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        keys = os.path.join(self.workdir, "api-keys")
        with open(keys, "w") as f:
            f.write(API_KEY + "\n")
        argv = [os.path.join(self.build, "api", "hb-api"), "--listen", f"127.0.0.1:{port}",
                "--redis", f"redis://127.0.0.1:{self.servers.redis_port}", "--key", keyfile,
                "--api-key-file", keys, "--interval", str(interval), "--dashboard",
                "--web-root", os.path.join(bench.SOURCE, "web")]
        logf = open(os.path.join(self.out, "steps", f"{tag}.hb-api.log"), "w")
        api = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT)

        def healthy():
            if api.poll() is not None:
                raise BenchError(f"hb-api exited; see steps/{tag}.hb-api.log")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        row = {"devices": devices, "loadavg": load, "keys": self.servers.redis.dbsize(),
               "redis_used_memory": self.servers.redis.info("memory")["used_memory"]}
        try:
            wait_until(healthy, 15, "hb-api /healthz", interval=0.1)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            times, body = [], None
            for _ in range(1 + requests):
                t0 = time.perf_counter()
                conn.request("GET", "/dashboard/data")
                r = conn.getresponse()
                data = r.read()
                times.append((time.perf_counter() - t0) * 1000)
                if r.status != 200:
                    raise BenchError(f"GET /dashboard/data: {r.status} {data[:200]!r}")
                body = json.loads(data)
            conn.close()
            total = body["current"]["viewers_total"]
            row.update({"first_ms": round(times[0], 2), "p50_ms": round(pct(times[1:], 50), 2),
                        "p99_ms": round(pct(times[1:], 99), 2), "max_ms": round(max(times), 2),
                        "requests": requests, "bytes": len(data), "viewers_total": total,
                        "exact": "yes" if total == devices else "no"})
            if page:
                row.update(self.page_time(port))
        finally:
            api.terminate()
            api.wait(10)
            logf.close()
        log(f"  {row}")
        return row

    def page_time(self, port):
        """/dashboard in headless Chromium: navigation to the page filled from its first poll."""
        script = os.path.join(bench.HERE, "dash_page.mjs")
        r = subprocess.run(["node", script, f"http://127.0.0.1:{port}/dashboard"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            log(f"  page: {r.stderr.strip()[-300:]}")
            return {"page_note": "chromium failed"}
        return json.loads(r.stdout)

    def run_all(self):
        a = self.args
        self.servers.start_redis()
        self.broker, self.broker_port, self.broker_log = self.servers.start_broker(retain=True)
        results = {"loadavg_start": loadavg()}
        try:
            results["live"] = (self.ab("consumer", "consumer-live", a.live_rate, a.rounds)
                               if a.live_rate and a.live else [])
            results["versus"] = (self.ab("consumer-base", "consumer", a.live_rate, a.rounds)
                                 if a.base_build and a.live_rate else [])
            if results["versus"] and a.profile and not a.callgrind:
                for subject in ("consumer-base", "consumer"):
                    self.profile(subject, a.live_rate)
            results["profiles"] = self.profiles
            results["dashboard"] = [self.dashboard(a.dash_rate, a.dash_devices, a.dash_requests,
                                                   a.page) for _ in range(a.rounds)
                                    ] if a.dash_devices else []
        finally:
            self.servers.stop_all()
        results["loadavg_end"] = loadavg()
        results["discarded"] = self.discarded
        return results


def ab_table(rounds, title, names, extra=None):
    """One A/B comparison as a table: per round both CPU figures and their ratio, then the
    median ratio. names = (base, other) column names; extra = (header, row -> cell)."""
    base, other = names
    key = "ir_per_hb" if rounds and rounds[0]["base"].get("ir_per_hb") else "cpu_us_per_hb"
    unit = "instructions/hb" if key == "ir_per_hb" else "CPU µs/hb"
    head = (f"| round | order | {unit} {base} | {unit} {other} | {other} ÷ {base} | exact "
            f"| other cores ({base} / {other}) |")
    out = [title, "", head + (f" {extra[0]} |" if extra else ""),
           "|---|---|---|---|---|---|---|" + ("---|" if extra else "")]
    for r in rounds:
        b, o = r["base"], r["live"]
        out.append(f"| {r['round']} | {r['order']} | {b.get(key)} | "
                   f"{o.get(key)} | {r['ratio']} | {b['exact']} / {o['exact']} "
                   f"| {b.get('other_cores')} / {o.get('other_cores')} |"
                   + (f" {extra[1](o)} |" if extra else ""))
    ratios = [r["ratio"] for r in rounds if r["ratio"]]
    if ratios:
        out += ["", f"Median ratio: **{statistics.median(ratios):.3f}** "
                f"(range {min(ratios):.3f}–{max(ratios):.3f})."]
    return out + [""]


def markdown(res, a):
    out = [f"Load average {res['loadavg_start']:.2f} at the start, {res['loadavg_end']:.2f} at "
           "the end (2 cores, shared).", ""]
    if res["live"]:
        out += ab_table(res["live"], f"**Live counts** — hb-consumer at {a.live_rate}/s for "
                        f"{a.duration:g} s, {a.accounts} accounts × {a.devices_per_account} "
                        "devices, payload with `mediaId`; a fresh consumer and an empty Redis "
                        "per step:", ("without", "`--live`"),
                        ("retained `live/media/m-1`",
                         lambda o: f"`{o.get('live_media_retained')}`"))
    if res["versus"]:
        out += ab_table(res["versus"], f"**This build against `{a.base_build}`** — hb-consumer "
                        f"at {a.live_rate}/s for {a.duration:g} s, same options, a fresh "
                        "consumer and an empty Redis per step:", ("base", "this build"))
    for subject, p in res.get("profiles", {}).items():
        name = "base" if subject == "consumer-base" else "this build"
        if "error" in p:
            out += [f"Profile of {name}: perf failed: {p['error']}", ""]
            continue
        out += [f"**Profile of {name}** at {p['rate']:,}/s (`perf record -e cpu-clock`, dwarf "
                "call graphs): inclusive time of its own functions, cJSON and hiredis, as % of "
                "its samples:", "", "| % | function |", "|---|---|"]
        out += [f"| {pct:.1f} | `{what}` |" for pct, what in p["own"][:10]] + [""]
    if res["dashboard"]:
        out += [f"**Dashboard** — {a.dash_devices} distinct devices through hb-consumer, then "
                f"`GET /dashboard/data` on a fresh `hb-api --dashboard`, {a.dash_requests} "
                "requests on one keep-alive connection after the first:", "",
                "| run | viewers_total | first ms | p50 ms | p99 ms | max ms | bytes | "
                "page ms (Chromium) | Redis keys / used memory |",
                "|---|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(res["dashboard"], 1):
            out.append(f"| {i} | {r.get('viewers_total')} ({r.get('exact')}) | "
                       f"{r.get('first_ms')} | {r.get('p50_ms')} | {r.get('p99_ms')} | "
                       f"{r.get('max_ms')} | {r.get('bytes')} | "
                       f"{r.get('page_ms', r.get('page_note', '–'))} | {r['keys']} / "
                       f"{r['redis_used_memory'] / 2**20:.0f} MiB |")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", required=True)
    p.add_argument("--tools", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--live-rate", type=int, default=20000, help="0 skips the live figure")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--dash-devices", type=int, default=200000, help="0 skips the dashboard")
    p.add_argument("--dash-rate", type=int, default=20000)
    p.add_argument("--dash-requests", type=int, default=50)
    p.add_argument("--no-page", dest="page", action="store_false")
    p.add_argument("--drain-timeout", type=float, default=60)
    p.add_argument("--consumer-args", default="")
    p.add_argument("--base-build", default="",
                   help="another build dir: compare its hb-consumer with --build's, A B / B A")
    p.add_argument("--no-live", dest="live", action="store_false",
                   help="skip the --live figure (with --base-build: only the comparison)")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="with --base-build: no perf profile of the two consumers")
    p.add_argument("--callgrind", action="store_true",
                   help="run the consumers under valgrind's callgrind and compare instructions "
                   "per heartbeat (use a low --live-rate: callgrind is ~50x slower)")
    a = p.parse_args()
    a.warmup = 2  # bench.py's profile() reads it
    if a.callgrind:  # a consumer under valgrind drains its backlog ~50x slower
        a.drain_timeout = max(a.drain_timeout, 300)
    # bench.py's step() reads these; 200 x 1000 = 200,000 distinct devices.
    a.accounts, a.devices_per_account = 200, a.dash_devices // 200 or 1000
    a.max_other_cores, a.retries = 99, 0
    os.makedirs(a.out, exist_ok=True)
    b = LiveDash(a, a.out)
    res = b.run_all()
    res["rows"] = b.rows
    with open(os.path.join(a.out, "run.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res, a)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)
