#!/usr/bin/env bash
# A/B experiment as a user runs it: hostd parses market ticks with
# xf_json_fast and runs the library-based xf_json_jansson beside it in a
# duet (--ab) for 3 s (one look, at the end, so both variants are profiled
# for all of it; B is the costly one, so it collects enough samples even on
# a busy machine); the run ends with a verdict (an order of magnitude
# slower: SLOWER) and the variants' differential flame graph; `hostd
# experiments` reads the result back from the store, and the HTTP API
# refuses what it cannot do with a JSON reason. A second run starts an
# interleaved A/A experiment over HTTP (201) with a given seed, read back
# from the store with its six metrics, its seed and its warm-up left out. A
# third runs the duet from the config (a stage's ab:), beside an ab: whose
# B cannot be loaded (logged, the run goes on); --aa on the command line
# replaces a stage's ab:, and a bad ab: is a configuration error.
#
# usage: test_experiment.sh <build dir>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

cat >ab.yaml <<YAML
pipeline: ab
plugin_dirs: [$build/plugins]
batch_size: 256
run: {duration: 6s, warmup: 1s}
load: [{shape: constant, rate: 20000}]
stages:
  - {name: ticks, plugin: gen_market}
  - {name: parse, plugin: xf_json_fast}
  - {name: out, plugin: sink_null}
YAML
: >err.txt # the port loop reads it, maybe before hostd's shell has opened it
"$hostd" --config ab.yaml --store db --listen 127.0.0.1:0 --ab parse=xf_json_jansson --ab-seconds 3 \
  --ab-looks 1 --profile-continuous 500ms >report.txt 2>err.txt &
