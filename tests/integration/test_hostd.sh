#!/usr/bin/env bash
# Integration test of hostd as a user runs it: command line, --check, config
# and plugin errors that say what to fix, a timed run whose RocksDB output is
# read back and checked record by record (sequence numbers), a run ended by
# SIGINT that must drain everything it accepted, SIGUSR1 (report so far),
# SIGPIPE (ignored) and SIGHUP (a clean stop), and the demo config.
#
# usage: test_hostd.sh <build dir> <source dir>
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
hostd=$build/core/hostd
dbread=$build/tests/integration/obs-dbread
plugins=$build/plugins
tplugins=$build/tests/plugins
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fails=0
ok() { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
expect_in() { # <file> <needle> <what>
  if grep -qF -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in:"; sed 's/^/    /' "$1"; fi
}

# --- command line -----------------------------------------------------------
"$hostd" --version >out.txt && expect_in out.txt "plugin ABI 1." "--version names the ABI"
"$hostd" --help >out.txt && expect_in out.txt "--config FILE" "--help documents --config"
set +e
"$hostd" >/dev/null 2>err.txt; rc=$?
set -e
[ $rc -eq 2 ] && ok "no --config exits 2" || bad "no --config exited $rc"

# --- --check ----------------------------------------------------------------
"$hostd" --check --config "$src/config/demo.yaml" --plugin-dir "$plugins" >out.txt
expect_in out.txt "ok: pipeline 'demo'" "--check accepts the demo config"
# No side effects: plugins are not initialised, so sink_rocksdb creates no database.
cat >noinit.yaml <<YAML
pipeline: noinit
plugin_dirs: [$plugins]
stages:
  - {name: g, plugin: gen_static}
  - {name: s, plugin: sink_rocksdb, params: {path: $PWD/check-db}}
YAML
"$hostd" --check --config noinit.yaml >out.txt
if grep -q "ok: pipeline 'noinit'" out.txt && [ ! -e check-db ]; then
  ok "--check initialises no plugin (sink_rocksdb created no database)"
else
  bad "--check had a side effect or failed: $(cat out.txt; ls -d check-db 2>&1)"
fi

check_fails() { # <yaml> <needle> <what>
  printf '%s' "$1" >bad.yaml
  set +e
  "$hostd" --check --config bad.yaml >/dev/null 2>err.txt; local rc=$?
  set -e
  if [ $rc -ne 2 ]; then bad "$3: exit $rc, expected 2"; cat err.txt; return; fi
  expect_in err.txt "$2" "$3"
}
check_fails "pipeline: x
plugin_dirs: [$plugins]
stages:
  - {name: g, plugin: gen_static}
  - {name: s, plugin: sink_null, colour: red}
" "bad.yaml:5:" "unknown stage key points at its line"
check_fails "pipeline: x
plugin_dirs: [$plugins]
stages:
  - {name: g, plugin: gen_static}
  - name: w
    plugin: xf_window
    params: {window_ms: 0}
  - {name: s, plugin: sink_null}
" "bad.yaml:7:" "out-of-range plugin parameter points at its line"
check_fails "pipeline: x
plugin_dirs: [$plugins, $tplugins]
stages:
  - {name: g, plugin: gen_static}
  - {name: t, plugin: tp_major2}
  - {name: s, plugin: sink_null}
" "ABI major 2, host supports 1" "plugin built for another ABI major is refused"
check_fails "pipeline: x
plugin_dirs: [$plugins, $tplugins]
stages:
  - {name: g, plugin: gen_static}
  - {name: t, plugin: tp_no_entry}
  - {name: s, plugin: sink_null}
" "obs_stage_entry" "plugin without the entry symbol is refused"

# --- a timed run, read back from RocksDB ------------------------------------
cat >run.yaml <<YAML
pipeline: itest
plugin_dirs: [$plugins]
batch_size: 128
ring_capacity: 8
run: {duration: 2s, seed: 7}
load: [{shape: constant, rate: 50000}]
stages:
  - {name: ticks, plugin: gen_market, params: {symbols: 50}}
  - {name: parse, plugin: xf_json_fast}
  - {name: store, plugin: sink_rocksdb, params: {path: db-run, key: seq}}
YAML
"$hostd" --config run.yaml --listen 127.0.0.1:0 >report.txt 2>err.txt || { bad "timed run failed"; cat err.txt; }
sent=$(awk '$1 == "ticks" {gsub(",", "", $5); print $5}' report.txt)
stored=$(awk '$1 == "parse" {gsub(",", "", $5); print $5}' report.txt)
if [ -n "$sent" ] && [ "$sent" -gt 0 ]; then ok "timed run sent $sent records"; else bad "timed run sent '$sent'"; cat report.txt; fi
[ "$sent" = "$stored" ] && ok "parser emitted every record ($stored)" || bad "parser emitted $stored of $sent"
"$dbread" db-run --seqs >db.txt || { bad "obs-dbread --seqs failed"; cat db.txt; }
expect_in db.txt "keys=$sent " "RocksDB holds exactly the $sent records sent"

# --- SIGINT drains what was accepted ----------------------------------------
sed -e 's/duration: 2s/duration: 0/' -e 's/db-run/db-sig/' run.yaml >sig.yaml
"$hostd" --config sig.yaml --listen 127.0.0.1:0 >sig.txt 2>sigerr.txt &
pid=$!
sleep 1.5
kill -INT $pid
set +e
wait $pid; rc=$?
set -e
[ $rc -eq 0 ] && ok "SIGINT ends the run with exit 0" || { bad "SIGINT exit $rc"; cat sigerr.txt; }
expect_in sigerr.txt "SIGINT received" "hostd says why it stopped"
sent=$(awk '$1 == "ticks" {gsub(",", "", $5); print $5}' sig.txt)
"$dbread" db-sig --seqs >db.txt || { bad "obs-dbread --seqs after SIGINT failed"; cat db.txt; }
expect_in db.txt "keys=$sent " "after SIGINT RocksDB holds all $sent records sent"

# --- SIGUSR1 reports so far, SIGPIPE is ignored, SIGHUP ends the run cleanly -
sed -e 's/duration: 2s/duration: 0/' -e 's/db-run/db-hup/' run.yaml >hup.yaml
"$hostd" --config hup.yaml --listen 127.0.0.1:0 >hup.txt 2>huperr.txt &
pid=$!
sleep 1
kill -USR1 $pid
kill -PIPE $pid
sleep 0.5
kill -0 $pid 2>/dev/null && ok "SIGUSR1 and SIGPIPE leave the run going" || bad "hostd died on SIGUSR1/SIGPIPE"
# A second hostd on the same store says which process holds it.
set +e
cat >second.yaml <<YAML
pipeline: second
plugin_dirs: [$plugins]
run: {duration: 1s}
stages:
  - {name: gen, plugin: gen_static}
  - {name: sink, plugin: sink_null}
YAML
"$hostd" --config second.yaml --listen 127.0.0.1:0 >second.txt 2>second.err; rc=$?
set -e
[ $rc -ne 0 ] && ok "a second hostd on the same store fails" || bad "a second hostd on the same store ran"
expect_in second.err "is in use by process $pid" "it names the process that holds the store"
# One on its own store but the same HTTP port: its run is recorded as not
# started, with the reason, not left looking like a crash.
set +e
hport=$(sed -n 's/.*serving HTTP on .*, port \([0-9][0-9]*\).*/\1/p' huperr.txt | head -n 1)
"$hostd" --config second.yaml --store other-store --listen "127.0.0.1:${hport:-1}" >third.txt \
  2>third.err; rc=$?
set -e
[ $rc -ne 0 ] && ok "a hostd that cannot listen fails" || bad "a hostd on a busy port ran"
"$hostd" runs --store other-store >runs.txt 2>&1 || bad "hostd runs on other-store failed"
expect_in runs.txt "not started" "its run is recorded as not started"
"$hostd" runs --store other-store --json >runs.json 2>&1 || true
expect_in runs.json "cannot listen" "with the reason"
kill -HUP $pid
set +e
wait $pid; rc=$?
set -e
[ $rc -eq 0 ] && ok "SIGHUP ends the run with exit 0" || { bad "SIGHUP exit $rc"; cat huperr.txt; }
expect_in huperr.txt "SIGUSR1: the report so far" "SIGUSR1 printed the report so far"
expect_in huperr.txt "SIGHUP received" "hostd says SIGHUP stopped it"
expect_in hup.txt "ended cleanly" "the run after SIGHUP has its report"
sent=$(awk '$1 == "ticks" {gsub(",", "", $5); print $5}' hup.txt)
"$dbread" db-hup --seqs >db.txt || { bad "obs-dbread --seqs after SIGHUP failed"; cat db.txt; }
expect_in db.txt "keys=$sent " "after SIGHUP RocksDB holds all $sent records sent"

# --- the demo pipeline, shortened --------------------------------------------
"$hostd" --config "$src/config/demo.yaml" --plugin-dir "$plugins" --duration 3s --listen 127.0.0.1:0 \
  >demo.txt 2>demoerr.txt ||
  { bad "demo run failed"; cat demoerr.txt; }
expect_in demo.txt "ended cleanly" "demo ends cleanly"
"$dbread" demo-data/ticks >db.txt || bad "obs-dbread on the demo output failed"
expect_in db.txt "ordered=1" "demo windows are stored in key order"

# --- progress when stdout is not a terminal ----------------------------------
"$hostd" --config "$src/config/null.yaml" --plugin-dir "$plugins" --duration 1100ms --no-http \
  --no-store --progress 250ms >prog.txt 2>progerr.txt || bad "progress run failed"
n=$(grep -c "^hostd: progress: .* records at the sink, .* records/s$" progerr.txt || true)
[ "$n" -ge 3 ] && ok "a status line on stderr every --progress period when stdout is a file ($n)" ||
  { bad "progress lines: $n"; cat progerr.txt; }
"$hostd" --config "$src/config/null.yaml" --plugin-dir "$plugins" --duration 300ms --no-http \
  --no-store -q >prog.txt 2>progerr.txt || bad "quiet run failed"
grep -q "progress" progerr.txt && bad "--quiet still printed progress" || ok "--quiet prints no progress"

# --- the generator's verdict comes from the load shape ---------------------
# A scheduled rate far above what the generator can make is late, never
# "no schedule"; a max load is.
for shape in "{shape: constant, rate: 5e8}" "{shape: max}"; do
  sed -e "s|^  - shape: max|  - $shape|" -e "/^plugin_dirs:/d" "$src/config/null.yaml" >shape.yaml
  grep -qF -- "  - $shape" shape.yaml || { bad "config/null.yaml's load changed"; break; }
  "$hostd" --config shape.yaml --plugin-dir "$plugins" --duration 500ms --no-http --no-store \
    >shape.txt 2>&1 || bad "run with load $shape failed"
  case $shape in
  *constant*)
    if grep -q "no schedule" shape.txt; then bad "a scheduled rate reported as 'no schedule'"
    else grep -Eq "GENERATOR (COULD NOT KEEP UP|WAS LATE)" shape.txt &&
      ok "a scheduled rate the generator cannot reach is reported late" || { bad "no late verdict"; cat shape.txt; }
    fi ;;
  *) grep -q "no schedule" shape.txt && ok "load shape max is reported as no schedule" ||
       { bad "max not reported as no schedule"; cat shape.txt; } ;;
  esac
