#!/usr/bin/env bash
# Two hostd processes linked by NATS JetStream, as a user runs them: this
# script starts its own nats-server with JetStream on a free loopback port
# (killed at exit). Process 1 runs gen_market at a fixed rate for 1 s into
# sink_nats (which creates the stream); process 2, started while process 1
# runs, reads the stream with gen_nats into sink_seqcheck and must end by
# itself, at process 1's end-of-stream mark, with every record exactly
# once: records = N, first = 0, last = N - 1, no gaps, no duplicates. Done
# once with framing batch (process 2's batches smaller than process 1's,
# so messages are split over batches) and once with framing record. Then a
# refused connection and a missing stream, for each plugin: hostd exits
# non-zero without crashing and the log names the stage, the server and
# what to do. Every wait is bounded.
#
# usage: test_nats.sh <build dir>
# Skips (77) when nats-server is not installed (Debian package nats-server).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

command -v nats-server >/dev/null ||
  { echo "SKIP: nats-server not found (apt-get install nats-server)"; exit 77; }

npid=
pid2=
stop_all() {
  [ -n "$pid2" ] && kill -9 "$pid2" 2>/dev/null || true
  [ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null || true
  cleanup
}
trap stop_all EXIT

# -p -1: the server binds a port the kernel picks, and logs it.
nats-server -js -a 127.0.0.1 -p -1 -sd "$work/jetstream" >nats.log 2>&1 &
npid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' nats.log | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$npid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat nats.log; echo "FAIL - nats-server did not start"; exit 1; }
url=nats://127.0.0.1:$port
ok "nats-server with JetStream on $url"

# Waits (at most $2 seconds) for process $1 and sets wrc to its exit
# status, or to "timeout" (then the process is killed).
wait_bounded() {
  local p=$1 limit=$2
  for _ in $(seq $((limit * 10))); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$p" 2>/dev/null; then
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    wrc=timeout
    return
  fi
  wrc=0
  wait "$p" || wrc=$?
}

# link <name> <framing> <rate> <batch 1> <batch 2>: process 1 publishes
# rate records/s for 1 s; process 2 reads them while it runs.
link() {
  local name=$1 framing=$2 rate=$3 b1=$4 b2=$5
  cat >"$name-pub.yaml" <<YAML
pipeline: $name-pub
plugin_dirs: [$build/plugins]
batch_size: $b1
max_batch_delay: 5ms
load: [{shape: constant, rate: $rate, duration: 1s}]
stages:
  - {name: gen, plugin: gen_market}
  - name: pub
    plugin: sink_nats
    params: {url: "$url", stream: $name, subject: obs.$name, create_stream: true,
             framing: $framing, max_pending: 16}
YAML
  cat >"$name-sub.yaml" <<YAML
pipeline: $name-sub
plugin_dirs: [$build/plugins, $build/tests/plugins]
batch_size: $b2
stages:
  - name: sub
    plugin: gen_nats
    params: {url: "$url", stream: $name, subject: obs.$name, durable: reader, publishers: 1}
  - name: check
    plugin: sink_seqcheck
    params: {report: $work/$name-seq.txt, order: none, fail_on_error: true}
YAML
  "$hostd" --config "$name-pub.yaml" --no-store --no-http >"$name-pub.out" 2>"$name-pub.err" &
  pid=$!
  # Process 2 starts once the stream exists, while process 1 still publishes.
  for _ in $(seq 100); do
    grep -q "publishing to" "$name-pub.err" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  "$hostd" --config "$name-sub.yaml" --no-store --no-http >"$name-sub.out" 2>"$name-sub.err" &
  pid2=$!
  local rc1 rc2
  wait_bounded "$pid" 60
  rc1=$wrc
  pid=
  wait_bounded "$pid2" 60
  rc2=$wrc
  pid2=
  [ "$rc1" = 0 ] && ok "$name: process 1 (gen_market -> sink_nats, $framing) ended by itself" ||
    { bad "$name: process 1 exit $rc1"; cat "$name-pub.err"; }
  [ "$rc2" = 0 ] && ok "$name: process 2 (gen_nats -> sink_seqcheck) ended at the end-of-stream mark" ||
    { bad "$name: process 2 exit $rc2"; cat "$name-sub.err"; }
  local n
  n=$(awk '$1 == "gen" {gsub(",", "", $5); print $5}' "$name-pub.out")
  if [ -n "$n" ] && [ "$n" -gt 0 ] &&
    grep -q "^seqcheck records=$n first=0 last=$((n - 1)) gaps=0 dups=0 " "$name-seq.txt" 2>/dev/null; then
    ok "$name: all $n records arrived once ($(cut -d' ' -f2-6 "$name-seq.txt"))"
  else
    bad "$name: sent ${n:-?}, seqcheck says: $(cat "$name-seq.txt" 2>/dev/null || echo nothing)"
  fi
  grep -q "published_records=$n " "$name-pub.out" && grep -q "publish_errors=0 " "$name-pub.out" &&
    ok "$name: sink_nats counted $n records published, no errors" ||
    { bad "$name: sink_nats counters"; grep "pub:" "$name-pub.out" || true; }
  grep -q "received_records=$n " "$name-sub.out" && grep -q "decode_errors=0 " "$name-sub.out" &&
    ok "$name: gen_nats counted $n records received, no decode errors" ||
    { bad "$name: gen_nats counters"; grep "sub:" "$name-sub.out" || true; }
}

# Batch framing: messages of up to 256 records read in batches of 30 (split).
link batchlink batch 100000 256 30
# Record framing: one message per record.
link recordlink record 5000 64 64

# fails <name> <yaml> <needle>...: hostd must exit non-zero (no crash) and
# its log must hold every needle.
fails() {
  local name=$1 yaml=$2
  shift 2
  printf '%s' "$yaml" >"$name.yaml"
  local rc=0
  timeout 60 "$hostd" --config "$name.yaml" --no-store --no-http >"$name.out" 2>"$name.err" || rc=$?
  if [ "$rc" = 0 ] || [ "$rc" -ge 124 ]; then
    bad "$name: exit $rc, expected a clean failure"; cat "$name.err"; return
  fi
  for needle in "$@"; do
    grep -qF -- "$needle" "$name.err" || { bad "$name: '$needle' not in the log:"; cat "$name.err"; return; }
  done
  ok "$name: exit $rc, the log names the stage and the server: $(grep -m1 error "$name.err" | cut -c1-150)"
}

refused=nats://127.0.0.1:1
fails sink_refused "pipeline: sink-refused
plugin_dirs: [$build/plugins]
load: [{shape: constant, rate: 100, duration: 1s}]
stages:
  - {name: gen, plugin: gen_market}
  - {name: pub, plugin: sink_nats, params: {url: \"$refused\", stream: S, subject: s.x}}
" "stage 'pub'" "cannot connect to $refused" "No server available"
fails sink_no_stream "pipeline: sink-no-stream
plugin_dirs: [$build/plugins]
load: [{shape: constant, rate: 100, duration: 1s}]
stages:
  - {name: gen, plugin: gen_market}
  - {name: pub, plugin: sink_nats, params: {url: \"$url\", stream: MISSING, subject: s.x}}
" "stage 'pub'" "stream 'MISSING' does not exist on $url" "create_stream: true"
fails gen_refused "pipeline: gen-refused
plugin_dirs: [$build/plugins]
stages:
  - {name: sub, plugin: gen_nats, params: {url: \"$refused\", stream: S, subject: s.x, durable: d}}
  - {name: sink, plugin: sink_null}
" "stage 'sub'" "cannot connect to $refused" "No server available"
fails gen_no_stream "pipeline: gen-no-stream
plugin_dirs: [$build/plugins]
stages:
  - {name: sub, plugin: gen_nats, params: {url: \"$url\", stream: MISSING, subject: s.x, durable: d}}
  - {name: sink, plugin: sink_null}
" "stage 'sub'" "stream 'MISSING' does not exist on $url" "start the upstream process"

finish
