#!/usr/bin/python3
"""End-to-end scenarios of the pipeline on real mosquitto and redis-server: publisher ->
broker -> hb-consumer -> Redis -> hb-check. One scenario per meson test; run one by hand with
  HB_BUILD_DIR=build tests/integration/test_pipeline.py exact_counts_several_accounts
"""

import json
import signal

from harness import (ALIGNED_DURATION, TRUTH_INTERVAL, check, check_eq, check_truth, free_port,
                     http_get, interval_start, main, now_ms, parse_metrics,
                     start_before_boundary, wait_for_interval_end, wait_for_interval_start,
                     wait_until)

INTERVAL = 2


def publish_devices(pub, plan):
    """plan: {account: {device: heartbeats}}; returns the number of heartbeats sent."""
    sent = 0
    for account, devices in plan.items():
        for device, n in devices.items():
            for _ in range(n):
                pub.heartbeat(account, device)
                sent += 1
    return sent


def expected_keys(plan, start):
    return {f"hb:{{{a}}}:{start}": dict(d) for a, d in plan.items() if d}


def check_json(env, redis, interval, at_s, accounts, plan, start):
    rc, out, err = env.run("checker/hb-check", "--redis", redis.uri, "--interval", interval,
                           "--json", "--devices", "--at", at_s, *accounts, check_rc=0)
    rows = [json.loads(line) for line in out.splitlines()]
    check_eq(len(rows), len(accounts), "hb-check --json lines")
    for row, account in zip(rows, accounts):
        devices = sorted(plan.get(account, {}))
        check_eq(row, {"account": account, "interval_start": start, "interval_seconds": interval,
                       "devices": len(devices), "device_ids": devices}, f"hb-check row of {account}")


