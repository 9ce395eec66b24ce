# shellcheck shell=bash
# tests/integration/lib.sh - what the hostd integration scripts share,
# sourced after `set -euo pipefail` with the build directory as $1: $build,
# $hostd, a scratch directory that is the working directory and is removed
# on exit (with the hostd in $pid, if any, killed), ok/bad/finish for the
# "ok - ..." / "FAIL - ..." lines, and wait_port.
build=$(cd "$1" && pwd)
hostd=$build/core/hostd
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
fails=0
ok() { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }

# Prints the port a hostd started with --listen 127.0.0.1:0 bound, read from
# its stderr file $1 ("... port N ..."); fails after 10 s.
wait_port() {
  local port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' "$1" 2>/dev/null | head -n 1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$1" >&2; echo "hostd did not start" >&2; return 1; }
  echo "$port"
}

# Exits with the verdict of the checks so far.
finish() {
  if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
  echo "all checks passed"
}
