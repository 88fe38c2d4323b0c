"""Helpers of the enforcement scenarios: Redis, mosquitto with the plugin, hb-api and a REAL
hb-consumer running --enforce with its own consumer token (minted with --control-prefix, read
from --password-file), and players: devices that heartbeat with their own token and listen on
their control topic."""

import json
import os
import threading
import time

from api_harness import Api, Device, keys, plugin_broker
from harness import check, check_eq, wait_until

PREFIX = "ctl"


class Setup:
    """Everything of one scenario; play_options are shared by hb-api and the consumer."""

    def __init__(self, env, limit=2, heartbeat_s=10, grace_s=None, interval=60, extra=()):
        self.env = env
        self.key, api_keys = keys(env)
        self.redis = env.redis(aof=False)
        self.broker = plugin_broker(env, self.key)
        self.play_options = ["--default-limit", str(limit), "--heartbeat-seconds",
                             str(heartbeat_s), "--control-prefix", PREFIX, *extra]
        if grace_s is not None:
            self.play_options += ["--grace-seconds", str(grace_s)]
        self.api = Api(env, self.redis, self.key, api_keys, extra=self.play_options,
                       broker=self.broker)
        _, token, _ = env.run("token/hb-token", "--key", self.key, "--role", "consumer",
                              "--control-prefix", PREFIX, check_rc=0)
        password = os.path.join(env.dir, "consumer-token")
        with open(password, "w") as f:
            f.write(token.strip() + "\n")
        self.consumer = env.consumer([self.broker], self.redis, interval,
                                     extra=["--enforce", "--username", "hb-consumer",
                                            "--password-file", password, *self.play_options])
        wait_until(lambda: self.metric("hb_consumer_control_connected") == 1, 20,
                   "the consumer's stop publisher to connect")

    def metric(self, name):
        return self.consumer.metrics().get(name, 0)

    def wait_written(self, n, what="heartbeats written"):
        wait_until(lambda: self.metric("hb_consumer_heartbeats_written_total") >= n, 10, what)
        check_eq(self.metric("hb_consumer_heartbeats_written_total"), n, what)

    def slots(self, account):
        return sorted(self.redis.cmd("HKEYS", f"hb:plays:{{{account}}}"))

    def admitted(self, account, device, started=None):
        """A player admitted by hb-api, with the token from the answer."""
        status, body = self.api.play(account, device)
        check_eq(status, 200, f"{device} admitted by hb-api")
        return Player(self.broker, account, device, body["token"], started)

    def rogue(self, account, device, started=None):
        """A player that never asked hb-api: its token comes from hb-token."""
        _, token, _ = self.env.run("token/hb-token", "--key", self.key, "--account", account,
                                   "--device", device, "--control-prefix", PREFIX, check_rc=0)
        return Player(self.broker, account, device, token.strip(), started)


class Player(Device):
    """A device that publishes heartbeats (QoS 1, waited for) on hb/<account>/<device>, with
    "started" when given, and counts them."""

    def __init__(self, broker, account, device, token, started=None):
        super().__init__(broker, account, device, token, prefix=PREFIX)
        self.account, self.device, self.started = account, device, started
        self.sent = 0
        self._stop = threading.Event()
        self._thread = None

    def beat(self, state=None):
        payload = {"ts": int(time.time() * 1000), "seq": self.sent}
        if self.started is not None:
            payload["started"] = self.started
        if state is not None:
            payload["state"] = state
        info = self.client.publish(f"hb/{self.account}/{self.device}", json.dumps(payload), qos=1)
        info.wait_for_publish(10)
        check(info.is_published(), f"{self.device}: heartbeat not acknowledged")
        self.sent += 1
        self.last_beat = time.monotonic()

    def beat_every(self, period_s):
        def loop():
            while not self._stop.is_set():
                self.beat()
                self._stop.wait(period_s)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def silence(self):
        """Stops heartbeating, without a stop heartbeat (as a crash would)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
