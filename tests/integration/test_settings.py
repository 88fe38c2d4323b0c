#!/usr/bin/python3
"""Settings the README and deploy/ document, each run end to end on real servers: Redis with a
password, an ACL user, a database number and a unix socket; the consumer's expired counter; a
non-default topic prefix through every program; the consumer configured only from its
environment; --share-group, --payload-max, and mqtts:// and wss:// brokers. Run one with
  HB_BUILD_DIR=build tests/integration/test_settings.py payload_max_is_the_largest_accepted
"""

import json
import os

from harness import (ALIGNED_DURATION, TRUTH_INTERVAL, check, check_eq, check_truth, free_port,
                     interval_start, main, now_ms, plugin_broker_config, sanitizer_env,
                     share_with_broker, start_before_boundary, tls_certificates,
                     wait_for_interval_end, wait_for_interval_start, wait_until)

INTERVAL = 2


def publish_plan(pub, plan, prefix="hb"):
    """plan: {account: [devices]}, one heartbeat each; returns how many were sent."""
    for account, devices in plan.items():
        for device in devices:
            pub.publish(f"{prefix}/{account}/{device}", json.dumps({"ts": now_ms()}))
    return sum(len(d) for d in plan.values())


def check_counts(env, redis_uri, plan, at_s, what):
    """hb-check on redis_uri at at_s gives exactly the plan's device counts."""
    accounts = sorted(plan)
    _, out, _ = env.run("checker/hb-check", "--redis", redis_uri, "--interval", INTERVAL,
                        "--at", at_s, *accounts, check_rc=0)
    check_eq(out, "".join(f"{a} {len(plan[a])}\n" for a in accounts), what)


def redis_password_acl_user_database_and_unix_socket(env):
    """redis://:password@host/db, redis://user:password@host/db and unix:///path?db=N: the
    consumer writes into that database only, and hb-check given the same URI counts it
    exactly; given database 0 it reads nothing (why both must name the same database)."""
    secured = env.redis(aof=False, password="pw-0f3c9a")
    secured.cmd("ACL", "SETUSER", "hb-writer", "on", ">writer-pw-77", "~hb:*", "+@all")
    local = env.redis(aof=False, unixsocket=True)
    broker = env.mosquitto()
    pub = env.publisher(broker)
    cases = [
        ("password", secured, 3, f"redis://:pw-0f3c9a@127.0.0.1:{secured.port}/3",
         f"redis://:pw-0f3c9a@127.0.0.1:{secured.port}"),
        ("acl-user", secured, 5, f"redis://hb-writer:writer-pw-77@127.0.0.1:{secured.port}/5",
         f"redis://hb-writer:writer-pw-77@127.0.0.1:{secured.port}"),
        ("unix-socket", local, 7, f"unix://{local.socket}?db=7", f"unix://{local.socket}"),
    ]
    for name, redis, db, uri, db0_uri in cases:
        consumer = env.consumer([broker], uri, INTERVAL, name=f"consumer-{name}")
        plan = {f"acct-{name}": ["d1", "d2", "d3"], "acctZ": [f"z-{name}"]}
        start = wait_for_interval_start(INTERVAL)
        n = publish_plan(pub, plan)
        consumer.wait_stats(lambda s, n=n: s["written"] >= n, what=f"{name}: {n} written")
        check_eq(redis.snapshot(db=db),
                 {f"hb:{{{a}}}:{start}": {d: 1 for d in ds} for a, ds in plan.items()},
                 f"{name}: Redis database {db}")
        check_eq(redis.keys(db=0), [], f"{name}: keys in database 0")
        wait_for_interval_end(start, INTERVAL)
        at = now_ms() // 1000
        check_counts(env, uri, plan, at, f"{name}: hb-check on database {db}")
        check_counts(env, db0_uri, {a: [] for a in plan}, at, f"{name}: hb-check on database 0")
        _, stats = consumer.stop()
        check_eq((stats["written"], stats["redis_errors"]), (n, 0), f"{name}: written/errors")
        for key in redis.keys(db=db):  # the next case starts from an empty database
            redis.cmd("DEL", key, db=db)
    # A wrong password is refused, and the consumer says why without printing the password.
    p = env.start("consumer/hb-consumer", "--redis",
                  f"redis://:wrong-pw@127.0.0.1:{secured.port}/3", "--broker", broker.uri,
                  "--interval", INTERVAL, name="consumer-wrong-password")
    wait_until(lambda: "WRONGPASS" in p.output() or "invalid username-password" in p.output(),
               15, "the refused password logged")
    check("wrong-pw" not in p.output(), f"the password appears in the consumer's log:\n{p.output()}")
    for name, redis, db, uri, _ in cases:
        log = open(os.path.join(env.dir, f"consumer-{name}.log")).read()
        check("pw-0f3c9a" not in log and "writer-pw-77" not in log,
              f"{name}: the password appears in the consumer's log")
        where = f"unix:{redis.socket}" if redis.socket else f"127.0.0.1:{redis.port}"
        check(f"redis {where} db {db}\n" in log, f"{name}: no 'redis {where} db {db}' line")
    check_eq(p.stop(), 0, "exit status of the refused consumer")


