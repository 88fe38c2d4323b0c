#!/usr/bin/python3
"""hb-sim against real mosquitto and redis-server: worker processes whose merged truth the
checker confirms exactly, connections bound to chosen source addresses, the JSON summary, a
token per device checked by the broker plugin, payload templates, and the advice when a run
cannot fit. One scenario per meson test; run one by hand with
  HB_BUILD_DIR=build tests/integration/test_sim.py workers_truth_matches_the_checker_exactly
"""

import json
import os
import re
import resource
import subprocess
import threading

import paho.mqtt.client as mqtt

from harness import (ALIGNED_DURATION, TRUTH_INTERVAL, check, check_eq, check_truth, free_port,
                     main, plugin_broker_config, sanitizer_env, share_with_broker,
                     start_before_boundary, tls_certificates, wait_until)

INTERVAL = TRUTH_INTERVAL


def sim_args(brokers, *extra):
    args = [a for b in brokers for a in ("--broker", b.uri)]
    return args + ["--interval", INTERVAL, "--quiet", "--json", *extra]


def run_sim(env, brokers, *extra, check_rc=0):
    rc, out, err = env.run("publisher-sim/hb-sim", *sim_args(brokers, *extra), check_rc=check_rc)
    summary = json.loads(out) if out.strip() else None
    return rc, summary, err


def verify_exact(env, redis, consumer, summary, truth):
    """Waits until the consumer wrote every heartbeat, then compares every line of the truth
    (its one complete interval) with Redis: none mismatched, none skipped."""
    consumer.wait_stats(lambda s: s["written"] >= summary["published"],
                        what="every simulated heartbeat written")
    return check_truth(env, redis.uri, truth)


def workers_truth_matches_the_checker_exactly(env):
    """Three workers drive disjoint slices over two brokers; the parent's merged truth must be
    exactly what the consumer counted, account by account."""
    redis = env.redis(aof=False)
    brokers = [env.mosquitto(), env.mosquitto()]
    consumer = env.consumer(brokers, redis, INTERVAL)
    truth = f"{env.dir}/truth.jsonl"
    start_before_boundary()
    _, summary, _ = run_sim(env, brokers, "--workers", 3, "--accounts", 60,
                            "--devices-per-account", "2-8", "--heartbeat", "0.5", "--churn", "0.3",
                            "--duration", ALIGNED_DURATION, "--seed", 7, "--connect-rate", 2000,
                            "--truth", truth)
    check_eq(summary["workers"], 3, "workers")
    check_eq((summary["lost"], summary["errors"], summary["workers_failed"]), (0, 0, 0),
             "lost, errors, failed workers")
    check_eq(summary["acked"], summary["published"], "QoS 1 acknowledgements")
    lines = verify_exact(env, redis, consumer, summary, truth)
    # The truth names devices of every worker's slice: ids are sorted, slices are contiguous,
    # so the first and last accounts come from the first and last workers.
    named = {d for line in lines for d in line["devices"]}
    check(any(d.startswith("acct0000-") for d in named) and
          any(d.startswith("acct0059-") for d in named),
          "the truth holds devices of the first and the last worker")
    check_eq(len({line["account"] for line in lines}), 60, "accounts per interval in the truth")
    _, stats = consumer.stop()
    check_eq((stats["accepted"], stats["written"], stats["rejected"]),
             (summary["published"], summary["published"], 0), "consumer counters")


def source_addresses_spread_connections_round_robin(env):
    """--source-address 127.0.0.2-127.0.0.4: the broker sees every connection come from one of
    them, device i from address i % 3."""
    broker = env.mosquitto()
    _, summary, _ = run_sim(env, [broker], "--source-address", "127.0.0.2-127.0.0.4",
                            "--workers", 2, "--accounts", 10, "--devices-per-account", 3,
                            "--churn", 0, "--heartbeat", 1, "--duration", 2, "--seed", 1)
    check_eq((summary["devices"], summary["source_addresses"], summary["errors"]), (30, 3, 0),
             "devices, source addresses, errors")
    clients = re.findall(r"New client connected from ([0-9.]+):\d+ as (acct\d+-dev\d+) ",
                         broker.proc.output())
    check_eq(len(clients), 30, "MQTT connections")
    for address, device in clients:
        account, k = re.match(r"acct(\d+)-dev(\d+)", device).groups()
        index = int(account) * 3 + int(k)  # plan order: accounts, then their devices
        check_eq(address, f"127.0.0.{2 + index % 3}", f"source address of {device}")


