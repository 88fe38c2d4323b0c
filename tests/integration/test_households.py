#!/usr/bin/python3
"""hb-sim plays households against real Redis, mosquitto with the hb_auth plugin, hb-api and
hb-consumer --enforce: accounts with more devices than their limit ask hb-api, refused ones stay
off, admitted ones heartbeat with hb-api's token, end with a stop heartbeat or vanish. The plays
truth passes hb-check --verify-plays, the interval truth still matches Redis exactly, and the
refusals the simulator saw are the 409s hb-api counted. Run one by hand with
  HB_BUILD_DIR=build tests/integration/test_households.py households_block_new_hold_the_limit
"""

import json
import re

from enforce_harness import PREFIX, Setup
from harness import TRUTH_INTERVAL, check, check_eq, check_truth, main, start_before_boundary

GRACE = 3
INTERVALS = 1  # keys live two intervals: a longer run would see the first expire


def run_households(env, s, seed, vanish):
    truth, plays = f"{env.dir}/truth.jsonl", f"{env.dir}/plays.jsonl"
    start_before_boundary()
    _, out, _ = env.run("publisher-sim/hb-sim", "--broker", s.broker.uri, "--interval",
                        TRUTH_INTERVAL, "--quiet", "--json", "--api",
                        f"http://127.0.0.1:{s.api.port}", "--api-key-file",
                        f"{env.dir}/api-keys", "--control-prefix", PREFIX, "--accounts", 30,
                        "--devices-per-account", "2-4", "--heartbeat", "0.5", "--churn", "0.6",
                        "--vanish", vanish, "--seed", seed,
                        "--duration", TRUTH_INTERVAL * INTERVALS + 0.5, "--truth", truth,
                        "--plays-truth", plays, check_rc=0)
    summary = json.loads(out)
    check_eq((summary["lost"], summary["acked"]), (0, summary["published"]), "lost, acked")
    with open(plays) as f:
        events = [json.loads(line) for line in f]
    return summary, truth, plays, events


def verify_plays(env, s, plays):
    """hb-check --verify-plays with hb-api's own settings (policy, grace period)."""
    _, out, _ = env.run("checker/hb-check", "--verify-plays", plays, *s.play_options, check_rc=0)
    m = re.search(r"(\d+) admitted, (\d+) refused, (\d+) evicted, (\d+) stopped, (\d+) released, "
                  r"(\d+) vanished; 0 violations, 0 bad lines", out)
    check(m is not None, f"hb-check --verify-plays said {out!r}")
    return [int(x) for x in m.groups()]


def check_interval_truth_and_refusals(env, s, summary, truth, events):
    s.wait_written(summary["published"], "every simulated heartbeat written")
    check_truth(env, s.redis.uri, truth, intervals=INTERVALS)
    refused = sum(e["event"] == "refused" for e in events)
    counted = sum(v for k, v in s.api.metrics().items() if k.startswith("hb_api_refusals_total"))
    check_eq(counted, refused, "hb-api's 409s = the refusals in the plays truth")
    return refused


def households_block_new_hold_the_limit(env):
    """Limit 2, 2-4 devices per account, block_new: refusals happen, some devices vanish,
    released slots are taken by late starters, and the invariant holds."""
    s = Setup(env, limit=2, heartbeat_s=1, grace_s=GRACE, interval=TRUTH_INTERVAL)
    summary, truth, plays, events = run_households(env, s, 11, 0.25)
    admitted, refused, evicted, stopped, released, vanished = verify_plays(env, s, plays)
    check(refused > 0 and vanished > 0 and released > 0,
          f"refusals {refused}, vanished {vanished}, released {released}")
    check_eq((evicted, stopped), (0, 0), "no eviction and no stop under block_new")
    check_eq(admitted + refused, sum(1 for e in events if e["event"] in ("admitted", "refused")),
             "every admission and refusal counted once")
    check(all(e["limit"] == 2 for e in events if "limit" in e), "the limit is 2")
    check(all(len(e["active"]) >= 2 for e in events if e["event"] == "refused"),
          "every refusal lists the two active devices")
    check_eq(check_interval_truth_and_refusals(env, s, summary, truth, events), refused,
             "refusals")
    check_eq(s.metric('hb_consumer_stops_sent_total{reason="account_limit"}'), 0,
             "no device needed a stop at ingest")


def households_evict_oldest_stop_the_oldest(env):
    """evict_oldest: nobody is refused, the oldest device of a full account receives
    "evicted" on its control topic and stops; the invariant and the interval truth hold."""
    s = Setup(env, limit=2, heartbeat_s=1, grace_s=GRACE, interval=TRUTH_INTERVAL,
              extra=["--default-policy", "evict_oldest"])
    summary, truth, plays, events = run_households(env, s, 12, 0.1)
    admitted, refused, evicted, stopped, released, vanished = verify_plays(env, s, plays)
    check(evicted > 0, f"evictions {evicted}")
    check_eq(refused, 0, "no refusal under evict_oldest")
    stops = [e for e in events if e["event"] == "stopped"]
    # account_limit: the consumer's ingest enforcement answering a heartbeat that was already
    # on its way when its device was evicted (see the README's households section).
    check(any(e["reason"] == "evicted" for e in stops) and
          all(e["reason"] in ("evicted", "account_limit") for e in stops), f"stops {stops}")
    check(stopped > 0, f"evicted devices that obeyed a stop: {stopped}")
    check_interval_truth_and_refusals(env, s, summary, truth, events)


SCENARIOS = {f.__name__: f for f in [
    households_block_new_hold_the_limit,
    households_evict_oldest_stop_the_oldest,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
