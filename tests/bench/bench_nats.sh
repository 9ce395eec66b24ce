#!/usr/bin/env bash
# bench_nats.sh - records/s and CPU per record across one NATS JetStream
# link against the in-process ring, measured in the same invocation:
#
#   ring:  one hostd     gen_static -> sink_null
#   link:  two hostd     gen_static -> sink_nats  ==stream==>  gen_nats -> sink_null
#
# at batch 256 and 1024, the link in batch framing (one message per batch)
# and in record framing (one message per record, headers). Each case runs
# the generator at its maximum rate for --seconds; records/s is the records
# that reached the last sink over the wall time from the first process's
# start to the last one's end (read from their stores), CPU per record is
# the CPU time of every process of the case (both hostd and, for the link,
# nats-server) over those records. Every case checks that the sink got
# every record the generator sent. Prints the median of --runs runs and
# the ratio to the ring at the same batch size.
#
# usage: bench_nats.sh BUILD_DIR [--seconds S] [--runs N] [--batches "256 1024"] [--quick]
set -euo pipefail
build=$(cd "$1" && pwd)
shift
seconds=5
runs=3
batches="256 1024"
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --quick) seconds=0.5; runs=1; batches=256; shift ;;
    *) echo "bench_nats.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
hostd=$build/core/hostd
plugins=$build/plugins
command -v nats-server >/dev/null || { echo "bench_nats.sh: nats-server not found (packaging/install-deps.sh)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench_nats.sh: jq not found" >&2; exit 1; }
work=$(mktemp -d)
nats_pid=
cleanup() {
    [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)

nats-server -js -a 127.0.0.1 -p -1 -sd "$work/nats" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 1 100); do
    grep -q "Listening for client connections" "$work/nats.log" && break
    sleep 0.1
done
port=$(sed -n 's/.*Listening for client connections on [^ ]*:\([0-9]*\).*/\1/p' "$work/nats.log" | head -1)
url="nats://127.0.0.1:$port"

nats_cpu() { # nats-server's CPU seconds so far
    awk -v hz="$hz" '{print ($14 + $15) / hz}' "/proc/$nats_pid/stat"
}
# run_hostd NAME: runs hostd on NAME.yaml with a store of its own; appends
# its children's CPU seconds (user + sys) to NAME.cpu.
run_hostd() {
    (
        "$hostd" --config "$work/$1.yaml" --store "$work/store-$1" --no-http >/dev/null 2>"$work/$1.err"
        # Not in a pipeline: a subshell of one has no children of its own.
        times >"$work/$1.times"
        sed -n 2p "$work/$1.times" | awk '{
            n = split($0, f, " "); s = 0
            for (i = 1; i <= n; i++) { split(f[i], a, "m"); s += a[1] * 60 + a[2] }
            print s }' >"$work/$1.cpu"
    )
}
field() { # field STORE JQ: from run 1 of that store
    "$hostd" report 1 --store "$work/store-$1" --json | jq -r "$2"
}

# case_ring BATCH -> prints "recs/s cpu_ns/rec"
case_ring() {
    rm -rf "$work"/store-ring
    cat >"$work/ring.yaml" <<YAML
pipeline: bench-ring
plugin_dirs: [$plugins]
batch_size: $1
load: [{shape: max, duration: ${seconds}s}]
stages:
  - {name: gen, plugin: gen_static, params: {size: 64}}
  - {name: sink, plugin: sink_null}
YAML
    run_hostd ring
    local n t0 t1 cpu
    n=$(field ring '.report.stages[-1].records_in')
    [ "$n" = "$(field ring '.report.stages[0].records_out')" ] || { echo "ring: records lost" >&2; exit 1; }
    t0=$(field ring '.start_ns'); t1=$(field ring '.end_ns'); cpu=$(cat "$work/ring.cpu")
    awk -v n="$n" -v t="$((t1 - t0))" -v c="$cpu" 'BEGIN { printf "%.0f %.1f %d\n", n / (t / 1e9), c * 1e9 / n, n }'
}

# case_link BATCH FRAMING -> prints "recs/s cpu_ns/rec"
case_link() {
    local stream="B$RANDOM$RANDOM"
    rm -rf "$work"/store-pub "$work"/store-sub "$work"/pub.err
    cat >"$work/pub.yaml" <<YAML
pipeline: bench-pub
plugin_dirs: [$plugins]
batch_size: $1
load: [{shape: max, duration: ${seconds}s}]
stages:
  - {name: gen, plugin: gen_static, params: {size: 64}}
  - {name: publish, plugin: sink_nats, params: {url: "$url", stream: $stream, subject: bench.$stream, create_stream: true, storage: memory, framing: $2}}
YAML
    cat >"$work/sub.yaml" <<YAML
pipeline: bench-sub
plugin_dirs: [$plugins]
batch_size: $1
stages:
  - {name: link, plugin: gen_nats, params: {url: "$url", stream: $stream, subject: bench.$stream, durable: bench}}
  - {name: sink, plugin: sink_null}
YAML
    local c0 c1 n sent t0 t1
    c0=$(nats_cpu)
    run_hostd pub &
    local pub=$!
    # The consumer needs the stream the publisher creates at its start.
    for _ in $(seq 1 200); do
        grep -q "running pipeline" "$work/pub.err" 2>/dev/null && break
        sleep 0.05
    done
    run_hostd sub
    wait "$pub"
    c1=$(nats_cpu)
    sent=$(field pub '.report.stages[0].records_out')
    n=$(field sub '.report.stages[-1].records_in')
    [ "$n" = "$sent" ] || { echo "link $2: sent $sent, received $n" >&2; cat "$work/sub.err" >&2; exit 1; }
    t0=$(field pub '.start_ns'); t1=$(field sub '.end_ns')
    awk -v n="$n" -v t="$((t1 - t0))" -v p="$(cat "$work/pub.cpu")" -v s="$(cat "$work/sub.cpu")" \
        -v c0="$c0" -v c1="$c1" \
        'BEGIN { cpu = p + s + c1 - c0; printf "%.0f %.1f %d\n", n / (t / 1e9), cpu * 1e9 / n, n }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# NATS JetStream link vs in-process ring: gen_static (64-byte records, max rate, ${seconds} s) -> sink_null"
echo "# nats-server $(nats-server --version 2>&1 | head -1), memory storage; median of $runs run(s); ratios to the ring at the same batch"
printf "%-26s %6s %14s %12s %10s %12s\n" case batch "records/s" "cpu_ns/rec" "x ring r/s" "x ring cpu"
for b in $batches; do
    declare -A rate cpu
    for c in ring batch record; do
        : >"$work/r.txt"; : >"$work/c.txt"
        for ((i = 0; i < runs; i++)); do
            if [ "$c" = ring ]; then out=$(case_ring "$b"); else out=$(case_link "$b" "$c"); fi
            echo "$out" | awk '{print $1}' >>"$work/r.txt"
            echo "$out" | awk '{print $2}' >>"$work/c.txt"
        done
        rate[$c]=$(median <"$work/r.txt")
        cpu[$c]=$(median <"$work/c.txt")
        name="ring (one process)"
        [ "$c" = batch ] && name="NATS link, batch framing"
        [ "$c" = record ] && name="NATS link, record framing"
        awk -v n="$name" -v b="$b" -v r="${rate[$c]}" -v c="${cpu[$c]}" -v r0="${rate[ring]}" -v c0="${cpu[ring]}" \
            'BEGIN { printf "%-26s %6d %14.0f %12.1f %9.3fx %11.2fx\n", n, b, r, c, r / r0, c / c0 }'
    done
    unset rate cpu
done
