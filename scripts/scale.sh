#!/usr/bin/env bash
# Proves the simulator's scale claim on this one machine: N devices, each its own MQTT
# connection authenticated with its own token, heartbeating against a fleet of local mosquitto
# processes (each with the hb_auth plugin), counted by hb-consumer into Redis. The simulator
# ramps up, then holds every device for --hold seconds (the steady phase); hb-check --verify
# --follow runs beside it and compares EVERY complete interval with the truth while its keys
# live. The output says where the machine's CPU went (brokers, consumer, Redis, simulator, the
# rest) per heartbeat, and every loss counter; PASS needs every interval compared, 0
# mismatched, 0 lost, 0 dropped.
#
# Starts everything on free loopback ports in a temporary directory and removes it at the end
# (SCALE_KEEP=1 keeps it). Not part of the test suite. Installs what it needs (scripts/deps.sh).
# Sizes come from the environment, e.g. a quick run:
#   SCALE_DEVICES=5000 SCALE_INTERVAL=10 bash scripts/scale.sh
# bash scripts/scale.sh --plugin-cost measures the plugin's broker CPU per heartbeat instead
# (scripts/plugin-cost.sh).
#
#   SCALE_DEVICES              devices (connections), default 200000
#   SCALE_DEVICES_PER_ACCOUNT  devices per account (M or MIN-MAX), default 4
#   SCALE_BROKERS              mosquitto processes, default: one per 16000 devices
#   SCALE_SOURCES              local source addresses: a range like 127.0.0.2-127.0.0.21,
#                              "none", or default one per 10000 devices
#   SCALE_HEARTBEAT            seconds between heartbeats, default 5
#   SCALE_INTERVAL             counting interval, seconds, default 60
#   SCALE_HOLD                 steady phase: seconds every device stays connected after the
#                              last one connected, default two intervals + 5 s (so at least
#                              one complete interval has every device)
#   SCALE_CONNECT_RATE         new connections per second, default 2000
#   SCALE_DURATION             the most the run may last (a ramp that never completes ends
#                              there), default three ramps + the hold + 30 s
#   SCALE_GUARD_MS             no heartbeat this close to a boundary (delivery latency the
#                              comparison tolerates), default 1000
#   SCALE_QOS                  0 or 1, default 0 (QoS 1 adds a PUBACK per heartbeat on both
#                              legs: see publisher-sim/README.md)
#   SCALE_AUTH                 1: brokers with the plugin and a token per device (default when
#                              the plugin is built); 0: anonymous
#   HB_BUILD_DIR               build directory, default build (set up and built if needed)
# Exits 0 on PASS, 1 on FAIL.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --plugin-cost ]; then shift; exec bash scripts/plugin-cost.sh "$@"; fi

DEVICES=${SCALE_DEVICES:-200000}
PER_ACCOUNT=${SCALE_DEVICES_PER_ACCOUNT:-4}
HEARTBEAT=${SCALE_HEARTBEAT:-5}
INTERVAL=${SCALE_INTERVAL:-60}
HOLD=${SCALE_HOLD:-$(( 2 * INTERVAL + 5 ))}
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
DURATION=${SCALE_DURATION:-$(( 3 * RAMP + HOLD + 30 ))}

bash scripts/deps.sh
[ -d "$BUILD" ] || meson setup "$BUILD" >/dev/null
if ! out=$(ninja -C "$BUILD" 2>&1); then echo "$out" >&2; exit 1; fi
bin=$(cd "$BUILD" && pwd)
AUTH=${SCALE_AUTH:-$([ -f "$bin/plugin/hb_auth.so" ] && echo 1 || echo 0)}

# Every process of the fleet may use the hard open-file limit.
ulimit -n "$(ulimit -Hn)"
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, open files $(ulimit -n)," \
     "ephemeral ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range), load $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{exit !($1 > 1.0)}' /proc/loadavg; then
  echo "warning: the machine is busy (load $(cut -d' ' -f1 /proc/loadavg)); a claim needs both" \
       "cores to itself (its CPU shows up as \"rest\" below)" >&2
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
# CPU ticks of a process and of the children it has reaped.
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }

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
broker_ports=()
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
  broker_ports+=("$port")
  broker_args+=(--broker "tcp://127.0.0.1:$port")
  wait_for "mosquitto on port $port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
