#!/usr/bin/env bash
# Profiles stored with runs, as a user compares two plugins: hostd runs
# gen_market -> xf_json_jansson -> sink_null with --profile-continuous 500ms,
# then the same pipeline with xf_json_fast; each run's windows are read back
# over HTTP (folded stacks naming the run's own parser, the window count in
# the SVG title, a time range, label filters), the differential flame graph
# of run 1 -> run 2 is served as SVG and as difffolded text, errors are JSON
# 400/404, and `hostd profile-diff` writes the SVG from the store alone.
#
# usage: test_profile_store.sh <build dir>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# Starts hostd on pipeline $1 (its parse stage running plugin $2, $3
# records/s) in the background for 3 s plus a linger, and sets $pid and $url.
start_run() {
  cat >"$1.yaml" <<YAML
pipeline: $1
plugin_dirs: [$build/plugins]
batch_size: 256
run: {duration: 3s, warmup: 0s}
load: [{shape: constant, rate: $3}]
stages:
  - {name: ticks, plugin: gen_market}
  - {name: parse, plugin: $2}
  - {name: out, plugin: sink_null}
YAML
  "$hostd" --config "$1.yaml" --store db --listen 127.0.0.1:0 --profile-continuous 500ms \
    --linger 30s >"$1.report" 2>"$1.err" &
  pid=$!
  local port
  port=$(wait_port "$1.err")
  url=http://127.0.0.1:$port
  # The run is over (and its last window stored) once hostd says it lingers.
  for _ in $(seq 1 200); do
    grep -q "serving HTTP for" "$1.err" && return 0
    sleep 0.1
  done
  cat "$1.err"
  echo "hostd did not finish its run"
  exit 1
}

stop_run() {
  kill -INT "$pid"
  set +e
  wait "$pid"
  local rc=$?
  set -e
  pid=
  [ $rc = 0 ] && ok "$1: hostd exited 0 after lingering" || { bad "$1: hostd exit $rc"; cat "$1.err"; }
}

# get PATH: body in out.txt, HTTP status in $code.
get() { code=$(curl -s -o out.txt -w '%{http_code}' "$url$1"); }

# ---------------------------------------------------------------- run 1
start_run jansson xf_json_jansson 40000

get "/api/v1/runs/1/profile?format=folded"
if [ "$code" = 200 ] && grep -Eq 'xf_json_jansson:|json_loadb' out.txt; then
  ok "run 1's stored profile names jansson frames"
else
  bad "run 1 folded: HTTP $code: $(head -c 300 out.txt)"
fi
grep -q 'xf_json_fast:' out.txt && bad "run 1's profile has xf_json_fast frames" ||
  ok "run 1's profile has no xf_json_fast frames"
grep -q 'stage=parse' out.txt && ok "stored samples keep their tags" || bad "no stage=parse tag"

get "/api/v1/runs/1/profile"
windows=$(sed -n 's/.*CPU profile of run 1, \([0-9][0-9]*\) windows.*/\1/p' out.txt | head -n 1)
if [ "$code" = 200 ] && grep -q '<svg' out.txt && [ "${windows:-0}" -ge 4 ]; then
  ok "SVG of run 1 merges $windows windows of 500 ms"
else
  bad "run 1 svg: HTTP $code, windows '${windows:-}'"
fi

get "/api/v1/runs/1/profile?format=json&stage=parse"
[ "$code" = 200 ] && jq -e '.weight > 0' out.txt >/dev/null &&
  ok "JSON of the parse stage has samples" || bad "json: HTTP $code"

get "/api/v1/runs/1/profile?format=pprof"
[ "$code" = 200 ] && [ -s out.txt ] && ok "pprof of a stored run" || bad "pprof: HTTP $code"

# A time range: the whole run by its bounds, then one before it began.
now=$(date +%s)
get "/api/v1/runs/1/profile?format=folded&from=$((now - 600))&to=$((now + 600))"
[ "$code" = 200 ] && grep -q 'xf_json_jansson:' out.txt &&
  ok "a time range around the run holds its windows" || bad "range: HTTP $code"