done

# --- run.id: one run over several stores ------------------------------------
for id in grp-a grp-b; do
  for st in grp1 grp2; do
    "$hostd" --config "$src/config/null.yaml" --plugin-dir "$plugins" --duration 300ms --no-http \
      --store "$st" --run-id "$id" >/dev/null 2>&1 || bad "run $id in $st failed"
  done
done
"$hostd" runs --store grp1 >runs.txt
expect_in runs.txt "grp-b" "hostd runs shows the run.id"
"$hostd" report --run-id grp-a --store grp1 --store grp2 >grp.txt 2>&1 || bad "report --run-id failed"
expect_in grp.txt "run.id grp-a: 2 processes" "report --run-id finds the run in both stores"
expect_in grp.txt "end to end:" "report --run-id ends with the end-to-end line"
"$hostd" compare --run-id grp-a --run-id grp-b --store grp1 --store grp2 >cmp.txt 2>&1 ||
  bad "compare --run-id failed"
expect_in cmp.txt "run.id grp-a vs grp-b" "compare --run-id puts the two runs side by side"
set +e
"$hostd" report --run-id nope --store grp1 >/dev/null 2>nope.txt
rc=$?
set -e
[ $rc -eq 1 ] && ok "report --run-id of an unknown id exits 1" || bad "unknown run.id: exit $rc"
expect_in nope.txt "no run with run.id 'nope'" "and says which id it did not find"
"$hostd" report --run-id grp-a --store grp1 --store grp2 --json >grp.json 2>&1 ||
  bad "report --run-id --json failed"