done
broker_idle_kib=0
for pid in "${broker_pids[@]}"; do broker_idle_kib=$(( broker_idle_kib + $(rss_kib "$pid") )); done

consumer_env=()
sim_auth=()
if [ "$AUTH" = 1 ]; then
  consumer_token=$("$bin/token/hb-token" --key "$key" --role consumer --ttl 86400)
  consumer_env=(HB_MQTT_USERNAME=consumer "HB_MQTT_PASSWORD=$consumer_token")
  sim_auth=(--key "$key")
fi
# The brokers' own count of messages they dropped (queue overflow), summed; "?" if unreadable.
# The plugin delivers no retained message, $SYS included: with it, the consumer's lost (counted
# from each device's seq) is what shows a broker's drops.
broker_dropped() {
  local sum=0 v
  [ "$AUTH" = 1 ] && { echo "n/a (plugin)"; return; }
  for port in "${broker_ports[@]}"; do
    v=$(mosquitto_sub -h 127.0.0.1 -p "$port" -i "hb-scale-sys-$port" \
        -t '$SYS/broker/publish/messages/dropped' -C 1 -W 5 2>/dev/null) || { echo "?"; return; }
    sum=$(( sum + v ))
  done
  echo "$sum"
}

env "${consumer_env[@]}" "$bin/consumer/hb-consumer" "${broker_args[@]}" \
  --redis "redis://127.0.0.1:$redis_port" --interval "$INTERVAL" --stats-interval 1 \
  >"$work/consumer.log" 2>&1 & pids+=($!)
consumer_pid=$!
subscribed() { [ "$(grep -c ': subscribed to ' "$work/consumer.log")" -ge "$BROKERS" ]; }
wait_for "the consumer to subscribe to $BROKERS brokers" subscribed

# The checker beside the simulator: it reads each interval as soon as the watermark says it is
# complete and compares all of them with the truth once the simulator has written it.
"$bin/checker/hb-check" --redis "redis://127.0.0.1:$redis_port" --interval "$INTERVAL" \
  --verify "$work/truth.jsonl" --follow >"$work/verify.txt" 2>&1 & pids+=($!)
follow_pid=$!

source_args=()
[ "$SOURCES" != none ] && source_args=(--source-address "$SOURCES")
echo "scale: $DEVICES devices in $ACCOUNTS accounts ($PER_ACCOUNT each), $BROKERS brokers" \
     "(auth $([ "$AUTH" = 1 ] && echo "on: hb_auth plugin, a token per device" || echo off)," \
     "max_connections $max_conn), sources $SOURCES, heartbeat ${HEARTBEAT}s, interval ${INTERVAL}s," \
     "qos $QOS, connect rate $CONNECT_RATE/s, hold ${HOLD}s (run at most ${DURATION}s); work dir $work"