def exact_counts_several_accounts(env):
    redis, broker = env.redis(), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL)
    pub = env.publisher(broker)
    plan = {"acctA": {"d1": 3, "d2": 1, "d3": 1}, "acctB": {"tv-1": 1},
            "acctC": {f"c{i}": 2 for i in range(5)}, "acct.D:x_y-z": {"dev:1": 1}}
    start = wait_for_interval_start(INTERVAL)
    sent = publish_devices(pub, plan)
    check(now_ms() < start + INTERVAL * 1000, "publishing took longer than the interval")
    consumer.wait_stats(lambda s: s["written"] >= sent, what=f"{sent} heartbeats written")
    wait_for_interval_end(start, INTERVAL)

    check_eq(redis.snapshot(), expected_keys(plan, start), "Redis contents")
    accounts = ["acctA", "acctB", "acctC", "acct.D:x_y-z", "nobody"]
    check_json(env, redis, INTERVAL, now_ms() // 1000, accounts, plan, start)
    rc, out, _ = env.run("checker/hb-check", "--redis", redis.uri, "--interval", INTERVAL,
                         "--at", now_ms() // 1000, *accounts, check_rc=0)
    check_eq(out, "acctA 3\nacctB 1\nacctC 5\nacct.D:x_y-z 1\nnobody 0\n", "plain output")
    # An --at inside the interval itself looks at the interval before: nothing there.
    rc, out, _ = env.run("checker/hb-check", "--redis", redis.uri, "--interval", INTERVAL,
                         "--at", start // 1000, "acctA", check_rc=0)
    check_eq(out, "acctA 0\n", "count of the interval before")
    rc, stats = consumer.stop()
    check_eq(rc, 0, "consumer exit status")
    check_eq((stats["received"], stats["accepted"], stats["written"], stats["rejected"]),
             (sent, sent, sent, 0), "received/accepted/written/rejected")


def every_key_has_ttl_until_end_of_next_interval(env):
    redis, broker = env.redis(), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL)
    pub = env.publisher(broker)
    start = wait_for_interval_start(INTERVAL)
    sent = publish_devices(pub, {f"acct{i}": {"d": 1} for i in range(10)})
    consumer.wait_stats(lambda s: s["written"] >= sent, what="heartbeats written")
    keys = redis.keys()
    check_eq(len(keys), 10, "number of keys")
    for key in keys:
        check(key.endswith(f":{start}"), f"{key} is not of the interval {start}")
        pttl = redis.cmd("PTTL", key)
        check(0 < pttl <= 2 * INTERVAL * 1000, f"{key}: PTTL {pttl} not in (0, 2*interval]")
        expires = redis.cmd("PEXPIRETIME", key)
        end_of_next = start + 2 * INTERVAL * 1000
        check(abs(expires - end_of_next) <= 50,
              f"{key} expires at {expires}, not at the end of the next interval {end_of_next}")


BAD_MESSAGES = [
    # (reason, topic, payload)
    ("bad_id", "hb/acct{x}/evil", ""),
    ("bad_id", "hb/acct x/evil", ""),
    ("bad_id", "hb//evil", ""),
    ("bad_id", "hb/acctM/", ""),
    ("bad_id", "hb/" + "a" * 65 + "/evil", ""),
    ("bad_id", "hb/acctM/ev\u00e9l", ""),
    ("oversize", "hb/acctM/evil", json.dumps({"pad": "x" * 1100})),
    ("not_json", "hb/acctM/evil", "{bad"),
    ("not_json", "hb/acctM/evil", b"\xff\xfe\x00"),
    ("not_json", "hb/acctM/evil", '{"a":1} trailing'),
    ("not_object", "hb/acctM/evil", "[1,2]"),
    ("not_object", "hb/acctM/evil", "42"),
    ("not_object", "hb/acctM/evil", '"string"'),
    ("not_object", "hb/acctM/evil", "null"),
]


def malformed_messages_change_only_rejection_counters(env):
    redis, broker = env.redis(), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL)
    pub = env.publisher(broker)
    # Right after a boundary, so the keys written live a whole interval longer than the test.
    wait_for_interval_start(INTERVAL)
    valid = 0
    for i, (_, topic, payload) in enumerate(BAD_MESSAGES):
        pub.heartbeat("acctM", f"d{i % 3}")
        valid += 1
        pub.publish(topic, payload)
    pub.publish("hb/acctM/d0", "")  # a bare heartbeat is valid
    valid += 1
    consumer.wait_stats(lambda s: s["received"] >= valid + len(BAD_MESSAGES),
                        what="every message received")
    rc, stats = consumer.stop()
    check_eq(rc, 0, "consumer exit status")
    expected = {}
    for reason, _, _ in BAD_MESSAGES:
        expected[reason] = expected.get(reason, 0) + 1
    for reason in ("bad_topic", "bad_id", "oversize", "not_json", "not_object", "retained"):
        check_eq(stats[reason], expected.get(reason, 0), f"rejected {reason}")
    check_eq(stats["rejected"], len(BAD_MESSAGES), "rejected total")
    check_eq((stats["received"], stats["accepted"], stats["written"], stats["dropped"]),
             (valid + len(BAD_MESSAGES), valid, valid, 0), "received/accepted/written/dropped")
    snapshot = redis.snapshot()
    devices = {}
    for key, fields in snapshot.items():
        check(key.startswith("hb:{acctM}:"), f"unexpected key {key}")
        for d, n in fields.items():
            devices[d] = devices.get(d, 0) + n
    check_eq(sorted(devices), ["d0", "d1", "d2"], "devices written")
    check_eq(sum(devices.values()), valid, "heartbeats written")


def retained_heartbeat_is_not_counted(env):
    redis, broker = env.redis(), env.mosquitto()
    pub = env.publisher(broker)
    # (An empty retained payload would clear the retained message, so this one has a body.)
    pub.publish("hb/acctR/stale", "{}", retain=True)
    consumer = env.consumer([broker], redis, INTERVAL, extra=["--no-share"])
    pub.heartbeat("acctR", "live")
    consumer.wait_stats(lambda s: s["written"] >= 1 and s["retained"] >= 1,
                        what="live heartbeat written and retained one rejected")
    _, stats = consumer.stop()
    check_eq((stats["retained"], stats["accepted"], stats["written"]), (1, 1, 1),
             "retained/accepted/written")
    fields = {}
    for key in redis.keys():
        fields.update(redis.hash(key))
    check_eq(fields, {"live": 1}, "devices written")


def redis_restart_then_exact_counts(env):
    # Long enough that the buffered heartbeats' interval is still alive after Redis restarts
    # and the consumer's backoff (up to 5 s) lets it write them.
    interval = 6
    redis, broker = env.redis(aof=True), env.mosquitto()
    consumer = env.consumer([broker], redis, interval)
    pub = env.publisher(broker)
    start = wait_for_interval_start(interval)
    before = {"acctX": {"a1": 1, "a2": 1}}
    n = publish_devices(pub, before)
    consumer.wait_stats(lambda s: s["written"] >= n, what="first heartbeats written")
    redis.stop(signal.SIGKILL)
    during = {"acctX": {"b1": 1}, "acctY": {"b2": 2}}
    n += publish_devices(pub, during)
    during_ms = now_ms()
    consumer.wait_stats(lambda s: s["accepted"] >= n and s["redis_errors"] >= 1,
                        what="heartbeats buffered while Redis is down")
    redis.start()
    consumer.wait_stats(lambda s: s["written"] >= n, what="buffered heartbeats written")
    # The buffered heartbeats went into the interval in which they arrived.
    arrival = interval_start(during_ms, interval)
    got = redis.hash(f"hb:{{acctY}}:{arrival}")
    check_eq(got, {"b2": 2}, "buffered heartbeats of acctY")
    check_eq(redis.keys_without_ttl(), [], "keys without a TTL")

    after = {"acctX": {"c1": 1, "c2": 1, "c3": 1}, "acctY": {"c4": 1}}
    start = wait_for_interval_start(interval)
    n += publish_devices(pub, after)
    consumer.wait_stats(lambda s: s["written"] >= n, what="heartbeats after recovery written")
    wait_for_interval_end(start, interval)
    check_json(env, redis, interval, now_ms() // 1000, ["acctX", "acctY"], after, start)
    rc, stats = consumer.stop()
    check_eq(rc, 0, "consumer exit status")
    check_eq((stats["written"], stats["dropped"]), (n, 0), "written/dropped")


def broker_restart_consumer_resubscribes(env):
    redis, broker = env.redis(), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL)
    broker.stop()
    broker.start()
    consumer.wait_subscribed(2, timeout=30)
    pub = env.publisher(broker)
    plan = {"acctR1": {"x": 1, "y": 1}, "acctR2": {"z": 1}}
    start = wait_for_interval_start(INTERVAL)
    n = publish_devices(pub, plan)
    consumer.wait_stats(lambda s: s["written"] >= n, what="heartbeats after broker restart")
    wait_for_interval_end(start, INTERVAL)
    check_json(env, redis, INTERVAL, now_ms() // 1000, ["acctR1", "acctR2"], plan, start)


def two_consumers_share_the_load_exactly(env):
    redis, broker = env.redis(), env.mosquitto()
    c1 = env.consumer([broker], redis, INTERVAL, name="consumer1")
    c2 = env.consumer([broker], redis, INTERVAL, name="consumer2")
    pub = env.publisher(broker)
    plan = {f"acct{a}": {f"dev{a}-{d}": 2 for d in range(5)} for a in range(4)}
    start = wait_for_interval_start(INTERVAL)
    n = publish_devices(pub, plan)
    check(now_ms() < start + INTERVAL * 1000, "publishing took longer than the interval")
    wait_until(lambda: c1.stats()["written"] + c2.stats()["written"] >= n, 20,
               "the group to write every heartbeat")
    rc1, s1 = c1.stop()
    rc2, s2 = c2.stop()
    check_eq((rc1, rc2), (0, 0), "exit statuses")
    check_eq(s1["accepted"] + s2["accepted"], n, "heartbeats accepted by the group")
    check(s1["accepted"] > 0 and s2["accepted"] > 0,
          f"load not shared: {s1['accepted']} and {s2['accepted']}")
    check_eq(s1["written"] + s2["written"], n, "heartbeats written by the group")
    check_eq(redis.snapshot(), expected_keys(plan, start), "Redis contents")
    wait_for_interval_end(start, INTERVAL)
    check_json(env, redis, INTERVAL, now_ms() // 1000, sorted(plan), plan, start)


def sigterm_flushes_the_buffer(env):
    redis, broker = env.redis(), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL,
                            extra=["--flush-ms", "60000", "--batch-size", "100000"],
                            redis_ready=False)
    pub = env.publisher(broker)
    n = publish_devices(pub, {"acctS": {f"s{i}": 1 for i in range(30)}})
    consumer.wait_stats(lambda s: s["accepted"] >= n, what="heartbeats accepted")
    check_eq(consumer.stats()["written"], 0, "written before SIGTERM (batch still open)")
    check_eq(redis.keys(), [], "keys before SIGTERM")
    rc, stats = consumer.stop()
    check_eq(rc, 0, "consumer exit status")
    check_eq((stats["written"], stats["dropped"]), (n, 0), "written/dropped at exit")
    devices = {}
    for key in redis.keys():
        devices.update(redis.hash(key))
    check_eq(len(devices), n, "devices in Redis after SIGTERM")


def sigterm_with_redis_down_counts_what_is_lost(env):
    redis, broker = env.redis(), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL, extra=["--drain-timeout", "1"])
    redis.stop()
    pub = env.publisher(broker)
    n = publish_devices(pub, {"acctL": {f"l{i}": 1 for i in range(5)}})
    consumer.wait_stats(lambda s: s["accepted"] >= n, what="heartbeats accepted")
    rc, stats = consumer.stop(expect_rc=3)
    check_eq(rc, 3, "consumer exit status (heartbeats dropped at stop)")
    check_eq((stats["written"], stats["dropped"]), (0, n), "written/dropped")


def full_buffer_drops_are_counted(env):
    redis, broker = env.redis(), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL * 5,
                            extra=["--buffer", "10", "--batch-size", "5"])
    redis.stop()
    pub = env.publisher(broker)
    sent = publish_devices(pub, {"acctF": {f"f{i}": 1 for i in range(40)}})
    stats = consumer.wait_stats(lambda s: s["accepted"] + s["dropped"] >= sent,
                                what="every heartbeat accepted or dropped")
    check_eq(stats["accepted"] + stats["dropped"], sent, "accepted + dropped")
    # The buffer full, and at most one batch more in the writer's hands.
    check(10 <= stats["accepted"] <= 15,
          f"accepted {stats['accepted']}, expected the buffer (10) up to buffer + batch (15)")
    check_eq(stats["queued"], 10, "heartbeats queued while Redis is down")
    redis.start()
    stats = consumer.wait_stats(lambda s: s["written"] >= s["accepted"],
                                what="kept heartbeats written after Redis is back")
    _, final = consumer.stop()
    check_eq((final["written"], final["dropped"]), (stats["accepted"], sent - stats["accepted"]),
             "written/dropped")
    devices = {}
    for key in redis.keys():
        devices.update(redis.hash(key))
    check_eq(len(devices), final["accepted"], "devices in Redis")