python3 - grp.json <<'PY' && ok "report --run-id --json: both processes, their stores, end to end" || bad "report --run-id --json"
import json, sys
g = json.load(open(sys.argv[1]))
assert [p["store_path"] for p in g["processes"]] == ["grp1", "grp2"], g["processes"]
assert [p["store"] for p in g["processes"]] == [0, 1]
e = g["end_to_end"]
assert e["records_delivered"] > 0 and e["delivered_by"]["process"] == 2, e
PY

# --- hostd dashboard: the run API over several stores, read-only -----------------------
"$hostd" dashboard --store grp1 --store grp2 --listen 127.0.0.1:0 >/dev/null 2>dash.err &
dpid=$!
dport=
for _ in $(seq 1 100); do
  dport=$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' dash.err | head -n 1)
  [ -n "$dport" ] && break
  sleep 0.1
done
[ -n "$dport" ] || { bad "hostd dashboard did not start"; cat dash.err; }
get() { curl -s -H "Host: 127.0.0.1" -o "$2" -w "%{http_code}" "http://127.0.0.1:$dport$1"; }
[ "$(get /api/v1/groups groups.json)" = 200 ] && ok "dashboard: GET /api/v1/groups" || bad "groups"
[ "$(get /api/v1/groups/grp-a group.json)" = 200 ] && ok "dashboard: GET /api/v1/groups/grp-a" ||
  bad "group grp-a"
