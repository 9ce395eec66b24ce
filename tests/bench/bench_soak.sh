#!/usr/bin/env bash
# bench_soak.sh - is hostd flat over a long run? Runs the demo pipeline
# (gen_market -> xf_json_fast -> xf_window -> sink_rocksdb, with the run
# store and the HTTP server) at a constant rate for --minutes, scrapes
# /metrics every --every seconds (as Prometheus would), and samples every
# --every seconds: hostd's resident memory (VmRSS) and proportional share
# (Pss, from smaps_rollup), its thread count, open file descriptors, and the
# bytes on disk of the run store and of sink_rocksdb's database. Prints one
# table row per sample and a summary: each figure at the first minute and
# at the end, the ratio end / first minute, and the least-squares slope per
# hour over the second half of the run (a leak shows as a slope that does
# not fall to ~0 once the caches are warm). Exits 1 when hostd dies.
#
# usage: bench_soak.sh BUILD_DIR SOURCE_DIR [--minutes M] [--every S] [--rate R] [--quick]
#        (--quick: 1 minute, a sample every 5 s)
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
shift 2
minutes=30
every=10
rate=200000
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --every) every=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --quick) minutes=1; every=5; shift ;;
    *) echo "bench_soak.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
hostd=$build/core/hostd
work=$(mktemp -d)
pid=
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The demo, with our duration, rate, store and a free port.
sed -e "s|^plugin_dirs:.*|plugin_dirs: [$build/plugins]|" \
    -e "s|^  duration:.*|  duration: ${minutes}m|" \
    -e "s|^    rate: [0-9]*|    rate: $rate|" \
    -e "s|^  path: observatory-data|  path: $work/store|" \
    -e "s|listen: 127.0.0.1:9464|listen: 127.0.0.1:0|" \
    "$src/config/demo.yaml" >"$work/soak.yaml"
grep -q "duration: ${minutes}m" "$work/soak.yaml" || { echo "bench_soak.sh: config/demo.yaml changed shape" >&2; exit 1; }
cd "$work"
"$hostd" --config soak.yaml --progress 0 >"$work/report.txt" 2>"$work/err.txt" &
pid=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' "$work/err.txt" | head -n 1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$work/err.txt" >&2; echo "bench_soak.sh: hostd did not start" >&2; exit 1; }

kib() { awk -v k="$1" '$1 == k":" {print $2}' "$2" 2>/dev/null || true; }
bytes() { du -sb "$1" 2>/dev/null | cut -f1 || echo 0; }
sink_db=$(sed -n "s/^ *path: *\(demo-data[^ ]*\).*/\1/p" soak.yaml | head -n 1)

echo "# soak: demo pipeline at $rate records/s for $minutes min, a sample every $every s"
echo "# hostd pid $pid, HTTP port $port, $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %10s %10s %8s %6s %12s %12s %10s\n' t_s rss_MiB pss_MiB threads fds store_MiB sinkdb_MiB scrape_ms
samples=$work/samples.tsv
: >"$samples"
t0=$(date +%s.%N)
end=$(( minutes * 60 ))
next=0
while kill -0 "$pid" 2>/dev/null; do
    now=$(date +%s.%N)
    t=$(awk -v a="$now" -v b="$t0" 'BEGIN {printf "%.0f", a - b}')
    [ "$t" -gt "$end" ] && break
    if [ "$t" -ge "$next" ]; then
        s0=$(date +%s%N)
        curl -s -H "Host: 127.0.0.1" -o /dev/null "http://127.0.0.1:$port/metrics" || true
        scrape=$(( ($(date +%s%N) - s0) / 1000000 ))
        rss=$(kib VmRSS "/proc/$pid/status")
        pss=$(kib Pss "/proc/$pid/smaps_rollup")
        thr=$(kib Threads "/proc/$pid/status")
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
        st=$(bytes "$work/store")
        sk=0
        [ -z "$sink_db" ] || sk=$(bytes "$work/$sink_db")
        [ -n "$rss" ] || break
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rss" "${pss:-0}" "$thr" "$fds" "$st" "$sk" "$scrape" >>"$samples"
        awk -F'\t' 'END {printf "%8d %10.1f %10.1f %8d %6d %12.1f %12.1f %10d\n", $1, $2/1024, $3/1024, $4, $5, $6/1048576, $7/1048576, $8}' "$samples"
        next=$(( next + every ))
    fi
    sleep 0.5
done
set +e
wait "$pid"
rc=$?
set -e
pid=
[ $rc -eq 0 ] || { echo "bench_soak.sh: hostd exited $rc" >&2; tail -n 20 "$work/err.txt" >&2; exit 1; }

echo
echo "# summary (first: the first sample at or after 60 s; slope: least squares over the second half)"
awk -F'\t' -v half=$(( end / 2 )) '
function slope(col,   i, n, sx, sy, sxx, sxy) {
    n = 0; sx = sy = sxx = sxy = 0
    for (i = 1; i <= N; i++) if (T[i] >= half) { n++; sx += T[i]; sy += V[i, col]; sxx += T[i] * T[i]; sxy += T[i] * V[i, col] }
    if (n < 2 || n * sxx == sx * sx) return "n/a"
    return sprintf("%+.2f", (n * sxy - sx * sy) / (n * sxx - sx * sx) * 3600)
}
{ N++; T[N] = $1; for (c = 2; c <= 8; c++) V[N, c] = $c; if (!F && $1 >= 60) F = N }
END {
    if (!F) F = 1
    split("rss_MiB pss_MiB threads fds store_MiB sinkdb_MiB scrape_ms", name, " ")
    split("1024 1024 1 1 1048576 1048576 1", div, " ")
    printf "%-11s %12s %12s %8s %14s\n", "figure", "first", "end", "ratio", "slope_per_h"
    for (c = 2; c <= 8; c++) {
        a = V[F, c] / div[c - 1]; b = V[N, c] / div[c - 1]
        s = slope(c); if (s != "n/a") s = sprintf("%+.2f", s / div[c - 1])
        printf "%-11s %12.1f %12.1f %8s %14s\n", name[c - 1], a, b, (a > 0 ? sprintf("%.2f", b / a) : "-"), s
    }
}' "$samples"
echo "# hostd ended cleanly; its report:"
tail -n 12 "$work/report.txt"
