#!/usr/bin/env bash
# The whole pipeline on this machine, start to finish: installs what is missing, builds,
# starts a private mosquitto (with the token plugin: every device connects with its own
# short-lived token) and redis-server on free loopback ports in a temporary directory, runs
# hb-consumer (with a consumer token) and hb-sim (a few hundred devices across dozens of
# accounts), waits for complete intervals, prints the checker's counts next to the simulator's
# truth, cleans up. Then an account over its limit, with hb-api and the consumer's enforcement:
# a refusal, a stop delivered over MQTT, a slot freed by an explicit stop heartbeat. Exits
# non-zero if any count differs from the truth or the limit demo goes otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

INTERVAL=${DEMO_INTERVAL:-10}
# One complete interval and a bit: the run starts just before a boundary, so when it ends the
# interval it covered is complete and its keys (alive until the end of the next one) are there
# for the checker.
DURATION=${DEMO_DURATION:-$((INTERVAL + 2))}
ACCOUNTS=${DEMO_ACCOUNTS:-40}
DEVICES=${DEMO_DEVICES:-2-12}

bash scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
bin=$PWD/build

work=$(mktemp -d /tmp/hb-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { # below the ephemeral range, so outgoing connections cannot take it meanwhile
  python3 -c 'import random, socket
while True:
    p = random.randrange(20000, 32000); s = socket.socket()
    try: s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass'
}
wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2; return 1
}

mqtt_port=$(free_port)
redis_port=$(free_port)
metrics_port=$(free_port)
api_port=$(free_port)
ws_port=$(free_port)

# A fresh HS256 key for this demo. mosquitto, started as root, drops to its own user before it
# loads the plugin: give that user the key (group-readable) and its own copy of the plugin.
key=$work/keys/hb-demo.key
mkdir -p "$work/keys"
openssl rand -hex 32 >"$key"
cp "$bin/plugin/hb_auth.so" "$work/hb_auth.so"
chmod 711 "$work"
chmod 644 "$work/hb_auth.so"
if getent group mosquitto >/dev/null; then
  chgrp -R mosquitto "$work/keys"
  chmod 750 "$work/keys"
  chmod 640 "$key"
fi
cat >"$work/mosquitto.conf" <<CONF
listener $mqtt_port 127.0.0.1
allow_anonymous false
plugin $work/hb_auth.so
plugin_opt_key_file $key
persistence false
max_queued_messages 100000
max_inflight_messages 1000
listener $ws_port
protocol websockets
CONF
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 & pids+=($!)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save '' \
  --appendonly no >"$work/redis.log" 2>&1 & pids+=($!)
wait_for "redis" redis-cli -p "$redis_port" ping
wait_for "mosquitto" bash -c "exec 3<>/dev/tcp/127.0.0.1/$mqtt_port"
echo "mosquitto (token plugin) on 127.0.0.1:$mqtt_port, redis on 127.0.0.1:$redis_port," \
     "work dir $work"

export HB_BROKER=tcp://127.0.0.1:$mqtt_port HB_REDIS=redis://127.0.0.1:$redis_port
export HB_INTERVAL=$INTERVAL
# Admission settings shared by hb-api and the consumer (one environment serves both); the
# simulated accounts stay under the default limit, the demo account gets its own below.
export HB_DEFAULT_LIMIT=20 HB_HEARTBEAT_SECONDS=2
# The consumer's credential allows subscribing to heartbeats, publishing stops and publishing
# the retained live viewer counts (--live).
start_consumer() { # log file
  HB_MQTT_USERNAME=consumer \
    HB_MQTT_PASSWORD=$("$bin/token/hb-token" --key "$key" --role consumer --control-prefix ctl \
                       --live-prefix live) \
    "$bin/consumer/hb-consumer" --enforce --live --stats-interval 5 \
    --metrics "127.0.0.1:$metrics_port" >"$1" 2>&1 & pids+=($!)
  consumer_pid=$!
  wait_for "the consumer to subscribe" grep -q "subscribed to" "$1"
}
start_consumer "$work/consumer.log"
openssl rand -hex 24 >"$work/api-keys"
"$bin/api/hb-api" --key "$key" --api-key-file "$work/api-keys" --listen "127.0.0.1:$api_port" \
  --web-root "$(dirname "$bin")/web" --demo-backend --demo-mqtt-url "ws://127.0.0.1:$ws_port/" \
  >"$work/hb-api.log" 2>&1 & pids+=($!)
wait_for "hb-api" curl -sf "http://127.0.0.1:$api_port/healthz"
echo "open in a browser while the demo runs (DEMO_KEEP=1 keeps it running afterwards):"
echo "  device page  http://127.0.0.1:$api_port/"
echo "  dashboard    http://127.0.0.1:$api_port/dashboard"

