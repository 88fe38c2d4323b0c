#!/usr/bin/python3
"""The command-line contracts of the programs: --help, --version, options and environment,
exit statuses, and hb-check's input and output forms against a real redis-server."""

import json
import os
import socket
import subprocess

from harness import check, check_eq, free_port, main

PROGRAMS = ["consumer/hb-consumer", "checker/hb-check", "publisher-sim/hb-sim"]


def every_program_has_help_and_version(env):
    for rel in PROGRAMS:
        rc, out, _ = env.run(rel, "--help", check_rc=0)
        for option in ("--broker", "--redis", "--interval", "--topic-prefix", "--help",
                       "--version"):
            check(option in out, f"{rel} --help does not mention {option}")
        rc, out, _ = env.run(rel, "--version", check_rc=0)
        check(out.startswith(os.path.basename(rel) + " "), f"{rel} --version: {out!r}")
        rc, _, err = env.run(rel, "--interval", "0")
        check_eq(rc, 2, f"{rel} --interval 0 exit status")
        check("interval" in err, f"{rel} does not say what is wrong with --interval 0: {err!r}")
        rc, _, err = env.run(rel, "--no-such-option")
        check_eq(rc, 2, f"{rel} unknown option exit status")


def seed(redis, start_ms, plan):
    for account, devices in plan.items():
        for d in devices:
            redis.cmd("HINCRBY", f"hb:{{{account}}}:{start_ms}", d, 1)


