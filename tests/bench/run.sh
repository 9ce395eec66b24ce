#!/bin/sh
# tests/bench/run.sh - builds the Release benchmark tree if needed and runs
# the benchmarks, printing everything (and keeping a copy under
# tests/bench/results/, which git ignores).
#
#   tests/bench/run.sh                 full run of every program below except ab and operator
#                                      (~10 minutes on 2 cores)
#   tests/bench/run.sh --quick         the same, each in its quick mode (~30 s)
#   tests/bench/run.sh pipeline [ARGS] only obs-bench-pipeline, with its options
#   tests/bench/run.sh json [ARGS]     only obs-bench-json, with its options
#   tests/bench/run.sh account [ARGS]  only obs-bench-account (cost of the cost account)
#   tests/bench/run.sh histogram [ARGS] only obs-bench-histogram (record cost)
#   tests/bench/run.sh metrics [ARGS]  only obs-bench-metrics (/metrics scrape, 20 stages)
#   tests/bench/run.sh load [ARGS]     only obs-bench-load (load generator: schedule cost, send lag,
#                                      payload rates)
#   tests/bench/run.sh abstats [ARGS]  only obs-bench-abstats (A/B statistics on simulated
#                                      experiments: false positives, time to detect)
#   tests/bench/run.sh profiler [ARGS] only obs-bench-profiler (cost per sample, pipeline overhead)
#   tests/bench/run.sh scale [ARGS]    only obs-bench-scale (JSON pipeline, parse parallelism
#                                      1..cores, records/s and CPU per record as ratios to 1)
#   tests/bench/run.sh nats [ARGS]     only bench_nats.sh: one NATS JetStream link (nats-server on
#                                      loopback) vs the in-process ring, batch 256 and 1024,
#                                      batch and record framing, as ratios to the ring (~2 min)
#   tests/bench/run.sh ab [ARGS]       only obs-bench-ab: real A/B experiments (false positives,
#                                      time to detect, p99 in interleaved mode, drift under load,
#                                      the duet's units, interleaved A/A on a saturating stream);
#                                      up to 80 minutes, so not in the full run; `ab --quick` ~1 min
#   tests/bench/run.sh soak [ARGS]     only bench_soak.sh: the demo pipeline for 30 minutes (--minutes M,
#                                      --every S, --rate R, --quick: 1 min); RSS, PSS, threads, fds
#                                      and store sizes every 10 s, and their slope; not in the full run
#   tests/bench/run.sh operator [ARGS] only bench_operator.py: observatory-operator's RSS with
#                                      100 StageSets and change-to-children latency, against
#                                      the test API server (needs kubectl; ~30 s; not in the full run)
#
# Environment: OBS_BENCH_BUILD (build directory, default <repo>/build-bench),
# OBS_BENCH_JOBS (parallel build jobs, default 2).
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${OBS_BENCH_BUILD:-$root/build-bench}
jobs=${OBS_BENCH_JOBS:-2}
what=all
quick=0
case "${1:-}" in
pipeline | json | account | histogram | metrics | load | abstats | profiler | ab | operator | scale | nats | soak)
    what=$1; shift ;;
