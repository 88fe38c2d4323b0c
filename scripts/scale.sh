#!/usr/bin/env bash
# Proves the simulator's scale claim on this one machine: 200,000 devices, each its own MQTT
# connection authenticated with its own token, heartbeating every 5 s against a fleet of local
# mosquitto processes (each with the hb_auth plugin), counted by hb-consumer into Redis, and
# the checker's counts compared with the simulator's truth for every account.
#
# Starts everything on free loopback ports in a temporary directory and removes it at the end
# (SCALE_KEEP=1 keeps it). Not part of the test suite: at full size it takes a few minutes and
# both cores. Sizes come from the environment, e.g. a quick run:
#   SCALE_DEVICES=5000 SCALE_INTERVAL=10 bash scripts/scale.sh
#
#   SCALE_DEVICES              devices (connections), default 200000
#   SCALE_DEVICES_PER_ACCOUNT  devices per account (M or MIN-MAX), default 4
#   SCALE_BROKERS              mosquitto processes, default: one per 16000 devices
#   SCALE_SOURCES              local source addresses: a range like 127.0.0.2-127.0.0.21,
#                              "none", or default one per 10000 devices
#   SCALE_HEARTBEAT            seconds between heartbeats, default 5
#   SCALE_INTERVAL             counting interval, seconds, default 60
#   SCALE_CONNECT_RATE         new connections per second, default 2000
#   SCALE_DURATION             run length, default: the ramp plus two intervals, ending just
#                              after a boundary, so at least one complete interval has every
#                              device connected and its keys are still in Redis for the check
#   SCALE_GUARD_MS             no heartbeat this close to a boundary (delivery latency the
#                              comparison tolerates), default 1000
#   SCALE_QOS                  0 or 1, default 0 (QoS 1 adds a PUBACK per heartbeat on both
#                              legs; at 40,000 heartbeats/s that is more than 2 cores hold
#                              next to everything else: see publisher-sim/README.md)
#   SCALE_AUTH                 1: brokers with the plugin and a token per device (default when
#                              the plugin is built); 0: anonymous
#   HB_BUILD_DIR               build directory, default build (set up and built if needed)
# Exits 0 when every count matches and one complete interval saw every device.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${SCALE_DEVICES:-200000}
PER_ACCOUNT=${SCALE_DEVICES_PER_ACCOUNT:-4}
HEARTBEAT=${SCALE_HEARTBEAT:-5}
INTERVAL=${SCALE_INTERVAL:-60}
CONNECT_RATE=${SCALE_CONNECT_RATE:-2000}
GUARD_MS=${SCALE_GUARD_MS:-1000}
QOS=${SCALE_QOS:-0}
BUILD=${HB_BUILD_DIR:-build}

# Accounts: a fixed count per account gives exactly SCALE_DEVICES devices.
per_max=${PER_ACCOUNT#*-}
if [[ $PER_ACCOUNT == *-* ]]; then
  per_min=${PER_ACCOUNT%-*}
  ACCOUNTS=$(( DEVICES * 2 / (per_min + per_max) ))
else
  ACCOUNTS=$(( (DEVICES + PER_ACCOUNT - 1) / PER_ACCOUNT ))
fi
BROKERS=${SCALE_BROKERS:-$(( (DEVICES + 15999) / 16000 ))}
if [ -z "${SCALE_SOURCES:-}" ]; then
  n=$(( (DEVICES + 9999) / 10000 ))
  SOURCES="127.0.0.2-127.0.0.$(( n + 1 ))"
else
  SOURCES=$SCALE_SOURCES
fi
RAMP=$(( DEVICES / CONNECT_RATE + 1 ))

if [ ! -d "$BUILD" ]; then
  bash scripts/deps.sh
  meson setup "$BUILD" >/dev/null
fi
if ! out=$(ninja -C "$BUILD" 2>&1); then echo "$out" >&2; exit 1; fi
bin=$(cd "$BUILD" && pwd)
AUTH=${SCALE_AUTH:-$([ -f "$bin/plugin/hb_auth.so" ] && echo 1 || echo 0)}

# Every process of the fleet may use the hard open-file limit.
ulimit -n "$(ulimit -Hn)"
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, open files $(ulimit -n)," \
     "ephemeral ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range), load $(cut -d' ' -f1-3 /proc/loadavg)"

