#!/usr/bin/env bash
# Runs the whole test command (scripts/test.sh) N times in a row in a fresh clone of COMMIT,
# with two busy loops taking the machine's cores the whole time, so a timing-sensitive test
# shows up as a failed run instead of a rare CI failure. One line per run goes to OUT/summary
# (exit status, closing line, seconds, load average); a failed run's meson logs are kept in
# OUT/failN/. Exits 1 at the first failed run unless KEEP_GOING=1.
#
#   bash scripts/soak.sh [COMMIT] [OUT] [N]     defaults: HEAD, /tmp/hb-soak, 10
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
commit=${1:-HEAD}
out=${2:-/tmp/hb-soak}
n=${3:-10}
mkdir -p "$out"
rm -rf "$out/repo"
git clone -q "$root" "$out/repo" && git -C "$out/repo" checkout -q "$commit" || exit 1
sh -c 'while :; do :; done' &
busy1=$!
sh -c 'while :; do :; done' &
busy2=$!
trap 'kill $busy1 $busy2 2>/dev/null' EXIT
echo "commit $(git -C "$out/repo" rev-parse --short HEAD) busy $busy1 $busy2 start $(date -u +%T)" >>"$out/summary"
status=0
for i in $(seq 1 "$n"); do
    start=$(date +%s)
    (cd "$out/repo" && bash scripts/test.sh) >"$out/run$i.log" 2>&1
    rc=$?
    echo "run $i rc=$rc $(tail -1 "$out/run$i.log") $(($(date +%s) - start))s" \
        "load $(cut -d' ' -f1-3 /proc/loadavg) end $(date -u +%T)" >>"$out/summary"
    if [ $rc -ne 0 ]; then
        status=1
        mkdir -p "$out/fail$i"
        cp -r "$out/repo/build-asan/meson-logs" "$out/fail$i/" 2>/dev/null
        [ "${KEEP_GOING:-0}" = 1 ] || break
    fi
done
cat "$out/summary"
exit $status
