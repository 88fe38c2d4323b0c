#!/usr/bin/python3
"""hb-api end to end: real Redis, real mosquitto with the hb_auth plugin, real hb-api over
HTTP. Admission at the limit, idempotent renewal, release with a stop delivered to the
device's control topic, evict_oldest, group limits, the grace period, two instances racing,
every kind of bad input (status, error, field, counted, nothing written), Redis down with and
without --fail-open, idle connections, and POST /v1/tokens."""

import json
import queue
import socket
import threading
import time

import jwt

from api_harness import API_KEY, SECRET, Api, Device, keys, plugin_broker
from harness import check, check_eq, main, wait_until


def setup(env, extra=(), broker=False):
    key, api_keys = keys(env)
    redis = env.redis(aof=False)
    mq = plugin_broker(env, key) if broker else None
    api = Api(env, redis, key, api_keys, extra=extra, broker=mq)
    return redis, mq, api, (key, api_keys)


def active_devices(body):
    return [e["device"] for e in body["active"]]


def limit_two_refuses_the_third_with_the_active_list(env):
    redis, _, api, _ = setup(env, ["--default-limit", "2"])
    first = api.play("acct1", "tv", media="film-1")
    check_eq(first[0], 200, "first admission status")
    check_eq((first[1]["allow"], first[1]["active"], first[1]["limit"], first[1]["evicted"]),
             (True, 1, 2, []), "first admission")
    check_eq(first[1]["heartbeat_seconds"], 10, "heartbeat period told to the device")
    claims = jwt.decode(first[1]["token"], SECRET, algorithms=["HS256"])
    check_eq((claims["sub"], claims["device"]), ("acct1", "tv"), "token subject and device")
    check({"permission": "allow", "action": "subscribe", "topic": "ctl/acct1/tv"}
          in claims["acl"], f"token allows its control topic: {claims['acl']}")
    check_eq(api.play("acct1", "phone")[0], 200, "second admission")
    status, body = api.play("acct1", "tablet")
    check_eq(status, 409, "third admission status")
    check_eq((body["allow"], body["reason"], body["limit"]), (False, "account_limit", 2),
             "refusal")
    check_eq(active_devices(body), ["tv", "phone"], "active devices, oldest first")
    check_eq(body["active"][0]["media"], "film-1", "media of the active device")
    # The same device again: admitted, not counted twice, with a fresh token.
    time.sleep(1.1)  # a token's iat has whole seconds: let it move
    status, again = api.play("acct1", "tv")
    check_eq((status, again["active"], again["again"]), (200, 2, True), "re-admission")
    check(again["token"] != first[1]["token"], "re-admission gives a fresh token")
    check(again["expires_at"] > first[1]["expires_at"], "fresh token lives longer")
    check_eq(sorted(redis.cmd("HKEYS", "hb:plays:{acct1}")), ["phone", "tv"], "slots in Redis")
    m = api.metrics()
    check_eq(m["hb_api_admissions_total"], 2, "admissions counted")
    check_eq(m["hb_api_readmissions_total"], 1, "re-admissions counted")
    check_eq(m['hb_api_refusals_total{reason="account_limit"}'], 1, "refusals counted")
    check_eq(m['hb_api_requests_total{endpoint="plays_post",status="409"}'], 1, "409 counted")
    status, acct = api.request("GET", "/v1/accounts/acct1")
    check_eq(status, 200, "account status")
    check_eq(active_devices(acct), ["tv", "phone"], "account's active devices")
    check_eq(acct["limits"], {"devices": 2, "policy": "block_new", "groups": {},
                              "source": "default"}, "limits in force")
    check_eq(acct["previous_interval"]["devices"], 0, "previous interval count")