pid=$!
port=$(wait_port err.txt)
code=$(curl -s -o mode.json -w '%{http_code}' -X POST -d '{"stage":"parse","mode":"ping-pong","aa":true}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 400 ] && jq -e '.error.message | test("interleaved")' mode.json >/dev/null &&
  ok "an unknown mode is refused with a reason (400)" || bad "mode: HTTP $code $(cat mode.json)"
code=$(curl -s -o block.json -w '%{http_code}' -X POST \
  -d '{"stage":"parse","mode":"interleaved","aa":true,"block_ms":5}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 400 ] && jq -e '.error.message | test("block_ms")' block.json >/dev/null &&
  ok "block_ms below 10 is refused (400)" || bad "block_ms: HTTP $code $(cat block.json)"
code=$(curl -s -o seed.json -w '%{http_code}' -X POST -d '{"stage":"parse","aa":true,"seed":0}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 400 ] && jq -e '.error.message | test("seed")' seed.json >/dev/null &&
  ok "seed 0 is refused (400)" || bad "seed: HTTP $code $(cat seed.json)"
code=$(curl -s -o bad.json -w '%{http_code}' -X POST -d '{"stage":"ticks","aa":true}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 400 ] && ok "an experiment on a generator is refused (400)" || bad "generator: HTTP $code"
code=$(curl -s -o emptyb.json -w '%{http_code}' -X POST -d '{"stage":"parse","b":{}}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 400 ] && jq -e '.error.message | test("at least one of")' emptyb.json >/dev/null &&
  ok "a B that names nothing is refused (400)" || bad "empty b: HTTP $code $(cat emptyb.json)"
code=$(curl -s -o aab.json -w '%{http_code}' -X POST \
  -d '{"stage":"parse","aa":true,"b":{"plugin":"xf_pass"}}' "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 400 ] && ok "aa with a B plugin is refused (400)" || bad "aa + b: HTTP $code $(cat aab.json)"
set +e
wait $pid
rc=$?
set -e
pid=
[ $rc = 0 ] && ok "hostd ended cleanly" || { bad "hostd exit $rc"; cat err.txt; }
grep -q "verdict (CPU ns per record, threshold 1.0%): SLOWER" report.txt &&
  ok "the run ends with the verdict SLOWER" || { bad "no SLOWER verdict"; cat report.txt; }
grep -q "^cpu_ns_per_record" report.txt && ok "the result table is printed" || bad "no result table"
svg=$(sed -n 's/^differential flame graph (A -> B): //p' report.txt)
[ -n "$svg" ] && grep -q "xf_json_jansson:" "$svg" &&
  ok "the differential flame graph of A and B is written ($svg)" ||
  { bad "no differential flame graph"; grep -i flame report.txt; }
"$hostd" experiments --store db >exp.txt
grep -q "B = xf_json_jansson 1.0.0" exp.txt && grep -q "done: SLOWER" exp.txt &&
  ok "hostd experiments reads it back from the store" || { bad "hostd experiments"; cat exp.txt; }
"$hostd" experiments --store db --json | jq -e '.[0].metrics[0].ci | length == 2' >/dev/null &&
  ok "stored with its confidence interval" || bad "no CI in stored experiment"

# B by its parameters only: the stage's own plugin and version with other
# parameters (here the same empty set), as the config allows; a second
# experiment on the stage is a 409.
sed -e 's/duration: 6s, warmup: 1s/duration: 3s/' ab.yaml >po.yaml
: >po-err.txt
"$hostd" --config po.yaml --no-store --listen 127.0.0.1:0 >/dev/null 2>po-err.txt &
pid=$!
port=$(wait_port po-err.txt)
code=$(curl -s -o po.json -w '%{http_code}' -X POST -d '{"stage":"parse","b":{"params":{}},"max_seconds":1}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 201 ] && jq -e '.b.plugin == "xf_json_fast" and .b.version == "1.0.0"' po.json >/dev/null &&
  ok "a B of params only is the stage's plugin and version (201)" || bad "params-only b: HTTP $code $(cat po.json)"
code=$(curl -s -o po2.json -w '%{http_code}' -X POST -d '{"stage":"parse","b":{"version":"1.0.0"}}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 409 ] && ok "a second experiment on the stage is a 409" || bad "second: HTTP $code $(cat po2.json)"
wait $pid || bad "hostd (params-only B) failed"
pid=

# Interleaved: A and B take turns on the stream; started over HTTP.
sed -e 's/duration: 6s, warmup: 1s/duration: 5s/' ab.yaml >il.yaml
: >il-err.txt
"$hostd" --config il.yaml --store db2 --listen 127.0.0.1:0 >il-report.txt 2>il-err.txt &
pid=$!
port=$(wait_port il-err.txt)
code=$(curl -s -o il.json -w '%{http_code}' -X POST \
  -d '{"stage":"parse","mode":"interleaved","aa":true,"block_ms":20,"max_seconds":3,"looks":1,"seed":7}' \
  "http://127.0.0.1:$port/api/v1/experiments")
[ "$code" = 201 ] && jq -e '.mode == "interleaved" and .block_ms == 20' il.json >/dev/null &&
  ok "an interleaved experiment is started over HTTP (201)" || bad "interleaved: HTTP $code $(cat il.json)"
set +e
wait $pid
rc=$?
set -e
pid=
[ $rc = 0 ] && ok "hostd (interleaved) ended cleanly" || { bad "hostd exit $rc"; cat il-err.txt; }
"$hostd" experiments --store db2 --json >il-stored.json
jq -e '.[0].mode == "interleaved" and (.[0].metrics | length == 6) and
       ([.[0].metrics[] | select(.primary)][0].name == "p99_latency_ns") and
       (.[0].samples >= 100)' il-stored.json >/dev/null &&
  ok "the interleaved result is stored: 6 metrics, p99 latency primary" ||
  { bad "stored interleaved experiment"; cat il-stored.json; }
# The verdict is the primary metric's, the given seed is the one used, and
# the warm-up round is left out. (Whether A/A verdicts are right is measured
# over many runs: test_experiment and the benchmark.)
jq -e '.[0].verdict == ([.[0].metrics[] | select(.primary)][0].verdict) and
       (.[0].verdict | IN("SAME", "FASTER", "SLOWER", "UNKNOWN", "UNSTABLE")) and
       .[0].seed == 7 and .[0].skipped_blocks >= 4' il-stored.json >/dev/null &&
  ok "interleaved A/A: verdict $(jq -r '.[0].verdict' il-stored.json) from the primary metric, seed 7, warm-up left out" ||
  { bad "interleaved A/A result"; jq -c '.[0] | {verdict, seed, skipped_blocks}' il-stored.json; }
"$hostd" experiments --store db2 | grep -q "(interleaved, A/A).*blocks in" &&
  ok "hostd experiments prints it" || { bad "hostd experiments (interleaved)"; "$hostd" experiments --store db2; }

# The duet from the config: ab: on the parse stage, no command-line option.
# A second ab: names a plugin that does not exist: hostd says why and the
# run goes on without that experiment.
cat >cfg-ab.yaml <<YAML
pipeline: cfg-ab
plugin_dirs: [$build/plugins]
batch_size: 256
run: {duration: 5s, warmup: 1s}
load: [{shape: constant, rate: 20000}]
stages:
  - {name: ticks, plugin: gen_market}
  - name: parse
    plugin: xf_json_fast
    ab: {plugin: xf_json_jansson, duration: 2s, looks: 1}
  - name: pass
    plugin: xf_pass
    ab: {plugin: xf_missing}
  - {name: out, plugin: sink_null}
YAML
set +e
"$hostd" --config cfg-ab.yaml --store db3 --no-http >cfg-report.txt 2>cfg-err.txt
rc=$?
set -e
[ $rc = 0 ] && ok "hostd with ab: in the config ended cleanly" || { bad "hostd (ab:) exit $rc"; cat cfg-err.txt; }
grep -q "experiment parse=xf_json_jansson: duet on stage 'parse' for up to 2 s (stages\[1\].ab)" \
  cfg-err.txt && ok "the config's experiment starts after warm-up, for its duration" ||
  { bad "no start of the config's experiment"; cat cfg-err.txt; }
grep -q "verdict (CPU ns per record, threshold 1.0%): SLOWER" cfg-report.txt &&
  ok "the config's experiment ends with the verdict SLOWER" || { bad "no SLOWER verdict (ab:)"; cat cfg-report.txt; }
grep -q "experiment of stages\[2\].ab (pass=xf_missing, cfg-ab.yaml:13:9) not started: .*xf_missing.*not found" \
  cfg-err.txt && grep -q "^pass " cfg-report.txt &&
  ok "a B that cannot be loaded is logged with its reason, and the run goes on" ||
  { bad "missing B plugin"; cat cfg-err.txt; }
"$hostd" experiments --store db3 >cfg-exp.txt
grep -q "stage 'parse' (duet): A = xf_json_fast 1.0.0, B = xf_json_jansson 1.0.0" cfg-exp.txt &&
  grep -q "done: SLOWER" cfg-exp.txt && [ "$(grep -c '^run ' cfg-exp.txt)" = 1 ] &&
  ok "hostd experiments reads the config's experiment back from the store" ||
  { bad "hostd experiments (ab:)"; cat cfg-exp.txt; }
# On the same stage, the command line wins and says so.
"$hostd" --config cfg-ab.yaml --no-store --no-http --duration 2500ms --aa parse >cli.txt 2>cli-err.txt ||
  bad "hostd --aa with ab: exit $?"
grep -q "experiment: --aa on the command line replaces stages\[1\].ab (cfg-ab.yaml:10:9) on stage 'parse'" \
  cli-err.txt && grep -q "on stage 'parse' (duet, A/A)" cli.txt && [ "$(grep -c '^experiment ' cli.txt)" = 1 ] &&
  ok "--aa on the command line replaces the stage's ab:" || { bad "--aa over ab:"; cat cli-err.txt cli.txt; }
# A bad ab: is a configuration error (exit 2) that names its place.
sed 's/ab: {plugin: xf_json_jansson, duration: 2s, looks: 1}/ab: {plugin: xf_json_jansson, mode: duet, block: 50ms}/' \
  cfg-ab.yaml >bad-ab.yaml
set +e
"$hostd" --check --config bad-ab.yaml >/dev/null 2>bad-ab.txt
rc=$?
set -e
[ $rc = 2 ] && grep -q "bad-ab.yaml:10:54: stages\[1\].ab.block: block applies to mode 'interleaved' only" \
  bad-ab.txt && ok "a bad ab: is refused with its place in the file (exit 2)" ||
  { bad "bad ab: exit $rc"; cat bad-ab.txt; }

set +e
"$hostd" --config il.yaml --no-store --no-http --ab-mode alternate --aa parse >/dev/null 2>mode-err.txt
rc=$?
set -e
[ $rc = 2 ] && grep -q "interleaved" mode-err.txt && ok "--ab-mode refuses an unknown mode" ||
  bad "--ab-mode alternate: exit $rc"

finish