# Samples every second while the simulator runs: CPU ticks of each part and of the machine
# (for the steady phase), the most broker memory and sockets.
sampler() { # sim pid
  local peak_kib=0 peak_fds=0
  while kill -0 "$1" 2>/dev/null; do
    local kib=0 fds=0 b=0 s=0 pid
    for pid in "${broker_pids[@]}"; do
      kib=$(( kib + $(rss_kib "$pid") ))
      fds=$(( fds + $(ls "/proc/$pid/fd" 2>/dev/null | wc -l) ))
      b=$(( b + $(ticks "$pid") ))
    done
    s=$(tree_ticks "$1")
    echo "$(date +%s%3N) $b $(ticks "$consumer_pid") $(ticks "$redis_pid") $s" \
         "$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat)" >>"$work/samples"
    (( kib > peak_kib )) && peak_kib=$kib
    (( fds > peak_fds )) && peak_fds=$fds
    echo "$peak_kib $peak_fds" >"$work/broker-peak"
    sleep 1
  done
}
# A process and its descendants (the simulator's wrapper, hb-sim and its workers).
tree_ticks() {
  local t pid
  t=$(ticks "$1")
  for pid in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do t=$(( t + $(tree_ticks "$pid") )); done
  echo "$t"
}
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
parts_ticks() { # brokers consumer redis
  local b=0 pid
  for pid in "${broker_pids[@]}"; do b=$(( b + $(ticks "$pid") )); done
  echo "$b $(ticks "$consumer_pid") $(ticks "$redis_pid")"
}
cpu0="$(parts_ticks) $(machine_ticks)"
# The simulator's CPU, its workers included, exactly: wait4's usage of the process tree.
/usr/bin/python3 - "$work/sim.cpu" "$bin/publisher-sim/hb-sim" "${broker_args[@]}" \
  "${source_args[@]}" "${sim_auth[@]}" \
  --accounts "$ACCOUNTS" --devices-per-account "$PER_ACCOUNT" --churn 0 \
  --heartbeat "$HEARTBEAT" --interval "$INTERVAL" --guard-ms "$GUARD_MS" --qos "$QOS" \
  --connect-rate "$CONNECT_RATE" --duration "$DURATION" --hold "$HOLD" \
  --truth "$work/truth.jsonl" --json >"$work/sim.json" 2>"$work/sim.log" <<'PY' & sim_pid=$!
import os, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
while True:
    try:
        _, status, usage = os.wait4(child.pid, 0)
        break
    except InterruptedError:
        continue
with open(sys.argv[1], "w") as f:
    f.write(f"{round((usage.ru_utime + usage.ru_stime) * 100)}\n")
sys.exit(os.waitstatus_to_exitcode(status))
PY
pids+=("$sim_pid")
sampler "$sim_pid" &
sampler_pid=$!
sim_status=0
wait "$sim_pid" || sim_status=$?
wait "$sampler_pid" || true
sim_end=$(date +%s.%N)

# The checker ends once it has read the truth's last interval (complete at the next boundary).
follow_status=0
wait "$follow_pid" || follow_status=$?
catch_up=$(echo "$(date +%s.%N) $sim_end" | awk '{printf "%.1f", $1 - $2}')
cpu1="$(parts_ticks) $(machine_ticks)"
dropped_broker=$(broker_dropped)
kill -TERM "$consumer_pid"; consumer_status=0; wait "$consumer_pid" || consumer_status=$?
consumer_stats=$(grep " stats " "$work/consumer.log" | tail -1 | sed 's/.* stats //')

/usr/bin/python3 - "$work" "$DEVICES" "$BROKERS" "$broker_idle_kib" "$cpu0" "$cpu1" \
  "$consumer_stats" "$sim_status" "$follow_status" "$catch_up" "$dropped_broker" \
  "$consumer_status" "$(nproc)" <<'PY'
import collections, json, re, sys
work, devices, brokers, idle_kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu0, cpu1 = [list(map(int, a.split())) for a in sys.argv[5:7]]
stats = dict(kv.split("=", 1) for kv in sys.argv[7].split())
sim_status, follow_status, catch_up = int(sys.argv[8]), int(sys.argv[9]), float(sys.argv[10])
broker_dropped, consumer_status, cores = sys.argv[11], int(sys.argv[12]), int(sys.argv[13])
HZ = 100
try:
    sim = json.load(open(f"{work}/sim.json"))
except (OSError, ValueError):
    sim = {}
try:
    sim_ticks = int(open(f"{work}/sim.cpu").read())
except (OSError, ValueError):
    sim_ticks = 0

# The truth: devices per interval.
truth_devices = collections.Counter()
truth_lines = 0
try:
    for line in open(f"{work}/truth.jsonl"):
        row = json.loads(line)
        truth_devices[row["interval_start"]] += len(row["devices"])
        truth_lines += 1
except (OSError, ValueError) as e:
    print(f"truth: {e}")
