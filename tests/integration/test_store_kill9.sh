#!/usr/bin/env bash
# Integration test of the run history: hostd records a constant-rate run in
# its store and is killed with SIGKILL mid-run; the store is then read back
# with `hostd runs` / `hostd report` (RocksDB contents, not hostd's output):
# the run is marked incomplete and keeps every snapshot stored before the
# kill. A following normal run gets the next id and ends clean, `hostd
# report` reprints exactly the table printed at its end, and `hostd compare`
# puts two runs side by side.
#
# usage: test_store_kill9.sh <build dir> <source dir>
# Needs jq (Debian package 'jq').
set -euo pipefail
build=$(cd "$1" && pwd)
hostd=${HOSTD:-$build/core/hostd}
plugins=$build/plugins
command -v jq >/dev/null || { echo "FAIL - jq not found: apt-get install jq"; exit 1; }
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

fails=0
ok() { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { # <what> <command...>: passes when the command succeeds
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

cat >run.yaml <<YAML
pipeline: kill9
plugin_dirs: [$plugins]
batch_size: 64
http: {listen: "127.0.0.1:0"}
store: {path: $work/store}
run:
  duration: 0
  seed: 7
load:
  - shape: constant
    rate: 20000
stages:
  - {name: gen, plugin: gen_static}
  - {name: pass, plugin: xf_pass}
  - {name: sink, plugin: sink_null}
YAML

# --- a run killed with SIGKILL ----------------------------------------------
"$hostd" --config run.yaml -q >killed.out 2>killed.err &
pid=$!
# Wait for what the store holds, not for a time: until 3 snapshots are
# readable (read-only, beside the running hostd), at most 20 s.
seen=0
for _ in $(seq 200); do
  if "$hostd" runs --store store --json >live.json 2>/dev/null; then
    seen=$(jq '.[0].n_snapshots // 0' live.json)
    [ "$seen" -ge 3 ] && break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
check "running hostd's store is readable beside it (status running)" \
  test "$(jq -r '.[0].status' live.json)" = running
if ! kill -9 "$pid" 2>/dev/null; then
  bad "hostd exited before it was killed:"; sed 's/^/    /' killed.err
fi
wait "$pid" 2>/dev/null || true
pid=
check "3 snapshots stored before the kill (saw $seen)" test "$seen" -ge 3

"$hostd" runs --store store --json >runs1.json
check "killed run is run 1" test "$(jq '.[0].id' runs1.json)" = 1
check "killed run is marked incomplete" test "$(jq -r '.[0].status' runs1.json)" = incomplete
check "killed run did not end cleanly" test "$(jq '.[0].clean' runs1.json)" = false
n=$(jq '.[0].n_snapshots' runs1.json)
check "no snapshot lost: $n stored >= $seen seen before the kill" test "$n" -ge "$seen"
check "incomplete run ends at its last snapshot" \
  test "$(jq '.[0].end_ns == .[0].last_snapshot_ns' runs1.json)" = true

"$hostd" report 1 --store store --series stage/sink/records_in >series.json
check "series points cover the time before the kill (>= 2)" \
  test "$(jq 'length' series.json)" -ge 2
check "series has one point per snapshot" test "$(jq 'length' series.json)" = "$n"
check "series times increase and counts never decrease" test "$(jq '
  [range(1; length) as $i | .[$i][0] > .[$i-1][0] and .[$i][1] >= .[$i-1][1]] | all' \
  series.json)" = true
check "records reached the sink before the kill" test "$(jq '.[-1][1]' series.json)" -gt 0
check "series span matches the run's first/last snapshot" test "$(jq -n \
  --slurpfile s series.json --slurpfile r runs1.json \
  '$s[0][0][0] == $r[0][0].first_snapshot_ns and $s[0][-1][0] == $r[0][0].last_snapshot_ns')" = true
"$hostd" report 1 --store store --metrics >metrics.json
check "metrics of every stage are stored" test "$(jq '[.[] | select(
  . == "stage/gen/late_records" or . == "stage/pass/callback_cpu_ns" or
  . == "stage/sink/allocs")] | length' metrics.json)" = 3

set +e
"$hostd" report 1 --store store >rep1.out 2>rep1.err; rc=$?
set -e
check "report of the killed run: exit 1" test $rc = 1
check "report of the killed run says why" grep -q "has no end-of-run report: status incomplete" rep1.err

# --- normal runs after it ---------------------------------------------------
for r in 2 3; do
  if "$hostd" --config run.yaml --duration 2s -q >run$r.out 2>run$r.err; then
    ok "run $r ends with status 0"
  else
    bad "run $r failed"; cat run$r.err
  fi
done
"$hostd" runs --store store --json >runs.json
check "three runs, newest first" test "$(jq -c '[.[].id]' runs.json)" = "[3,2,1]"
check "run 2 is complete and clean" \
  test "$(jq -r '.[1] | "\(.status) \(.clean) \(.has_report)"' runs.json)" = "complete true true"
check "run 1 is still incomplete" test "$(jq -r '.[2].status' runs.json)" = incomplete
check "run 2 has snapshots (one per second and a final one)" \
  test "$(jq '.[1].n_snapshots' runs.json)" -ge 2

"$hostd" report 2 --store store --json >run2.json
check "run facts: config text" test "$(jq -r '.config_text' run2.json)" = "$(cat run.yaml)"
check "run facts: seed, host, kernel, compiler" test "$(jq -r \
  '"\(.seed) \(.host.hostname) \(.host.kernel | length > 0) \(.build.compiler | test("GNU"))"' \
  run2.json)" = "7 $(hostname) true true"
check "run facts: plugins with versions and paths" test "$(jq -r \
  '[.stages[] | "\(.name)=\(.plugin)@\(.version)"] | join(",")' run2.json)" \
  = "gen=gen_static@1.0.0,pass=xf_pass@1.0.0,sink=sink_null@1.0.0"
check "report JSON: the sink's rate and latency" test "$(jq \
  '.report.stages[2] | .rate_per_s > 0 and .latency_ms.p99 > 0' run2.json)" = true

"$hostd" report 2 --store store >rep2.out
sed -n "/^pipeline 'kill9'/,\$p" run2.out >printed2.out
check "hostd report reprints exactly the end-of-run table" diff -u printed2.out <(sed 1d rep2.out)
check "report names the run" grep -q "^pipeline 'kill9' (run 2): " rep2.out
"$hostd" runs --config run.yaml >runs.txt
check "hostd runs --config reads store.path" grep -Eq "^ +1 +incomplete +kill9" runs.txt

"$hostd" compare 2 3 --store store >cmp.out
check "compare names both runs" grep -q "^A = run 2 (pipeline 'kill9'" cmp.out
check "compare has a row per figure with a change" grep -Eq "^sink +rec/s .* [+-][0-9.]+%$|^sink +rec/s .* 0\.0%$" cmp.out
set +e
"$hostd" compare 1 2 --store store >/dev/null 2>cmp1.err; rc=$?
"$hostd" report 99 --store store >/dev/null 2>r99.err; rc99=$?
"$hostd" runs --store nowhere >/dev/null 2>nowhere.err; rcn=$?
set -e
check "compare with the killed run: exit 1" test $rc = 1
check "unknown run: exit 1 with a message" grep -q "no run 99" r99.err
check "no store: exit 1, nothing created" test $rcn = 1 -a ! -e nowhere

echo "$fails failure(s)"
[ $fails -eq 0 ]
