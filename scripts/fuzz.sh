#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that takes network input (tests/fuzz): builds the
# libFuzzer targets with clang, AddressSanitizer and UndefinedBehaviorSanitizer in build-fuzz/,
# runs each on one core for SECONDS_PER_TARGET (default 60) over a scratch corpus plus the
# committed seeds, and prints per target the executions and the coverage gained. Exits 1 on any
# crash, leak or timeout, naming the input that caused it. The committed corpus is written only
# with --merge, which minimizes what the run found into tests/fuzz/corpus/<target>/.
#
#   bash scripts/fuzz.sh [--merge] [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."

# target:max_len (tokens reach 8 KiB, heartbeats a byte of topic length, a topic, ~2 KiB payload)
TARGETS="heartbeat:2048 json:2048 token:8192 redis_uri:1024"
BUILD=build-fuzz

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; }
merge=0
seconds=60
for arg in "$@"; do
    case $arg in
    --merge) merge=1 ;;
    -h | --help) usage; exit 0 ;;
    '' | *[!0-9]* | 0) usage >&2; exit 2 ;; # libFuzzer takes 0 s as no limit
    *) seconds=$arg ;;
    esac
done

# libFuzzer's runtime is in libclang-rt-14-dev on Debian 12, only a Recommends of clang.
probe_libfuzzer() {
    echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        clang -x c -fsanitize=fuzzer,address,undefined -o "$work/probe" - 2>"$work/probe.log"
}
work=$(mktemp -d /tmp/hb-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
if ! command -v clang >/dev/null || ! probe_libfuzzer; then
    echo "installing clang and libFuzzer (apt-get install -y clang libclang-rt-dev)"
    apt-get install -y clang libclang-rt-dev >"$work/apt.log" 2>&1 ||
        { apt-get update >/dev/null 2>&1 && apt-get install -y clang libclang-rt-dev >"$work/apt.log" 2>&1; } ||
        { cat "$work/apt.log"; exit 1; }
    probe_libfuzzer || { cat "$work/probe.log"; echo "clang cannot link libFuzzer"; exit 1; }
fi

options=(--werror -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
         -Dc_args=-fsanitize=fuzzer-no-link)
if [ -d "$BUILD" ]; then
    CC=clang meson setup --reconfigure "$BUILD" "${options[@]}" >"$work/setup.log" 2>&1
else
    CC=clang meson setup "$BUILD" "${options[@]}" >"$work/setup.log" 2>&1
fi || { cat "$work/setup.log"; exit 1; }
ninja -C "$BUILD" $(for t in $TARGETS; do echo "tests/fuzz/fuzz_${t%%:*}"; done) >"$work/ninja.log" ||
    { cat "$work/ninja.log"; exit 1; }

# Every sanitizer report ends the run, so libFuzzer saves the input.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"

# The value of "stat::NAME:" in a libFuzzer log.
stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
# Field NAME ("cov", "ft") of the first log line matching PATTERN, or of the last with a "cov:".
field() { { grep -E "$2" "$3" || true; } | sed -n "s/.* $1: \([0-9]*\).*/\1/p" | "${4:-head}" -n 1; }

failed=0
printf '%-10s %10s %8s %11s %11s %5s  %s\n' target execs exec/s cov ft new result
for spec in $TARGETS; do
    name=${spec%%:*}
    max_len=${spec#*:}
    bin=$PWD/$BUILD/tests/fuzz/fuzz_$name
    seeds=$PWD/tests/fuzz/corpus/$name
    artifacts=$PWD/$BUILD/fuzz-artifacts/$name
    run=$work/$name
    mkdir -p "$run/new" "$artifacts"
    # One job in one worker: a single core; libFuzzer writes the job's log to fuzz-0.log.
    status=0
    (cd "$run" && "$bin" -jobs=1 -workers=1 -max_total_time="$seconds" -max_len="$max_len" \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" new "$seeds") \
        >"$run/driver.log" 2>&1 || status=$?
    log=$run/fuzz-0.log
    [ -f "$log" ] || log=$run/driver.log
    cp "$log" "$artifacts/last-run.log"

    execs=$(stat_of number_of_executed_units "$log")
    cov0=$(field cov 'INITED' "$log")
    cov1=$(field cov ' cov: ' "$log" tail)
    ft0=$(field ft 'INITED' "$log")
    ft1=$(field ft ' ft: ' "$log" tail)
    new=$(find "$run/new" -type f | wc -l)
    crashes=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
    result=ok
    if [ "$status" -ne 0 ] || [ -n "$crashes" ]; then
        result=FAILED
        failed=1
    fi
    printf '%-10s %10s %8s %11s %11s %5s  %s\n' "$name" "${execs:-?}" \
        "$(stat_of average_exec_per_sec "$log")" "${cov0:-?}->${cov1:-?}" "${ft0:-?}->${ft1:-?}" \
        "$new" "$result"
    if [ "$result" != ok ]; then
        grep -E 'ERROR|SUMMARY|invariant violated|runtime error' "$log" | head -n 5 | sed 's/^/    /'
        for input in $crashes; do
            echo "    input: $input"
            echo "    reproduce: $bin $input"
        done
        echo "    log: $artifacts/last-run.log"
    elif [ "$merge" -eq 1 ] && [ "$new" -gt 0 ]; then
        before=$(find "$seeds" -type f | wc -l)
        "$bin" -merge=1 -max_len="$max_len" "$seeds" "$run/new" >"$run/merge.log" 2>&1 ||
            { cat "$run/merge.log"; exit 1; }
        echo "    merged $(($(find "$seeds" -type f | wc -l) - before)) inputs into tests/fuzz/corpus/$name"
    fi
done
exit $failed