get "/api/v1/runs/1/profile?from=1000&to=2000"
[ "$code" = 404 ] && jq -e '.error.code == 404 and (.error.message | test("time range"))' out.txt >/dev/null &&
  ok "a range without windows is a JSON 404" || bad "empty range: HTTP $code $(cat out.txt)"

# Two time ranges of one run (b defaults to a): its halves, split at the
# middle of its snapshots. The jansson parser burns CPU in both.
mid=$(jq -r '(.first_snapshot_ns + .last_snapshot_ns) / 2 / 1e9 | floor' <(curl -s "$url/api/v1/runs/1"))
get "/api/v1/profiles/diff?a=1&a_to=$mid&b_from=$mid&stage=parse"
[ "$code" = 200 ] && grep -q 'xf_json_jansson:' out.txt &&
  grep -q "CPU profile change: run 1 0.000-$mid.000 stage=parse -&gt; run 1 from $mid.000" out.txt &&
  ok "two time ranges of one run diff" || bad "ranges diff: HTTP $code $(head -c 300 out.txt)"

get "/api/v1/runs/1/profile?stage=nosuch"
[ "$code" = 404 ] && jq -e '.error.message | test("parse")' out.txt >/dev/null &&
  ok "an unknown stage is a 404 naming the stages there are" || bad "stage=nosuch: HTTP $code $(cat out.txt)"
get "/api/v1/runs/1/profile?format=png"
[ "$code" = 400 ] && jq -e '.error.code == 400' out.txt >/dev/null &&
  ok "a bad format is a JSON 400" || bad "format=png: HTTP $code"
get "/api/v1/runs/1/profile?from=yesterday"
[ "$code" = 400 ] && ok "a bad time is a 400" || bad "from=yesterday: HTTP $code"
get "/api/v1/runs/99/profile"
[ "$code" = 404 ] && jq -e '.error.message == "no run 99"' out.txt >/dev/null &&
  ok "an unknown run is a 404" || bad "run 99: HTTP $code $(cat out.txt)"
get "/api/v1/runs/1/profile?seconds=3"
[ "$code" = 400 ] && ok "an unknown parameter is a 400" || bad "seconds=3: HTTP $code"
stop_run jansson

# Usage errors: nothing runs.
set +e
"$hostd" --config jansson.yaml --profile-continuous 50ms 2>short.txt
rc_short=$?
"$hostd" --config jansson.yaml --profile-continuous 1s --no-store 2>nostore.txt
rc_nostore=$?
set -e
[ $rc_short = 2 ] && grep -q "at least 100ms" short.txt &&
  ok "a window under 100 ms is refused" || { bad "short window: rc $rc_short"; cat short.txt; }
[ $rc_nostore = 2 ] && grep -q "needs the native profiler and a store" nostore.txt &&
  ok "continuous mode without a store is refused" || { bad "no store: rc $rc_nostore"; cat nostore.txt; }

# ---------------------------------------------------------------- run 2
# xf_json_fast costs a tenth of jansson's CPU per record: ten times the rate
# gives its frames as many samples.
start_run fast xf_json_fast 400000

get "/api/v1/runs/2/profile?format=folded&stage=parse"
[ "$code" = 200 ] && grep -q 'xf_json_fast:' out.txt && ! grep -q 'xf_json_jansson:' out.txt &&
  ok "run 2's stored profile names xf_json_fast frames only" || bad "run 2 folded: HTTP $code"

# Before = run 1, after = run 2: widths are run 2's, so its parser is drawn.
get "/api/v1/profiles/diff?a=1&b=2&stage=parse&format=svg"
if [ "$code" = 200 ] && grep -q '<svg' out.txt && grep -q 'xf_json_fast:' out.txt &&
  grep -q 'CPU profile change: run 1 stage=parse -&gt; run 2' out.txt; then
  ok "diff SVG run 1 -> run 2 draws xf_json_fast frames"