def simulated_devices_match_truth_across_two_brokers(env):
    redis = env.redis()
    brokers = [env.mosquitto(), env.mosquitto()]
    consumer = env.consumer(brokers, redis, TRUTH_INTERVAL)
    truth = f"{env.dir}/truth.jsonl"
    args = [a for b in brokers for a in ("--broker", b.uri)]
    start_before_boundary()
    _, out, _ = env.run("publisher-sim/hb-sim", *args, "--interval", TRUTH_INTERVAL,
                        "--accounts", 12, "--devices-per-account", "1-6", "--heartbeat", "0.5",
                        "--churn", "0.5", "--duration", ALIGNED_DURATION, "--seed", 42,
                        "--truth", truth, "--json", "--quiet", check_rc=0)
    summary = json.loads(out)
    check(summary["published"] > 0, f"nothing published: {summary}")
    check_eq(summary["lost"], 0, "heartbeats lost by the simulator")
    consumer.wait_stats(lambda s: s["written"] >= summary["published"],
                        what="every simulated heartbeat written")
    lines = check_truth(env, redis.uri, truth)
    check_eq(len(lines), 12, "truth lines (one per account of the complete interval)")
    _, stats = consumer.stop()
    check_eq((stats["accepted"], stats["written"], stats["rejected"]),
             (summary["published"], summary["published"], 0), "consumer counters")


