#!/usr/bin/env bash
# Builds with warnings as errors and runs the whole test suite:
#  - format      scripts/format.sh --check: every C source matches .clang-format (one test)
#  - build/       the normal build: unit tests
#  - build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer: unit and integration tests
#    (integration tests start real mosquitto and redis-server on free loopback ports)
# Ends with one line "N passed, N failed" counting this run only, and exits non-zero when the
# build fails, any test fails, or no test ran at all.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

setup() { # dir, extra meson options...
  local dir=$1; shift
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" --werror "$@" >"$dir.setup.log" 2>&1
  else
    meson setup "$dir" --werror "$@" >"$dir.setup.log" 2>&1
  fi || { cat "$dir.setup.log"; return 1; }
  ninja -C "$dir" || return 1
}

# Sanitizers: abort on the first report, so a test cannot pass with one.
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"

failed_setup=0
setup build || failed_setup=1
setup build-asan -Db_sanitize=address,undefined -Db_lundef=false || failed_setup=1
if [ $failed_setup -ne 0 ]; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

format_rc=0
bash scripts/format.sh --check || format_rc=1

# Each meson run writes a fresh log here; a log left from an earlier run must never be counted.
rm -f build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
meson test -C build --suite unit --print-errorlogs
unit_rc=$?
meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 2
asan_rc=$?

python3 - "$format_rc" "$unit_rc" "$asan_rc" \
  build/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'PY'
import json, os, sys
format_rc, unit_rc, asan_rc = map(int, sys.argv[1:4])
passed = failed = 0
if format_rc == 0:
    passed += 1
else:
    failed += 1
    print("failed: format (scripts/format.sh --check)")
for path, rc in zip(sys.argv[4:], (unit_rc, asan_rc)):
    build = path.split("/")[0]
    ran = bad = 0
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                ran += 1
                if row["result"] in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                else:  # FAIL, TIMEOUT, ERROR, and SKIP: a test that did not run did not pass
                    bad += 1
                    print(f"failed: {build} {row['name']} ({row['result']})")
    if ran == 0:
        bad += 1
        print(f"failed: {build}: no test ran")
    elif rc != 0 and bad == 0:
        # meson said no, yet no test in its log failed: count that, never pass over it.
        bad += 1
        print(f"failed: {build}: meson test exited {rc}")
    failed += bad
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