else
  bad "diff svg: HTTP $code: $(head -c 300 out.txt)"
fi
# Its colours: the new parser's frames grew from nothing, so they are red
# (rgb(255,x,x)) and their tooltip says so.
grown='<title>xf_json_fast:[^<]*before 0, 0\.00%; change \+[0-9.]+ pp\)</title><rect [^>]*fill="rgb\(255,'
grep -Eq "$grown" out.txt && ok "frames new in run 2 are red, 'before 0'" || bad "no grown xf_json_fast frame"
# Swapped, run 1's jansson frames are drawn, red again: they are new in it.
get "/api/v1/profiles/diff?a=2&b=1&stage=parse"
[ "$code" = 200 ] && grep -Eq "${grown//xf_json_fast/xf_json_jansson}" out.txt &&
  ok "diff SVG run 2 -> run 1 draws jansson frames" || bad "reverse diff: HTTP $code"
# The folded difference has every stack of both: "stack before after".
get "/api/v1/profiles/diff?a=1&b=2&stage=parse&format=folded"
if [ "$code" = 200 ] && grep -Eq 'xf_json_jansson:.* [1-9][0-9]* 0$' out.txt &&
  grep -Eq 'xf_json_fast:.* 0 [1-9][0-9]*$' out.txt; then
  ok "folded diff: jansson stacks only before, xf_json_fast stacks only after"
else
  bad "folded diff: HTTP $code: $(head -c 300 out.txt)"
fi
# The API's errors.
get "/api/v1/profiles/diff?b=2"
[ "$code" = 400 ] && jq -e '.error.message | test("a")' out.txt >/dev/null &&
  ok "a diff without 'a' is a JSON 400" || bad "no a: HTTP $code"
get "/api/v1/profiles/diff?a=1&b=77"
[ "$code" = 404 ] && jq -e '.error.message == "b: no run 77"' out.txt >/dev/null &&
  ok "a diff with an unknown run is a JSON 404" || bad "b=77: HTTP $code $(cat out.txt)"
get "/api/v1/profiles/diff?a=1&b=2&format=json"
[ "$code" = 400 ] && ok "a diff renders as svg or folded only" || bad "diff json: HTTP $code"
get "/api/v1/profiles/diff?a=1&b=2&a_variant=B"
[ "$code" = 404 ] && ok "a variant no sample has is a 404" || bad "a_variant=B: HTTP $code"
stop_run fast

# ---------------------------------------------------------------- CLI
if "$hostd" profile-diff --store db 1 2 --stage parse --out diff.svg 2>cli.err &&
  grep -q '<svg' diff.svg && grep -q 'xf_json_fast:' diff.svg &&
  grep -q 'CPU profile change: run 1 -&gt; run 2, stage parse' diff.svg; then
  ok "hostd profile-diff writes the SVG"
else
  bad "hostd profile-diff: $(cat cli.err)"
fi
"$hostd" profile-diff --store db 2 1 --format folded >diff.folded 2>cli.err &&
  grep -Eq 'xf_json_jansson:.* 0 [1-9][0-9]*$' diff.folded &&
  ok "hostd profile-diff --format folded to stdout" || bad "profile-diff folded: $(cat cli.err)"
set +e
"$hostd" profile-diff --store db 1 9 2>cli.err
rc_missing=$?
"$hostd" profile-diff --store db 1 2>cli2.err
rc_usage=$?
set -e
[ $rc_missing = 1 ] && grep -q "RUN_B: no run 9" cli.err &&
  ok "profile-diff: an unknown run exits 1" || bad "profile-diff 1 9: rc $rc_missing $(cat cli.err)"
[ $rc_usage = 2 ] && ok "profile-diff: one run id is a usage error" || bad "profile-diff 1: rc $rc_usage"

echo "$fails failure(s)"
[ $fails = 0 ]