def delete_frees_the_slot_and_stops_the_device(env):
    redis, mq, api, _ = setup(env, ["--default-limit", "2"], broker=True)
    status, tv = api.play("acct1", "tv")
    check_eq(status, 200, "tv admitted")
    device = Device(mq, "acct1", "tv", tv["token"])
    try:
        check_eq(api.play("acct1", "phone")[0], 200, "phone admitted")
        check_eq(api.play("acct1", "tablet")[0], 409, "tablet refused at the limit")
        status, body = api.request("DELETE", "/v1/plays/acct1/tv")
        check_eq((status, body), (200, {"released": True}), "release")
        topic, msg = device.next_message()
        check_eq((topic, msg), ("ctl/acct1/tv", {"action": "stop", "reason": "released"}),
                 "stop received by the released device")
        status, body = api.play("acct1", "tablet")
        check_eq((status, body["active"]), (200, 2), "tablet admitted in the freed slot")
        check_eq(sorted(redis.cmd("HKEYS", "hb:plays:{acct1}")), ["phone", "tablet"], "slots")
        m = api.metrics()
        check_eq(m["hb_api_releases_total"], 1, "releases counted")
        check_eq(m["hb_api_stops_published_total"], 1, "stops counted")
    finally:
        device.close()


def evict_oldest_admits_and_stops_the_oldest(env):
    redis, mq, api, _ = setup(env, ["--default-limit", "2"], broker=True)
    status, body = api.request("PUT", "/v1/accounts/acct1/limits",
                               {"devices": 2, "policy": "evict_oldest"})
    check_eq((status, body["policy"], body["devices"]), (200, "evict_oldest", 2), "limits set")
    status, tv = api.play("acct1", "tv")
    device = Device(mq, "acct1", "tv", tv["token"])
    try:
        check_eq(api.play("acct1", "phone")[0], 200, "phone admitted")
        status, body = api.play("acct1", "tablet")
        check_eq((status, body["allow"], body["evicted"], body["active"]),
                 (200, True, ["tv"], 2), "tablet admitted, tv evicted")
        check_eq(device.next_message(), ("ctl/acct1/tv", {"action": "stop", "reason": "evicted"}),
                 "stop received by the oldest device")
        check_eq(sorted(redis.cmd("HKEYS", "hb:plays:{acct1}")), ["phone", "tablet"], "slots")
        check_eq(api.metrics()["hb_api_evictions_total"], 1, "evictions counted")
    finally:
        device.close()


def group_limit_below_account_limit_refuses(env):
    _, _, api, _ = setup(env, ["--default-limit", "5"])
    status, _ = api.request("PUT", "/v1/accounts/acct1/limits",
                            {"devices": 4, "groups": {"studio-x": 1}})
    check_eq(status, 200, "limits set")
    check_eq(api.play("acct1", "tv", group="studio-x")[0], 200, "first of the group admitted")
    status, body = api.play("acct1", "phone", group="studio-x")
    check_eq((status, body["reason"], body["limit"], active_devices(body)),
             (409, "group_limit", 4, ["tv"]), "second of the group refused")
    check_eq(api.play("acct1", "phone", group="other")[0], 200, "another group admitted")
    check_eq(api.play("acct1", "laptop")[0], 200, "no group admitted")
    check_eq(api.metrics()['hb_api_refusals_total{reason="group_limit"}'], 1, "counted")


def silent_device_frees_its_slot_after_the_grace_period(env):
    _, _, api, _ = setup(env, ["--default-limit", "1", "--heartbeat-seconds", "1",
                               "--grace-seconds", "2"])
    asked = time.monotonic()  # the admission happens after this, in Redis's clock (ms)
    check_eq(api.play("acct1", "tv")[0], 200, "tv admitted")
    check_eq(api.play("acct1", "phone")[0], 409, "phone refused while tv holds the slot")
    wait_until(lambda: api.play("acct1", "phone")[0] == 200, 10, "the slot to free")
    waited = time.monotonic() - asked
    check(waited >= 1.99, f"slot freed after {waited:.3f} s, before the 2 s grace period")
    status, acct = api.request("GET", "/v1/accounts/acct1")
    check_eq(active_devices(acct), ["phone"], "only phone active")


def two_instances_racing_never_exceed_the_limit(env):
    redis, _, api, (key, api_keys) = setup(env, ["--default-limit", "3"])
    other = Api(env, redis, key, api_keys, extra=["--default-limit", "3"], name="hb-api-2")
    results = queue.Queue()

    def worker(n):
        for i in range(25):
            inst = api if (n + i) % 2 else other
            results.put(inst.play("race", f"dev-{n}-{i}")[0])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [results.get() for _ in range(results.qsize())]
    check_eq(len(statuses), 300, "requests answered")
    check_eq(statuses.count(200), 3, "admitted across both instances")
    check_eq(statuses.count(409), 297, "refused")
    check_eq(redis.cmd("HLEN", "hb:plays:{race}"), 3, "slots in Redis")


