#!/usr/bin/env python3
"""The fault matrix on real servers: each scenario breaks one part of the pipeline while a fleet
of numbered devices publishes, then compares EVERY complete interval with the truth (exact where
the design promises it) or checks that the loss is counted (where it does not). Run one by hand
with: HB_BUILD_DIR=build python3 tests/integration/test_faults.py SCENARIO"""

import json
import signal
import sys

import paho.mqtt.client as mqtt

from faults_harness import Fleet, Verifier, healthz, metrics, metrics_args, read_interval
from harness import check, check_eq, interval_start, main, now_ms, wait_until

INTERVAL = 5
ACCOUNTS, PER_ACCOUNT = 30, 5  # 150 devices


def setup(env, aof=True, consumer_extra=(), broker_conf=""):
    redis, broker = env.redis(aof=aof), env.mosquitto(extra_conf=broker_conf)
    port, margs = metrics_args()
    consumer = env.consumer([broker], redis, INTERVAL, extra=[*margs, *consumer_extra])
    fleet = Fleet(env.publisher(broker), ACCOUNTS, PER_ACCOUNT, INTERVAL)
    return redis, broker, consumer, fleet, port


def next_start():
    return interval_start(now_ms(), INTERVAL) + INTERVAL * 1000


def redis_restart(env, sig):
    redis, _, consumer, fleet, _ = setup(env)
    first = next_start()
    wait_until(lambda: now_ms() >= first, INTERVAL + 1, "a fresh interval")
    verifier = Verifier(env, redis, fleet, first)
    fleet.run_for(2)
    redis.stop(sig)
    fleet.run_for(1.5)  # buffered by the consumer
    redis.start()
    fleet.run_for(INTERVAL * 2)
    verifier.finish(interval_start(now_ms(), INTERVAL) - INTERVAL * 1000)
    rc, stats = consumer.stop()
    check_eq((rc, stats["dropped"], stats["expired"], stats["lost"]), (0, 0, 0, 0),
             "exit status, dropped, expired, lost")
    check_eq(stats["written"], fleet.sent, "written")


def redis_restart_with_aof_is_exact(env):
    redis_restart(env, signal.SIGTERM)


def redis_kill9_with_aof_is_exact(env):
    redis_restart(env, signal.SIGKILL)


def redis_down_longer_than_an_interval_counts_expired(env):
    redis, _, consumer, fleet, _ = setup(env)
    first = next_start()
    wait_until(lambda: now_ms() >= first, INTERVAL + 1, "a fresh interval")
    fleet.run_for(1)
    redis.stop(signal.SIGKILL)
    down_from = now_ms()
    fleet.run_for(1)
    # Down until the interval of the buffered heartbeats has expired (one interval after its end).
    lost_start = interval_start(down_from, INTERVAL)
    wait_until(lambda: now_ms() >= lost_start + 2 * INTERVAL * 1000 + 200, 3 * INTERVAL,
               "the buffered interval's keys to expire")
    redis.start()
    after = next_start()
    wait_until(lambda: now_ms() >= after, INTERVAL + 1, "an interval after recovery")
    verifier = Verifier(env, redis, fleet, after)
    fleet.run_for(INTERVAL - 1)
    stats = consumer.wait_stats(lambda s: s["written"] + s["expired"] >= fleet.sent,
                                what="every heartbeat written or expired")
    check(stats["expired"] > 0, "nothing counted expired")
    check_eq(stats["written"] + stats["expired"], fleet.sent, "written + expired")
    verifier.finish(after)
    check_eq(consumer.stop()[0], 0, "consumer exit status")


def flushall_is_exact_from_the_next_complete_interval(env):
    redis, _, consumer, fleet, _ = setup(env)
    fleet.run_for(1.5)
    redis.cmd("FLUSHALL")
    after = next_start()
    wait_until(lambda: now_ms() >= after, INTERVAL + 1, "the next interval")
    verifier = Verifier(env, redis, fleet, after)
    fleet.run_for(INTERVAL * 2)
    verifier.finish(after + INTERVAL * 1000)
    check_eq(consumer.stop()[0], 0, "consumer exit status")


def broker_restart_loss_is_counted(env):
    redis, broker, consumer, fleet, port = setup(env)
    fleet.run_for(1.5)
    check_eq(metrics(port)["hb_consumer_loss_tracking"], 1, "loss tracking of a lone consumer")
    broker.stop()
    fleet.round(skip=True)  # what the devices sent while the broker was down
    fleet.round(skip=True)
    broker.start()
    consumer.wait_subscribed(2)
    fleet.pub.client.reconnect()
    wait_until(fleet.pub.client.is_connected, 10, "the publisher to reconnect")
    fleet.round()
    lost = 2 * len(fleet.devices)
    consumer.wait_stats(lambda s: s["lost"] >= lost, what="the loss counted")
    check_eq(metrics(port)["hb_consumer_heartbeats_lost_total"], lost, "lost_total")
    status, body = healthz(port)
    check_eq(status, 503, "/healthz while loss goes on")
    check("heartbeats lost" in body, f"/healthz says why: {body!r}")
    check_eq(consumer.stop()[1]["lost"], lost, "lost at exit")