def redis_killed_under_load_loses_nothing_and_leaves_no_key_without_ttl(env):
    """Redis is killed a second into the run's one complete interval and restarted: that
    interval, outage included, matches the truth line for line."""
    redis, broker = env.redis(aof=True), env.mosquitto()
    consumer = env.consumer([broker], redis, TRUTH_INTERVAL, extra=["--batch-size", "20"])
    truth = f"{env.dir}/truth.jsonl"
    boundary = start_before_boundary()
    sim = env.start("publisher-sim/hb-sim", "--broker", broker.uri, "--interval", TRUTH_INTERVAL,
                    "--accounts", 40, "--devices-per-account", 5, "--heartbeat", "0.25",
                    "--churn", 0, "--duration", ALIGNED_DURATION, "--seed", 7, "--truth", truth,
                    "--json", "--quiet", name="sim")
    consumer.wait_stats(lambda s: s["written"] >= 200, what="load flowing into Redis")
    wait_until(lambda: now_ms() >= boundary + 1000, 10, "a second into the complete interval")
    killed_ms = now_ms()
    redis.stop(signal.SIGKILL)
    consumer.wait_stats(lambda s: s["redis_errors"] >= 1, what="the consumer to notice")
    redis.start()
    check(killed_ms < boundary + TRUTH_INTERVAL * 1000 - 2000,
          f"Redis killed {killed_ms - boundary} ms into the interval: too late to be compared")
    check_eq(sim.wait(60), 0, "simulator exit status")
    summary = json.loads(open(sim.log_path).read().splitlines()[-1])
    consumer.wait_stats(lambda s: s["written"] >= summary["published"],
                        what="every heartbeat written after the restart")
    check_eq(redis.keys_without_ttl(), [], "keys without a TTL")
    lines = check_truth(env, redis.uri, truth)
    check_eq({line["interval_start"] for line in lines}, {boundary}, "the interval compared")
    check_eq(len(lines), 40, "truth lines (one per account)")
    _, stats = consumer.stop()
    check(stats["redis_errors"] >= 1, f"no Redis error counted: {stats}")
    check_eq((stats["accepted"], stats["written"], stats["dropped"], stats["expired"]),
             (summary["published"], summary["published"], 0, 0),
             "accepted/written/dropped/expired")