if awk '{exit !($1 > 1.0)}' /proc/loadavg; then
  echo "warning: the machine is busy (load $(cut -d' ' -f1 /proc/loadavg)); at full size the run" \
       "needs both cores to itself" >&2
fi

work=$(mktemp -d /tmp/hb-scale.XXXXXX)
chmod 711 "$work" # the brokers drop to the mosquitto user when started as root
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${SCALE_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 400); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2; return 1
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_s() { awk '{printf "%.1f", ($14 + $15 + $16 + $17) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }

key=$work/scale.key
openssl rand -hex 32 >"$key"
if [ "$(id -u)" = 0 ] && getent group mosquitto >/dev/null; then
  chgrp mosquitto "$key"; chmod 640 "$key"
fi

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no \
  >"$work/redis.log" 2>&1 & pids+=($!)
redis_pid=$!
wait_for "redis" redis-cli -p "$redis_port" ping

# A share of the devices per broker, with room for reconnects.
max_conn=$(( (DEVICES + BROKERS - 1) / BROKERS + 1000 ))
broker_args=()
broker_pids=()
for i in $(seq "$BROKERS"); do
  port=$(free_port)
  conf=$work/mosquitto-$port.conf
  {
    echo "listener $port 127.0.0.1"
    echo "max_connections $max_conn"
    # As deploy/: a deep queue and a wide QoS 1 window towards the consumer (the default
    # window of 20 unacknowledged messages caps a consumer at 20 per round trip per broker).
    echo "max_queued_messages 1000000"
    echo "max_inflight_messages 1000"
    echo "persistence false"
    echo "connection_messages false"
    echo "log_type error"
    echo "log_type warning"
    if [ "$AUTH" = 1 ]; then
      echo "allow_anonymous false"
      echo "plugin $bin/plugin/hb_auth.so"
      echo "plugin_opt_key_file $key"
      echo "retain_available false"
    else
      echo "allow_anonymous true"
    fi
  } >"$conf"
  mosquitto -c "$conf" >"$work/mosquitto-$port.log" 2>&1 & pids+=($!)
  broker_pids+=($!)
  broker_args+=(--broker "tcp://127.0.0.1:$port")
  wait_for "mosquitto on port $port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
done
broker_idle_kib=0
for pid in "${broker_pids[@]}"; do broker_idle_kib=$(( broker_idle_kib + $(rss_kib "$pid") )); done

consumer_env=()
sim_auth=()
if [ "$AUTH" = 1 ]; then
  consumer_env=(HB_MQTT_USERNAME=consumer "HB_MQTT_PASSWORD=$("$bin/token/hb-token" --key "$key" \
                --role consumer --ttl 86400)")
  sim_auth=(--key "$key")
fi
env "${consumer_env[@]}" "$bin/consumer/hb-consumer" "${broker_args[@]}" \
  --redis "redis://127.0.0.1:$redis_port" --interval "$INTERVAL" --stats-interval 1 \
  >"$work/consumer.log" 2>&1 & pids+=($!)
consumer_pid=$!
subscribed() { [ "$(grep -c ': subscribed to ' "$work/consumer.log")" -ge "$BROKERS" ]; }
wait_for "the consumer to subscribe to $BROKERS brokers" subscribed

source_args=()
[ "$SOURCES" != none ] && source_args=(--source-address "$SOURCES")
# End a few seconds after a boundary: the last complete interval's keys then live about one
# more interval, time enough for the consumer to drain and the checker to compare.
if [ -z "${SCALE_DURATION:-}" ]; then
  now=$(date +%s)
  end=$(( now + RAMP + RAMP / 2 + 2 * INTERVAL ))
  end=$(( (end / INTERVAL + 1) * INTERVAL + 3 ))
  DURATION=$(( end - now ))
else
  DURATION=$SCALE_DURATION
fi
echo "scale: $DEVICES devices in $ACCOUNTS accounts ($PER_ACCOUNT each), $BROKERS brokers" \
     "(auth $([ "$AUTH" = 1 ] && echo "on: hb_auth plugin, a token per device" || echo off)," \
     "max_connections $max_conn), sources $SOURCES, heartbeat ${HEARTBEAT}s, interval ${INTERVAL}s," \
     "qos $QOS, connect rate $CONNECT_RATE/s, ${DURATION}s; work dir $work"

# Samples the fleet every 2 s while the simulator runs: the most broker memory and sockets.
sampler() {
  local peak_kib=0 peak_fds=0
  while kill -0 "$1" 2>/dev/null; do
    local kib=0 fds=0
    for pid in "${broker_pids[@]}"; do
      kib=$(( kib + $(rss_kib "$pid") ))
      fds=$(( fds + $(ls "/proc/$pid/fd" 2>/dev/null | wc -l) ))
    done
    (( kib > peak_kib )) && peak_kib=$kib
    (( fds > peak_fds )) && peak_fds=$fds
    echo "$peak_kib $peak_fds" >"$work/broker-peak"
    sleep 2
  done
}
cpu0=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat)
sim_status=0
"$bin/publisher-sim/hb-sim" "${broker_args[@]}" "${source_args[@]}" "${sim_auth[@]}" \
  --accounts "$ACCOUNTS" --devices-per-account "$PER_ACCOUNT" --churn 0 \
  --heartbeat "$HEARTBEAT" --interval "$INTERVAL" --guard-ms "$GUARD_MS" --qos "$QOS" \
  --connect-rate "$CONNECT_RATE" --duration "$DURATION" --truth "$work/truth.jsonl" --json \
  >"$work/sim.json" & sim_pid=$!
