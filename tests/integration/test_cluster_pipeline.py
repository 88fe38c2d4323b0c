#!/usr/bin/python3
"""The whole pipeline through a real local Redis Cluster (three masters with a replica each,
cluster_harness.py): hb-sim publishes, hb-consumer writes through redis-cluster://, hb-check
--verify --follow compares every interval with the simulator's truth while its keys live, and
hb-api admits through the cluster. Failovers and a slot migration happen mid-run; the counts
must stay exact (or, for kill -9 of a master, every difference is a device missing from the
interval of the kill: writes acknowledged by the master and not yet replicated, the loss
Redis Cluster's asynchronous replication allows, docs/SIZING.md)."""

import signal
import sys
import threading
import types

import jwt

from api_harness import SECRET, Api, keys
from cluster_harness import Cluster
from harness import check, check_eq, main, now_ms, wait_until

INTERVAL = 5
ROUNDS = 5  # intervals of heartbeats per run


def key_of(account, start_ms):
    return f"hb:{{{account}}}:{start_ms}"


def start_run(env, cluster, seed, accounts=40):
    """A consumer and a follower on the cluster, and the simulator publishing in a thread.
    Returns (consumer, follower, thread)."""
    broker = env.mosquitto()
    consumer = env.consumer([broker], cluster.uri, INTERVAL)
    truth = f"{env.dir}/truth.jsonl"
    follow = env.start("checker/hb-check", "--redis", cluster.uri, "--interval", INTERVAL,
                       "--verify", truth, "--follow", name="follow")
    sim = threading.Thread(target=env.run, args=(
        "publisher-sim/hb-sim", "--broker", broker.uri, "--interval", INTERVAL,
        "--accounts", accounts, "--devices-per-account", "1-8", "--heartbeat", "1",
        "--duration", INTERVAL * ROUNDS, "--seed", seed, "--truth", truth, "--quiet"),
        kwargs={"check_rc": 0, "timeout": INTERVAL * ROUNDS + 60})
    sim.start()
    return consumer, follow, sim


def finish_run(consumer, follow, sim):
    """Waits for the run; returns hb-check's per-interval lines and its whole output."""
    sim.join()
    check_eq(follow.wait(timeout=INTERVAL * 6), 0, f"hb-check --follow exit\n{follow.tail()}")
    out = follow.output()
    intervals = [line for line in out.splitlines() if line.startswith("interval ")]
    check(len(intervals) >= ROUNDS - 1, f"intervals compared: {intervals}")
    check(" 0 skipped" in out and "0 intervals read incomplete" in out, f"summary: {out}")
    check_eq(consumer.stop()[0], 0, "consumer exit status")
    return intervals, out


def exact(intervals):
    check(all(", 0 mismatched" in line for line in intervals), f"per interval: {intervals}")


def exact_and_spread(cluster):
    """Every master holds some of the count keys: the accounts spread over the cluster."""
    per_master = [len(m.cmd("KEYS", "hb:{*}:*")) for m in cluster.masters()]
    check(all(n > 0 for n in per_master), f"count keys per master: {per_master}")
    return per_master


def cluster_sim_consumer_check_exact(env):
    cluster = Cluster(env)
    run = start_run(env, cluster, seed=11)
    intervals, _ = finish_run(*run)
    exact(intervals)
    exact_and_spread(cluster)
    # hb-check of single accounts reads the watermark hb:wm:{hb-consumers} through the cluster.
    rc, out, err = env.run("checker/hb-check", "--redis", cluster.uri, "--interval", INTERVAL,
                           "acct-0001", "acct-0002")
    check(rc == 0, f"hb-check: {rc}\n{out}\n{err}")