def expired_counter_counts_heartbeats_that_outlived_their_key(env):
    """Redis is down for longer than a heartbeat's key would live (its interval and the next):
    once Redis is back, those heartbeats are counted as expired, not written, and nothing
    lands in Redis for them; the heartbeats after the outage are written."""
    interval = 1
    redis, broker = env.redis(aof=False), env.mosquitto()
    consumer = env.consumer([broker], redis, interval)
    pub = env.publisher(broker)
    redis.stop()
    sent_ms = now_ms()
    n = publish_plan(pub, {"acctE": ["e1", "e2", "e3", "e4"]})
    consumer.wait_stats(lambda s: s["accepted"] >= n, what="heartbeats buffered")
    # Keys of the interval the heartbeats arrived in live until the end of the next one.
    dies = interval_start(sent_ms, interval) + 2 * interval * 1000
    wait_until(lambda: now_ms() > dies + 200, 5, "the heartbeats' keys to be past their life")
    redis.start()
    stats = consumer.wait_stats(lambda s: s["expired"] >= n, what=f"{n} heartbeats expired")
    check_eq((stats["expired"], stats["written"], stats["dropped"]), (n, 0, 0),
             "expired/written/dropped after the outage")
    check_eq(redis.keys(), [], "keys written for expired heartbeats")
    publish_plan(pub, {"acctE": ["after"]})
    consumer.wait_stats(lambda s: s["written"] >= 1, what="the heartbeat after the outage")
    check_eq([redis.hash(k) for k in redis.keys()], [{"after": 1}], "Redis after the outage")
    _, stats = consumer.stop()
    check_eq((stats["accepted"], stats["expired"], stats["written"], stats["dropped"]),
             (n + 1, n, 1, 0), "accepted/expired/written/dropped")


def write_secret(env, name, text):
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    share_with_broker(env.dir, [path])
    return path


def topic_prefix_through_simulator_plugin_token_and_consumer(env):
    """--topic-prefix fleet/eu everywhere: the simulator's device tokens and topics, the
    plugin's plugin_opt_topic_prefix, the consumer's token (hb-token) and subscription. The
    run matches the truth exactly, and a device publishing under hb/ is denied."""
    prefix = "fleet/eu"
    key = write_secret(env, "fleet.secret", "f" * 48)
    redis = env.redis(aof=False)
    broker = env.mosquitto(config=plugin_broker_config(
        [("key_file", key), ("topic_prefix", prefix)]), env=sanitizer_env())
    _, token, _ = env.run("token/hb-token", "--key", key, "--role", "consumer",
                          "--topic-prefix", prefix, check_rc=0)
    consumer = env.consumer([broker], redis, TRUTH_INTERVAL, extra=[
        "--topic-prefix", prefix, "--username", "consumer", "--password", token.strip()])
    truth = f"{env.dir}/truth.jsonl"
    start_before_boundary()
    _, out, _ = env.run("publisher-sim/hb-sim", "--broker", broker.uri, "--key", key,
                        "--topic-prefix", prefix, "--interval", TRUTH_INTERVAL,
                        "--accounts", 8, "--devices-per-account", 3, "--churn", 0,
                        "--heartbeat", "0.5", "--duration", ALIGNED_DURATION, "--seed", 11,
                        "--truth", truth, "--json", "--quiet", check_rc=0)
    s = json.loads(out)
    check_eq((s["ever_connected"], s["refused"], s["errors"], s["lost"]), (24, 0, 0, 0),
             "connected/refused/errors/lost")
    consumer.wait_stats(lambda st: st["written"] >= s["published"], what="every heartbeat")
    check_eq(len(check_truth(env, redis.uri, truth)), 8, "truth lines (one per account)")
    # A device token of the same prefix may not publish outside it.
    _, device, _ = env.run("token/hb-token", "--key", key, "--account", "acctP",
                           "--topic-prefix", prefix, check_rc=0)
    pub = env.publisher(broker, client_id="p1", password=device.strip())
    pub.client.publish("hb/acctP/p1", "{}", qos=1).wait_for_publish(timeout=10)
    publish_plan(pub, {"acctP": ["p1"]}, prefix=prefix)
    stats = consumer.wait_stats(lambda st: st["written"] >= s["published"] + 1,
                                what="the prefixed heartbeat")
    check_eq((stats["received"], stats["rejected"]), (s["published"] + 1, 0),
             "received/rejected: the hb/ publish never reached the consumer")
    denied = "hb_auth: denied publish of 'hb/acctP/p1' to client 'p1': acl"
    wait_until(lambda: denied in broker.proc.output(), 5, f"broker log line {denied!r}")


