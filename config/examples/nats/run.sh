#!/usr/bin/env bash
# run.sh - the linked example: one pipeline as three hostd processes joined
# by NATS JetStream,
#
#   gen.yaml:    gen_market -> sink_nats           (stream OBS_TICKS)
#   parse.yaml:  gen_nats -> xf_json_fast x2 -> sink_nats (stream OBS_PARSED)
#   window.yaml: gen_nats -> xf_window -> sink_null
#
# It starts nats-server with JetStream on a free loopback port (its data in
# a temporary directory, removed at the end), the three processes with one
# run.id, waits for them to end by themselves (process 1 generates for
# 10 s; each later one ends after its upstream's end-of-stream mark), and
# prints the combined report (hostd report --run-id). Stops everything it
# started on exit or Ctrl-C. With --dashboard [ADDR] it also serves
# `hostd dashboard` over the three stores (default 127.0.0.1:9464) once the
# processes run, and keeps it, after the report, until Ctrl-C.
#
#   config/examples/nats/run.sh              (after the README's build)
#   config/examples/nats/run.sh --dashboard [127.0.0.1:9464]
#   HOSTD=/path/to/hostd config/examples/nats/run.sh
set -euo pipefail

dashboard=
case "${1:-}" in
  "") ;;
  --dashboard) dashboard=${2:-127.0.0.1:9464} ;;
  *) echo "usage: run.sh [--dashboard [HOST:PORT]]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
hostd=${HOSTD:-$root/build/core/hostd}
plugins=${OBS_PLUGIN_DIR:-$root/build/plugins}
[ -x "$hostd" ] || { echo "run.sh: no hostd at $hostd: build it first (README) or set HOSTD" >&2; exit 1; }
command -v nats-server >/dev/null ||
  { echo "run.sh: nats-server not found: packaging/install-deps.sh installs it" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/obs-nats-example.XXXXXX")
pids=()
dash_pid=
cleanup() {
  for p in "${pids[@]}" $dash_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (at most $3 s) until file $1 contains $2.
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "run.sh: gave up waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

nats-server -js -a 127.0.0.1 -p -1 -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
wait_for "$work/nats.log" "Listening for client connections" 10
port=$(sed -n 's/.*Listening for client connections on [^ ]*:\([0-9]*\).*/\1/p' "$work/nats.log" | head -1)
url="nats://127.0.0.1:$port"
run_id="nats-example-$(date +%Y%m%d-%H%M%S)"
echo "nats-server with JetStream at $url; run.id $run_id"

for c in gen parse window; do
  sed -e "s|nats://127.0.0.1:4222|$url|" -e "s|^plugin_dirs:.*|plugin_dirs: [$plugins]|" \
    "$here/$c.yaml" >"$work/$c.yaml"
done

# Upstream first: each sink_nats creates the stream the next process reads.
i=0
for c in gen parse window; do
  i=$((i + 1))
  "$hostd" --config "$work/$c.yaml" --run-id "$run_id" --store "$work/store-$c" \
    --listen 127.0.0.1:0 >"$work/$c.out" 2>"$work/$c.err" &
  pids+=($!)
  wait_for "$work/$c.err" "running pipeline" 30
  echo "process $i ($c.yaml) running, pid ${pids[-1]}"
done

if [ -n "$dashboard" ]; then
  "$hostd" dashboard --store "$work/store-gen" --store "$work/store-parse" \
    --store "$work/store-window" --listen "$dashboard" 2>"$work/dashboard.err" &
  dash_pid=$!
  wait_for "$work/dashboard.err" "serving" 10
  sed -n 's/.*(open \(http[^)]*\)).*/dashboard: \1 (Runs tab)/p' "$work/dashboard.err"
fi

status=0
for idx in 1 2 3; do
  if ! wait "${pids[$idx]}"; then
    echo "run.sh: process $idx failed; its log:" >&2
    cat "$work/$(echo gen parse window | cut -d' ' -f$idx).err" >&2
    status=1
  fi
done
pids=("${pids[0]}")
echo
"$hostd" report --run-id "$run_id" --store "$work/store-gen" --store "$work/store-parse" \
  --store "$work/store-window"
if [ -n "$dash_pid" ]; then
  echo
  echo "the dashboard stays up: Ctrl-C to stop it (and remove the run's stores)"
  wait "$dash_pid" || true
fi
exit $status
