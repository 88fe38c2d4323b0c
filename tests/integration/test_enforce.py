#!/usr/bin/python3
"""Enforcement at ingest end to end: real Redis, real mosquitto with the hb_auth plugin, real
hb-api and the REAL hb-consumer with --enforce. A stop heartbeat frees a slot within a second;
a silent device loses its slot after the grace period while heartbeating ones are refreshed;
after FLUSHALL the device that started last is stopped over MQTT; a device never admitted is
admitted when there is room and stopped when not, again at every heartbeat it keeps sending."""

import queue
import time

from enforce_harness import Setup
from harness import check, check_eq, main, wait_until

STOP = {"action": "stop", "reason": "account_limit"}


def no_message(player):
    check(player.messages.empty(), f"{player.device} received {list(player.messages.queue)}")


def stop_heartbeat_lets_the_refused_third_in_within_a_second(env):
    s = Setup(env, limit=2)
    tv, phone = s.admitted("acct1", "tv"), s.admitted("acct1", "phone")
    tv.beat()
    phone.beat()
    s.wait_written(2)
    check_eq(s.metric("hb_consumer_plays_refreshed_total"), 2, "both refreshed")
    check_eq(s.api.play("acct1", "tablet")[0], 409, "tablet refused at the limit")
    t0 = time.monotonic()
    phone.beat(state="stopped")
    wait_until(lambda: s.api.play("acct1", "tablet")[0] == 200, 1.0,
               "tablet admitted within a second of phone's stop heartbeat")
    check(time.monotonic() - t0 < 1.0, "within a second")
    # hb-api sees the slot free as soon as Redis ran the release; the consumer counts it when it
    # reads the reply, a moment later (0 was read once in that moment).
    wait_until(lambda: s.metric("hb_consumer_plays_released_total") >= 1, 5, "the release counted")
    check_eq(s.metric("hb_consumer_plays_released_total"), 1, "one release counted")
    check_eq(s.slots("acct1"), ["tablet", "tv"], "slots")
    check_eq(s.metric('hb_consumer_stops_sent_total{reason="account_limit"}'), 0, "no stop")
    no_message(tv)
    no_message(phone)


def killed_device_frees_its_slot_after_the_grace_period(env):
    grace = 3
    s = Setup(env, limit=3, heartbeat_s=1, grace_s=grace)
    players = [s.admitted("acct1", d) for d in ("a", "b", "c")]
    for p in players:
        p.beat_every(1.0)
    wait_until(lambda: all(p.sent >= 2 for p in players), 10, "two heartbeats each")
    players[2].silence()
    killed_at = players[2].last_beat
    wait_until(lambda: s.slots("acct1") == ["a", "b"], grace + 5, "c's slot freed")
    freed_after = time.monotonic() - killed_at
    check(freed_after >= grace - 0.2, f"c freed {freed_after:.2f}s after its last heartbeat")
    # Two more grace periods: a and b keep their slots because their heartbeats refresh them.
    end = time.monotonic() + 2 * grace
    while time.monotonic() < end:
        check_eq(s.slots("acct1"), ["a", "b"], "a and b stay admitted")
        time.sleep(0.2)
    check_eq(s.api.play("acct1", "d")[0], 200, "d admitted in c's slot")
    check_eq(s.api.play("acct1", "e")[0], 409, "e refused: the limit holds")
    for p in players[:2]:
        p.silence()
    total = sum(p.sent for p in players)
    s.wait_written(total)
    check_eq(s.metric("hb_consumer_plays_refreshed_total"), total, "every heartbeat refreshed")
    check_eq(s.metric("hb_consumer_plays_admitted_total"), 0, "nobody admitted at ingest")
    for p in players:
        no_message(p)


def after_flushall_the_device_that_started_last_receives_a_stop(env):
    s = Setup(env, limit=2)
    status, _ = s.api.request("PUT", "/v1/accounts/acct1/limits", {"devices": 3})
    check_eq(status, 200, "limit 3 for the account")
    now = int(time.time() * 1000)
    first = s.admitted("acct1", "first", started=now - 3000)
    second = s.admitted("acct1", "second", started=now - 2000)
    third = s.admitted("acct1", "third", started=now - 1000)
    s.redis.cmd("FLUSHALL")  # every admission and the account's own limit are gone: limit 2
    # The device that started last heartbeats first, each in a batch of its own.
    for n, p in enumerate((third, first, second), 1):
        p.beat()
        s.wait_written(n, f"{p.device}'s heartbeat written")
    check_eq(third.next_message(5), (f"ctl/acct1/third", STOP), "third's stop")
    check_eq(s.slots("acct1"), ["first", "second"], "the earliest starts hold the slots")
    check_eq(s.metric("hb_consumer_plays_admitted_total"), 3, "admitted at ingest")
    check_eq(s.metric('hb_consumer_stops_sent_total{reason="account_limit"}'), 1, "one stop")
    # third ignores its stop: refused again and counted again.
    third.beat()
    s.wait_written(4)
    check_eq(third.next_message(5), ("ctl/acct1/third", STOP), "third's second stop")
    check_eq(s.metric('hb_consumer_plays_refused_total{reason="account_limit"}'), 2, "refusals")
    check_eq(s.metric('hb_consumer_stops_sent_total{reason="account_limit"}'), 2, "two stops")
    check_eq(s.metric("hb_consumer_stops_failed_total"), 0, "no stop failed")
    no_message(first)
    no_message(second)


def non_admitted_device_is_admitted_with_room_and_stopped_without(env):
    s = Setup(env, limit=2)
    tv = s.admitted("acct1", "tv")
    rogue1, rogue2 = s.rogue("acct1", "rogue1"), s.rogue("acct1", "rogue2")
    rogue1.beat()
    s.wait_written(1)
    check_eq(s.slots("acct1"), ["rogue1", "tv"], "rogue1 admitted on its heartbeat")
    rogue2.beat()
    check_eq(rogue2.next_message(5), ("ctl/acct1/rogue2", STOP), "rogue2 stopped over MQTT")
    s.wait_written(2)
    check_eq(s.slots("acct1"), ["rogue1", "tv"], "the limit holds")
    check_eq(s.metric("hb_consumer_plays_admitted_total"), 1, "one admitted at ingest")
    check_eq(s.metric('hb_consumer_plays_refused_total{reason="account_limit"}'), 1, "refused")
    check_eq(s.metric('hb_consumer_stops_sent_total{reason="account_limit"}'), 1, "stop sent")
    status, body = s.api.play("acct1", "rogue2")
    check_eq((status, body["reason"]), (409, "account_limit"), "hb-api agrees")
    no_message(tv)
    no_message(rogue1)
    try:
        extra = rogue2.messages.get_nowait()
        check(False, f"rogue2 got a second message {extra}")
    except queue.Empty:
        pass


SCENARIOS = {f.__name__: f for f in [
    stop_heartbeat_lets_the_refused_third_in_within_a_second,
    killed_device_frees_its_slot_after_the_grace_period,
    after_flushall_the_device_that_started_last_receives_a_stop,
    non_admitted_device_is_admitted_with_room_and_stopped_without,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