def metrics_and_health_tell_the_truth(env):
    redis, broker = env.redis(aof=False), env.mosquitto()
    port = free_port()
    consumer = env.consumer([broker], redis, 60, extra=["--metrics", f"127.0.0.1:{port}"])
    wait_until(lambda: http_get(port, "/healthz") == (200, "ok\n"), 10, "/healthz ok")
    pub = env.publisher(broker)
    sent = publish_devices(pub, {"acctM": {"d1": 2, "d2": 1}})
    pub.publish("hb/acct{x}/evil", b"")
    pub.publish("hb/acctM/evil", b"{bad")
    consumer.wait_stats(lambda s: s["written"] >= sent and s["rejected"] >= 2,
                        what="heartbeats written and rejections counted")
    status, text = http_get(port, "/metrics")
    check_eq(status, 200, "GET /metrics status")
    m = parse_metrics(text)
    reasons = {r: 0 for r in ("bad_topic", "bad_id", "oversize", "not_json", "not_object",
                              "retained")}
    reasons.update(bad_id=1, not_json=1)
    expected = {
        "hb_consumer_messages_received_total": sent + 2,
        "hb_consumer_heartbeats_accepted_total": sent,
        "hb_consumer_heartbeats_written_total": sent,
        "hb_consumer_heartbeats_dropped_total": 0,
        "hb_consumer_heartbeats_expired_total": 0,
        "hb_consumer_redis_errors_total": 0,
        "hb_consumer_queue_length": 0,
        "hb_consumer_queue_capacity": 262144,
        "hb_consumer_redis_up": 1,
        f'hb_consumer_mqtt_subscribed{{broker="{broker.uri}"}}': 1,
        'hb_consumer_latency_seconds_bucket{le="+Inf"}': sent,
        "hb_consumer_latency_seconds_count": sent,
        f'hb_consumer_info{{version="{consumer_version(env)}"}}': 1,
        **{f'hb_consumer_messages_rejected_total{{reason="{r}"}}': n for r, n in reasons.items()},
    }
    check_eq({k: m.get(k) for k in expected}, expected, "metrics")
    buckets = [v for k, v in m.items() if k.startswith("hb_consumer_latency_seconds_bucket")]
    check(buckets == sorted(buckets), f"histogram buckets not cumulative: {buckets}")
    check_eq(http_get(port, "/metrics", "POST")[0], 405, "POST /metrics")
    check_eq(http_get(port, "/nothing")[0], 404, "GET /nothing")

    # Redis goes away with no traffic at all: health and metrics say so within seconds.
    redis.stop()
    wait_until(lambda: http_get(port, "/healthz") == (503, "redis: not connected\n"), 15,
               "/healthz to report Redis down")
    m = parse_metrics(http_get(port, "/metrics")[1])
    check_eq(m["hb_consumer_redis_up"], 0, "redis_up while Redis is down")
    check(m["hb_consumer_redis_errors_total"] >= 1, "no Redis error counted")
    redis.start()
    wait_until(lambda: http_get(port, "/healthz") == (200, "ok\n"), 15, "/healthz ok again")

    # And the broker: unsubscribed is unhealthy too.
    broker.stop()
    down = (503, f"mqtt {broker.uri}: not subscribed\n")
    wait_until(lambda: http_get(port, "/healthz") == down, 15, "/healthz to report the broker down")
    broker.start()
    wait_until(lambda: http_get(port, "/healthz") == (200, "ok\n"), 30,
               "/healthz ok after the broker is back")
    consumer.stop()


def consumer_version(env):
    _, out, _ = env.run("consumer/hb-consumer", "--version", check_rc=0)
    return out.split()[1]


SCENARIOS = {f.__name__: f for f in [
    redis_killed_under_load_loses_nothing_and_leaves_no_key_without_ttl,
    simulated_devices_match_truth_across_two_brokers,
    exact_counts_several_accounts,
    every_key_has_ttl_until_end_of_next_interval,
    malformed_messages_change_only_rejection_counters,
    retained_heartbeat_is_not_counted,
    redis_restart_then_exact_counts,
    broker_restart_consumer_resubscribes,
    two_consumers_share_the_load_exactly,
    sigterm_flushes_the_buffer,
    sigterm_with_redis_down_counts_what_is_lost,
    full_buffer_drops_are_counted,
    metrics_and_health_tell_the_truth,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