def bad_input_is_refused_counted_and_writes_nothing(env):
    redis, _, api, _ = setup(env)
    cases = [
        # (method, path, kwargs, status, error, field)
        ("POST", "/v1/plays", {"body": {"account": "a", "device": "d"}, "auth": False},
         401, "unauthorized", None),
        ("POST", "/v1/plays", {"body": {"account": "a", "device": "d"},
                               "key": "wrong-key-0123456789abc"}, 401, "unauthorized", None),
        ("POST", "/v1/plays", {"raw": "{\"account\": \"a\","}, 400, "malformed_json", None),
        ("POST", "/v1/plays", {"raw": "[1]"}, 400, "malformed_json", None),
        ("POST", "/v1/plays", {"raw": "{\"account\":\"a\u0000\",\"device\":\"d\"}"},
         400, "malformed_json", None),
        ("POST", "/v1/plays", {"raw": "{\"account\":\"acctA\\u0000evil\",\"device\":\"d\"}"},
         400, "nul_in_string", "account"),
        ("POST", "/v1/plays", {"raw": "{\"account\":\"acctA\",\"device\":\"d\\u0000\"}"},
         400, "nul_in_string", "device"),
        ("POST", "/v1/plays", {"body": {"account": "a/b", "device": "d"}},
         400, "invalid_field", "account"),
        ("POST", "/v1/plays", {"body": {"account": "a", "device": "d" * 65}},
         400, "invalid_field", "device"),
        ("POST", "/v1/plays", {"body": {"account": "a", "device": "d", "group": "+"}},
         400, "invalid_field", "group"),
        ("POST", "/v1/plays", {"body": {"account": "a", "device": 7}},
         400, "invalid_field", "device"),
        ("POST", "/v1/plays", {"body": {"account": "a"}}, 400, "missing_field", "device"),
        ("POST", "/v1/plays", {"body": {"account": "a", "device": "d", "x": 1}},
         400, "unknown_field", "x"),
        ("POST", "/v1/plays", {"raw": "{\"account\":\"a\",\"device\":\"" + "d" * 5000 + "\"}"},
         413, "payload_too_large", "body"),
        ("POST", "/v1/plays", {"body": {"account": "a", "device": "d"}, "content_type": "text/plain"},
         415, "unsupported_media_type", "Content-Type"),
        ("GET", "/v1/plays", {}, 405, "method_not_allowed", None),
        ("GET", "/v1/nothing", {}, 404, "not_found", None),
        ("DELETE", "/v1/plays/a%21b/d", {}, 400, "invalid_field", "account"),
        ("DELETE", "/v1/plays/a%2Fb/d", {}, 404, "not_found", None),
        ("GET", "/v1/accounts/" + "x" * 65, {}, 400, "invalid_field", "account"),
        ("PUT", "/v1/accounts/a/limits", {"body": {"devices": -1}}, 400, "invalid_field",
         "devices"),
        ("PUT", "/v1/accounts/a/limits", {"body": {"devices": 2, "policy": "random"}},
         400, "invalid_field", "policy"),
        ("PUT", "/v1/accounts/a/limits", {"body": {"devices": 2, "groups": {"a b": 1}}},
         400, "invalid_field", "groups"),
        ("PUT", "/v1/accounts/a/limits", {"body": {"devices": 2.5}}, 400, "invalid_field",
         "devices"),
        ("POST", "/v1/tokens", {"raw": "{\"account\":\"acctA\\u0000evil\"}"},
         400, "nul_in_string", "account"),
        ("POST", "/v1/tokens", {"body": {"account": "a", "ttl": 0}}, 400, "invalid_field", "ttl"),
    ]
    expected = {}
    for method, path, kw, status, error, field in cases:
        got_status, body = api.request(method, path, **kw)
        want = {"error": error} if field is None else {"error": error, "field": field}
        check_eq((got_status, body), (status, want), f"{method} {path} {kw}")
        expected[error] = expected.get(error, 0) + 1
    m = api.metrics()
    for error, n in expected.items():
        check_eq(m[f'hb_api_bad_requests_total{{reason="{error}"}}'], n, f"{error} counted")
    check_eq(m.get('hb_api_requests_total{endpoint="plays_post",status="500"}', 0), 0, "no 500")
    check_eq(redis.keys(), [], "nothing written in Redis")