def cluster_failover_and_kill9_under_load(env):
    cluster = Cluster(env)
    run = start_run(env, cluster, seed=12)
    wait_until(lambda: run[0].stats()["written"] > 200, 30, "heartbeats written")
    # A manual failover loses nothing: the replica takes over once it has caught up.
    master = cluster.masters()[0]
    replica = cluster.replica_of(master)
    check_eq(replica.cmd("CLUSTER", "FAILOVER"), "OK", "CLUSTER FAILOVER")
    wait_until(lambda: replica.info("replication").get("role") == "master", 30,
               "the replica to take over", 0.05)
    cluster.wait_ready()
    written = run[0].stats()["written"]
    wait_until(lambda: run[0].stats()["written"] > written + 200, 30, "writes after failover")
    # kill -9 of another master: its slots wait for the replica's promotion (node timeout 2 s
    # plus the election) while the consumer buffers and retries.
    victim = next(m for m in cluster.masters() if m is not replica)
    promoted = cluster.replica_of(victim)
    victim.stop(signal.SIGKILL)
    killed_at = now_ms()
    wait_until(lambda: promoted.info("replication").get("role") == "master", 60,
               "the replica of the killed master to be promoted", 0.05)
    intervals, out = finish_run(*run)
    kill_interval = killed_at - killed_at % (INTERVAL * 1000)
    for line in intervals:
        if ", 0 mismatched" in line:
            continue
        start = int(line.split()[1].rstrip(":"))
        check(start in (kill_interval, kill_interval - INTERVAL * 1000),
              f"a mismatch away from the kill at {killed_at}: {line}\n{out}")
    print(f"per interval: {intervals}")


def cluster_slot_migration_mid_run_is_exact(env):
    cluster = Cluster(env)
    run = start_run(env, cluster, seed=13)
    wait_until(lambda: run[0].stats()["written"] > 200, 30, "heartbeats written")
    # Move the slot of the watermark hash and of one account, keys and all, mid-run.
    for key in ("hb:wm:{hb-consumers}", "hb:{acct-0001}:0"):
        slot = cluster.live()[0].cmd("CLUSTER", "KEYSLOT", key)
        source = cluster.master_of(slot)
        target = next(m for m in cluster.masters() if m is not source)
        src_id, dst_id = source.node_id(), target.node_id()
        target.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        source.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while True:
            moving = source.cmd("CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not moving:
                break
            check_eq(source.cmd("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS",
                                *moving), "OK", "MIGRATE")
        for node in cluster.masters():
            node.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        cluster.wait_ready()
    intervals, _ = finish_run(*run)
    exact(intervals)


def cluster_api_admissions(env):
    cluster = Cluster(env)
    key, api_keys = keys(env)
    api = Api(env, types.SimpleNamespace(uri=cluster.uri), key, api_keys,
              ["--default-limit", "2"])
    for account in ("acct1", "acct2", "acct3"):
        check_eq(api.play(account, "tv")[0], 200, f"{account} first admission")
        check_eq(api.play(account, "phone")[0], 200, f"{account} second admission")
        status, body = api.play(account, "tablet")
        check_eq((status, body["reason"]), (409, "account_limit"), f"{account} refusal")
    status, body = api.play("acct1", "tv")
    check_eq((status, body["again"]), (200, True), "re-admission")
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    check_eq(claims["device"], "tv", "the token pins the device")
    # The slots live on the master of their account's hash tag, nowhere else.
    for account in ("acct1", "acct2", "acct3"):
        key_name = f"hb:plays:{{{account}}}"
        slot = cluster.live()[0].cmd("CLUSTER", "KEYSLOT", key_name)
        check_eq(sorted(cluster.master_of(slot).cmd("HKEYS", key_name)), ["phone", "tv"],
                 f"{key_name} on its master")
    check_eq(api.request("DELETE", "/v1/plays/acct2/tv")[0], 200, "release")
    check_eq(api.play("acct2", "tablet")[0], 200, "admitted after the release")
    status, body = api.request("GET", "/v1/accounts/acct3")
    check_eq((status, sorted(a["device"] for a in body["active"])), (200, ["phone", "tv"]),
             "account read through the cluster")


SCENARIOS = {f.__name__: f for f in [
    cluster_sim_consumer_check_exact,
    cluster_failover_and_kill9_under_load,
    cluster_slot_migration_mid_run_is_exact,
    cluster_api_admissions,
]}

if __name__ == "__main__":
    sys.exit(main(SCENARIOS))
