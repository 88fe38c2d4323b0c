#!/usr/bin/python3
"""The admission benchmark (bench/run.sh admission): POST /v1/plays on hb-api next to the same
endpoint written in Node.js (http + ioredis + jsonwebtoken running hb-api's own admission
script), and Redis's own ceiling for that script (redis-benchmark, EVALSHA), against one private
redis-server, in rounds: every round measures every subject once, so the ratios of a round come
from the same minutes of the same machine.

Per subject and signing algorithm (ES256, HS256): a fresh Redis (FLUSHALL), then
- peak: wrk, 2 threads, 64 keep-alive connections, admission/admit.lua (100,000 accounts,
  limit 3: admissions of new devices, renewals, a few refusals) for --duration seconds;
- fixed rate: bench/admitload.c (hb-admitload), open loop at each --fixed-rates rate, latency
  measured from each request's due time (no coordinated omission); a rate above 1.1x the
  subject's peak in the same round is skipped (it could only measure a growing queue).
CPU per request of the subject and of Redis comes from /proc/PID/stat around each step; the CPU
other processes used meanwhile is recorded, and a step where it exceeded --max-other-cores is
run again (at most --retries times) after waiting for a quieter machine.
"""
import argparse
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

import redis

from bench import (CLK_TCK, HERE, SOURCE, BenchError, cpu_ticks, foreign_cores, foreign_ticks,
                   free_port, loadavg, log, machine_info, on_signal, top_processes, wait_until)

API_KEY = "bench-api-key-6f1c2d9e8a7b4c3d"
SUBJECTS = ("hb-api", "node")
BEGIN = "<!-- admission:begin (written by bench/admission.py) -->"
END = "<!-- admission:end -->"
NOTES_BEGIN = "<!-- admission-notes:begin (kept across runs) -->"
NOTES_END = "<!-- admission-notes:end -->"


def median_range(values, fmt="{:,.0f}"):
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    m = fmt.format(statistics.median(vals))
    if len(vals) == 1:
        return m
    return f"{m} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