def hb_check_reads_previous_interval_plain_json_and_stdin(env):
    redis = env.redis(aof=False)
    at = 1_800_000_125  # Unix seconds; with 60 s intervals the previous one starts at ...060
    previous = (at // 60) * 60 * 1000 - 60_000
    seed(redis, previous, {"a1": ["d1", "d2"], "a2": ["x"]})
    seed(redis, previous + 60_000, {"a1": ["current-interval-not-counted"]})
    seed(redis, previous - 60_000, {"a1": ["older-interval-not-counted"]})
    common = ["--redis", redis.uri, "--at", str(at)]
    _, out, _ = env.run("checker/hb-check", *common, "a1", "a2", "a3", check_rc=0)
    check_eq(out, "a1 2\na2 1\na3 0\n", "plain output")

    _, out, _ = env.run("checker/hb-check", *common, "--json", "a1", check_rc=0)
    check_eq(json.loads(out), {"account": "a1", "interval_start": previous,
                               "interval_seconds": 60, "devices": 2}, "JSON output")
    _, out, _ = env.run("checker/hb-check", *common, "--json", "--devices", "a1", "a3",
                        check_rc=0)
    rows = [json.loads(line) for line in out.splitlines()]
    check_eq([r["device_ids"] for r in rows], [["d1", "d2"], []], "device ids")

    _, out, _ = env.run("checker/hb-check", *common, "-", stdin="a2\n\n  a1  \na3\n",
                        check_rc=0)
    check_eq(out, "a2 1\na1 2\na3 0\n", "accounts from stdin")

    # The environment supplies the same settings as the options. With 120 s intervals the
    # previous interval at `at` starts at 1800000000 s: the one seeded as "older" above.
    p = subprocess.run([env.binary("checker/hb-check"), "--at", str(at), "a1"], text=True,
                       capture_output=True, env={**os.environ, "HB_REDIS": redis.uri,
                                                 "HB_INTERVAL": "120"})
    check_eq((p.returncode, p.stdout), (0, "a1 1\n"), "HB_REDIS/HB_INTERVAL from environment")


def hb_check_many_accounts_in_one_call(env):
    redis = env.redis(aof=False)
    at = 1_800_000_125
    previous = (at // 60) * 60 * 1000 - 60_000
    plan = {f"acct{i:05d}": [f"d{j}" for j in range(i % 4)] for i in range(5000)}
    seed_pipe = "".join(
        f"HINCRBY hb:{{{a}}}:{previous} {d} 1\n" for a, ds in plan.items() for d in ds)
    p = subprocess.run(["redis-cli", "-p", str(redis.port)], input=seed_pipe, text=True,
                       capture_output=True, timeout=60)
    check_eq(p.returncode, 0, "seeding with redis-cli")
    before = int(redis.cmd("INFO", "stats").split("total_commands_processed:")[1].split()[0])
    _, out, _ = env.run("checker/hb-check", "--redis", redis.uri, "--at", at, "-",
                        stdin="\n".join(plan) + "\n", check_rc=0)
    after = int(redis.cmd("INFO", "stats").split("total_commands_processed:")[1].split()[0])
    expected = "".join(f"{a} {len(ds)}\n" for a, ds in plan.items())
    check_eq(out, expected, "counts of 5000 accounts")
    # One HLEN per account, one read of the share group's watermark, the PING that checks Redis
    # answers before anything is read, and nothing else (the INFO call itself is the last +1).
    check_eq(after - before, len(plan) + 1 + 1 + 1, "commands used")


def hb_check_rejects_bad_input_with_exit_status(env):
    redis = env.redis(aof=False)
    for bad in ["acct{x}", "a/b", "", "a" * 65, "a b"]:
        rc, out, err = env.run("checker/hb-check", "--redis", redis.uri, bad)
        check_eq(rc, 2, f"exit status for account {bad!r}")
        check_eq(out, "", f"output for account {bad!r}")
        check("invalid account id" in err, f"reason for {bad!r}: {err!r}")
    rc, _, err = env.run("checker/hb-check", "--redis", redis.uri)
    check_eq(rc, 2, "exit status without accounts")
    rc, _, err = env.run("checker/hb-check", "--redis", f"redis://127.0.0.1:{free_port()}", "a")
    check_eq(rc, 3, "exit status when Redis is unreachable")
    check("connect" in err, f"reason when Redis is unreachable: {err!r}")
    rc, _, err = env.run("checker/hb-check", "--redis", "http://x", "a")
    check_eq(rc, 2, "exit status for a bad Redis URI")


def hb_check_verify_reports_exact_mismatches(env):
    redis = env.redis(aof=False)
    import time
    interval = 60
    start = (int(time.time()) // interval) * interval * 1000 - interval * 1000
    seed(redis, start, {"a1": ["d1", "d2"], "a2": ["d1", "extra"]})
    truth = os.path.join(env.dir, "truth.jsonl")
    lines = [{"interval_start": start, "account": "a1", "devices": ["d2", "d1"]},
             {"interval_start": start, "account": "a2", "devices": ["d1", "missing"]},
             {"interval_start": start, "account": "a3", "devices": []},
             {"interval_start": start - 10 * interval * 1000, "account": "a1", "devices": ["d"]}]
    with open(truth, "w") as f:
        f.write("\n".join(json.dumps(line) for line in lines) + "\n")
    rc, out, _ = env.run("checker/hb-check", "--redis", redis.uri, "--verify", truth)
    check_eq(rc, 1, "exit status with a mismatch")
    check_eq(out, f"MISMATCH account=a2 interval_start={start} expected=2 got=2 "
             "missing=missing extra=extra\n"
             "verify: 3 checked, 1 mismatched, 1 skipped (expired), 0 bad lines\n",
             "verify output")
    with open(truth, "w") as f:
        f.write("\n".join(json.dumps(line) for line in lines if line["account"] != "a2") + "\n")
    rc, out, _ = env.run("checker/hb-check", "--redis", redis.uri, "--verify", truth)
    check_eq(rc, 0, f"exit status when everything matches:\n{out}")
    with open(truth, "w") as f:
        f.write("not json\n")
    rc, out, _ = env.run("checker/hb-check", "--redis", redis.uri, "--verify", truth)
    check_eq((rc, out), (1, "verify: 0 checked, 0 mismatched, 0 skipped (expired), 1 bad lines\n"),
             "exit status and output with a bad line")
    # Only lines whose keys expired: nothing mismatched, nothing bad, and yet nothing could be
    # compared, which must not pass.
    with open(truth, "w") as f:
        f.write(json.dumps(lines[3]) + "\n")
    rc, out, err = env.run("checker/hb-check", "--redis", redis.uri, "--verify", truth)
    check_eq((rc, out), (1, "verify: 0 checked, 0 mismatched, 1 skipped (expired), 0 bad lines\n"),
             "exit status and output when nothing could be compared")
    check("verify: nothing was compared" in err, f"reason: {err!r}")


def hb_consumer_password_options_are_checked_before_it_runs(env):
    token = os.path.join(env.dir, "consumer.token")
    with open(token, "w") as f:
        f.write("t0ken\n")
    rc, _, err = env.run("consumer/hb-consumer", "--password", "p", "--password-file", token)
    check_eq(rc, 2, "--password with --password-file: exit status")
    check("not both" in err, f"no reason for refusing both: {err!r}")
    p = subprocess.run([env.binary("consumer/hb-consumer"), "--password-file", token],
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "HB_MQTT_PASSWORD": "p"})
    check_eq(p.returncode, 2, "--password-file with HB_MQTT_PASSWORD: exit status")
    missing = os.path.join(env.dir, "missing.token")
    rc, _, err = env.run("consumer/hb-consumer", "--password-file", missing,
                         "--broker", f"tcp://127.0.0.1:{free_port()}",
                         "--redis", f"redis://127.0.0.1:{free_port()}")
    check_eq(rc, 1, "unreadable --password-file: exit status")
    check(f"--password-file {missing}: No such file or directory" in err,
          f"no reason for the unreadable file: {err!r}")
    rc, _, err = env.run("consumer/hb-consumer", "--ca-file", missing)
    check_eq(rc, 2, "unreadable --ca-file: exit status")
    check(f"--ca-file {missing}: No such file or directory" in err, f"--ca-file: {err!r}")


def hb_consumer_refuses_a_bad_metrics_address(env):
    for bad in ("9102", "127.0.0.1:", "127.0.0.1:65536", "[::1]9102", ":9102"):
        rc, _, err = env.run("consumer/hb-consumer", "--metrics", bad)
        check_eq(rc, 2, f"--metrics {bad}: exit status")
        check(f"--metrics expected ADDR:PORT or [IPv6]:PORT, got '{bad}'" in err,
              f"--metrics {bad}: {err!r}")
    # A port already taken: the consumer says so and exits 1.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        rc, _, err = env.run("consumer/hb-consumer", "--metrics", f"127.0.0.1:{taken}",
                             "--broker", f"tcp://127.0.0.1:{free_port()}",
                             "--redis", f"redis://127.0.0.1:{free_port()}")
    check_eq(rc, 1, "--metrics on a taken port: exit status")
    check(f"--metrics: cannot listen on 127.0.0.1:{taken}" in err, f"taken port: {err!r}")


SCENARIOS = {f.__name__: f for f in [
    every_program_has_help_and_version,
    hb_check_reads_previous_interval_plain_json_and_stdin,
    hb_check_many_accounts_in_one_call,
    hb_check_rejects_bad_input_with_exit_status,
    hb_check_verify_reports_exact_mismatches,
    hb_consumer_password_options_are_checked_before_it_runs,
    hb_consumer_refuses_a_bad_metrics_address,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