[ "$(get /api/v1/runs allruns.json)" = 200 ] && ok "dashboard: GET /api/v1/runs" || bad "runs"
[ "$(get '/api/v1/runs/1/metrics?store=1' m.json)" = 200 ] && ok "dashboard: a run of store 1" ||
  bad "runs/1/metrics?store=1"
[ "$(get '/api/v1/runs/1?store=2' e1.json)" = 404 ] && ok "dashboard: store 2 of 2 is a 404" ||
  bad "store=2: $(cat e1.json)"
[ "$(get '/api/v1/runs/1?store=x' e2.json)" = 400 ] && ok "dashboard: store=x is a 400" || bad "store=x"
[ "$(get '/api/v1/groups/no%20such' e3.json)" = 400 ] && ok "dashboard: a bad run.id is a 400" ||
  bad "bad run.id: $(cat e3.json)"
[ "$(get /api/v1/groups/nope e4.json)" = 404 ] && ok "dashboard: an unknown run.id is a 404" ||
  bad "unknown run.id"
[ "$(get /api/v1/stages e5.json)" = 503 ] && ok "dashboard: no pipeline, stage routes 503" ||
  bad "stages: $(cat e5.json)"
python3 - <<'PY' && ok "dashboard: groups and runs of both stores, with their store numbers" || bad "dashboard JSON"
import json
groups = {g["run_id"]: g for g in json.load(open("groups.json"))["groups"]}
assert groups["grp-a"]["processes"] == 2 and groups["grp-b"]["status"] == "complete", groups
g = json.load(open("group.json"))
assert sorted(p["store"] for p in g["processes"]) == [0, 1] and g["end_to_end"]["records_delivered"] > 0
runs = json.load(open("allruns.json"))
assert runs["stores"] == ["grp1", "grp2"] and sorted({r["store"] for r in runs["runs"]}) == [0, 1]
starts = [r["start_ns"] for r in runs["runs"]]
assert starts == sorted(starts, reverse=True), "newest first across stores"
PY
kill -TERM $dpid
set +e
wait $dpid
rc=$?
"$hostd" dashboard --store no-such-store >/dev/null 2>nostore.txt
rc2=$?
set -e
[ $rc -eq 0 ] && ok "hostd dashboard exits 0 on SIGTERM" || bad "dashboard exit $rc"
[ $rc2 -eq 1 ] && grep -q "no store at 'no-such-store'" nostore.txt &&
  ok "hostd dashboard on a missing store: exit 1 and says which" || bad "missing store: $rc2"

if [ $fails -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "all checks passed"
