#!/usr/bin/python3
"""The Redis Cluster routing layer (common/rcluster) against a real local cluster: three masters
with a replica each, driven by tests/cluster/rcluster_tool. Contents are read back from the
masters directly, not through the layer under test.

Load runs write field bB to every key in batch B and start batch B+1 only once B is
acknowledged in full, so after the run every key must hold exactly b0..b(B-1)."""

import signal
import time

from cluster_harness import Cluster, tool_last, tool_lines
from harness import check, check_eq, main, wait_until

TOOL = "tests/cluster/rcluster_tool"


def slot_of(cluster, key):
    return cluster.live()[0].cmd("CLUSTER", "KEYSLOT", key)


def start_load(env, cluster, prefix, n=200):
    tool = env.start(TOOL, cluster.uri, "load", prefix, n, name="rcluster_tool")
    wait_until(lambda: tool_last(tool).get("batches", 0) >= 40 or not tool.alive(), 60,
               "the first 40 batches")
    check(tool.alive(), f"the tool exited:\n{tool.tail()}")
    # A steady batch reaches each master once: one round, one round trip per master.
    steady = [s for s in tool_lines(tool, "progress") if s["last_rounds"] == 1]
    check(steady, f"no single-round batch:\n{tool.tail()}")
    check_eq(steady[-1]["last_round_trips"], 3, "round trips of a steady batch (3 masters)")
    return tool


def wait_batches_after(tool, batches, more, timeout, what):
    """Until the tool has acknowledged `more` batches past `batches`; returns seconds taken."""
    t0 = time.monotonic()
    wait_until(lambda: tool_last(tool).get("batches", 0) >= batches + more or not tool.alive(),
               timeout, what, 0.05)
    check(tool.alive(), f"the tool exited:\n{tool.tail()}")
    return time.monotonic() - t0


def stop_load_and_verify(tool, cluster, prefix, n=200):
    """Stops the tool between batches and checks that every acknowledged batch is in every
    key, and nothing else. Returns the final counters."""
    tool.send_signal(signal.SIGTERM)
    rc = tool.wait(90)
    check_eq(rc, 0, f"tool exit status\n{tool.tail()}")
    done = tool_last(tool, "done")
    check(done, f"no summary line:\n{tool.tail()}")
    batches = done["batches"]
    snap = cluster.snapshot(f"{prefix}*")
    check_eq(sorted(snap), sorted(f"{prefix}{{a{i}}}" for i in range(n)), "keys in the cluster")
    want = {f"b{b}": "1" for b in range(batches)}
    wrong = [k for k, h in snap.items() if h != want]
    check(not wrong, f"{len(wrong)} keys differ from b0..b{batches - 1}, e.g. {wrong[:3]}: "
                     f"{sorted(snap[wrong[0]])[-5:] if wrong else ''}")
    return done


def cluster_fill_exact_contents_one_round_trip_per_node(env):
    cluster = Cluster(env)
    n, fields = 1000, 4
    rc, out, err = env.run(TOOL, cluster.uri, "fill", "F", n, fields, timeout=120)
    check_eq(rc, 0, f"fill exit status\n{out}\n{err}")
    write = tool_lines_from(out, "write")
    read = tool_lines_from(out, "read")
    # One exec of 1000 commands: one round, one round trip to each of the three masters.
    check_eq(write["last_rounds"], 1, "rounds of the write")
    check_eq(write["last_round_trips"], 3, "round trips of the write (one per master)")
    check_eq(write["moved"] + write["ask"], 0, "redirections on a fresh map")
    check_eq(write["refreshes"], 1, "slot maps loaded")
    check_eq(write["script_loads"], 3, "the script loaded once per master")
    check_eq(write["connects"], 3, "connections (the seeds are masters here)")
    check_eq(read["keys_complete"], n, "keys read back complete")
    check_eq(read["last_round_trips"], 3, "round trips of the read")
    # Straight from the masters: exactly the keys written, each on the master of its slot.
    snap = cluster.snapshot("F*")
    check_eq(sorted(snap), sorted(f"F{{a{i}}}" for i in range(n)), "keys")
    want = {f"f{f}": "1" for f in range(fields)}
    check_eq(sum(h == want for h in snap.values()), n, "keys with exactly their 4 fields")
    per_master = {m.port: len(m.cmd("KEYS", "F*")) for m in cluster.masters()}
    check_eq(len(per_master), 3, "masters")
    check(all(v > 0 for v in per_master.values()), f"keys per master: {per_master}")
    check_eq(sum(per_master.values()), n, "keys over all masters")
    for key in ("F{a0}", "F{a999}"):
        check(cluster.master_of(slot_of(cluster, key)).cmd("EXISTS", key) == 1,
              f"{key} on the master of its slot")
        ttl = cluster.master_of(slot_of(cluster, key)).cmd("PTTL", key)
        check(0 < ttl <= 3600000, f"{key} PTTL {ttl}")


def tool_lines_from(text, kind):
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == kind:
            return {k: int(v) for k, v in (p.split("=", 1) for p in parts[1:])}
    raise AssertionError(f"no {kind} line in:\n{text}")