class Admission:
    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.work = os.path.join(args.out, "work")
        os.makedirs(self.work, exist_ok=True)
        self.rows = []
        self.ceilings = []
        self.discarded = []
        self.profiles = {}
        self.procs = []

    # ----- servers and subjects ---------------------------------------------------------

    def start_redis(self):
        self.redis_port = free_port()
        p = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind",
                              "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                              self.work],
                             stdout=open(os.path.join(self.work, "redis.log"), "w"),
                             stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.redis_pid = p.pid
        self.redis = redis.Redis(port=self.redis_port)

        def ping():
            try:
                return self.redis.ping()
            except redis.RedisError:
                return False
        wait_until(ping, 10, "redis-server")
        script = subprocess.run([os.path.join(self.build, "bench", "hb-admit-script")],
                                capture_output=True, text=True, check=True).stdout
        self.script_path = os.path.join(self.work, "admit.lua")
        with open(self.script_path, "w") as f:
            f.write(script)
        self.sha = self.redis.script_load(script)

    def keys(self):
        """An ES256 key pair (PEM) and an HS256 secret, and the API key file."""
        self.key = {"es256": os.path.join(self.work, "k-es256.pem"),
                    "hs256": os.path.join(self.work, "k-hs256.secret")}
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", self.key["es256"]], check=True,
                       capture_output=True)
        with open(self.key["hs256"], "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        self.api_keys = os.path.join(self.work, "api-keys")
        with open(self.api_keys, "w") as f:
            f.write(API_KEY + "\n")

    def start_subject(self, subject, alg, wrap=()):
        port = free_port()
        common = ["--redis", f"redis://127.0.0.1:{self.redis_port}", "--key", self.key[alg],
                  "--api-key-file", self.api_keys, "--default-limit", str(self.args.limit)]
        if subject == "hb-api":
            argv = [*wrap, os.path.join(self.build, "api", "hb-api"), "--listen",
                    f"127.0.0.1:{port}", *common]
        else:
            argv = ["node", os.path.join(HERE, "node", "hb-admit.js"), "--listen", str(port),
                    "--script", self.script_path, *common]
        logf = open(os.path.join(self.work, f"{subject}-{alg}.log"), "a")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, cwd=SOURCE)

        def healthy():
            if p.poll() is not None:
                raise BenchError(f"{subject} exited with {p.returncode}; see {logf.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_until(healthy, 60 if wrap else 15, f"{subject} /healthz", interval=0.1)
        return p, port

    @staticmethod
    def stop(p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # ----- steps ------------------------------------------------------------------------

    def measured(self, pid, run):
        """Runs run(), returning (its result, {subject, redis CPU seconds, other cores, s})."""
        f0, t0 = foreign_ticks(), time.time()
        c0, r0 = cpu_ticks(pid), cpu_ticks(self.redis_pid)
        out = run()
        c1, r1, t1 = cpu_ticks(pid), cpu_ticks(self.redis_pid), time.time()
        return out, {"cpu_s": (c1 - c0) / CLK_TCK, "redis_cpu_s": (r1 - r0) / CLK_TCK,
                     "other_cores": foreign_cores(f0, foreign_ticks(), t1 - t0),
                     "seconds": t1 - t0}

    def wrk(self, port):
        env = dict(os.environ, HB_API_KEY=API_KEY, HB_ACCOUNTS=str(self.args.accounts),
                   HB_LIMIT=str(self.args.limit))
        r = subprocess.run(["wrk", "-t2", f"-c{self.args.connections}",
                            f"-d{self.args.duration:g}s", "--timeout", "10s", "-s",
                            os.path.join(HERE, "admission", "admit.lua"),
                            f"http://127.0.0.1:{port}"],
                           capture_output=True, text=True, env=env, timeout=300)
        for line in r.stdout.splitlines():
            if line.startswith("WRKJSON "):
                w = json.loads(line[8:])
                w["per_s"] = w["requests"] / (w["duration_us"] / 1e6)
                return w
        raise BenchError(f"wrk gave no result: {r.stdout[-400:]} {r.stderr[-400:]}")

    def admitload(self, port, rate, count=None, connections=None):
        argv = [os.path.join(self.build, "bench", "hb-admitload"), "--port", str(port),
                "--api-key", API_KEY, "--rate", str(rate), "--duration",
                f"{self.args.duration:g}", "--connections",
                str(connections or self.args.connections),
                "--accounts", str(self.args.accounts), "--limit", str(self.args.limit)]
        if count:
            argv += ["--count", str(count), "--drain", "120"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise BenchError(f"hb-admitload failed: {r.stderr[-400:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def quiet(self):
        deadline = time.monotonic() + self.args.quiet_wait
        while time.monotonic() < deadline:
            a = foreign_ticks()
            time.sleep(2)
            if foreign_cores(a, foreign_ticks(), 2) <= self.args.max_other_cores:
                return
            time.sleep(3)

    def step(self, rnd, subject, alg, kind, rate, go):
        """One measured step with the disturbance rule; appends and returns its row."""
        for attempt in range(self.args.retries + 1):
            self.redis.flushall()
            p, port = self.start_subject(subject, alg)
            try:
                if kind == "fixed":  # the same warm state as the peak step left behind
                    self.wrk_warm(port)
                out, m = self.measured(p.pid, lambda: go(port))
            finally:
                self.stop(p)
            n = out.get("requests", out.get("done", 0)) or 1
            row = {"round": rnd, "subject": subject, "alg": alg, "kind": kind, "rate": rate,
                   **out, **m, "cpu_us_per_req": m["cpu_s"] / n * 1e6,
                   "redis_us_per_req": m["redis_cpu_s"] / n * 1e6, "attempt": attempt,
                   "load": loadavg()}
            if m["other_cores"] <= self.args.max_other_cores or attempt == self.args.retries:
                row["disturbed"] = m["other_cores"] > self.args.max_other_cores
                self.rows.append(row)
                return row
            log(f"    set aside: other processes used {m['other_cores']:.2f} cores; again")
            self.discarded.append(row)
            self.quiet()

    def wrk_warm(self, port):
        """Fills the accounts the way a peak step does (2 s), so a fixed-rate step sees
        renewals as well as new admissions."""
        saved = self.args.duration
        self.args.duration = 2
        try:
            self.wrk(port)
        finally:
            self.args.duration = saved

    def ceiling(self, rnd):
        """redis-benchmark: EVALSHA of the admission script, random accounts and devices."""
        out = {"round": rnd}
        for pipeline in (1, 16):
            self.redis.flushall()
            argv = ["redis-benchmark", "-p", str(self.redis_port), "-c",
                    str(self.args.connections), "-n", str(self.args.ceiling_count), "-r",
                    str(self.args.accounts), "-P", str(pipeline), "--csv", "EVALSHA", self.sha,
                    "2", "hb:plays:{acct__rand_int__}", "hb:limits:{acct__rand_int__}",
                    "dev__rand_int__", "", "", "0", "30000", str(self.args.limit), "block_new"]
            f0, t0 = foreign_ticks(), time.time()
            r0 = cpu_ticks(self.redis_pid)
            r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            r1, t1 = cpu_ticks(self.redis_pid), time.time()
            last = [l for l in r.stdout.splitlines() if l.startswith('"EVALSHA')]
            if not last:
                raise BenchError(f"redis-benchmark: {r.stdout[-300:]} {r.stderr[-300:]}")
            fields = [x.strip('"') for x in last[-1].split('","')]
            out[f"p{pipeline}_per_s"] = float(fields[1])
            out[f"p{pipeline}_p50_ms"] = float(fields[5]) if len(fields) > 5 else None
            out[f"p{pipeline}_p99_ms"] = float(fields[7]) if len(fields) > 7 else None
            out[f"p{pipeline}_redis_us"] = (r1 - r0) / CLK_TCK / self.args.ceiling_count * 1e6
            out[f"p{pipeline}_other_cores"] = foreign_cores(f0, foreign_ticks(), t1 - t0)
        self.ceilings.append(out)
        log(f"  redis-benchmark EVALSHA: {out['p1_per_s']:,.0f}/s, -P 16 "
            f"{out['p16_per_s']:,.0f}/s; Redis {out['p1_redis_us']:.1f} µs/call")

    def round(self, rnd):
        log(f"round {rnd}: load average {loadavg():.2f}")
        for alg in self.args.algs:
            peaks = {}
            for subject in SUBJECTS:
                row = self.step(rnd, subject, alg, "peak", None, self.wrk)
                peaks[subject] = row["per_s"]
                log(f"  {subject} {alg} peak {row['per_s']:,.0f}/s p50 "
                    f"{row['p50_us'] / 1000:.1f} ms p99 {row['p99_us'] / 1000:.1f} ms, "
                    f"{row['cpu_us_per_req']:.0f} µs CPU/req, other {row['other_cores']:.2f}")
            for rate in self.args.fixed_rates:
                for subject in SUBJECTS:
                    if rate > 1.1 * peaks[subject]:
                        self.rows.append({"round": rnd, "subject": subject, "alg": alg,
                                          "kind": "fixed", "rate": rate,
                                          "skipped": f"peak {peaks[subject]:,.0f}/s"})
                        continue
                    row = self.step(rnd, subject, alg, "fixed", rate,
                                    lambda port, r=rate: self.admitload(port, r))
                    log(f"  {subject} {alg} at {rate:,}/s: p50 {row['p50_us'] / 1000:.2f} ms "
                        f"p99 {row['p99_us'] / 1000:.2f} ms, unanswered {row['unanswered']}")
        self.ceiling(rnd)

    # ----- profile ----------------------------------------------------------------------

    def profile(self, alg):
        """callgrind on hb-api for a fixed number of requests: instructions by function."""
        if shutil.which("valgrind") is None:
            self.profiles[alg] = {"error": "valgrind missing"}
            return
        self.redis.flushall()
        outfile = os.path.join(self.work, f"callgrind-{alg}.out")
        p, port = self.start_subject("hb-api", alg, wrap=(
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={outfile}",
            "--separate-threads=no"))
        n = self.args.profile_requests
        try:
            # Few connections, all kept busy: under valgrind hb-api answers a few dozen
            # requests a second, and a connection idle for 10 s is closed by libmicrohttpd.
            self.admitload(port, 500, count=n, connections=4)
        except BenchError as e:
            self.profiles[alg] = {"error": str(e)}
            return
        finally:
            self.stop(p)
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                              outfile], capture_output=True, text=True).stdout
        total, funcs = None, []
        for line in ann.splitlines():
            parts = line.split()
            if not parts or not parts[0].replace(",", "").isdigit():
                continue
            ir = int(parts[0].replace(",", ""))
            if "PROGRAM TOTALS" in line:
                total = ir
            elif len(parts) >= 2:
                funcs.append((ir, " ".join(parts[1:]) if parts[1] != "(" else parts[-1]))
        want = ["api_handle", "api_json_parse", "hb_plays_admit", "hb_token_mint",
                "mint_claims", "jwt_add_grants_json", "jwt_encode_str",
                "PEM_read_bio_PrivateKey", "HMAC", "RAND_bytes", "hb_httpd_reply_json",
                "hb_log"]
        picked = []
        for name in want:
            for ir, what in funcs:
                if what.split(":")[-1].split(" ")[0].split("'")[0] == name:
                    picked.append((ir, name))
                    break
        self.profiles[alg] = {"requests": n, "total_ir": total,
                              "per_request_ir": total / n if total else None,
                              "functions": picked,
                              "top": funcs[:25]}
        with open(os.path.join(self.args.out, f"callgrind-{alg}.txt"), "w") as f:
            f.write("\n".join(ann.splitlines()[:300]) + "\n")  # the top of it


# ----- reporting ----------------------------------------------------------------------------

def peak_rows(a, subject, alg):
    return [r for r in a.rows if r["subject"] == subject and r["alg"] == alg and
            r["kind"] == "peak"]


def ratios(a, alg, key, fn=lambda h, n: h / n if n else None):
    """Per round: hb-api's figure over Node's, from the same round."""
    out = []
    for rnd in sorted({r["round"] for r in a.rows}):
        h = [r[key] for r in peak_rows(a, "hb-api", alg) if r["round"] == rnd]
        n = [r[key] for r in peak_rows(a, "node", alg) if r["round"] == rnd]
        if h and n:
            out.append(fn(h[0], n[0]))
    return out


def results_md(a):
    args = a.args
    lines = [f"Peak: `wrk -t2 -c{args.connections} -d{args.duration:g}s` with "
             f"`bench/admission/admit.lua` ({args.accounts:,} accounts, limit {args.limit}; "
             "95 % of requests from one of the account's 3 home devices, 5 % from one of 1000 "
             "others). Median of the rounds, range in brackets; CPU µs per request of the "
             "subject (all threads) and of Redis.", "",
             "| key | subject | admissions/s | p50 ms | p99 ms | subject CPU µs/req | "
             "Redis CPU µs/req | 200 / 409 | other cores | hb-api ÷ Node.js, admissions/s "
             "(each round) | Node.js ÷ hb-api, CPU µs/req (each round) |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---|---|"]
    for alg in args.algs:
        for subject in SUBJECTS:
            rs = peak_rows(a, subject, alg)
            if not rs:
                continue
            ok = sum(r["ok"] for r in rs)
            ref = sum(r["refused"] for r in rs)
            ratio = cpu_ratio = ""
            if subject == "hb-api":
                ratio = ", ".join(f"{x:.2f}×" for x in ratios(a, alg, "per_s"))
                cpu_ratio = ", ".join(f"{x:.2f}×" for x in ratios(
                    a, alg, "cpu_us_per_req", lambda h, n: n / h if h else None))
            lines.append(
                f"| {alg.upper()} | {subject} | {median_range([r['per_s'] for r in rs])} | "
                f"{median_range([r['p50_us'] / 1000 for r in rs], '{:.1f}')} | "
                f"{median_range([r['p99_us'] / 1000 for r in rs], '{:.1f}')} | "
                f"{median_range([r['cpu_us_per_req'] for r in rs])} | "
                f"{median_range([r['redis_us_per_req'] for r in rs], '{:.1f}')} | "
                f"{ok * 100 / max(ok + ref, 1):.0f} % / {ref * 100 / max(ok + ref, 1):.0f} % | "
                f"{median_range([r['other_cores'] for r in rs], '{:.2f}')} | {ratio} | "
                f"{cpu_ratio} |")
    lines += ["", "Fixed rate (open loop, `hb-admitload`, latency from each request's due time; "
              "a rate above 1.1× the subject's peak of the same round is skipped):", "",
              "| key | subject | offered/s | answered/s | p50 ms | p90 ms | p99 ms | p99.9 ms |"
              " unanswered | other cores |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for alg in args.algs:
        for rate in args.fixed_rates:
            for subject in SUBJECTS:
                rs = [r for r in a.rows if r["subject"] == subject and r["alg"] == alg and
                      r["kind"] == "fixed" and r["rate"] == rate]
                done = [r for r in rs if "skipped" not in r]
                if not done:
                    why = rs[0]["skipped"] if rs else "not run"
                    lines.append(f"| {alg.upper()} | {subject} | {rate:,} | skipped ({why}) "
                                 "| | | | | | |")
                    continue
                lines.append(
                    f"| {alg.upper()} | {subject} | {rate:,} | "
                    f"{median_range([r['achieved_per_s'] for r in done])} | "
                    f"{median_range([r['p50_us'] / 1000 for r in done], '{:.2f}')} | "
                    f"{median_range([r['p90_us'] / 1000 for r in done], '{:.2f}')} | "
                    f"{median_range([r['p99_us'] / 1000 for r in done], '{:.2f}')} | "
                    f"{median_range([r['p999_us'] / 1000 for r in done], '{:.2f}')} | "
                    f"{sum(r['unanswered'] for r in done)} | "
                    f"{median_range([r['other_cores'] for r in done], '{:.2f}')} |")
    c = a.ceilings
    lines += ["", f"Redis's own ceiling for the atomic step: `redis-benchmark -c "
              f"{args.connections} -r {args.accounts} EVALSHA <admission script> 2 "
              "hb:plays:{acct__rand_int__} hb:limits:{acct__rand_int__} dev__rand_int__ '' '' 0 "
              f"30000 {args.limit} block_new`, {args.ceiling_count:,} calls, fresh Redis:", "",
              "| pipeline | calls/s | p50 ms | p99 ms | Redis CPU µs/call | other cores |",
              "|---:|---:|---:|---:|---:|---:|"]
    for p in (1, 16):
        lines.append(f"| {p} | {median_range([x[f'p{p}_per_s'] for x in c])} | "
                     f"{median_range([x[f'p{p}_p50_ms'] for x in c], '{:.2f}')} | "
                     f"{median_range([x[f'p{p}_p99_ms'] for x in c], '{:.2f}')} | "
                     f"{median_range([x[f'p{p}_redis_us'] for x in c], '{:.1f}')} | "
                     f"{median_range([x[f'p{p}_other_cores'] for x in c], '{:.2f}')} |")
    return "\n".join(lines) + "\n"


def targets_md(a):
    out = []
    for alg in a.args.algs:
        peak = [r["per_s"] for r in peak_rows(a, "hb-api", alg)]
        rat = ratios(a, alg, "per_s")
        cpu_rat = ratios(a, alg, "cpu_us_per_req", lambda h, n: n / h if h else None)
        fixed = [r for r in a.rows if r["subject"] == "hb-api" and r["alg"] == alg and
                 r["kind"] == "fixed" and r["rate"] == 20000]
        p99 = [r["p99_us"] / 1000 for r in fixed if "skipped" not in r]
        p99_text = (f"{median_range(p99, '{:.2f}')} ms" if p99 else
                    f"not measurable: {fixed[0]['skipped']}" if fixed else "not run")
        if not peak:
            continue
        m = statistics.median(peak)
        out.append(f"- **{alg.upper()}**: ≥ 50,000 admissions/s — "
                   f"{'met' if m >= 50000 else 'missed'} ({m:,.0f}/s); p99 < 5 ms at "
                   f"20,000/s — {'met' if p99 and statistics.median(p99) < 5 else 'missed'} "
                   f"({p99_text}); ≥ 3× Node.js — "
                   f"{'met' if rat and statistics.median(rat) >= 3 else 'missed'} "
                   f"({', '.join(f'{x:.2f}×' for x in rat)} in the rounds; by CPU per request, "
                   f"which depends less on what else runs: "
                   f"{', '.join(f'{x:.2f}×' for x in cpu_rat)}).")
    c = a.ceilings
    if c:
        out.append(f"- Redis alone runs the admission script at "
                   f"{median_range([x['p1_per_s'] for x in c])}/s from 64 connections "
                   f"({median_range([x['p16_per_s'] for x in c])}/s pipelined 16 deep): "
                   "no service in front of this Redis can admit faster.")
    return "\n".join(out) + "\n"


def profile_md(a):
    out = []
    for alg, p in a.profiles.items():
        if "error" in p:
            out.append(f"- {alg.upper()}: {p['error']}")
            continue
        out.append(f"**hb-api, {alg.upper()}**: `valgrind --tool=callgrind` for "
                   f"{p['requests']:,} admissions (hb-admitload, 4 connections): "
                   f"{p['per_request_ir']:,.0f} instructions"
                   " per request in hb-api (user space only: the kernel's TCP and the access "
                   "log's write are not counted; start-up is spread over the requests).")
        out.append("")
        out.append("| instructions per request (inclusive) | % | function |")
        out.append("|---:|---:|---|")
        for ir, name in p["functions"]:
            out.append(f"| {ir / p['requests']:,.0f} | {ir * 100 / p['total_ir']:.1f} | "
                       f"`{name}` |")
        out.append("")
    return "\n".join(out) + "\n"


def write_docs(a, stamp, text):
    path = os.path.join(SOURCE, "BENCHMARKS.md")
    doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    notes = f"{NOTES_BEGIN}\n{NOTES_END}"
    i, j = doc.find(NOTES_BEGIN), doc.find(NOTES_END)
    if i >= 0 and j > i:
        notes = doc[i:j + len(NOTES_END)]
    block = (f"{BEGIN}\n## Admission (`hb-api`)\n\nWritten by `bash bench/run.sh admission` "
             f"(see [bench/README.md](bench/README.md)); run **{stamp}**, raw files in "
             f"[`bench/latest-admission/`](bench/latest-admission/).\n\n{text}\n"
             f"### Analysis\n\n{notes}\n{END}")
    i, j = doc.find(BEGIN), doc.find(END)
    if i >= 0 and j > i:
        doc = doc[:i] + block + doc[j + len(END):]
    else:
        k = doc.find("\n## Notes")
        doc = doc[:k + 1] + block + "\n\n" + doc[k + 1:] if k >= 0 else doc + "\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)


def report(a, stamp, conditions, write):
    """results.md, results.csv (the run.json is written by the caller) and, when write, the
    BENCHMARKS.md section and bench/latest-admission/."""
    args = a.args
    text = (f"{conditions}\n\n#### Goals\n\n{targets_md(a)}\n#### Results\n\n{results_md(a)}\n"
            f"#### Profile\n\n{profile_md(a) if a.profiles else 'Not profiled in this run.'}\n")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(f"# hb admission benchmark {stamp}\n\n{text}")
    fields = sorted({k for r in a.rows for k in r})
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(a.rows)
    if write:
        latest = os.path.join(HERE, "latest-admission")
        if os.path.realpath(latest) != os.path.realpath(args.out):
            shutil.rmtree(latest, ignore_errors=True)
            shutil.copytree(args.out, latest)
        write_docs(a, stamp, text)
        log("BENCHMARKS.md: admission section rewritten")
    print(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default="build")
    p.add_argument("--out", help="results dir (bench/results/admission-<stamp>)")
    p.add_argument("--report", metavar="RUN_JSON",
                   help="only write the tables again from a run.json (into its directory)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--accounts", type=int, default=100000)
    p.add_argument("--limit", type=int, default=3)
    p.add_argument("--algs", default="es256,hs256")
    p.add_argument("--fixed-rates", default="500,20000")
    p.add_argument("--ceiling-count", type=int, default=200000)
    p.add_argument("--max-other-cores", type=float, default=0.15)
    p.add_argument("--retries", type=int, default=1)
    p.add_argument("--quiet-wait", type=float, default=60)
    p.add_argument("--profile-requests", type=int, default=2000, help="0: no callgrind")
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args()
    if args.report:
        with open(args.report) as f:
            run = json.load(f)
        saved = argparse.Namespace(**run["args"])
        saved.out = os.path.dirname(os.path.abspath(args.report))
        a = argparse.Namespace(args=saved, rows=run["rows"], ceilings=run["ceilings"],
                               profiles=run["profiles"], discarded=run["discarded"])
        report(a, os.path.basename(saved.out), run["conditions"], args.write_docs)
        return
    if not args.out:
        p.error("--out is required")
    args.algs = [x for x in args.algs.split(",") if x]
    args.fixed_rates = [int(x) for x in args.fixed_rates.split(",") if x]
    os.makedirs(args.out, exist_ok=True)
    stamp = os.path.basename(os.path.normpath(args.out))
    a = Admission(args)
    machine = machine_info(args.build)
    load0, busy0, t0 = loadavg(), top_processes(), time.time()
    try:
        a.keys()
        a.start_redis()
        for rnd in range(1, args.rounds + 1):
            a.round(rnd)
        with open(os.path.join(args.out, "run.json"), "w") as f:  # kept if profiling fails
            json.dump({"machine": machine, "args": vars(args), "rows": a.rows,
                       "ceilings": a.ceilings, "discarded": a.discarded}, f, indent=1)
        if args.profile_requests:
            for alg in args.algs:
                log(f"callgrind: hb-api {alg}, {args.profile_requests} requests")
                a.profile(alg)
    finally:
        for proc in reversed(a.procs):
            a.stop(proc)
    disturbed = sum(1 for r in a.rows if r.get("disturbed"))
    others = median_range([r["other_cores"] for r in a.rows if "other_cores" in r], "{:.2f}")
    conditions = (f"{args.rounds} rounds, {(time.time() - t0) / 60:.1f} min; load average "
                  f"{load0:.2f} at the start, {loadavg():.2f} at the end; busiest processes at "
                  f"the start: {'; '.join(busy0)}. Other processes used {others} cores during "
                  f"the steps (median, range); {len(a.discarded)} steps set aside and run again, "
                  f"{disturbed} kept although still disturbed (over {args.max_other_cores} "
                  f"cores). Machine: {machine['cpu']}, {machine['cores']} cores; code "
                  f"{machine['hb']} at {machine['commit']}"
                  f"{' with uncommitted changes' if machine['dirty'] else ''}, build type "
                  f"{machine.get('buildtype', '?')}; Node.js {machine['node']}.")
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({"machine": machine, "args": vars(args), "rows": a.rows,
                   "ceilings": a.ceilings, "discarded": a.discarded, "profiles": a.profiles,
                   "conditions": conditions}, f, indent=1)
    shutil.rmtree(a.work, ignore_errors=True)
    report(a, stamp, conditions, args.write_docs)


if __name__ == "__main__":
    # SIGTERM/SIGINT become an exception, so Redis and every subject are stopped by pid.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        main()
    except BenchError as e:
        log(f"failed: {e}")
        sys.exit(1)
