#!/usr/bin/python3
"""The Python peer of the benchmark: what a competent developer would write with Debian's
paho-mqtt and redis-py to do hb-consumer's job. paho's network thread calls on_message, which
validates the topic, parses the JSON, bins by receive time and appends (key, device) to a list;
a writer thread takes the list every 50 ms (sooner when 2000 wait) and sends one pipeline:
HINCRBY key device 1 per heartbeat, then PEXPIREAT key <interval start + 2 intervals> once per
key of the batch. (One round trip per heartbeat would cap it near 5k/s; nobody would ship that.)
"""
import argparse
import json
import math
import re
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt
import redis

ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
BATCH = 2000
FLUSH_S = 0.05


class Peer:
    def __init__(self, args):
        self.args = args
        self.interval_ms = args.interval * 1000
        self.lock = threading.Condition()
        self.pending = []
        self.closed = False
        self.received = self.accepted = self.written = self.rejected = 0
        self.redis_errors = 0
        self.latency = [0] * 1002
        self.redis = redis.Redis.from_url(args.redis)
        self.client = mqtt.Client(client_id=f"hb-python-peer-{id(self)}", clean_session=True)
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_message

    def on_connect(self, client, userdata, flags, rc):
        if rc != 0:
            print(f"hb-python-peer: connect refused: {rc}", file=sys.stderr, flush=True)
            return
        client.subscribe(self.args.filter, qos=1)
        print(f"hb-python-peer: subscribed to {self.args.filter}", file=sys.stderr, flush=True)

    def on_message(self, client, userdata, msg):
        now = int(time.time() * 1000)
        self.received += 1
        parts = msg.topic.split("/")
        payload = msg.payload
        if (msg.retain or len(parts) != 3 or parts[0] != self.args.topic_prefix
                or not ID.fullmatch(parts[1]) or not ID.fullmatch(parts[2])
                or len(payload) > 1024):
            self.rejected += 1
            return
        body = None
        if payload:
            try:
                body = json.loads(payload)
            except ValueError:
                self.rejected += 1
                return
            if not isinstance(body, dict):
                self.rejected += 1
                return
        start = now - now % self.interval_ms
        with self.lock:
            self.pending.append((f"hb:{{{parts[1]}}}:{start}", parts[2], start))
            if len(self.pending) >= BATCH:
                self.lock.notify()
        self.accepted += 1
        ts = body.get("ts") if body else None
        if isinstance(ts, (int, float)) and -60000 <= ts - now <= 1000 and math.isfinite(ts):
            self.latency[min(max(now - int(ts), 0), 1001)] += 1

    def writer(self):
        while True:
            with self.lock:
                if len(self.pending) < BATCH and not self.closed:
                    self.lock.wait(FLUSH_S)
                batch, self.pending = self.pending, []
                done = self.closed and not batch
            if done:
                return
            if not batch:
                continue
            pipe = self.redis.pipeline(transaction=False)
            expiry = {}
            for key, device, start in batch:
                pipe.hincrby(key, device, 1)
                expiry[key] = start + 2 * self.interval_ms
            for key, at in expiry.items():
                pipe.pexpireat(key, at)
            try:
                pipe.execute()
                self.written += len(batch)
            except redis.RedisError as e:
                self.redis_errors += 1
                print(f"hb-python-peer: redis: {e}", file=sys.stderr, flush=True)

    def percentile(self, q):
        total = sum(self.latency)
        if total == 0:
            return -1
        rank, seen = max(1, math.ceil(q * total)), 0
        for i, n in enumerate(self.latency):
            seen += n
            if seen >= rank:
                return i
        return len(self.latency) - 1

    def line(self):
        return (f"stats received={self.received} accepted={self.accepted} "
                f"written={self.written} rejected={self.rejected} "
                f"redis_errors={self.redis_errors} latency_p50_ms={self.percentile(0.5)} "
                f"latency_p99_ms={self.percentile(0.99)}")


def main():
    p = argparse.ArgumentParser(description="Python peer of the hb benchmark")
    p.add_argument("--broker", default="tcp://127.0.0.1:1883")
    p.add_argument("--redis", default="redis://127.0.0.1:6379")
    p.add_argument("--interval", type=int, default=60)
    p.add_argument("--filter", default="$share/hb-consumers/hb/+/+")
    p.add_argument("--topic-prefix", default="hb")
    p.add_argument("--stats-interval", type=float, default=1.0)
    args = p.parse_args()
    host, _, port = args.broker.split("://", 1)[-1].rpartition(":")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    peer = Peer(args)
    writer = threading.Thread(target=peer.writer, daemon=True)
    writer.start()
    peer.client.connect(host, int(port), keepalive=30)
    peer.client.loop_start()
    while not stop.wait(args.stats_interval):
        print(peer.line(), file=sys.stderr, flush=True)
    peer.client.disconnect()
    peer.client.loop_stop()
    with peer.lock:
        peer.closed = True
        peer.lock.notify()
    writer.join()
    print(peer.line(), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
