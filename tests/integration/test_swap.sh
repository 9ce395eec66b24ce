#!/usr/bin/env bash
# Hot swap as a user does it: hostd runs gen_static -> tp_echo -> sink_seqcheck
# as fast as it can; `hostd swap` switches the transform between two versions
# 20 times over HTTP; a refused swap leaves it running; /profile answers with
# samples tagged by the new version; after SIGINT the sink has seen every
# record exactly once and the run's history lists the 20 swaps.
#
# usage: test_swap.sh <build dir>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

cat >swap.yaml <<YAML
pipeline: swaps
plugin_dirs: [$build/plugins, $build/tests/plugins]
batch_size: 64
run: {duration: 0}
load: [{shape: max}]
stages:
  - {name: gen, plugin: gen_static}
  - {name: echo, plugin: tp_echo}
  - {name: check, plugin: sink_seqcheck, params: {report: $work/seq.txt}}
YAML
"$hostd" --config swap.yaml --store db --listen 127.0.0.1:0 >report.txt 2>err.txt &
pid=$!
port=$(wait_port err.txt)
url=http://127.0.0.1:$port

# The last swap finds hostd through a pipeline.yaml's http.listen (--config).
sed "s|^run:|http: {listen: \"127.0.0.1:$port\"}\nrun:|" swap.yaml >swap-at.yaml
swapped=0
for i in $(seq 1 20); do
  v=$([ $((i % 2)) = 1 ] && echo 2.0.0 || echo 1.0.0)
  where=(--url "$url")
  [ "$i" = 20 ] && where=(--config swap-at.yaml)
  if "$hostd" swap echo tp_echo --version "$v" "${where[@]}" >>swaps.txt 2>&1; then
    swapped=$((swapped + 1))
  fi
done
[ $swapped = 20 ] && ok "20 swaps under full load, the last found through --config" ||
  { bad "$swapped of 20 swaps"; cat swaps.txt; }
grep -q "tp_echo 1.0.0 -> tp_echo 2.0.0 (state handed_over)" swaps.txt &&
  ok "state is handed over" || bad "no state handover in: $(head -n 2 swaps.txt)"

set +e
"$hostd" swap echo tp_major2 --url "$url" 2>refused.txt
rc=$?
set -e
[ $rc = 1 ] && grep -q "ABI major 2, host supports 1" refused.txt &&
  ok "a refused swap says why" || { bad "refused swap: rc $rc"; cat refused.txt; }

code=$(curl -s -o xsite.json -w '%{http_code}' -X POST -H 'Origin: http://elsewhere.example' \
  -d '{"plugin":"tp_echo"}' "$url/api/v1/stages/echo/swap")
[ "$code" = 403 ] && ok "a cross-site POST from a browser page is refused" || bad "cross-site: HTTP $code"

code=$(curl -s -o profile.folded -w '%{http_code}' "$url/profile?seconds=1&format=folded&stage=echo")
[ "$code" = 200 ] && grep -q "version=1.0.0" profile.folded &&
  ok "/profile samples carry the active version" || bad "/profile: HTTP $code"

curl -s "$url/api/v1/runs/1" >run.json
n_events=$(jq '[.events[] | select(.event == "swap")] | length' run.json)
[ "$n_events" = 20 ] && ok "the run's history lists 20 swaps" || bad "history lists $n_events swaps"

kill -INT $pid
set +e
wait $pid
rc=$?
set -e
pid=
[ $rc = 0 ] && ok "hostd drained and exited 0" || { bad "hostd exit $rc"; cat err.txt; }
sent=$(awk '$1 == "gen" {gsub(",", "", $5); print $5}' report.txt)
grep -q "gaps=0 dups=0" seq.txt && grep -q "records=$sent " seq.txt &&
  ok "every one of $sent records arrived once, in order" || { bad "sequence check"; cat seq.txt; }

finish
