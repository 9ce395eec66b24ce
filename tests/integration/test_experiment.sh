#!/usr/bin/env bash
# A/B experiment as a user runs it: hostd parses market ticks with
# xf_json_jansson and runs xf_json_fast beside it in a duet (--ab) for 3 s
# (one look, at the end, so both variants are profiled for all of it); the
# run ends with a verdict (the zero-copy parser is an order of magnitude
# faster: FASTER) and the variants' differential flame graph; `hostd
# experiments` reads the result back from the store, and the HTTP API
# refuses what it cannot do with a JSON reason.
#
# usage: test_experiment.sh <build dir>
set -euo pipefail
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

cat >ab.yaml <<YAML
pipeline: ab
plugin_dirs: [$build/plugins]
batch_size: 256
run: {duration: 6s, warmup: 1s}
load: [{shape: constant, rate: 20000}]
stages:
  - {name: ticks, plugin: gen_market}
  - {name: parse, plugin: xf_json_jansson}
  - {name: out, plugin: sink_null}
YAML
"$hostd" --config ab.yaml --store db --listen 127.0.0.1:0 --ab parse=xf_json_fast --ab-seconds 3 \
  --ab-looks 1 --profile-continuous 500ms >report.txt 2>err.txt &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' err.txt | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat err.txt; echo "hostd did not start"; exit 1; }
code=$(curl -s -o mode.json -w '%{http_code}' -X POST -d '{"stage":"parse","mode":"interleaved","aa":true}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 501 ] && jq -e '.error.message | test("interleaved")' mode.json >/dev/null &&
  ok "interleaved mode is refused with a reason (501)" || bad "interleaved: HTTP $code $(cat mode.json)"
code=$(curl -s -o bad.json -w '%{http_code}' -X POST -d '{"stage":"ticks","aa":true}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 400 ] && ok "an experiment on a generator is refused (400)" || bad "generator: HTTP $code"
set +e
wait $pid
rc=$?
set -e
pid=
[ $rc = 0 ] && ok "hostd ended cleanly" || { bad "hostd exit $rc"; cat err.txt; }
grep -q "verdict (CPU ns per record, threshold 1.0%): FASTER" report.txt &&
  ok "the run ends with the verdict FASTER" || { bad "no FASTER verdict"; cat report.txt; }
grep -q "^cpu_ns_per_record" report.txt && ok "the result table is printed" || bad "no result table"
svg=$(sed -n 's/^differential flame graph (A -> B): //p' report.txt)
[ -n "$svg" ] && grep -q "xf_json_fast:" "$svg" &&
  ok "the differential flame graph of A and B is written ($svg)" ||
  { bad "no differential flame graph"; grep -i flame report.txt; }
"$hostd" experiments --store db >exp.txt
grep -q "B = xf_json_fast 1.0.0" exp.txt && grep -q "done: FASTER" exp.txt &&
  ok "hostd experiments reads it back from the store" || { bad "hostd experiments"; cat exp.txt; }
"$hostd" experiments --store db --json | jq -e '.[0].metrics[0].ci | length == 2' >/dev/null &&
  ok "stored with its confidence interval" || bad "no CI in stored experiment"

if [ $fails -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "all checks passed"