python3 -c 'import sys, time
i = int(sys.argv[1]); now = time.time(); start = (now // i + 1) * i - 0.3
if start - now < 0.2: start += i
time.sleep(start - now)' "$INTERVAL"
echo "simulating $ACCOUNTS accounts with $DEVICES devices each for ${DURATION}s," \
     "heartbeat every 2s, ${INTERVAL}s intervals, one token per device..."
"$bin/publisher-sim/hb-sim" --accounts "$ACCOUNTS" --devices-per-account "$DEVICES" \
  --heartbeat 2 --duration "$DURATION" --key "$key" --truth "$work/truth.jsonl"

echo "the consumer's health check and metrics (http://127.0.0.1:$metrics_port/healthz, /metrics):"
python3 - "$metrics_port" <<'PY'
import sys, urllib.error, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
try:
    with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
        print(f"  /healthz {r.status} {r.read().decode().strip()}")
except urllib.error.HTTPError as e:
    print(f"  /healthz {e.code} {e.read().decode().strip()}")
with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
    for line in r.read().decode().splitlines():
        if line.startswith(("hb_consumer_messages_received", "hb_consumer_heartbeats_",
                            "hb_consumer_redis_up", "hb_consumer_mqtt_subscribed")):
            print("  " + line)
PY

echo
echo "an account over its limit (hb-api on 127.0.0.1:$api_port, the consumer enforcing):"
limit_status=0
/usr/bin/python3 - "$api_port" "$(cat "$work/api-keys")" "${HB_BROKER#tcp://}" \
  "$("$bin/token/hb-token" --key "$key" --account demo-home --device tablet --control-prefix ctl)" \
  <<'PY' || limit_status=$?
import json, queue, sys, time, urllib.error, urllib.request
import paho.mqtt.client as mqtt
port, api_key, broker, tablet_token = sys.argv[1:5]
host, mqtt_port = broker.rsplit(":", 1)
def call(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {api_key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
def expect(cond, what):
    if not cond:
        sys.exit(f"  FAILED: {what}")
class Device:
    def __init__(self, name, token):
        self.name, self.stops = name, queue.Queue()
        self.c = mqtt.Client(client_id=name, clean_session=True)
        self.c.username_pw_set("device", token)
        self.c.on_message = lambda c, u, m: self.stops.put(json.loads(m.payload))
        subscribed = queue.Queue()
        self.c.on_subscribe = lambda c, u, mid, qos: subscribed.put(qos)
        self.c.connect(host, int(mqtt_port))
        self.c.loop_start()
        self.c.subscribe(f"ctl/demo-home/{name}", qos=1)
        subscribed.get(timeout=5)
    def beat(self, **fields):
        self.c.publish(f"hb/demo-home/{self.name}", json.dumps(fields), qos=1).wait_for_publish(5)
expect(call("PUT", "/v1/accounts/demo-home/limits", {"devices": 2})[0] == 200, "set limit 2")
print("  PUT /v1/accounts/demo-home/limits {\"devices\": 2}")
devices = {}
for name in ("tv", "phone"):
    status, body = call("POST", "/v1/plays", {"account": "demo-home", "device": name})
    print(f"  POST /v1/plays {name}: {status} allow={body.get('allow')} active={body.get('active')}")
    expect(status == 200, f"{name} admitted")
    devices[name] = Device(name, body["token"])
    devices[name].beat(started=int(time.time() * 1000))
status, body = call("POST", "/v1/plays", {"account": "demo-home", "device": "tablet"})
print(f"  POST /v1/plays tablet: {status} reason={body.get('reason')} "
      f"active={[d['device'] for d in body.get('active', [])]}")
expect(status == 409 and body["reason"] == "account_limit", "tablet refused")
tablet = Device("tablet", tablet_token)  # a modified client that plays anyway
tablet.beat()
stop = tablet.stops.get(timeout=5)
print(f"  tablet heartbeats anyway: stop delivered on ctl/demo-home/tablet: {json.dumps(stop)}")
expect(stop == {"action": "stop", "reason": "account_limit"}, "tablet's stop")
t0 = time.monotonic()
devices["phone"].beat(state="stopped")
while call("POST", "/v1/plays", {"account": "demo-home", "device": "tablet"})[0] != 200:
    expect(time.monotonic() - t0 < 2, "tablet admitted after phone's stop")
    time.sleep(0.02)
print(f"  phone sends \"state\":\"stopped\": tablet admitted "
      f"{(time.monotonic() - t0) * 1000:.0f} ms later")
PY
[ $limit_status -eq 0 ] || echo "demo: the limit demo went wrong (see above)"

# The consumer writes a batch at most every 50 ms; stop it so its buffer is flushed for sure.
kill -TERM "$consumer_pid"; wait "$consumer_pid" || true
grep " stats " "$work/consumer.log" | tail -1 | sed 's/.* stats /consumer: /'

echo
printf '%-10s %-15s %6s %8s  %s\n' ACCOUNT INTERVAL TRUTH CHECKER ""
status=0
"$bin/checker/hb-check" --verify "$work/truth.jsonl" --verbose >"$work/verify.txt" || status=$?
awk '/^(ok|MISMATCH) / {
       split($2, a, "="); split($3, s, "="); split($4, e, "="); split($5, g, "=");
       printf "%-10s %-15s %6s %8s  %s\n", a[2], s[2], e[2], g[2], ($1 == "ok" ? "ok" : "MISMATCH")
     }' "$work/verify.txt"
tail -1 "$work/verify.txt"
echo
echo "hb-check for the last complete interval (what a backend asks before playback):"
"$bin/checker/hb-check" --json $(head -3 "$work/truth.jsonl" | python3 -c \
  'import sys, json; print(" ".join(json.loads(l)["account"] for l in sys.stdin))')
if [ $status -eq 0 ]; then
  echo "demo: every count equals the simulator's truth"
else
  echo "demo: counts differ from the truth (see above)"
fi
[ $status -ne 0 ] || status=$limit_status
# DEMO_KEEP=1: leave the servers running (the consumer again) to try the pages by hand.
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  start_consumer "$work/consumer-kept.log"
  echo
  echo "kept running until Ctrl-C; open in a browser:"
  echo "  device page  http://127.0.0.1:$api_port/   (a second tab is a second device)"
  echo "  dashboard    http://127.0.0.1:$api_port/dashboard"
  trap 'exit $status' INT TERM
  while :; do sleep 1; done
fi
exit $status