def json_summary_fields_are_exact(env):
    """A fixed population without churn: every count in the summary is known in advance."""
    broker = env.mosquitto()
    _, s, _ = run_sim(env, [broker], "--workers", 2, "--accounts", 20, "--devices-per-account", 3,
                      "--churn", 0, "--heartbeat", 1, "--duration", 3, "--seed", 5,
                      "--connect-rate", 5000, "--guard-ms", 0)
    expected = {"devices": 60, "accounts": 20, "workers": 2, "brokers": 1, "source_addresses": 0,
                "connected_max": 60, "ever_connected": 60, "connects": 60, "errors": 0,
                "connect_failed": 0, "refused": 0, "dropped": 0, "token_errors": 0, "lost": 0,
                "skipped": 0, "workers_failed": 0, "qos": 1, "seed": 5, "interrupted": False,
                "duration_s": 3}
    check_eq({k: s.get(k) for k in expected}, expected, "summary fields")
    check_eq(s["acked"], s["published"], "acked")
    # One descriptor per connection, plus each worker's own few (stdio, epoll, signals, pipe).
    check(1 <= s["fds_per_connection"] <= 1.3, f"descriptors per connection: {s}")
    # Without guard bands each device sends one heartbeat on connecting, then one a second
    # (with jitter) until the end: 3 or 4 in 3 s, no fewer and no more.
    check(3 * 60 <= s["published"] <= 4 * 60, f"3 or 4 heartbeats from each device: {s}")
    check(s["time_to_connect_all_s"] is not None and s["time_to_connect_all_s"] < 2,
          f"time to connect all: {s}")
    check(s["connect_rate"] > 0 and s["memory_per_connection_bytes"] > 0, f"rates: {s}")
    check_eq(s["end_ms"] - s["start_ms"], 3000, "run length")


def hold_ends_the_run_after_the_last_connect(env):
    """--hold 2 with three workers and a slow ramp: the run ends 2 s after the last device of
    any worker connected, not at --duration, and the steady phase is reported apart."""
    broker = env.mosquitto()
    _, s, _ = run_sim(env, [broker], "--workers", 3, "--accounts", 20, "--devices-per-account", 3,
                      "--churn", 0, "--heartbeat", 1, "--duration", 60, "--hold", 2, "--seed", 3,
                      "--connect-rate", 40, "--guard-ms", 0)
    check_eq((s["ever_connected"], s["errors"], s["interrupted"], s["hold_s"]),
             (60, 0, False, 2), "connected, errors, interrupted, hold")
    ramp_ms = s["time_to_connect_all_s"] * 1000
    check(ramp_ms >= 1000, f"a ramp of 60 devices at 40/s: {s}")
    # time_to_connect_all_s is rounded to 0.1 s; the end is the last connect + 2000 ms exactly.
    check(abs(s["end_ms"] - s["start_ms"] - ramp_ms - 2000) <= 50, f"run length: {s}")
    check_eq((s["steady_s"], s["steady_connections_held"]), (2, 60), "steady phase")
    # One heartbeat a second (jitter 0.1) from 60 devices.
    check(45 <= s["steady_heartbeats_per_s"] <= 80, f"steady heartbeats/s: {s}")


def hold_longer_than_the_run_reports_no_steady_phase(env):
    """A ramp that outlasts --duration: the run ends at --duration and has no steady phase."""
    broker = env.mosquitto()
    _, s, _ = run_sim(env, [broker], "--workers", 2, "--accounts", 20, "--devices-per-account", 3,
                      "--churn", 0, "--heartbeat", 1, "--duration", 1, "--hold", 5, "--seed", 3,
                      "--connect-rate", 20)
    check_eq((s["end_ms"] - s["start_ms"], s["steady_s"], s["steady_heartbeats_per_s"],
              s["steady_connections_held"]), (1000, None, None, None), "run length, steady phase")


