#!/usr/bin/python3
"""The device page in a real browser: headless Debian chromium driven by playwright-core
(drive.mjs) against the real hb-api (--web-root, --demo-backend), mosquitto with the hb_auth
plugin and a websockets listener, hb-consumer and Redis, all on free loopback ports. This side
starts the servers and checks what only they know (Redis bins, slots, metrics, MQTT traffic);
the Node side checks what the pages show and takes the README's screenshots."""

import http.client
import json
import os
import queue
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import paho.mqtt.client as mqtt  # noqa: E402

from api_harness import API_KEY, Api, keys  # noqa: E402
from harness import (check, check_eq, free_port, main, plugin_broker_config,  # noqa: E402
                     sanitizer_env, wait_until)

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WEB = os.path.join(ROOT, "web")
DRIVER = os.path.join(HERE, "drive.mjs")
SCREENSHOTS = os.environ.get("HB_SCREENSHOTS", os.path.join(ROOT, "docs", "img"))
CHROMIUM = "/usr/bin/chromium"
INTERVAL = 3    # consumer bins of 3 s: a missed heartbeat (1 s period) would leave a hole
HEARTBEAT = 1


class Stack:
    """Redis, the plugin broker with a websockets listener, the consumer (with a consumer
    token) and hb-api serving the pages and the demo backend."""

    def __init__(self, env, limit=2, token_ttl=None, policy="block_new", plugin=True,
                 demo=True):
        check(os.path.exists(os.path.join(WEB, "node_modules", "playwright-core")),
              "web/node_modules is not installed: run scripts/deps.sh")
        check(os.access(CHROMIUM, os.X_OK), f"no {CHROMIUM}: run scripts/deps.sh")
        self.env = env
        self.key, api_keys = keys(env)
        self.redis = env.redis(aof=False)
        self.ws_port = free_port()
        ws = f"listener {self.ws_port}\nprotocol websockets\n"
        if plugin:
            conf = plugin_broker_config([("key_file", self.key)], extra=ws)
            self.broker = env.mosquitto(config=conf, env=sanitizer_env())
        else:  # anonymous: tokens are ignored, anything may be published
            self.broker = env.mosquitto(extra_conf=ws)
        # The consumer enforces at ingest (a stop heartbeat frees the slot) and, through the
        # plugin, publishes the live counts: its token may publish stops and retained counts.
        _, token, _ = env.run("token/hb-token", "--key", self.key, "--role", "consumer",
                              "--ttl", "3600", "--control-prefix", "ctl",
                              "--live-prefix", "live", check_rc=0)
        play = ["--default-limit", str(limit), "--default-policy", policy,
                "--heartbeat-seconds", str(HEARTBEAT), "--grace-seconds", "120"]
        # On the anonymous broker the test publishes the counts itself.
        live = ["--live"] if plugin else []
        self.consumer = env.consumer([self.broker], self.redis, INTERVAL, extra=[
            "--client-id", "hb-consumer-browser", "--username", "hb-consumer",
            "--password", token.strip(), "--enforce", *live, *play])
        wait_until(lambda: self.consumer.metrics().get("hb_consumer_control_connected") == 1,
                   20, "the consumer's stop publisher to connect")
        extra = [*play, "--interval", str(INTERVAL),
                 "--web-root", WEB, *(["--demo-backend"] if demo else []),
                 "--demo-mqtt-url", f"ws://127.0.0.1:{self.ws_port}/"]
        if token_ttl:
            extra += ["--token-ttl", str(token_ttl)]
        self.api = Api(env, self.redis, key=self.key, api_keys=api_keys, extra=extra,
                       broker=self.broker)
        self.base = f"http://127.0.0.1:{self.api.port}"

    def drive(self, scenario, account, screenshots=False, timeout=150, feed=None, **extra):
        """Runs drive.mjs SCENARIO; returns its events by name. feed(event, proc) is called
        for each event line as it arrives (to answer the driver on its stdin)."""
        cfg = {"base": self.base, "apiKey": API_KEY, "account": account, **extra}
        if screenshots:
            os.makedirs(SCREENSHOTS, exist_ok=True)
            cfg["screenshots"] = SCREENSHOTS
        proc = subprocess.Popen(["node", DRIVER, scenario, json.dumps(cfg)], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        events, out = {}, []
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            for line in proc.stdout:
                out.append(line)
                if line.startswith("EVENT "):
                    e = json.loads(line[6:])
                    events[e["name"]] = e
                    if feed:
                        feed(e, proc)
            rc = proc.wait()
        finally:
            timer.cancel()
        err = proc.stderr.read()
        check(rc == 0 and out and out[-1].strip() == "OK",
              f"drive.mjs {scenario} exited {rc}:\n{''.join(out)}\n{err}")
        return events

    def active(self, account):
        status, body = self.api.request("GET", f"/v1/accounts/{account}")
        check_eq(status, 200, "GET /v1/accounts status")
        return sorted(e["device"] for e in body["active"])


class Bins:
    """Watches an account's per-interval hashes while a scenario runs (they live only two
    intervals): interval start (ms) -> the device ids binned in it."""

    def __init__(self, redis, account):
        self.redis, self.account = redis, account
        self.seen = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            for key in self.redis.keys(f"hb:{{{self.account}}}:*"):
                start = int(key.rsplit(":", 1)[1])
                self.seen.setdefault(start, set()).update(self.redis.hash(key))
            self.stop.wait(0.5)

    def finish(self):
        self.stop.set()
        self.thread.join()
        return self.seen


def live_publisher(broker):
    """An MQTT 5 client of an anonymous broker that publishes live counts retained."""
    c = mqtt.Client(client_id="live-test", protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    wait_until(c.is_connected, 10, "the live count publisher to connect")
    return c


def heartbeat_listener(stack, account):
    """A consumer-token subscriber of the account's heartbeats: (client, queue of payloads)."""
    _, token, _ = stack.env.run("token/hb-token", "--key", stack.key, "--role", "consumer",
                                "--ttl", "600", check_rc=0)
    got = queue.Queue()
    c = mqtt.Client(client_id="hb-listener", protocol=mqtt.MQTTv5)
    c.username_pw_set("hb-listener", token.strip())
    c.on_message = lambda cl, u, m: got.put((m.topic, json.loads(m.payload)))
    c.connect("127.0.0.1", stack.broker.port)
    c.loop_start()
    wait_until(c.is_connected, 10, "the heartbeat listener to connect")
    c.subscribe(f"hb/{account}/+", qos=1)
    return c, got


# ---- scenarios ----------------------------------------------------------------------------------

def limit_two_third_page_refused_then_stops_one(env):
    s = Stack(env, limit=2)
    ev = s.drive("limit_two_third_page_refused_then_stops_one", "acct-web", screenshots=True)
    ids = ev["ids"]
    check_eq(s.active("acct-web"), sorted(ids["playing"]), "active devices after the swap")
    m = s.api.metrics()
    check_eq(m['hb_api_refusals_total{reason="account_limit"}'], 1.0, "refusals")
    check_eq(m["hb_api_releases_total"], 1.0, "releases")
    check_eq(m['hb_api_requests_total{endpoint="demo",status="409"}'], 1.0, "demo 409s")


def token_renewal_keeps_counting(env):
    ttl = 10
    s = Stack(env, limit=2, token_ttl=ttl)
    bins = Bins(s.redis, "acct-renew")
    ev = s.drive("token_renewal_keeps_counting", "acct-renew", ttl=ttl, renewals=2,
                 after_ms=(INTERVAL + 1) * 1000)
    seen = bins.finish()
    device = ev["renewed"]["id"]
    check(ev["renewed"]["connects"] >= 3, f"reconnected for each renewal: {ev['renewed']}")
    # Every interval that lies wholly between the first heartbeat and the end holds the device.
    first = (ev["playing"]["t"] // (INTERVAL * 1000) + 1) * INTERVAL * 1000
    last = (ev["renewed"]["t"] // (INTERVAL * 1000) - 1) * INTERVAL * 1000
    spans = list(range(first, last + 1, INTERVAL * 1000))
    # Two renewals take at least 2 * 0.8 * ttl s: at least 4 whole intervals of 3 s.
    check(len(spans) >= 4, f"too few intervals observed: {spans}")
    holes = [t for t in spans if device not in seen.get(t, set())]
    check_eq(holes, [], f"intervals without {device} (seen: {sorted(seen)})")
    check_eq(s.active("acct-renew"), [device], "one active device, never counted twice")
    m = s.api.metrics()
    check_eq(m["hb_api_admissions_total"], 1.0, "admissions")
    check(m["hb_api_readmissions_total"] >= 2, f"readmissions: {m['hb_api_readmissions_total']}")


def reload_keeps_id_second_tab_gets_another(env):
    s = Stack(env)
    ev = s.drive("reload_keeps_id_second_tab_gets_another", "acct-ids")
    check(ev["ids"]["first"] != ev["ids"]["second"], f"two tabs, two ids: {ev['ids']}")


def control_topic_stops_are_shown(env):
    s = Stack(env, limit=1, policy="evict_oldest")
    ev = s.drive("control_topic_stops_are_shown", "acct-ctl", screenshots=True)
    check_eq(s.active("acct-ctl"), [ev["ids"]["playing"]], "active after the eviction")
    m = s.api.metrics()
    check_eq(m["hb_api_evictions_total"], 1.0, "evictions")
    check(m["hb_api_stops_published_total"] >= 2, "stops published: released and evicted")


def closing_a_tab_sends_a_stop_heartbeat_and_frees_its_slot(env):
    s = Stack(env, limit=2)
    listener, got = heartbeat_listener(s, "acct-close")
    ev = s.drive("close_tab", "acct-close", backup_delete=True)
    device = ev["closed"]["id"]
    last = None
    deadline = time.time() + 10
    while time.time() < deadline and (last is None or last.get("state") != "stopped"):
        topic, last = got.get(timeout=max(0.1, deadline - time.time()))
        check_eq(topic, f"hb/acct-close/{device}", "heartbeat topic")
    check_eq(last.get("state"), "stopped", "the closed tab's last heartbeat")
    check_eq(sorted(last), ["agent", "bitrate", "mediaId", "playTime", "seq", "state", "ts"],
             "heartbeat fields")
    check_eq((last["mediaId"], last["agent"]["browser"], last["agent"]["device"]),
             ("film-5", "Chrome", "desktop"), "payload")
    wait_until(lambda: s.active("acct-close") == [], 5, "the slot to be free")
    listener.loop_stop()


def closing_a_tab_frees_its_slot_by_the_stop_heartbeat_alone(env):
    """The consumer (--enforce) frees the slot on the stop heartbeat: no DELETE backup."""
    s = Stack(env, limit=2)
    ev = s.drive("close_tab", "acct-close2", backup_delete=False)
    closed = ev["closed"]["t"]
    wait_until(lambda: s.active("acct-close2") == [], 5,
               "the consumer to free the slot on the stop heartbeat")
    check(time.time() * 1000 - closed < 5000, "freed at once")


def live_count_from_the_retained_topic_is_shown(env):
    """The page's side of live counts on an anonymous broker: the hb_auth plugin refuses every
    retained message and every publish outside a device's own topic today, so live counts
    through it need a plugin change (see live_count_equals_the_playing_devices). That a device
    token may subscribe to live/media/<media> is pinned by the token unit tests."""
    s = Stack(env, limit=3, plugin=False)
    pub = live_publisher(s.broker)
    counts = [3, 4]
    pub.publish("live/media/film-6", json.dumps({"media": "film-6", "watching": counts[0]}),
                qos=1, retain=True).wait_for_publish(10)

    def feed(e, proc):
        if e["name"] == "shown" and e["watching"] == counts[0]:
            pub.publish("live/media/film-6",
                        json.dumps({"media": "film-6", "watching": counts[1]}),
                        qos=1, retain=True).wait_for_publish(10)
            proc.stdin.write("next\n")
            proc.stdin.flush()
    s.drive("live_count", "acct-live", media="film-6", pages=2, expect=counts, feed=feed)
    pub.loop_stop()


def live_count_equals_the_playing_devices(env):
    """Through the real plugin broker: two pages of one media show "2 watching now", the
    consumer's retained count of the two playing devices, and the account's count is 2 too."""
    s = Stack(env, limit=3)
    s.drive("live_count", "acct-live2", media="film-7", pages=2, expect=[2])
    m = s.consumer.metrics()
    check_eq(m.get("hb_consumer_live_devices"), 2, "devices in the live counts")
    check_eq(m.get("hb_consumer_live_topics"), 2, "live topics (one media, one account)")
    check(m.get("hb_consumer_live_publishes_total", 0) >= 2, "counts published")


# ---- without a browser: what hb-api serves and refuses ----------------------------------------

def static_files_are_served_safely(env):
    s = Stack(env)
    ok = {"/": "text/html; charset=utf-8", "/play": "text/html; charset=utf-8",
          "/dashboard": "text/html; charset=utf-8", "/device.js": "text/javascript; charset=utf-8",
          "/style.css": "text/css; charset=utf-8",
          "/vendor/mqtt.min.js": "text/javascript; charset=utf-8"}
    for path, ctype in ok.items():
        status, headers, body = raw_get(s.api.port, path)
        check_eq((status, headers.get("Content-Type")), (200, ctype), f"GET {path}")
    _, _, js = raw_get(s.api.port, "/vendor/mqtt.min.js")
    with open(os.path.join(WEB, "node_modules", "mqtt", "dist", "mqtt.min.js"), "rb") as f:
        check(js == f.read(), "mqtt.min.js served whole")
    for path in ["/../README.md", "/%2e%2e/README.md", "/..%2fREADME.md", "/public/index.html",
                 "/package.json", "/node_modules/mqtt/package.json", "/.hidden.js",
                 "/package.json%00.html", "/vendor/../package.json", "/nope.html", "/device.exe",
                 "/" + "a" * 70 + ".js", "/dir/device.js"]:
        status, _, _ = raw_get(s.api.port, path)
        check_eq(status, 404, f"GET {path}")
    # libmicrohttpd decodes %00 before hb-api sees the path, which then ends there: the file
    # named before it, with that file's type (never the type the tail asks for).
    status, headers, _ = raw_get(s.api.port, "/index.html%00.js")
    check_eq((status, headers.get("Content-Type")), (200, "text/html; charset=utf-8"), "%00")
    status, body = s.api.request("POST", "/", body={}, auth=False)
    check_eq((status, body), (404, {"error": "not_found"}), "POST / is no page")
    m = s.api.metrics()
    check_eq(m['hb_api_requests_total{endpoint="web",status="200"}'], 8.0, "web 200s")
    check_eq(m['hb_api_requests_total{endpoint="web",status="404"}'], 13.0, "web 404s")


def demo_backend_refuses_bad_input_and_is_off_by_default(env):
    s = Stack(env)
    status, body = s.api.request("POST", "/demo/plays", auth=False, raw="{}",
                                 content_type="text/plain")
    check_eq((status, body["error"]), (415, "unsupported_media_type"), "text/plain body")
    status, body = s.api.request("POST", "/demo/plays", {"account": "a b", "device": "d"},
                                 auth=False)
    check_eq((status, body), (400, {"error": "invalid_field", "field": "account"}), "bad id")
    status, body = s.api.request("DELETE", "/demo/plays/acct/d%2Fx", auth=False)
    check_eq(status, 404, "DELETE of a three-segment path")
    status, body = s.api.request("GET", "/demo/plays", auth=False)
    check_eq(status, 405, "GET /demo/plays")
    status, body = s.api.request("GET", "/demo/config", auth=False)
    check_eq((status, body["mqtt_url"], body["live_prefix"], body["control_prefix"]),
             (200, f"ws://127.0.0.1:{s.ws_port}/", "live/media", "ctl"), "config")
    check_eq(s.active("acct"), [], "nothing admitted")
    # Without the options: the API as before, no pages, no demo routes.
    key, api_keys = keys(env)
    plain = Api(env, s.redis, key, api_keys, name="hb-api-plain")
    for method, path in [("GET", "/"), ("GET", "/dashboard"), ("GET", "/demo/config"),
                         ("POST", "/demo/plays")]:
        status, body = plain.request(method, path, body={}, auth=False)
        check_eq((status, body), (404, {"error": "not_found"}), f"{method} {path} without options")


AGENT_OS = ["Android", "iOS", "Windows", "macOS", "Linux"]
AGENT_BROWSER = ["Chrome", "Firefox", "Safari", "ExoPlayer"]
AGENT_DEVICE = ["phone", "desktop", "tv"]


def population(n):
    """n devices over n // 10 accounts with known agents, play times and bitrates."""
    return [{"topic": f"hb/pop-{i % (n // 10)}/dev-{i}",
             "payload": {"mediaId": f"m-{i % 7}", "bitrate": 1000 + 10 * i, "playTime": 10 + i,
                         "agent": {"os": AGENT_OS[i % 5], "browser": AGENT_BROWSER[i % 4],
                                   "device": AGENT_DEVICE[(i // 4) % 3]}}}
            for i in range(n)]


def dashboard_shows_what_the_population_sent(env):
    """300 devices of known agents heartbeat every second (20 of them report "stopped"); the
    page's totals, averages and distributions equal what they sent, as do the admissions."""
    n, stopped = 300, 20
    s = Stack(env, limit=2, plugin=False)
    devices = population(n)
    for d in devices[-stopped:]:
        d["payload"]["state"] = "stopped"
    pub = mqtt.Client(client_id="dash-pop", protocol=mqtt.MQTTv5)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", s.broker.port)
    pub.loop_start()
    wait_until(pub.is_connected, 10, "the population's publisher to connect")
    done = threading.Event()

    def publish():
        while not done.is_set():
            for d in devices:
                pub.publish(d["topic"], json.dumps(d["payload"]), qos=1)
            done.wait(1.0)
    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    for dev in ("a", "b", "c"):  # limit 2: two admitted (the second fills it), one refused
        status, _ = s.api.request("POST", "/v1/plays", {"account": "dash-acct", "device": dev})
        check_eq(status, 200 if dev != "c" else 409, f"POST /v1/plays {dev}")

    def count(field):
        return {k: sum(1 for d in devices if d["payload"]["agent"][field] == k)
                for k in sorted({d["payload"]["agent"][field] for d in devices})}
    bitrates = [d["payload"]["bitrate"] for d in devices]
    expect = {"total": n, "active": n - stopped,
              "playTime": f"{sum(d['payload']['playTime'] for d in devices) / n:.1f} s",
              "bitrate": [str(min(bitrates)), f"{sum(bitrates) / n:.0f}",
                          f"{max(bitrates)} kbit/s"],
              "dist": {"device": count("device"), "os": count("os"), "browser": count("browser")},
              "admissions": 2, "refusals": 1, "atLimit": 1}
    try:
        # The data endpoint first: the last complete interval holds every device.
        def data():
            status, body = s.api.request("GET", "/dashboard/data")
            check_eq(status, 200, "GET /dashboard/data")
            return body
        wait_until(lambda: data()["viewers"]["viewers_total"] == n, 30,
                   "the last complete interval to hold the whole population")
        d = data()["viewers"]
        check_eq(d["viewers_active"], n - stopped, "active viewers")
        check_eq(d["other_folded"], {"device": 0, "os": 0, "browser": 0}, "names folded")
        ev = s.drive("dashboard_shows_the_population", "pop", screenshots=True, expect=expect)
        check_eq(ev["shown"]["total"], n, "viewers on the page")
    finally:
        done.set()
        thread.join()
        pub.loop_stop()
        pub.disconnect()
    keys = sorted(k for k in s.redis.keys("hb:dash:*"))
    check(all(k.startswith("hb:dash:{hbdash}:") for k in keys), f"dashboard keys: {keys}")
    check(all(0 < s.redis.cmd("PTTL", k) <= 3600000 for k in keys), "every dashboard key has a TTL")


def dashboard_is_off_without_the_option(env):
    s = Stack(env, limit=2, plugin=False, demo=False)
    for path in ("/dashboard", "/dashboard/data", "/dashboard.js"):
        status, _, _ = raw_get(s.api.port, path)
        check_eq(status, 404, f"GET {path} without --dashboard")


def raw_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


SCENARIOS = {f.__name__: f for f in [
    limit_two_third_page_refused_then_stops_one,
    token_renewal_keeps_counting,
    reload_keeps_id_second_tab_gets_another,
    control_topic_stops_are_shown,
    closing_a_tab_sends_a_stop_heartbeat_and_frees_its_slot,
    closing_a_tab_frees_its_slot_by_the_stop_heartbeat_alone,
    live_count_from_the_retained_topic_is_shown,
    live_count_equals_the_playing_devices,
    static_files_are_served_safely,
    demo_backend_refuses_bad_input_and_is_off_by_default,
    dashboard_shows_what_the_population_sent,
    dashboard_is_off_without_the_option,
]}

if __name__ == "__main__":
    sys.exit(main(SCENARIOS))