def consumer_configured_only_from_the_environment(env):
    """deploy/hb-consumer.env's variables and no option at all: HB_BROKER (ssl://),
    HB_REDIS, HB_INTERVAL, HB_MQTT_USERNAME, HB_MQTT_PASSWORD_FILE (a consumer token),
    HB_MQTT_CA_FILE, HB_METRICS and HB_LOG_LEVEL=warn (no info line is printed)."""
    files = tls_certificates(os.path.join(env.dir, "tls"))
    key = write_secret(env, "env.secret", "e" * 48)
    tls_port = free_port()
    broker = env.mosquitto(config=plugin_broker_config(
        [("key_file", key)], extra=f"listener {tls_port} 127.0.0.1\n"
                                   f"certfile {files['cert']}\nkeyfile {files['key']}\n"),
        env=sanitizer_env())
    redis = env.redis(aof=False)
    _, token, _ = env.run("token/hb-token", "--key", key, "--role", "consumer", check_rc=0)
    password_file = write_secret(env, "consumer.token", token.strip())
    metrics = f"127.0.0.1:{free_port()}"
    environ = {"HB_BROKER": f"ssl://localhost:{tls_port}", "HB_REDIS": redis.uri,
               "HB_INTERVAL": str(INTERVAL), "HB_MQTT_USERNAME": "hb-consumer",
               "HB_MQTT_PASSWORD_FILE": password_file, "HB_MQTT_CA_FILE": files["ca"],
               "HB_METRICS": metrics, "HB_LOG_LEVEL": "warn"}
    consumer = env.consumer([], None, None, args=[], environ=environ, name="consumer-env")
    check_eq(consumer.metrics()[f'hb_consumer_mqtt_subscribed{{broker="ssl://localhost:'
                                f'{tls_port}"}}'], 1, "subscribed to HB_BROKER")
    _, device, _ = env.run("token/hb-token", "--key", key, "--account", "acctV", check_rc=0)
    pub = env.publisher(broker, client_id="v1", password=device.strip())
    start = wait_for_interval_start(INTERVAL)
    publish_plan(pub, {"acctV": ["v1"]})
    consumer.wait_stats(lambda s: s["written"] >= 1, what="the heartbeat written")
    check_eq(redis.snapshot(), {f"hb:{{acctV}}:{start}": {"v1": 1}},
             f"Redis: a key of the {INTERVAL} s interval of HB_INTERVAL")
    consumer.stop(final_stats=False)
    lines = consumer.proc.output().splitlines()
    check_eq([line for line in lines if " info " in line or " debug " in line], [],
             "lines below HB_LOG_LEVEL=warn")