def cluster_slot_migration_mid_run_follows_ask_and_moved(env):
    cluster = Cluster(env)
    tool = start_load(env, cluster, "M")
    key = "M{a0}"
    slot = slot_of(cluster, key)
    source = cluster.master_of(slot)
    target = next(m for m in cluster.masters() if m is not source)
    src_id, dst_id = source.node_id(), target.node_id()
    before = tool_last(tool)
    check_eq(before["ask"] + before["moved"], 0, "redirections before the migration")
    # A node that lost its scripts answers NOSCRIPT: the layer loads them again and retries.
    check_eq(before["script_loads"], 3, "script loads before SCRIPT FLUSH")
    for m in cluster.masters():
        m.cmd("SCRIPT", "FLUSH")
    wait_until(lambda: tool_last(tool).get("script_loads", 0) == 6 or not tool.alive(), 30,
               "the scripts loaded again on the three masters", 0.05)

    target.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    source.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    keys = source.cmd("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    check(key in keys, f"{key} in slot {slot} on the source: {keys}")
    check_eq(source.cmd("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys), "OK",
             "MIGRATE")
    # The slot is half-moved: the source answers ASK for the key, the target takes it.
    wait_until(lambda: tool_last(tool).get("ask", 0) > 0 or not tool.alive(), 30,
               "an ASK followed", 0.05)
    for node in (target, source, *[m for m in cluster.masters() if m not in (source, target)]):
        node.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    wait_until(lambda: tool_last(tool).get("moved", 0) > 0 or not tool.alive(), 30,
               "a MOVED followed", 0.05)
    wait_batches_after(tool, tool_last(tool)["batches"], 40, 60, "batches after the migration")
    done = stop_load_and_verify(tool, cluster, "M")
    check(done["ask"] > 0 and done["moved"] > 0, f"ask and moved counted: {done}")
    check_eq(target.cmd("EXISTS", key), 1, f"{key} on the target")
    check_eq(source.cmd("CLUSTER", "COUNTKEYSINSLOT", slot), 0, f"slot {slot} empty on the source")


def cluster_manual_failover_under_load(env):
    cluster = Cluster(env)
    tool = start_load(env, cluster, "P")
    master = cluster.master_of(slot_of(cluster, "P{a0}"))
    replica = cluster.replica_of(master)
    check_eq(replica.cmd("CLUSTER", "FAILOVER"), "OK", "CLUSTER FAILOVER")
    wait_until(lambda: replica.info("replication").get("role") == "master", 30,
               "the replica to take over", 0.05)
    cluster.wait_ready()
    check(cluster.master_of(slot_of(cluster, "P{a0}")) is replica, "the new master serves P{a0}")
    took = wait_batches_after(tool, tool_last(tool)["batches"], 40, 60,
                              "batches after the failover")
    done = stop_load_and_verify(tool, cluster, "P")
    # The old master, now a replica, answers MOVED for its former slots.
    check(done["moved"] > 0, f"MOVED followed after the failover: {done}")
    check(done["refreshes"] >= 2, f"slot map reloaded: {done}")
    print(f"40 batches {took:.1f}s after the failover; {done}")


def cluster_master_killed_under_load(env):
    cluster = Cluster(env)
    tool = start_load(env, cluster, "K")
    master = cluster.master_of(slot_of(cluster, "K{a0}"))
    replica = cluster.replica_of(master)
    at_kill = tool_last(tool)["batches"]
    master.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: replica.info("replication").get("role") == "master", 60,
               "the replica to be promoted", 0.05)
    promoted = time.monotonic() - killed
    # Writes resume within a bounded time: the node timeout (2 s) plus the election, plus
    # one back-off of the tool, with a margin for a loaded machine.
    wait_batches_after(tool, at_kill, 60, 30, "batches after the kill")
    resumed = time.monotonic() - killed
    check(resumed < 30, f"writes resumed {resumed:.1f}s after the kill")
    done = stop_load_and_verify(tool, cluster, "K")
    check(done["conn_errors"] > 0, f"connection errors counted: {done}")
    check(cluster.master_of(slot_of(cluster, "K{a0}")) is replica, "the promoted replica serves")
    print(f"promoted after {promoted:.1f}s, writes resumed after {resumed:.1f}s; {done}")


def rcluster_single_node_is_one_pipeline(env):
    """Given redis://, the same API is a plain pipeline on one Redis: one round trip, no slot
    map, no redirections."""
    redis = env.redis(aof=False)
    rc, out, err = env.run(TOOL, redis.uri, "fill", "S", 300, 2, timeout=120)
    check_eq(rc, 0, f"fill exit status\n{out}\n{err}")
    write = tool_lines_from(out, "write")
    check_eq((write["last_rounds"], write["last_round_trips"]), (1, 1), "rounds, round trips")
    check_eq((write["refreshes"], write["connects"], write["script_loads"]), (0, 1, 1),
             "refreshes, connects, script loads")
    check_eq(tool_lines_from(out, "read")["keys_complete"], 300, "keys read back complete")
    check_eq(len(redis.keys("S*")), 300, "keys in Redis")
    check_eq(redis.hash("S{a7}"), {"f0": 1, "f1": 1}, "one key's fields")


SCENARIOS = {f.__name__: f for f in [
    rcluster_single_node_is_one_pipeline,
    cluster_fill_exact_contents_one_round_trip_per_node,
    cluster_slot_migration_mid_run_follows_ask_and_moved,
    cluster_manual_failover_under_load,
    cluster_master_killed_under_load,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
