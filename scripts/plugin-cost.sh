#!/usr/bin/env bash
# The hb_auth plugin's cost per message at scale: one mosquitto with the plugin (a token per
# device) and one without (anonymous), each holding COST_DEVICES devices that send one heartbeat
# a second to a subscriber on the shared subscription, as the consumer would. Broker CPU per
# heartbeat comes from /proc over the simulator's steady phase (--hold), the two brokers run
# one after the other, interleaved (A B, B A, ...), COST_REPEAT times; the median ratio is the
# answer (goal: within 1.1x).
#
#   COST_DEVICES  devices per broker, default 10000 (one broker here holds ~19,000 sockets)
#   COST_HOLD     steady phase, seconds, default 30
#   COST_REPEAT   repetitions of the pair, default 3
#   HB_BUILD_DIR  build directory, default build
# Also: bash scripts/scale.sh --plugin-cost. Exits 0 when the median ratio is within 1.1.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${COST_DEVICES:-10000}
HOLD=${COST_HOLD:-30}
REPEAT=${COST_REPEAT:-3}
BUILD=${HB_BUILD_DIR:-build}

bash scripts/deps.sh
[ -d "$BUILD" ] || meson setup "$BUILD" >/dev/null
if ! out=$(ninja -C "$BUILD" 2>&1); then echo "$out" >&2; exit 1; fi
bin=$(cd "$BUILD" && pwd)
[ -f "$bin/plugin/hb_auth.so" ] || { echo "plugin-cost: $bin/plugin/hb_auth.so is not built" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
echo "plugin cost: $DEVICES devices per broker, 1 heartbeat/s, steady phase ${HOLD}s, $REPEAT" \
     "repetitions; load $(cut -d' ' -f1-3 /proc/loadavg)"

work=$(mktemp -d /tmp/hb-plugin-cost.XXXXXX)
chmod 711 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
key=$work/cost.key
openssl rand -hex 32 >"$key"
if [ "$(id -u)" = 0 ] && getent group mosquitto >/dev/null; then
  chgrp mosquitto "$key"; chmod 640 "$key"
fi
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# One measurement: a fresh broker (plugin: 1 or 0), a subscriber, the simulator; prints
# "µs-per-heartbeat heartbeats/s" for the broker over the steady phase.
measure() {
  local plugin=$1 port conf broker sub sim_pid samples=$work/samples-$1-$2
  port=$(free_port)
  conf=$work/mosquitto-$port.conf
  {
    echo "listener $port 127.0.0.1"
    echo "max_connections $(( DEVICES + 1000 ))"
    echo "max_queued_messages 1000000"
    echo "max_inflight_messages 1000"
    echo "persistence false"
    echo "connection_messages false"
    echo "log_type error"
    if [ "$plugin" = 1 ]; then
      echo "allow_anonymous false"
      echo "plugin $bin/plugin/hb_auth.so"
      echo "plugin_opt_key_file $key"
      echo "retain_available false"
    else
      echo "allow_anonymous true"
    fi
  } >"$conf"
  mosquitto -c "$conf" >"$work/mosquitto-$port.log" 2>&1 & broker=$!; pids+=("$broker")
  for _ in $(seq 200); do bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break; sleep 0.05; done
  local auth=() sim_auth=()
  if [ "$plugin" = 1 ]; then
    auth=(-u consumer -P "$("$bin/token/hb-token" --key "$key" --role consumer --ttl 86400)")
    sim_auth=(--key "$key")
  fi
  mosquitto_sub -h 127.0.0.1 -p "$port" "${auth[@]}" -i cost-sub -t '$share/hb-consumers/hb/+/+' \
    >/dev/null 2>&1 & sub=$!; pids+=("$sub")
  "$bin/publisher-sim/hb-sim" --broker "tcp://127.0.0.1:$port" "${sim_auth[@]}" --quiet --json \
    --accounts $(( DEVICES / 4 )) --devices-per-account 4 --churn 0 --heartbeat 1 --qos 0 \
    --connect-rate 2000 --duration $(( DEVICES / 500 + HOLD + 60 )) --hold "$HOLD" \
    >"$work/sim-$1-$2.json" 2>"$work/sim-$1-$2.log" & sim_pid=$!
  while kill -0 "$sim_pid" 2>/dev/null; do
    echo "$(date +%s%3N) $(ticks "$broker")" >>"$samples"
    sleep 1
  done
  wait "$sim_pid" || true
  kill "$sub" "$broker"; wait "$sub" "$broker" 2>/dev/null || true
  /usr/bin/python3 - "$work/sim-$1-$2.json" "$samples" <<'PY'
import json, sys
sim = json.load(open(sys.argv[1]))
samples = [list(map(int, l.split())) for l in open(sys.argv[2]) if len(l.split()) == 2]
if not sim.get("steady_s") or sim.get("steady_connections_held") != sim["devices"]:
    print("nan nan"); sys.exit()
t0 = sim["start_ms"] + sim["time_to_connect_all_s"] * 1000 + 2000  # past the ramp's tail
t1 = sim["end_ms"] - 1000
inside = [s for s in samples if t0 <= s[0] <= t1]
if len(inside) < 2:
    print("nan nan"); sys.exit()
(a, ta), (b, tb) = inside[0], inside[-1]
rate = sim["steady_heartbeats_per_s"]
print(f"{(tb - ta) / 100 * 1e6 / (rate * (b - a) / 1000):.2f} {rate:.0f}")
PY
}

results=()
for r in $(seq "$REPEAT"); do
  order=(0 1); (( r % 2 == 0 )) && order=(1 0) # interleaved: neither always goes first
  for plugin in "${order[@]}"; do
    read -r us rate < <(measure "$plugin" "$r")
    echo "  run $r: $([ "$plugin" = 1 ] && echo "with the plugin   " || echo "without the plugin")" \
         "$us µs of broker CPU per heartbeat at $rate heartbeats/s"
    results+=("$r $plugin $us")
  done
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    r, plugin, us = line.split()
    runs.setdefault(r, {})[plugin] = float(us)
ratios = [v["1"] / v["0"] for v in runs.values() if v.get("0", 0) > 0]
ratios = [x for x in ratios if x == x]
if len(ratios) < len(runs):
    # A run without a steady phase holding every device (a drop, a refused connect) is no
    # measurement, and a median of the rest would hide it.
    print(f"plugin cost: only {len(ratios)} of {len(runs)} pairs usable (nan: not every device "
          "held through the steady phase); run again on a quieter machine")
    sys.exit(1)
with_ = statistics.median(v["1"] for v in runs.values())
without = statistics.median(v["0"] for v in runs.values())
m = statistics.median(ratios)
pairs = ", ".join("%.2f" % x for x in ratios)
print(f"plugin cost: median {with_:.1f} µs with, {without:.1f} µs without per heartbeat; "
      f"ratio per pair {pairs}, median {m:.2f}x "
      + ("(within 1.1x)" if m <= 1.1 else "(over the 1.1x goal)"))
sys.exit(0 if m <= 1.1 else 1)'