def share_group_splits_within_a_group_and_copies_across_groups(env):
    """Two consumers in --share-group g1 share the heartbeats (each gets some, together all,
    once); a third in group g2 gets every one of them too."""
    redis1, redis2, broker = env.redis(aof=False), env.redis(aof=False), env.mosquitto()
    c1 = env.consumer([broker], redis1, INTERVAL, extra=["--share-group", "g1"], name="c1")
    c2 = env.consumer([broker], redis1, INTERVAL, extra=["--share-group", "g1"], name="c2")
    c3 = env.consumer([broker], redis2, INTERVAL, extra=["--share-group", "g2"], name="c3")
    pub = env.publisher(broker)
    plan = {f"acct{a}": [f"d{a}-{d}" for d in range(6)] for a in range(4)}
    start = wait_for_interval_start(INTERVAL)
    n = publish_plan(pub, plan)
    c3.wait_stats(lambda s: s["written"] >= n, what="group g2 to write every heartbeat")
    wait_until(lambda: c1.stats()["written"] + c2.stats()["written"] >= n, 20,
               "group g1 to write every heartbeat")
    (_, s1), (_, s2), (_, s3) = c1.stop(), c2.stop(), c3.stop()
    check_eq((s1["accepted"] + s2["accepted"], s3["accepted"]), (n, n), "accepted per group")
    check(s1["accepted"] > 0 and s2["accepted"] > 0,
          f"g1 not shared: {s1['accepted']} and {s2['accepted']}")
    expected = {f"hb:{{{a}}}:{start}": {d: 1 for d in ds} for a, ds in plan.items()}
    check_eq(redis1.snapshot(), expected, "Redis of group g1")
    check_eq(redis2.snapshot(), expected, "Redis of group g2")


def payload_max_is_the_largest_accepted(env):
    """--payload-max 64: a 64-byte payload is counted, a 65-byte one rejected as oversize."""
    redis, broker = env.redis(aof=False), env.mosquitto()
    consumer = env.consumer([broker], redis, INTERVAL, extra=["--payload-max", "64"])
    pub = env.publisher(broker)
    fits = '{"p":"' + "x" * 56 + '"}'
    over = '{"p":"' + "x" * 57 + '"}'
    check_eq((len(fits), len(over)), (64, 65), "payload sizes")
    wait_for_interval_start(INTERVAL)
    pub.publish("hb/acctS/fits", fits)
    pub.publish("hb/acctS/over", over)
    consumer.wait_stats(lambda s: s["received"] >= 2 and s["written"] >= 1,
                        what="both received, one written")
    _, stats = consumer.stop()
    check_eq((stats["received"], stats["accepted"], stats["written"], stats["oversize"],
              stats["rejected"]), (2, 1, 1, 1, 1),
             "received/accepted/written/oversize/rejected")
    check_eq([redis.hash(k) for k in redis.keys()], [{"fits": 1}], "Redis")


def consumer_over_mqtts_and_wss(env):
    """One consumer on an mqtts:// broker and a wss:// (MQTT over TLS WebSockets) broker,
    both verified against --ca-file: subscribed to both, every heartbeat of both counted."""
    files = tls_certificates(os.path.join(env.dir, "tls"))
    tls = f"certfile {files['cert']}\nkeyfile {files['key']}\n"
    mqtts_port, wss_port = free_port(), free_port()
    b1 = env.mosquitto(extra_conf=f"listener {mqtts_port} 127.0.0.1\n{tls}")
    b2 = env.mosquitto(extra_conf=f"listener {wss_port} 127.0.0.1\nprotocol websockets\n{tls}")
    redis = env.redis(aof=False)
    uris = [f"mqtts://localhost:{mqtts_port}", f"wss://localhost:{wss_port}"]
    consumer = env.consumer([], redis, INTERVAL, extra=[
        "--broker", uris[0], "--broker", uris[1], "--ca-file", files["ca"]])
    m = consumer.metrics()
    check_eq([m.get(f'hb_consumer_mqtt_subscribed{{broker="{u}"}}') for u in uris], [1, 1],
             "subscribed over mqtts:// and wss://")
    start = wait_for_interval_start(INTERVAL)
    n = publish_plan(env.publisher(b1), {"acctT": ["over-mqtts"]})
    n += publish_plan(env.publisher(b2), {"acctT": ["over-wss"]})
    consumer.wait_stats(lambda s: s["written"] >= n, what="heartbeats of both brokers")
    check_eq(redis.snapshot(), {f"hb:{{acctT}}:{start}": {"over-mqtts": 1, "over-wss": 1}},
             "Redis")
    _, stats = consumer.stop()
    check_eq((stats["received"], stats["written"]), (2, 2), "received/written")


SCENARIOS = {f.__name__: f for f in [
    redis_password_acl_user_database_and_unix_socket,
    expired_counter_counts_heartbeats_that_outlived_their_key,
    topic_prefix_through_simulator_plugin_token_and_consumer,
    consumer_configured_only_from_the_environment,
    share_group_splits_within_a_group_and_copies_across_groups,
    payload_max_is_the_largest_accepted,
    consumer_over_mqtts_and_wss,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
