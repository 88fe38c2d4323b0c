"""Helpers of the hb-api scenarios: a key pair for tokens, an hb-api process probed on
/healthz, JSON over real HTTP, and a device that listens on its control topic with the token
hb-api gave it (paho, QoS 1)."""

import http.client
import json
import os
import queue

import paho.mqtt.client as mqtt

from harness import (Process, check, free_port, parse_metrics, plugin_broker_config,
                     sanitizer_env, share_with_broker, wait_until)

API_KEY = "svc-api-key-6f1c2d9e8a7b4c3d"
SECRET = "integration-secret-0123456789abcdef-XYZ"


def keys(env):
    """(signing key file, API key file); the key is readable by the broker too."""
    d = os.path.join(env.dir, "keys")
    os.makedirs(d, exist_ok=True)
    key = os.path.join(d, "k-api.secret")
    with open(key, "w") as f:
        f.write(SECRET + "\n")
    api_keys = os.path.join(env.dir, "api-keys")
    with open(api_keys, "w") as f:
        f.write("# test key\n" + API_KEY + "\n")
    share_with_broker(env.dir, [key], dirs=[d])
    return key, api_keys


def plugin_broker(env, key):
    return env.mosquitto(config=plugin_broker_config([("key_file", key)]), env=sanitizer_env())


class Api:
    """One hb-api on a free port; extra are more options."""

    def __init__(self, env, redis, key, api_keys, extra=(), broker=None, name="hb-api"):
        self.port = free_port()
        args = ["--listen", f"127.0.0.1:{self.port}", "--redis", redis.uri, "--key", key,
                "--api-key-file", api_keys, *extra]
        if broker is not None:
            args += ["--broker", broker.uri]
        self.proc = env.start("api/hb-api", *args, name=name)
        self.broker = broker
        wait_until(self._healthy, 20, f"{name} to answer /healthz")

    def _healthy(self):
        check(self.proc.alive(), f"hb-api exited:\n{self.proc.tail()}")
        try:
            status, body = self.request("GET", "/healthz", auth=False)
        except OSError:
            return False
        return status == 200 and (self.broker is None or body.get("control_connected"))

    def request(self, method, path, body=None, auth=True, key=API_KEY, raw=None,
                content_type="application/json", timeout=10, headers_out=None):
        """(status, decoded JSON body or text); the reply's headers into headers_out if given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {}
            if auth:
                headers["Authorization"] = f"Bearer {key}"
            data = raw if raw is not None else (None if body is None else json.dumps(body))
            if data is not None and content_type:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode()
            if headers_out is not None:
                headers_out.update(resp.getheaders())
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text
        finally:
            conn.close()

    def play(self, account, device, **extra):
        return self.request("POST", "/v1/plays", {"account": account, "device": device, **extra})

    def metrics(self):
        status, text = self.request("GET", "/metrics", auth=False)
        check(status == 200, f"/metrics answered {status}")
        return parse_metrics(text)


class Device:
    """An MQTT client with the device's own token, subscribed to its control topic."""

    def __init__(self, broker, account, device, token, prefix="ctl"):
        self.messages = queue.Queue()
        self.topic = f"{prefix}/{account}/{device}"
        self.client = mqtt.Client(client_id=device, clean_session=True)
        self.client.username_pw_set("device", token)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.granted = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, qos: self.granted.put(qos[0])
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, f"device {device} to connect")
        self.client.subscribe(self.topic, qos=1)
        granted = self.granted.get(timeout=10)
        check(granted == 1, f"subscription to {self.topic} granted QoS {granted}, expected 1")

    def next_message(self, timeout=10):
        topic, payload = self.messages.get(timeout=timeout)
        return topic, json.loads(payload)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