def redis_down_is_503_or_degraded_with_fail_open(env):
    redis, _, api, (key, api_keys) = setup(env)
    open_api = Api(env, redis, key, api_keys, extra=["--fail-open"], name="hb-api-open")
    redis.stop()
    status, body = api.play("acct1", "tv")
    check_eq((status, body), (503, {"error": "redis_unavailable"}), "closed: 503")
    check_eq(api.request("GET", "/v1/accounts/acct1")[0], 503, "account read: 503")
    status, body = open_api.play("acct1", "tv")
    check_eq((status, body["allow"], body["degraded"]), (200, True, True), "open: degraded")
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    check_eq(claims["device"], "tv", "degraded admission still carries the device's token")
    check(api.metrics()["hb_api_redis_errors_total"] >= 2, "redis errors counted")
    m = open_api.metrics()
    check_eq(m["hb_api_degraded_admissions_total"], 1, "degraded admissions counted")


def idle_connections_do_not_delay_healthz(env):
    _, _, api, _ = setup(env)
    idle = [socket.create_connection(("127.0.0.1", api.port), timeout=5) for _ in range(70)]
    slow = []
    try:
        for s in idle[:10]:  # ten slow callers: half a request each
            s.sendall(b"POST /v1/plays HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            slow.append(s)
        started = time.monotonic()
        status, body = api.request("GET", "/healthz", auth=False, timeout=5)
        took = time.monotonic() - started
        check_eq((status, body), (200, {"status": "ok"}), "healthz behind 70 idle connections")
        check(took < 1.0, f"/healthz took {took:.2f} s behind 70 idle connections")
        check_eq(api.play("acct1", "tv")[0], 200, "an admission behind them too")
    finally:
        for s in idle:
            s.close()


def tokens_endpoint_works_as_hb_tokend(env):
    _, _, api, _ = setup(env)
    before = int(time.time())
    status, body = api.request("POST", "/v1/tokens", {"account": "acct1", "device": "tv",
                                                      "ttl": 600})
    check_eq(status, 200, "token status")
    check_eq(sorted(body), ["expires_at", "kid", "token"], "token reply fields")
    check_eq(body["kid"], "k-api", "kid from the key file name")
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    check_eq((claims["sub"], claims["device"], claims["role"]), ("acct1", "tv", "device"),
             "claims")
    check(before + 600 <= body["expires_at"] <= int(time.time()) + 600, "expires_at")
    check_eq(claims["exp"], body["expires_at"], "exp is expires_at")
    status, body = api.request("POST", "/v1/tokens", {"account": "acct1"})
    check_eq(status, 200, "token without device")
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    check("device" not in claims, "no device claim without device")
    check_eq(claims["exp"] - claims["iat"], 1800, "default lifetime")


def tokens_endpoint_rate_limits_each_api_key(env):
    """--rate-limit 0.2 --burst 2 on hb-api: two tokens at once, then 429 rate_limited with a
    Retry-After (one token per 5 s: the test cannot outrun the refill), counted; admissions
    with the same key are not limited."""
    _, _, api, _ = setup(env, ["--rate-limit", "0.2", "--burst", "2"])
    for i in range(2):
        status, body = api.request("POST", "/v1/tokens", {"account": "acct1", "device": f"d{i}"})
        check_eq(status, 200, f"token {i + 1} within the burst: {body}")
    headers = {}
    third = api.request("POST", "/v1/tokens", {"account": "acct1", "device": "d2"},
                        headers_out=headers)
    retry_after = headers.get("Retry-After")
    check_eq(third, (429, {"error": "rate_limited"}), "the third token")
    check(retry_after is not None and 1 <= int(retry_after) <= 5,
          f"Retry-After {retry_after!r}, expected 1..5 seconds")
    check_eq(api.play("acct1", "tv")[0], 200, "an admission is not rate limited")
    m = api.metrics()
    check_eq(m['hb_api_bad_requests_total{reason="rate_limited"}'], 1, "rate_limited counted")
    check_eq(m['hb_api_requests_total{endpoint="tokens_post",status="429"}'], 1,
             "the 429 counted by endpoint")


def touch(env, redis, account, limit, reports, grace_ms=30000, now_ms=0):
    _, out, _ = env.run("api/hb-api-touch", redis.uri, account, limit, grace_ms, now_ms,
                        *reports, check_rc=0)
    return json.loads(out)


def stop_heartbeat_frees_the_slot_at_once(env):
    redis, _, api, _ = setup(env, ["--default-limit", "2"])
    check_eq(api.play("acct1", "tv")[0], 200, "tv admitted")
    check_eq(api.play("acct1", "phone")[0], 200, "phone admitted")
    check_eq(api.play("acct1", "tablet")[0], 409, "tablet refused")
    result = touch(env, redis, "acct1", 2, ["tv:playing", "phone:stopped"])
    check_eq(result, {"released": ["phone"], "admitted": [], "stop": {}, "refreshed": 1},
             "touch: phone released, tv refreshed")
    check_eq(api.play("acct1", "tablet")[0], 200, "tablet admitted in phone's slot")


def heartbeat_without_admission_is_admitted_or_stopped(env):
    redis, _, api, _ = setup(env, ["--default-limit", "2"])
    check_eq(api.play("acct1", "tv")[0], 200, "tv admitted")
    result = touch(env, redis, "acct1", 2, ["tv:playing", "rogue1:playing", "rogue2:playing"])
    check_eq(result, {"released": [], "admitted": ["rogue1"],
                      "stop": {"rogue2": "account_limit"}, "refreshed": 1},
             "one rogue admitted while there is room, the other stopped")
    check_eq(sorted(redis.cmd("HKEYS", "hb:plays:{acct1}")), ["rogue1", "tv"], "slots")
    # A device that ignores its stop keeps being refused.
    result = touch(env, redis, "acct1", 2, ["rogue2:playing"])
    check_eq(result["stop"], {"rogue2": "account_limit"}, "still refused")


def after_flushall_the_device_that_started_last_is_stopped(env):
    redis, _, api, _ = setup(env, ["--default-limit", "2"])
    for d in ("first", "second", "third"):
        api.play("acct1", d)
    redis.cmd("FLUSHALL")
    now = int(time.time() * 1000)
    # Reported in any order; the start each reports decides, and never past the limit.
    result = touch(env, redis, "acct1", 2, [f"third:playing:{now - 1000}",
                                            f"first:playing:{now - 3000}",
                                            f"second:playing:{now - 2000}"])
    check_eq(result["admitted"], ["first", "second"], "earliest starts admitted")
    check_eq(result["stop"], {"third": "account_limit"}, "latest start stopped")
    check_eq(redis.cmd("HLEN", "hb:plays:{acct1}"), 2, "never past the limit")
    status, acct = api.request("GET", "/v1/accounts/acct1")
    check_eq(active_devices(acct), ["first", "second"], "active after healing")


def touch_past_the_grace_period_prunes_silent_devices(env):
    redis, _, api, _ = setup(env, ["--default-limit", "2"])
    api.play("acct1", "tv")
    api.play("acct1", "phone")
    later = int(time.time() * 1000) + 31000
    result = touch(env, redis, "acct1", 2, ["laptop:playing"], grace_ms=30000, now_ms=later)
    check_eq(result, {"released": [], "admitted": ["laptop"], "stop": {}, "refreshed": 0},
             "silent devices pruned, laptop admitted")
    check_eq(redis.cmd("HKEYS", "hb:plays:{acct1}"), ["laptop"], "only laptop left")
    check(0 < redis.cmd("PTTL", "hb:plays:{acct1}") <= 60000, "plays key expires")


SCENARIOS = {f.__name__: f for f in [
    stop_heartbeat_frees_the_slot_at_once,
    heartbeat_without_admission_is_admitted_or_stopped,
    after_flushall_the_device_that_started_last_is_stopped,
    touch_past_the_grace_period_prunes_silent_devices,
    limit_two_refuses_the_third_with_the_active_list,
    delete_frees_the_slot_and_stops_the_device,
    evict_oldest_admits_and_stops_the_oldest,
    group_limit_below_account_limit_refuses,
    silent_device_frees_its_slot_after_the_grace_period,
    two_instances_racing_never_exceed_the_limit,
    bad_input_is_refused_counted_and_writes_nothing,
    redis_down_is_503_or_degraded_with_fail_open,
    idle_connections_do_not_delay_healthz,
    tokens_endpoint_works_as_hb_tokend,
    tokens_endpoint_rate_limits_each_api_key,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