# The checker: one line per interval it compared, and its totals.
verify = open(f"{work}/verify.txt").read().splitlines()
compared = {}
for line in verify:
    m = re.match(r"interval (\d+): (\d+) checked, (\d+) mismatched(.*)", line)
    if m:
        compared[int(m[1])] = (int(m[2]), int(m[3]), m[4].strip())
verify_line = next((l for l in reversed(verify) if l.startswith("verify:")), "verify: (no result)")
totals = dict((v, int(k)) for k, v in re.findall(r"(\d+) (checked|mismatched|skipped|bad lines|intervals read incomplete)", verify_line))
every = bool(truth_devices) and all(t in compared and compared[t][1] == 0 and not compared[t][2]
                                    for t in truth_devices)
full = [t for t, n in truth_devices.items() if n == sim.get("devices", devices) and t in compared]

# CPU: the whole run (exact, from /proc and wait4) and the steady phase (from 1 s samples).
def per_part(b, e, sim_t):
    parts = {"brokers": e[0] - b[0], "consumer": e[1] - b[1], "redis": e[2] - b[2],
             "simulator": sim_t}
    parts["rest of the machine"] = max(0, (e[3] - b[3]) - sum(parts.values()))
    return {k: v / HZ for k, v in parts.items()}
whole = per_part(cpu0, cpu1, sim_ticks)
published = sim.get("published", 0)
samples = []
try:
    samples = [list(map(int, l.split())) for l in open(f"{work}/samples") if len(l.split()) == 6]
except OSError:
    pass
steady = None
steady_hb = 0
if sim.get("steady_s") and sim.get("time_to_connect_all_s") is not None and samples:
    t0 = sim["start_ms"] + sim["time_to_connect_all_s"] * 1000
    t1 = sim["end_ms"]
    def at(t):  # linear between the samples around t
        for a, b in zip(samples, samples[1:]):
            if a[0] <= t <= b[0]:
                f = (t - a[0]) / max(1, b[0] - a[0])
                return [x + (y - x) * f for x, y in zip(a[1:], b[1:])]
        # Past the last sample (it is up to 1 s before the end): the nearest one.
        return (samples[0] if t < samples[0][0] else samples[-1])[1:]
    s0, s1 = at(t0), at(t1)
    if s0 and s1:
        d = [(y - x) / HZ for x, y in zip(s0, s1)]
        steady = {"brokers": d[0], "consumer": d[1], "redis": d[2], "simulator": d[3]}
        steady["rest of the machine"] = max(0, d[4] - sum(steady.values()))
        steady_hb = sim["steady_heartbeats_per_s"] * (t1 - t0) / 1000

def num(v):
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"
try:
    peak_kib, peak_fds = map(int, open(f"{work}/broker-peak").read().split())
except (OSError, ValueError):
    peak_kib, peak_fds = 0, 0
connected = sim.get("connected_max", 0)
lost = int(stats.get("lost", -1))
dropped = int(stats.get("dropped", -1))
rows = [
    ("devices connected at once (peak)", num(connected)),
    ("connections held in the steady phase", f"{num(sim.get('steady_connections_held'))} of "
     f"{num(sim.get('devices'))} for {num(sim.get('steady_s'))} s (--hold {num(sim.get('hold_s'))})"),
    ("heartbeats/s in the steady phase", num(sim.get("steady_heartbeats_per_s"))),
    ("brokers / source addresses / sim workers",
     f"{num(brokers)} / {num(sim.get('source_addresses'))} / {num(sim.get('workers'))}"),
    ("time to connect all", f"{num(sim.get('time_to_connect_all_s'))} s ({num(sim.get('connect_rate'))} connections/s)"),
    ("published / acked / sim lost", f"{num(sim.get('published'))} / {num(sim.get('acked'))} / {num(sim.get('lost'))}"),
    ("connect errors (failed/refused/dropped)",
     f"{num(sim.get('connect_failed'))}/{num(sim.get('refused'))}/{num(sim.get('dropped'))}"),
    ("intervals in the truth / compared", f"{len(truth_devices)} / {len(compared)} "
     f"({len(full)} complete interval(s) with all {num(sim.get('devices'))} devices)"),
    ("checker", verify_line),
    ("loss", f"consumer lost={stats.get('lost', '?')} dropped={stats.get('dropped', '?')} "
             f"expired={stats.get('expired', '?')}; brokers $SYS dropped={broker_dropped}"),
    ("consumer", " ".join(f"{k}={stats.get(k, '?')}" for k in
                         ("received", "written", "rejected", "latency_p50_ms", "latency_p99_ms"))
                 + f"; checker done {catch_up:.1f} s after the simulator ended"),
    ("sim memory per connection", f"{num(sim.get('memory_per_connection_bytes'))} bytes (Pss)"),
    ("broker memory per connection", f"{(peak_kib - idle_kib) * 1024 / max(1, connected):,.0f} bytes "
                                     f"(VmRSS {peak_kib:,} KiB at the peak, {idle_kib:,} KiB idle)"),
    ("broker sockets at the peak", num(peak_fds)),
]
width = max(len(k) for k, _ in rows)
print()
for k, v in rows:
    print(f"{k:<{width}}  {v}")

