#!/usr/bin/env bash
# test_faults.sh - hostd when a plugin stops returning: the watchdog names
# the callback that runs too long (run.callback_warn); a drain that cannot
# finish ends after run.drain_timeout with the report printed and stored,
# naming the stuck stage; with no drain timeout, a second SIGTERM ends the
# drain at once, the same way; a third signal exits at once.
#
# usage: test_faults.sh <build dir>
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$1"
plugins=$build/plugins
tplugins=$build/tests/plugins

conf() { # conf DRAIN_TIMEOUT DURATION
  cat >hang.yaml <<YAML
pipeline: hang
plugin_dirs: [$plugins, $tplugins]
batch_size: 64
run: {duration: $2, drain_timeout: $1, callback_warn: 300ms}
load: [{shape: constant, rate: 20000}]
stages:
  - {name: gen, plugin: gen_static}
  - {name: stuck, plugin: tp_hang, params: {after: 5}}
  - {name: sink, plugin: sink_null}
YAML
}

# 1. The drain timeout: the run ends by itself.
conf 1s 1s
t0=$(date +%s%N)
set +e
"$hostd" --config hang.yaml --store st1 --no-http >out1.txt 2>err1.txt
rc=$?
set -e
t=$((($(date +%s%N) - t0) / 1000000))
echo "# exit $rc after $t ms"
[ "$rc" = 1 ] && [ "$t" -lt 8000 ] && ok "a stuck drain ends after run.drain_timeout (exit 1, ${t} ms)" ||
  { bad "drain timeout: exit $rc after $t ms"; cat err1.txt; }
grep -q "stuck: warning: plugin tp_hang 1.0.0: its process callback has been running for" err1.txt &&
  ok "the watchdog names the stage, plugin and callback" || { bad "no watchdog line"; cat err1.txt; }
grep -q "drain abandoned after .*run.drain_timeout passed.*'stuck' (in a callback of tp_hang" err1.txt &&
  ok "the log names the stuck stage" || { bad "stuck stage not named"; cat err1.txt; }
grep -q "^stage .*records_in" out1.txt && ok "the report is printed" || bad "no report printed"
"$hostd" report 1 --store st1 >rep1.txt 2>&1 && grep -q "tp_hang" rep1.txt &&
  ok "the report is stored with the run" || { bad "report not stored"; cat rep1.txt; }

# 2. No drain timeout: a second SIGTERM ends the drain; the report is kept.
# Meanwhile /metrics and /api/v1/stages show how long the callback has run.
conf 0 0
"$hostd" --config hang.yaml --store st2 --listen 127.0.0.1:0 >out2.txt 2>err2.txt &
pid=$!
port=$(wait_port err2.txt)
for _ in $(seq 1 100); do grep -q "has been running" err2.txt && break; sleep 0.1; done
curl -s -H "Host: 127.0.0.1" "http://127.0.0.1:$port/metrics" >m.txt || true
running=$(sed -n 's/^observatory_callback_running_seconds{[^}]*stage="stuck"[^}]*} \(.*\)/\1/p' m.txt | head -1)
awk -v r="${running:-0}" 'BEGIN { exit !(r >= 0.3) }' &&
  ok "/metrics shows the stuck callback running for ${running} s" || bad "callback_running_seconds: '${running}'"
curl -s -H "Host: 127.0.0.1" "http://127.0.0.1:$port/api/v1/stages" >api.txt || true
grep -Eq '"callback_running_seconds":([1-9]|0\.[3-9])' api.txt &&
  ok "/api/v1/stages shows it too" || bad "/api/v1/stages lacks callback_running_seconds"
kill -TERM "$pid"
sleep 0.5
kill -0 "$pid" 2>/dev/null && ok "after one SIGTERM the drain waits for the stuck stage" ||
  bad "hostd ended on the first SIGTERM though a stage was stuck"
kill -TERM "$pid"
set +e
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { bad "hostd still running 5 s after the second SIGTERM"; kill -9 "$pid"; }
wait "$pid"
rc=$?
set -e
pid=
[ "$rc" = 1 ] && ok "the second SIGTERM ends the drain (exit 1)" || bad "second SIGTERM: exit $rc"
grep -q "asked to stop at once.*'stuck'" err2.txt && ok "the log says why and names the stuck stage" ||
  { bad "second SIGTERM log"; cat err2.txt; }
"$hostd" report 1 --store st2 >rep2.txt 2>&1 && grep -q "tp_hang" rep2.txt &&
  ok "the report is stored after the second SIGTERM" || { bad "report not stored"; cat rep2.txt; }
# 3. Crashes: the stage, plugin, build-id and signal are named; the run shows as crashed.
for how in segv abort stack; do
  cat >crash.yaml <<YAML
pipeline: crash
plugin_dirs: [$plugins, $tplugins]
batch_size: 64
load: [{shape: constant, rate: 20000}]
stages:
  - {name: gen, plugin: gen_static}
  - {name: boom, plugin: tp_crash, params: {after: 5, how: $how}}
  - {name: sink, plugin: sink_null}
YAML
  set +e
  "$hostd" --config crash.yaml --store "st-$how" --no-http >/dev/null 2>"crash-$how.err"
  rc=$?
  set -e
  want=$([ "$how" = abort ] && echo 134 || echo 139)
  [ "$rc" = "$want" ] && ok "$how: hostd dies with the signal (exit $rc)" || bad "$how: exit $rc, wanted $want"
  grep -q "hostd: CRASH: stage 'boom', plugin tp_crash 1.0.0, build-id [0-9a-f]*, file .*tp_crash.so, inside its process callback: SIG" "crash-$how.err" &&
    ok "$how: stderr names the stage, plugin, build-id, file and callback" || { bad "$how: no crash line"; cat "crash-$how.err"; }
  grep -q "tp_crash.so+0x[0-9a-f]*$" "crash-$how.err" && ok "$how: the backtrace reaches into the plugin" ||
    bad "$how: no plugin frame in the backtrace"
  # To files first: grep -q stops reading at the first match (pipefail).
  "$hostd" runs --store "st-$how" >"runs-$how.txt" 2>&1 || true
  "$hostd" report 1 --store "st-$how" >"report-$how.txt" 2>&1 || true
  grep -q " crashed " "runs-$how.txt" && ok "$how: hostd runs shows the run as crashed" ||
    bad "$how: run not shown as crashed"
  grep -q "CRASHED; the record hostd left" "report-$how.txt" &&
    ok "$how: hostd report prints the crash record" || bad "$how: report lacks the crash record"
done
# The HTTP run routes (and so the dashboard) say so too.
"$hostd" dashboard --store st-segv --store st-abort --listen 127.0.0.1:0 >/dev/null 2>dash.err &
dpid=$!
dport=$(wait_port dash.err)
curl -s -H "Host: 127.0.0.1" -o runs.json "http://127.0.0.1:$dport/api/v1/runs"
curl -s -H "Host: 127.0.0.1" -o run1.json "http://127.0.0.1:$dport/api/v1/runs/1?store=1"
kill $dpid
python3 - <<'PY' && ok "/api/v1/runs shows both runs crashed; /api/v1/runs/1 has the record" ||
import json
runs = json.load(open("runs.json"))["runs"]
assert [r["status"] for r in runs] == ["crashed", "crashed"], runs
run = json.load(open("run1.json"))
assert run["status"] == "crashed" and "stage 'boom', plugin tp_crash" in run["crash"], run.get("status")
PY
  bad "crashed runs over HTTP"
finish
