#!/usr/bin/env bash
# The benchmark, one command: builds what it needs, then bench/bench.py starts a private
# mosquitto and redis-server on loopback and measures the ceiling, hb-consumer, the floor, the
# Python and Node.js peers and the simulator in one run. Results go to
# bench/results/<UTC timestamp>/; a full run also rewrites BENCHMARKS.md and bench/latest/.
#
#   bash bench/run.sh                 full run (~10-15 min), then the admission benchmark
#   bash bench/run.sh pipeline        the heartbeat pipeline only
#   bash bench/run.sh admission       the admission benchmark only (bench/admission.py, ~12 min):
#                                     hb-api vs a Node.js peer vs redis-benchmark, wrk, one Redis
#   bash bench/run.sh live            issue 11's figures (bench/live_dash.py, ~5 min): hb-consumer
#                                     with and without --live at 20,000/s, and GET /dashboard/data
#                                     with 200,000 devices; results in bench/results/live-<stamp>/
#   bash bench/run.sh versus DIR      hb-consumer of this build against the one in build dir DIR
#                                     (e.g. a build of an older commit): CPU per heartbeat at
#                                     20,000/s, A B / B A, three rounds, then a perf profile of
#                                     each; bench/results/live-<stamp>/. On a busy machine,
#                                     BENCH_VERSUS_ARGS="--callgrind --live-rate 1000" compares
#                                     instructions per heartbeat under valgrind instead
#   BENCH_QUICK=1 bash bench/run.sh   smoke run (~2-3 min), does not touch BENCHMARKS.md
#
# Environment: HB_BUILD_DIR (default build), BENCH_RATES (e.g. 5000,40000), BENCH_SUBJECTS
# (consumer,floor,python,node), BENCH_DURATION (seconds per step), BENCH_SIM_DEVICES,
# BENCH_PROFILE_RATE (0 = no perf profile), BENCH_REPEAT (runs of consumer and floor per rate),
# BENCH_CONSUMER_ARGS (extra hb-consumer options, to compare settings), BENCH_WRITE_DOCS (1/0),
# BENCH_MAX_LOAD (wait for the load average to drop below this first, default 1.0; 0 = don't),
# BENCH_ADMISSION_ARGS (extra bench/admission.py options, e.g. "--rounds 1 --algs hs256"),
# BENCH_VERSUS_ARGS (extra bench/live_dash.py options for versus).
# Missing Debian packages (the project's, gnuplot, wrk, redis-tools, valgrind) are installed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${HB_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
quick=${BENCH_QUICK:-0}

die() {
    echo "bench: $*" >&2
    exit 1
}

# --- what must be installed ---------------------------------------------------------------
what=${1:-all}
case $what in
    all | pipeline | admission | live) ;;
    versus) [[ -x ${2:-}/consumer/hb-consumer ]] || die "versus: no consumer/hb-consumer in '${2:-}'" ;;
    *) die "usage: bash bench/run.sh [all|pipeline|admission|live|versus DIR]" ;;
esac
# scripts/deps.sh installs the build's packages and the benchmark's own, each only when its
# command is missing (Node.js may come with its own npm from elsewhere).
extra=()
declare -A package_of=([gnuplot]=gnuplot-nox [wrk]=wrk [redis-benchmark]=redis-tools
    [valgrind]=valgrind [callgrind_annotate]=valgrind [node]=nodejs [npm]=npm)
for cmd in "${!package_of[@]}"; do
    command -v "$cmd" >/dev/null || extra+=("${package_of[$cmd]}")
done
/usr/bin/python3 -c 'import redis' 2>/dev/null || extra+=(python3-redis)
bash "$root/scripts/deps.sh" "${extra[@]}" || die "could not install what it needs (see above)"
missing=()
for cmd in mosquitto mosquitto_pub mosquitto_sub redis-server redis-benchmark gnuplot wrk node \
    npm cc meson ninja openssl; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