def plugin_broker(env, key):
    return env.mosquitto(config=plugin_broker_config([("key_file", key)]), env=sanitizer_env())


def write_key(env, name, secret):
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(secret + "\n")
    share_with_broker(env.dir, [path])
    return path


def device_tokens_are_accepted_by_the_plugin(env):
    """--key: every device presents its own token (account = sub, pinned to its client id);
    the plugin accepts them and the consumer, with a consumer token, counts them exactly. The
    same run with a key the broker does not know is refused device by device."""
    key = write_key(env, "sim.secret", "s" * 48)
    wrong = write_key(env, "other.secret", "o" * 48)
    redis = env.redis(aof=False)
    broker = plugin_broker(env, key)
    _, token, _ = env.run("token/hb-token", "--key", key, "--role", "consumer", check_rc=0)
    consumer = env.consumer([broker], redis, INTERVAL,
                            extra=("--username", "consumer", "--password", token.strip()))
    truth = f"{env.dir}/truth.jsonl"
    start_before_boundary()
    _, s, _ = run_sim(env, [broker], "--key", key, "--accounts", 15, "--devices-per-account", 3,
                      "--churn", 0, "--heartbeat", "0.5", "--duration", ALIGNED_DURATION,
                      "--seed", 3, "--truth", truth)
    check_eq((s["devices"], s["ever_connected"], s["refused"], s["token_errors"], s["errors"]),
             (45, 45, 0, 0, 0), "devices, connected, refused, token errors, errors")
    check_eq(len(verify_exact(env, redis, consumer, s, truth)), 15, "truth lines (one per account)")

    # The broker's key is "sim"; tokens from another secret (kid "sim" forced) fail the signature.
    rc, s, err = run_sim(env, [broker], "--key", wrong, "--kid", "sim", "--accounts", 2,
                         "--devices-per-account", 2, "--churn", 0, "--duration", 2, check_rc=1)
    check_eq((s["ever_connected"], s["published"]), (0, 0), "nothing connects with a wrong key")
    check(s["refused"] >= 4, f"every device refused at least once: {s}")
    check("no device could connect" in err, f"reason: {err}")


def payload_template_is_what_devices_send(env):
    """--payload-template: each heartbeat is the template with its placeholders filled in."""
    broker = env.mosquitto()
    template = os.path.join(env.dir, "payload.json")
    with open(template, "w") as f:
        f.write('{"ts":{{ts}},"who":"{{device}}","acct":"{{account}}","n":{{seq}},'
                '"kbps":{{bitrate}}}\n')
    seen = []
    lock = threading.Lock()
    sub = mqtt.Client(client_id=f"test-sub-{os.getpid()}")

    def on_message(_client, _userdata, msg):
        with lock:
            seen.append((msg.topic, json.loads(msg.payload)))
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("hb/#", qos=1)
    sub.loop_start()
    try:
        wait_until(lambda: sub.is_connected(), 10, "test subscriber")
        _, s, _ = run_sim(env, [broker], "--payload-template", template, "--accounts", 2,
                          "--devices-per-account", 2, "--churn", 0, "--heartbeat", "0.5",
                          "--duration", 3)
        wait_until(lambda: len(seen) >= s["published"], 10, "every heartbeat at the subscriber")
    finally:
        sub.loop_stop()
        sub.disconnect()
    check_eq(len(seen), s["published"], "heartbeats seen")
    per_device = {}
    for topic, p in seen:
        _, account, device = topic.split("/")
        check_eq((p["who"], p["acct"]), (device, account), "ids in the payload")
        check(isinstance(p["ts"], int) and p["kbps"] > 0, f"payload {p}")
        per_device.setdefault(device, []).append(p["n"])
    check_eq(len(per_device), 4, "devices")
    for device, ns in per_device.items():
        check_eq(ns, list(range(len(ns))), f"{{{{seq}}}} of {device}")

    # A template the consumer would reject is refused before anything starts.
    with open(template, "w") as f:
        f.write('{"ts":{{ts}},"who":{{device}}}')
    rc, _, err = run_sim(env, [broker], "--payload-template", template, check_rc=2)
    check("not_json" in err, f"reason: {err}")