--quick) quick=1; shift ;;
-h | --help) sed -n '2,35p' "$0"; exit 0 ;;
esac
if [ "$what" = all ] && [ $# -gt 0 ]; then
    echo "run.sh: options are passed only after a program's name (see --help)" >&2
    exit 2
fi

if [ ! -f "$build/build.ninja" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
if [ "$type" != Release ]; then
    echo "run.sh: $build is a '$type' build; benchmarks need Release (remove it or set OBS_BENCH_BUILD)" >&2
    exit 1
fi
if [ "$what" = operator ]; then
    ninja -C "$build" -j "$jobs" observatory-operator >"$build/bench-build.log" 2>&1 ||
        { tail -n 30 "$build/bench-build.log" >&2; echo "run.sh: building the operator failed" >&2; exit 1; }
    out=$root/tests/bench/results/$(date +%Y%m%d-%H%M%S)
    mkdir -p "$out"
    { python3 "$root/tests/bench/bench_operator.py" "$build" "$root" --json "$out/operator.json" "$@" \
        || echo $? >"$out/failed"; } | tee "$out/operator.txt"
    echo "# results kept in $out"
    [ ! -f "$out/failed" ] || exit 1
    exit 0
fi
# Only what the benchmarks need, so a plugin elsewhere in the tree that does
# not build yet does not stop them.
if [ "$what" = all ]; then
    targets="obs-bench-pipeline obs-bench-json obs-bench-account obs-bench-histogram
        obs-bench-metrics obs-bench-load obs-bench-abstats obs-bench-profiler obs-bench-scale"
elif [ "$what" = nats ]; then
    targets="hostd gen_nats sink_nats"
elif [ "$what" = soak ]; then
    targets="hostd xf_window sink_rocksdb"
else
    targets=obs-bench-$what
fi
# shellcheck disable=SC2086 # a list of targets
ninja -C "$build" -j "$jobs" $targets tp_work gen_static xf_pass sink_null gen_market \
    xf_json_jansson xf_json_fast gen_iot gen_logs xf_iot xf_logs >"$build/bench-build.log" 2>&1 ||
    { tail -n 30 "$build/bench-build.log" >&2; echo "run.sh: building the benchmarks failed" >&2; exit 1; }

plugins=$build/plugins
stamp=$(date +%Y%m%d-%H%M%S)
out=$root/tests/bench/results/$stamp
mkdir -p "$out"

{
    echo "# tests/bench/run.sh $* (what=$what quick=$quick)"
    echo "# source: $root ($(git -C "$root" describe --always --dirty 2>/dev/null || echo 'no commit yet'))"
    echo "# busiest processes before the run (the machine is shared; compare with the cores column):"
    ps -eo pcpu=,comm= --sort=-pcpu | head -4 | sed 's/^/#   /'
} | tee "$out/run.txt"

if [ "$what" = soak ]; then
    echo
    { bash "$root/tests/bench/bench_soak.sh" "$build" "$root" "$@" || echo $? >>"$out/failed"; } \
        | tee "$out/soak.txt"
fi
if [ "$what" = all ] || [ "$what" = nats ]; then
    if [ "$quick" = 1 ]; then
        set -- --quick
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { bash "$root/tests/bench/bench_nats.sh" "$build" "$@" || echo $? >>"$out/failed"; } \
        | tee "$out/nats.txt"
fi
if [ "$what" = all ] || [ "$what" = pipeline ]; then
    if [ "$quick" = 1 ]; then
        set -- --seconds 0.5 --warmup 0.1 --runs 1
    fi
    echo
    { "$build/tests/bench/obs-bench-pipeline" --plugin-dir "$plugins" --csv "$out/pipeline.csv" "$@" \
        || echo $? >"$out/failed"; } | tee "$out/pipeline.txt"
fi
if [ "$what" = all ] || [ "$what" = scale ]; then
    if [ "$quick" = 1 ]; then
        set -- --seconds 0.5 --warmup 0.1 --runs 1
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { "$build/tests/bench/obs-bench-scale" --plugin-dir "$plugins" "$@" \
        || echo $? >>"$out/failed"; } | tee "$out/scale.txt"
fi
if [ "$what" = all ] || [ "$what" = json ]; then
    if [ "$quick" = 1 ]; then
        set -- --ticks 20000 --runs 1
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { "$build/tests/bench/obs-bench-json" --plugin-dir "$plugins" "$@" || echo $? >>"$out/failed"; } \
        | tee "$out/json.txt"
fi
if [ "$what" = all ] || [ "$what" = account ]; then
    if [ "$quick" = 1 ]; then
        set -- --seconds 0.3 --pairs 1
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { "$build/tests/bench/obs-bench-account" --plugin-dir "$plugins" "$@" \
        || echo $? >>"$out/failed"; } | tee "$out/account.txt"
fi
if [ "$what" = all ] || [ "$what" = histogram ]; then
    if [ "$quick" = 1 ]; then
        set -- -n 1000000 -r 1
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { "$build/tests/bench/obs-bench-histogram" "$@" || echo $? >>"$out/failed"; } \
        | tee "$out/histogram.txt"
fi
if [ "$what" = all ] || [ "$what" = metrics ]; then
    if [ "$quick" = 1 ]; then
        set -- --runs 1 --scrapes 5
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { "$build/tests/bench/obs-bench-metrics" --plugin-dir "$plugins" "$@" \
        || echo $? >>"$out/failed"; } | tee "$out/metrics.txt"
fi
if [ "$what" = all ] || [ "$what" = load ]; then
    if [ "$quick" = 1 ]; then
        set -- --seconds 0.5 --runs 1 --records 20000
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { "$build/tests/bench/obs-bench-load" --plugin-dir "$plugins" "$@" \
        || echo $? >>"$out/failed"; } | tee "$out/load.txt"
fi
if [ "$what" = all ] || [ "$what" = abstats ]; then
    if [ "$quick" = 1 ]; then
        set -- -n 10 -b 500
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { "$build/tests/bench/obs-bench-abstats" "$@" || echo $? >>"$out/failed"; } \
        | tee "$out/abstats.txt"
fi
if [ "$what" = all ] || [ "$what" = profiler ]; then
    if [ "$quick" = 1 ]; then
        set -- --runs 1 --seconds 0.3 --warmup 0.05 --cost-seconds 0.3
    elif [ "$what" = all ]; then
        set --
    fi
    echo
    { "$build/tests/bench/obs-bench-profiler" --plugin-dir "$plugins" "$@" \
        || echo $? >>"$out/failed"; } | tee "$out/profiler.txt"
fi
# Not part of `all`: up to 80 minutes (run.sh ab --quick: about a minute).
if [ "$what" = ab ]; then
    echo
    uptime | sed 's/^/# uptime: /'
    { "$build/tests/bench/obs-bench-ab" --plugin-dir "$plugins" \
        --test-plugin-dir "$build/tests/plugins" "$@" || echo $? >>"$out/failed"; } \
        | tee "$out/ab.txt"
    uptime | sed 's/^/# uptime at the end: /'
fi
echo
echo "# results kept in $out"
if [ -f "$out/failed" ]; then
    echo "run.sh: a benchmark failed (exit status $(tr '\n' ' ' <"$out/failed"))" >&2
    exit 1
fi