sampler "$sim_pid" & sampler_pid=$!
wait "$sim_pid" || sim_status=$?
wait "$sampler_pid" || true
cpu1=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat)
published=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["published"])' \
            "$work/sim.json" 2>/dev/null || echo 0)

# Everything published must reach Redis before the comparison; SIGTERM then flushes the rest.
written() {
  local w
  w=$(grep -o ' written=[0-9]*' "$work/consumer.log" | tail -1 | cut -d= -f2)
  [ "${w:-0}" -ge "$published" ]
}
sim_end=$(date +%s.%N)
for _ in $(seq 1200); do written && break; sleep 0.1; done # at most 2 minutes
catch_up=$(echo "$(date +%s.%N) $sim_end" | awk '{printf "%.1f", $1 - $2}')
broker_cpu=$(for pid in "${broker_pids[@]}"; do cpu_s "$pid"; echo; done | awk '{s += $1} END {print s + 0}')
consumer_cpu=$(cpu_s "$consumer_pid")
redis_cpu=$(cpu_s "$redis_pid")
kill -TERM "$consumer_pid"; wait "$consumer_pid" || true
consumer_stats=$(grep " stats " "$work/consumer.log" | tail -1 | sed 's/.* stats //')

verify_status=0
"$bin/checker/hb-check" --redis "redis://127.0.0.1:$redis_port" --interval "$INTERVAL" \
  --verify "$work/truth.jsonl" --verbose >"$work/verify.txt" 2>&1 || verify_status=$?

python3 - "$work" "$DEVICES" "$BROKERS" "$broker_idle_kib" "$cpu0" "$cpu1" "$broker_cpu" \
  "$consumer_cpu" "$redis_cpu" "$consumer_stats" "$sim_status" "$verify_status" "$catch_up" <<'PY'
import collections, json, sys
work, devices, brokers, idle_kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
busy0, idle0 = map(int, sys.argv[5].split()); busy1, idle1 = map(int, sys.argv[6].split())
broker_cpu, consumer_cpu, redis_cpu = map(float, sys.argv[7:10])
stats = dict(kv.split("=") for kv in sys.argv[10].split())
sim_status, verify_status = int(sys.argv[11]), int(sys.argv[12])
catch_up = float(sys.argv[13])
try:
    sim = json.load(open(f"{work}/sim.json"))
