#!/usr/bin/env bash
# Installs the Debian packages the project needs to build, test and run, when any is missing.
# Extra packages may be named as arguments. Idempotent and quiet when everything is there. Needs root (or sudo) only to install.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config
  libpaho-mqtt-dev libhiredis-dev libcjson-dev libmosquitto-dev mosquitto-dev uthash-dev
  libjwt-dev libssl-dev libmicrohttpd-dev
  mosquitto mosquitto-clients redis-server redis-tools
  python3 python3-paho-mqtt python3-jwt python3-cryptography openssl clang-format
  chromium nodejs npm
)
# A script that needs more (bench/run.sh: gnuplot, Node.js) names it: deps.sh PACKAGE...
packages+=("$@")

# The front-end packages (web/package-lock.json: mqtt.js served to the device page,
# playwright-core for the browser tests), installed once and again only when the lock changes.
web_npm() {
  local web
  web="$(cd "$(dirname "$0")/.." && pwd)/web"
  [ -f "$web/package-lock.json" ] || return 0
  if [ ! -f "$web/node_modules/.package-lock.json" ] ||
     [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    echo "npm ci in $web" >&2
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

missing=()
for p in "${packages[@]}"; do
  # node and npm may come from elsewhere than Debian (CI images ship Node.js 20 with npm)
  case "$p" in nodejs|npm) command -v "${p/nodejs/node}" >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  web_npm
  exit 0
fi

echo "Installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged servers where an init system runs; the project never uses them
# (tests and the demo start their own on free ports), so leave them as the system has them.
web_npm