print(f"\nwhere the CPU went ({cores} cores)     whole run: CPU-s  µs/heartbeat"
      "   steady phase: CPU-s  µs/heartbeat   cores")
steady_len = (sim.get("steady_s") or 0)
for part in ["brokers", "consumer", "redis", "simulator", "rest of the machine"]:
    w = whole[part]
    line = f"  {part:<30} {w:>17,.1f} {w * 1e6 / max(1, published):>13,.1f}"
    if steady:
        s = steady[part]
        line += (f" {s:>20,.1f} {s * 1e6 / max(1, steady_hb):>13,.1f}"
                 f" {s / max(0.001, steady_len):>7.2f}")
    print(line)
w = sum(whole.values())
line = f"  {'all':<30} {w:>17,.1f} {w * 1e6 / max(1, published):>13,.1f}"
if steady:
    s = sum(steady.values())
    line += f" {s:>20,.1f} {s * 1e6 / max(1, steady_hb):>13,.1f} {s / max(0.001, steady_len):>7.2f}"
print(line)
print(f"  (heartbeats: {published:,} in the run, {steady_hb:,.0f} in the steady phase; "
      "\"rest\" is every other process, other users' included)")

reasons = []
if sim_status != 0:
    reasons.append(f"hb-sim exited {sim_status}")
if follow_status != 0:
    reasons.append(f"hb-check --follow exited {follow_status}")
if not every:
    missing = sorted(set(truth_devices) - set(compared))
    reasons.append(f"not every interval compared clean ({len(missing)} not compared)")
if totals.get("mismatched", 1) or totals.get("skipped", 1) or totals.get("intervals read incomplete", 0):
    reasons.append("mismatched, skipped or incomplete reads")
if totals.get("checked", 0) != truth_lines or truth_lines == 0:
    reasons.append(f"{totals.get('checked', 0)} of {truth_lines} truth lines checked")
if not full:
    reasons.append("no complete interval saw every device")
if sim.get("steady_s") is None:
    reasons.append("no steady phase (not every device connected)")
if lost != 0 or dropped != 0 or consumer_status != 0:
    reasons.append(f"consumer lost={lost} dropped={dropped} exit={consumer_status}")
if broker_dropped.isdigit() and broker_dropped != "0":
    reasons.append(f"brokers dropped {broker_dropped}")
if sim.get("lost", 1) or sim.get("dropped", 1) or sim.get("refused", 1):
    reasons.append("the simulator lost, or had connections refused or dropped")
print("\nscale: " + (f"PASS: {len(compared)} intervals compared, 0 mismatched, 0 lost; "
                     f"{sim.get('steady_connections_held', 0):,} connections held, "
                     f"{sim.get('steady_heartbeats_per_s', 0):,.0f} heartbeats/s"
                     if not reasons else "FAIL: " + "; ".join(reasons)))
if follow_status != 0:
    print("\n".join(l for l in verify if not l.startswith("ok "))[:4000])
sys.exit(0 if not reasons else 1)
PY