except (OSError, ValueError):
    sim = {}
per_interval = collections.Counter()
accounts = collections.defaultdict(int)
try:
    with open(f"{work}/truth.jsonl") as f:
        for line in f:
            row = json.loads(line)
            per_interval[row["interval_start"]] += len(row["devices"])
except (OSError, ValueError) as e:
    print(f"truth: {e}")
verify = open(f"{work}/verify.txt").read().strip().splitlines()
verify_line = next((l for l in reversed(verify) if l.startswith("verify:")), "verify: (no result)")
# Devices the checker confirmed, per interval: the claim needs an interval where it confirmed
# every device.
confirmed = collections.Counter()
for line in verify:
    if line.startswith("ok "):
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        confirmed[int(fields["interval_start"])] += int(fields["expected"])
try:
    peak_kib, peak_fds = map(int, open(f"{work}/broker-peak").read().split())
except (OSError, ValueError):
    peak_kib, peak_fds = 0, 0
full = max(per_interval.values(), default=0)
devices = sim.get("devices", devices)
best_confirmed = max(confirmed.values(), default=0)
connected = sim.get("connected_max", 0)
busy = (busy1 - busy0) / max(1, (busy1 - busy0) + (idle1 - idle0)) * 100
def num(v):
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"
rows = [
    ("devices connected at once (peak)", num(connected)),
    ("devices in one complete interval", f"{full:,} of {devices:,} (best of {len(per_interval)} interval(s))"),
    ("brokers", num(brokers)),
    ("source addresses", num(sim.get("source_addresses"))),
    ("simulator workers", num(sim.get("workers"))),
    ("time to connect all", f"{num(sim.get('time_to_connect_all_s'))} s ({num(sim.get('connect_rate'))} connections/s)"),
    ("heartbeats/s once all connected", num(sim.get("heartbeats_per_s_all_connected"))),
    ("published / acked / lost", f"{num(sim.get('published'))} / {num(sim.get('acked'))} / {num(sim.get('lost'))}"),
    ("connect errors (failed/refused/dropped)",
     f"{num(sim.get('connect_failed'))}/{num(sim.get('refused'))}/{num(sim.get('dropped'))}"),
    ("checker", verify_line),
    ("devices the checker confirmed in one interval", f"{best_confirmed:,}"),
    ("consumer", " ".join(f"{k}={stats.get(k, '?')}" for k in
                         ("received", "written", "rejected", "dropped", "latency_p50_ms", "latency_p99_ms"))
                 + f" (1001 = 1 s or more); all written {catch_up:.1f} s after the simulator ended"),
    ("sim memory per connection", f"{num(sim.get('memory_per_connection_bytes'))} bytes (Pss; RSS {num(sim.get('rss_kib'))} KiB in all)"),
    ("sim descriptors per connection", num(sim.get("fds_per_connection"))),
    ("broker memory per connection", f"{(peak_kib - idle_kib) * 1024 / max(1, connected):,.0f} bytes "
                                     f"(VmRSS {peak_kib:,} KiB at the peak, {idle_kib:,} KiB idle)"),
    ("broker sockets at the peak", num(peak_fds)),
    ("CPU busy during the run", f"{busy:.0f} % of all cores; brokers {broker_cpu:.0f} s, consumer {consumer_cpu:.0f} s, redis {redis_cpu:.0f} s"),
]
width = max(len(k) for k, _ in rows)
print()
for k, v in rows:
    print(f"{k:<{width}}  {v}")
ok = (sim_status == 0 and verify_status == 0 and full == devices and best_confirmed == devices
      and " 0 checked" not in verify_line)
print("\nscale: " + ("PASS: every account's count equals the truth, and one complete interval saw "
                     f"all {devices:,} devices" if ok else "FAIL (see above)"))
if verify_status != 0:
    print("\n".join(l for l in verify if not l.startswith("ok "))[:4000])
sys.exit(0 if ok else 1)
PY
