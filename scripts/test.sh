#!/usr/bin/env bash
# Builds with warnings as errors and runs the whole test suite:
#  - build/       the normal build: unit tests
#  - build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer: unit and integration tests
#    (integration tests start real mosquitto and redis-server on free loopback ports)
# Ends with one line "N passed, N failed".
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

meson test -C build --suite unit --print-errorlogs
meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 2

python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
                print("failed:", path.split("/")[0], json.loads(line)["name"])
suffix = f", {skipped} skipped" if skipped else ""
print(f"{passed} passed, {failed} failed{suffix}")
sys.exit(1 if failed or passed == 0 else 0)
PY