def a_run_that_cannot_fit_says_what_to_change(env):
    """With 100 open files a worker holds at most 36 connections: --workers 1 for 200 devices
    is refused with the numbers, and without --workers enough workers are started."""
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))
    binary = env.binary("publisher-sim/hb-sim")
    args = ["--broker", "tcp://127.0.0.1:1", "--accounts", 50, "--devices-per-account", 4,
            "--workers", 1, "--duration", 1, "--quiet"]
    p = subprocess.run([binary, *map(str, args)], capture_output=True, text=True,
                       preexec_fn=low_limit, timeout=30)
    check_eq(p.returncode, 2, f"exit status ({p.stderr})")
    check("--workers 1 puts up to 200 connections in one process" in p.stderr and
          "use --workers 6 or more" in p.stderr and "ulimit -n (hard limit 100)" in p.stderr,
          f"advice: {p.stderr}")
    broker = env.mosquitto()
    args = ["--broker", broker.uri, "--accounts", 50, "--devices-per-account", 4, "--churn", 0,
            "--duration", 2, "--heartbeat", 1, "--json", "--quiet"]
    p = subprocess.run([binary, *map(str, args)], capture_output=True, text=True,
                       preexec_fn=low_limit, timeout=30)
    check_eq(p.returncode, 0, f"exit status ({p.stderr})")
    s = json.loads(p.stdout)
    check_eq((s["workers"], s["ever_connected"], s["errors"]), (6, 200, 0),
             "workers chosen for the limit")


def devices_publish_over_tls_and_check_the_broker(env):
    """ssl:// brokers: devices verify the broker's certificate against --ca-file and their
    heartbeats match the truth exactly; against a CA that did not sign it, every connect is
    refused and nothing is published."""
    files = tls_certificates(os.path.join(env.dir, "tls"))
    tls_port = free_port()
    broker = env.mosquitto(extra_conf=f"listener {tls_port} 127.0.0.1\n"
                                      f"certfile {files['cert']}\nkeyfile {files['key']}\n")
    redis = env.redis(aof=False)
    consumer = env.consumer([broker], redis, INTERVAL)
    tls_uri = f"ssl://localhost:{tls_port}"
    truth = f"{env.dir}/truth.jsonl"
    start_before_boundary()
    _, s, _ = env.run("publisher-sim/hb-sim", "--broker", tls_uri, "--ca-file", files["ca"],
                      "--interval", INTERVAL, "--quiet", "--json", "--accounts", 6,
                      "--devices-per-account", 2, "--churn", 0, "--heartbeat", "0.5",
                      "--duration", ALIGNED_DURATION, "--seed", 9, "--truth", truth,
                      check_rc=0)
    s = json.loads(s)
    check_eq((s["devices"], s["ever_connected"], s["errors"], s["lost"]), (12, 12, 0, 0),
             "devices, connected, errors, lost over TLS")
    check_eq(len(verify_exact(env, redis, consumer, s, truth)), 6, "truth lines (one per account)")

    rc, out, _ = env.run("publisher-sim/hb-sim", "--broker", tls_uri, "--ca-file",
                         files["other_ca"], "--interval", INTERVAL, "--quiet", "--json",
                         "--accounts", 2, "--devices-per-account", 2, "--churn", 0,
                         "--duration", 2, "--seed", 9)
    s = json.loads(out)
    check_eq((s["ever_connected"], s["published"]), (0, 0), "connected, published with a wrong CA")
    check(s["connect_failed"] >= 4, f"every device should fail to connect: {s}")
    check_eq(rc, 1, "hb-sim exit status with no device connected")


SCENARIOS = {f.__name__: f for f in [
    workers_truth_matches_the_checker_exactly,
    source_addresses_spread_connections_round_robin,
    json_summary_fields_are_exact,
    hold_ends_the_run_after_the_last_connect,
    hold_longer_than_the_run_reports_no_steady_phase,
    device_tokens_are_accepted_by_the_plugin,
    payload_template_is_what_devices_send,
    a_run_that_cannot_fit_says_what_to_change,
    devices_publish_over_tls_and_check_the_broker,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
