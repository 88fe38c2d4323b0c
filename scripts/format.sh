#!/usr/bin/env bash
# The project's C sources against .clang-format, with Debian's clang-format (scripts/deps.sh).
#   scripts/format.sh           reformats every tracked .c/.h file in place
#   scripts/format.sh --check   changes nothing: lists the files that differ, exits 1 if any does
set -uo pipefail
cd "$(dirname "$0")/.."

mode=fix
case "${1:-}" in
  --check) mode=check ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
command -v clang-format >/dev/null || { echo "clang-format not installed (scripts/deps.sh)" >&2; exit 2; }

mapfile -t files < <(git ls-files -- '*.c' '*.h')
if [ ${#files[@]} -eq 0 ]; then
  echo "no C sources found (not a git checkout?)" >&2
  exit 2
fi

if [ $mode = fix ]; then
  clang-format -i --style=file -- "${files[@]}"
  exit $?
fi

differ=0
for f in "${files[@]}"; do
  if ! clang-format --style=file --dry-run --Werror -- "$f" >/dev/null 2>&1; then
    echo "differs from .clang-format: $f"
    differ=$((differ + 1))
  fi
done
if [ $differ -ne 0 ]; then
  echo "$differ file(s) differ from .clang-format; run scripts/format.sh" >&2
  exit 1
fi
echo "${#files[@]} files match .clang-format"