def live_counts(broker, expected, what):
    """Subscribes to the live account counts on broker and waits until what it received (a
    new subscription gets the retained ones first) equals expected: topic -> payload."""
    got = {}
    c = mqtt.Client(client_id="live-counts", protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, u, m: got.__setitem__(m.topic, json.loads(m.payload))
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        wait_until(c.is_connected, 10, "the live count subscriber to connect")
        c.subscribe("live/account/+", qos=1)
        wait_until(lambda: got == expected, 15, what)
    finally:
        c.loop_stop()
        c.disconnect()


def live_counts_are_published_again_after_a_broker_restart(env):
    """The broker (no persistence) loses the retained live counts when it restarts; no count
    changes meanwhile, yet each is published again once the consumer's publisher is back."""
    redis, broker, consumer, fleet, port = setup(env, consumer_extra=["--live"])
    expected = {f"live/account/{a}": {"account": a, "watching": PER_ACCOUNT}
                for a in fleet.accounts}
    fleet.round()
    live_counts(broker, expected, "every account's count, retained")
    broker.stop()
    broker.start()
    consumer.wait_subscribed(2)
    fleet.pub.client.reconnect()
    wait_until(fleet.pub.client.is_connected, 10, "the publisher to reconnect")
    fleet.round()  # the same devices: no count changes
    live_counts(broker, expected, "every account's count again after the restart")
    check_eq(metrics(port)["hb_consumer_live_devices"], ACCOUNTS * PER_ACCOUNT, "devices")
    check_eq(consumer.stop()[0], 0, "consumer exit status")


def consumer_kill9_without_peer_loss_is_counted(env):
    redis, broker, consumer, fleet, _ = setup(env)
    fleet.run_for(1.5)
    consumer.proc.stop(signal.SIGKILL)
    fleet.round(skip=True)  # heartbeats the broker delivered to nobody (no persistent session)
    port, margs = metrics_args()
    consumer = env.consumer([broker], redis, INTERVAL, extra=margs, name="consumer2")
    # The killed consumer's watermark field looks alive for 5 s; only then is this one alone.
    wait_until(lambda: metrics(port)["hb_consumer_loss_tracking"] == 1, 15,
               "the new consumer to count loss")
    fleet.round()  # the new consumer learns each device's number: nothing to compare yet
    fleet.round(skip=True)
    fleet.round()
    lost = len(fleet.devices)
    consumer.wait_stats(lambda s: s["lost"] >= lost, what="the loss counted")
    check_eq(metrics(port)["hb_consumer_heartbeats_lost_total"], lost, "lost_total")
    check_eq(consumer.stop()[1]["lost"], lost, "lost at exit")


def consumer_kill9_with_peer_is_exact(env):
    redis, broker, consumer, fleet, _ = setup(env)
    peer = env.consumer([broker], redis, INTERVAL, name="peer")
    first = next_start()
    wait_until(lambda: now_ms() >= first, INTERVAL + 1, "a fresh interval")
    verifier = Verifier(env, redis, fleet, first)
    fleet.run_for(1.5)
    consumer.proc.stop(signal.SIGKILL)
    fleet.run_for(INTERVAL * 2)
    verifier.finish(interval_start(now_ms(), INTERVAL) - INTERVAL * 1000)
    rc, stats = peer.stop()
    check_eq((rc, stats["dropped"], stats["expired"]), (0, 0, 0), "peer exit, dropped, expired")


def redis_slowed_is_exact(env):
    redis, _, consumer, fleet, _ = setup(env)
    first = next_start()
    wait_until(lambda: now_ms() >= first, INTERVAL + 1, "a fresh interval")
    verifier = Verifier(env, redis, fleet, first)
    fleet.run_for(1)
    redis.cmd("CLIENT", "PAUSE", "1500", "WRITE")
    fleet.run_for(2)
    # What DEBUG SLEEP does (the harness' Redis refuses DEBUG): a script that holds Redis 1.5 s.
    redis.cmd("EVAL", "local t = redis.call('TIME') local e = t[1] * 1e6 + t[2] + 1500000 "
              "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] >= e return 1", "0")
    fleet.run_for(INTERVAL * 2)
    verifier.finish(interval_start(now_ms(), INTERVAL) - INTERVAL * 1000)
    rc, stats = consumer.stop()
    check_eq((rc, stats["dropped"], stats["expired"], stats["lost"]), (0, 0, 0, 0),
             "exit status, dropped, expired, lost")


def overload_past_the_broker_queue_loss_is_counted(env):
    # A consumer that stops reading (SIGSTOP) is what overload looks like to the broker: its
    # queue for the consumer fills and the rest is dropped without a word.
    # The queue holds more than one round (150), so only the rounds sent while stopped overflow.
    redis, broker, consumer, fleet, port = setup(env, broker_conf="max_queued_messages 200\n")
    fleet.round()
    consumer.proc.send_signal(signal.SIGSTOP)
    try:
        for _ in range(3):
            fleet.round()
    finally:
        consumer.proc.send_signal(signal.SIGCONT)
    # Let the broker's queue drain first, or the last round could be dropped too (and its gaps
    # never seen): received unchanged over a stats line (1 s).
    seen = []

    def drained():
        stats = consumer.wait_stats(lambda s: True, what="a stats line")
        seen.append(stats["received"])
        return len(seen) > 12 and seen[-1] == seen[-12]
    wait_until(drained, 20, "the broker's queue drained", interval=0.1)
    fleet.round()
    # Every heartbeat is received or, seen as a gap before the last round, counted lost.
    stats = consumer.wait_stats(lambda s: s["received"] + s["lost"] >= fleet.sent,
                                what="every heartbeat received or counted lost")
    check_eq(stats["received"] + stats["lost"], fleet.sent, "received + lost")
    check(stats["lost"] > 0, "the broker dropped nothing: the test did not overload it")
    check_eq(metrics(port)["hb_consumer_heartbeats_lost_total"], stats["lost"], "lost_total")
    status, body = healthz(port)
    check_eq(status, 503, "/healthz after loss")
    check_eq(consumer.stop()[0], 0, "consumer exit status")


def sigterm_while_redis_down_exits_nonzero(env):
    redis, _, consumer, fleet, _ = setup(env, consumer_extra=["--drain-timeout", "1"])
    redis.stop()
    n = fleet.round()
    consumer.wait_stats(lambda s: s["accepted"] >= n, what="heartbeats buffered")
    rc, stats = consumer.stop(expect_rc=3)
    check_eq(rc, 3, "exit status after dropping heartbeats")
    check_eq((stats["written"], stats["dropped"]), (0, n), "written, dropped")


def hb_check_says_incomplete_while_heartbeats_are_buffered(env):
    redis, _, consumer, fleet, _ = setup(env)
    first = next_start()
    wait_until(lambda: now_ms() >= first, INTERVAL + 1, "a fresh interval")
    fleet.run_for(1)
    consumer.proc.send_signal(signal.SIGSTOP)  # a consumer behind: its watermark stands still
    try:
        # Read at once: its field stays fresh (5 s) through hb-check's 2 s wait.
        rc, _, complete = read_interval(env, redis, INTERVAL, first, fleet.accounts)
        check_eq((rc, complete), (4, {False}), "hb-check status and complete flags")
    finally:
        consumer.proc.send_signal(signal.SIGCONT)
    Verifier(env, redis, fleet, first).finish(first)
    check_eq(consumer.stop()[0], 0, "consumer exit status")


def simulator_run_has_every_interval_verified(env):
    # hb-check --follow reads each interval while its keys live; the truth comes at the end.
    redis, broker = env.redis(), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL)
    truth = f"{env.dir}/truth.jsonl"
    follow = env.start("checker/hb-check", "--redis", redis.uri, "--interval", INTERVAL,
                       "--verify", truth, "--follow", name="follow")
    env.run("publisher-sim/hb-sim", "--broker", broker.uri, "--interval", INTERVAL,
            "--accounts", 30, "--devices-per-account", "1-8", "--heartbeat", "1",
            "--duration", INTERVAL * 4, "--seed", 9, "--truth", truth, "--quiet", check_rc=0)
    check_eq(follow.wait(timeout=INTERVAL * 4), 0, "hb-check --follow exit status")
    out = follow.output()
    intervals = [line for line in out.splitlines() if line.startswith("interval ")]
    check(len(intervals) >= 3, f"intervals compared: {intervals}")
    check(all(", 0 mismatched" in line for line in intervals), f"per interval: {intervals}")
    check(" 0 checked" not in out and "0 intervals read incomplete" in out, f"summary: {out}")
    check_eq(consumer.stop()[0], 0, "consumer exit status")


SCENARIOS = {f.__name__: f for f in [
    redis_restart_with_aof_is_exact,
    redis_kill9_with_aof_is_exact,
    redis_down_longer_than_an_interval_counts_expired,
    flushall_is_exact_from_the_next_complete_interval,
    broker_restart_loss_is_counted,
    live_counts_are_published_again_after_a_broker_restart,
    consumer_kill9_without_peer_loss_is_counted,
    consumer_kill9_with_peer_is_exact,
    redis_slowed_is_exact,
    overload_past_the_broker_queue_loss_is_counted,
    sigterm_while_redis_down_exits_nonzero,
    hb_check_says_incomplete_while_heartbeats_are_buffered,
    simulator_run_has_every_interval_verified,
]}

if __name__ == "__main__":
    sys.exit(main(SCENARIOS))