/usr/bin/python3 -c 'import paho.mqtt.client, redis' 2>/dev/null || missing+=("python3 modules")
((${#missing[@]} == 0)) || die "still missing after installing: ${missing[*]}"

# --- the programs under test --------------------------------------------------------------
if [[ ! -f $build/build.ninja ]]; then
    echo "bench: configuring $build" >&2
    meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" consumer/hb-consumer checker/hb-check publisher-sim/hb-sim api/hb-api >/dev/null ||
    die "cannot build in $build; try HB_BUILD_DIR=build-bench bash bench/run.sh"

# The generator and the floor: from the project build once the root meson.build includes
# bench/, otherwise compiled here with the same flags that matter.
if grep -q 'bench/hb-loadgen:' "$build/build.ninja"; then
    ninja -C "$build" bench/hb-loadgen bench/hb-nullsub bench/hb-admitload bench/hb-admit-script \
        >/dev/null || die "cannot build bench/"
    tools=$build/bench
else
    tools=$build/bench-standalone
    mkdir -p "$tools"
    flags=(-std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE)
    cc "${flags[@]}" -o "$tools/hb-loadgen" "$here/loadgen.c" -lmosquitto
    cc "${flags[@]}" -pthread -o "$tools/hb-nullsub" "$here/nullsub.c" -lpaho-mqtt3as
fi

# The Node.js peer's packages, exactly as locked (live: playwright-core from web/ for the page).
if [[ $what == live ]]; then
    [[ -d $root/web/node_modules/playwright-core ]] ||
        (cd "$root/web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in web/"
fi
if [[ ! -f $here/node/node_modules/.package-lock.json ||
    $here/node/package-lock.json -nt $here/node/node_modules/.package-lock.json ]]; then
    echo "bench: npm ci in bench/node" >&2
    (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi

# --- a quiet machine ----------------------------------------------------------------------
max_load=${BENCH_MAX_LOAD:-1.0}
if [[ $max_load != 0 ]]; then
    for ((i = 0; i < 60; i++)); do
        load=$(cut -d' ' -f1 /proc/loadavg)
        awk -v l="$load" -v m="$max_load" 'BEGIN { exit !(l < m) }' && break
        ((i == 0)) && echo "bench: load average $load >= $max_load; waiting up to 10 min" >&2
        sleep 10
    done
fi

# --- the run ------------------------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [[ $what == live ]]; then
    # shellcheck disable=SC2086 # extra options are words
    exec /usr/bin/python3 "$here/live_dash.py" --build "$build" --tools "$tools" \
        --out "$here/results/live-$stamp" ${BENCH_LIVE_ARGS:-}
fi
if [[ $what == versus ]]; then
    exec /usr/bin/python3 "$here/live_dash.py" --build "$build" --tools "$tools" \
        --out "$here/results/live-$stamp" --base-build "$(cd "$2" && pwd)" --no-live \
        --dash-devices 0 ${BENCH_VERSUS_ARGS:-}
fi
if [[ $what != admission ]]; then
    out=$here/results/$stamp
    args=(--build "$build" --tools "$tools" --out "$out")
    if [[ $quick == 1 ]]; then
        args+=(--mode quick --rates "${BENCH_RATES:-10000,40000}" --duration "${BENCH_DURATION:-4}"
            --warmup 1 --drain-timeout 30 --ceiling-count 250000 --repeat "${BENCH_REPEAT:-1}"
            --sim-devices "${BENCH_SIM_DEVICES:-2000}" --sim-hold 3
            --profile-rate "${BENCH_PROFILE_RATE:-0}")
        [[ ${BENCH_WRITE_DOCS:-0} == 1 ]] && args+=(--write-docs)
    else
        args+=(--mode full --rates "${BENCH_RATES:-5000,10000,20000,40000,50000,60000,70000,80000}"
            --duration "${BENCH_DURATION:-10}" --repeat "${BENCH_REPEAT:-3}"
            --sim-devices "${BENCH_SIM_DEVICES:-10000}" --profile-rate "${BENCH_PROFILE_RATE:-40000}")
        [[ ${BENCH_WRITE_DOCS:-1} == 1 ]] && args+=(--write-docs)
    fi
    [[ -n ${BENCH_SUBJECTS:-} ]] && args+=(--subjects "$BENCH_SUBJECTS")
    [[ -n ${BENCH_CONSUMER_ARGS:-} ]] && args+=(--consumer-args "$BENCH_CONSUMER_ARGS")
    /usr/bin/python3 "$here/bench.py" "${args[@]}"
fi
if [[ $what != pipeline ]]; then
    [[ -x $build/bench/hb-admit-script && -x $build/bench/hb-admitload ]] ||
        die "the admission benchmark needs bench/ in the meson build ($build/bench/hb-admitload)"
    args=(--build "$build" --out "$here/results/admission-$stamp")
    if [[ $quick == 1 ]]; then
        args+=(--rounds 1 --duration "${BENCH_DURATION:-4}" --ceiling-count 50000
            --profile-requests 0)
        [[ ${BENCH_WRITE_DOCS:-0} == 1 ]] && args+=(--write-docs)
    else
        args+=(--duration "${BENCH_DURATION:-10}")
        [[ ${BENCH_WRITE_DOCS:-1} == 1 ]] && args+=(--write-docs)
    fi
    # shellcheck disable=SC2086 # extra options are words
    /usr/bin/python3 "$here/admission.py" "${args[@]}" ${BENCH_ADMISSION_ARGS:-}
fi
