#!/usr/bin/env bash
# hostd's /metrics as Prometheus sees it: `promtool check metrics` passes on
# a scrape taken while the pipeline runs, and Debian's prometheus, started
# on loopback with a temporary storage directory and scraping hostd every
# second, ends up with observatory_* series whose values are exactly the
# ones hostd reports in /api/v1/stages.
#
# Why the comparison is exact and not flaky: hostd runs a pipeline with a
# fixed duration and then keeps serving (--linger), so once it reports
# state "done" its counters never change again. A scrape's snapshot reads
# the counters and the state at slightly different instants, so one scrape
# showing "done" could still carry counters read just before the end; the
# test therefore waits until two scrapes have shown "done" (count_over_time
# >= 2): the later one started after the earlier one finished, i.e. after
# the end, and an instant query returns it. hostd's own figures are read
# after "done" too. No sleeps stand in for conditions: every wait polls a
# condition with a deadline.
#
# Skips (exit 77) only when prometheus/promtool are not installed
# (packaging/install-deps.sh installs the Debian package `prometheus`).
#
# usage: test_prometheus.sh <build dir> [source dir]
# OBS_HOSTD overrides the hostd binary.
set -euo pipefail
build=$(cd "$1" && pwd)
hostd=${OBS_HOSTD:-$build/core/hostd}
plugins=$build/plugins

for tool in prometheus promtool; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: '$tool' is not installed (Debian package 'prometheus'; packaging/install-deps.sh)"
    exit 77
  fi
done
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "FAIL: '$tool' is needed (packaging/install-deps.sh)"; exit 1; }
done
if ! "$hostd" --help | grep -q -- '--linger'; then
  echo "FAIL: $hostd has no --listen/--linger options (the HTTP server is not wired into hostd)"
  exit 1
fi

work=$(mktemp -d)
hostd_pid='' prom_pid=''
cleanup() {
  if [ -n "$prom_pid" ]; then kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null || true; fi
  if [ -n "$hostd_pid" ]; then kill "$hostd_pid" 2>/dev/null; wait "$hostd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

fails=0
ok() { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
die() { echo "FAIL - $*"; exit 1; }

# wait_for <seconds> <what> <command...>: polls the command every 0.1 s.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}

# --- hostd: a 3 s run, then it keeps serving -------------------------------
cat >pipeline.yaml <<YAML
pipeline: promtest
plugin_dirs: [$plugins]
batch_size: 64
run: {duration: 3s}
load: [{shape: constant, rate: 5000}]
stages:
  - {name: gen, plugin: gen_static, params: {size: 24}}
  - {name: pass, plugin: xf_pass}
  - {name: sink, plugin: sink_null}
YAML
"$hostd" --config pipeline.yaml --listen 127.0.0.1:0 --linger 300s >hostd.out 2>hostd.err &
hostd_pid=$!
port_known() { grep -qo 'port [0-9]*' hostd.err; }
wait_for 20 "hostd to report its HTTP port" port_known
hport=$(grep -o 'port [0-9]*' hostd.err | head -1 | cut -d' ' -f2)
hostd_url=http://127.0.0.1:$hport
ok "hostd serves on 127.0.0.1:$hport"

# --- promtool on a scrape taken while the pipeline runs ---------------------
curl -fsS "$hostd_url/metrics" >running.prom
if grep -q 'observatory_pipeline_state{pipeline="promtest",state="running"} 1' running.prom; then
  ok "scraped while running"
else
  bad "first scrape not in state running"
fi
if promtool check metrics <running.prom >promtool.txt 2>&1; then
  ok "promtool check metrics passes"
else
  bad "promtool check metrics:"; sed 's/^/    /' promtool.txt
fi
grep -q '^# TYPE observatory_latency_seconds histogram' running.prom &&
  grep -q 'observatory_latency_seconds_bucket{.*le="+Inf"}' running.prom &&
  ok "latency is a Prometheus histogram" || bad "no latency histogram in /metrics"

# --- prometheus on loopback, scraping hostd every second -------------------
cat >prometheus.yml <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: observatory
    static_configs:
      - targets: ['127.0.0.1:$hport']
YAML
started=0
for attempt in 1 2 3 4 5; do
  # A random port; if it is taken, prometheus exits and we try another.
  pport=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
  prometheus --config.file=prometheus.yml --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn >prom.log 2>&1 &
  prom_pid=$!
  prom_url=http://127.0.0.1:$pport
  deadline=$((SECONDS + 30))
  while kill -0 "$prom_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    if curl -fsS "$prom_url/-/ready" >/dev/null 2>&1; then started=1; break; fi
    sleep 0.1
  done
  [ $started -eq 1 ] && break
  kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null || true; prom_pid=''
done
[ $started -eq 1 ] || { cat prom.log; die "prometheus did not start"; }
ok "prometheus ready on 127.0.0.1:$pport"

# query <promql>: the JSON result vector (a bad query is a test bug: say so).
query() {
  local out
  out=$(curl -sS --get "$prom_url/api/v1/query" --data-urlencode "query=$1" || true)
  if [ "$(jq -r .status <<<"$out")" != success ]; then
    echo "query '$1' failed: $out" >&2
    echo '[]'
    return
  fi
  jq -c '.data.result' <<<"$out"
}

# --- wait for the end of the run, as seen by hostd and by Prometheus ---------
hostd_done() { [ "$(curl -fsS "$hostd_url/api/v1/status" | jq -r .state)" = done ]; }
wait_for 60 "hostd's run to end" hostd_done
curl -fsS "$hostd_url/api/v1/stages" >stages.json
curl -fsS "$hostd_url/metrics" >done.prom
ok "run ended; hostd's figures taken"
two_done_scrapes() {
  local n
  # The state gauge is 1 in scrapes of the ended run, 0 before: the sum
  # over the window counts those scrapes.
  n=$(query 'sum_over_time(observatory_pipeline_state{state="done"}[5m])' 2>/dev/null |
    jq -r '.[0].value[1] // 0')
  [ "${n%.*}" -ge 2 ] 2>/dev/null
}
wait_for 60 "two scrapes of the ended run in Prometheus" two_done_scrapes
ok "Prometheus has scraped the ended run twice"

[ "$(query 'up{job="observatory"}' | jq -r '.[0].value[1]')" = 1 ] && ok "up == 1" || bad "up != 1"
[ "$(query 'observatory_build_info' | jq -r '.[0].metric.version')" != null ] &&
  ok "observatory_build_info has a version" || bad "no observatory_build_info"

# compare <promql, @ standing for the stage name> <jq expression on one stage
# of stages.json, null where the metric does not apply>
compare() {
  local promql=$1 path=$2 stage prom want n=0
  for stage in $(jq -r '.stages[].name' stages.json); do
    want=$(jq -r --arg s "$stage" ".stages[] | select(.name == \$s) | $path" stages.json)
    [ "$want" = null ] && continue
    prom=$(query "${promql//@/$stage}" | jq -r '.[0].value[1] // "missing"')
    if [ "$prom" = "$want" ]; then
      n=$((n + 1))
    else
      bad "${promql//@/$stage}: Prometheus $prom, hostd $want"
      return
    fi
  done
  [ $n -gt 0 ] && ok "$promql agrees with hostd for $n stages" || bad "$promql: nothing compared"
}
jq -e '.stages[0].records_out > 0' stages.json >/dev/null && ok "the generator sent records" ||
  bad "the generator sent too few records: $(jq .stages[0].records_out stages.json)"
compare 'observatory_records_out_total{stage="@"}' 'if .kind == "sink" then null else .records_out end'
compare 'observatory_records_in_total{stage="@"}' 'if .kind == "generator" then null else .records_in end'
compare 'observatory_bytes_in_total{stage="@"}' 'if .kind == "generator" then null else .bytes_in end'
compare 'observatory_batches_out_total{stage="@"}' 'if .kind == "sink" then null else .batches_out end'
compare 'observatory_service_seconds_count{stage="@"}' '.service.count'
compare 'observatory_latency_seconds_count{stage="@"}' 'if .kind == "sink" then .latency.count else null end'
compare 'observatory_lag_seconds_count{stage="@"}' 'if .kind == "generator" then .lag.count else null end'
compare 'observatory_records_scheduled_total{stage="@"}' 'if .kind == "generator" then .generator.records_scheduled else null end'
compare 'sum(observatory_errors_total{stage="@"})' '.errors'

# Every record delivered has its latency in the histogram.
[ "$(jq '.stages[2].latency.count == .stages[2].records_in' stages.json)" = true ] &&
  ok "sink latency count == records delivered" || bad "latency count != records delivered"

# histogram_quantile over the exported buckets lands in the same factor-2
# bucket as hostd's own p99 (boundaries are 100 ns * 2^k).
pq=$(query 'histogram_quantile(0.99, observatory_latency_seconds_bucket{stage="sink"})' |
  jq -r '.[0].value[1]')
hq=$(jq -r '.stages[2].latency.p99_seconds' stages.json)
if awk -v p="$pq" -v h="$hq" 'BEGIN { r = p / h; exit !(r >= 0.49 && r <= 2.05) }'; then
  ok "histogram_quantile(0.99) = $pq s, hostd p99 = $hq s: same bucket"
else
  bad "histogram_quantile(0.99) = $pq s, hostd p99 = $hq s"
fi

# The text hostd served after the end says the same as Prometheus.
want=$(grep '^observatory_records_out_total{.*stage="gen"' done.prom | awk '{print $2}')
got=$(query 'observatory_records_out_total{stage="gen"}' | jq -r '.[0].value[1]')
[ "$want" = "$got" ] && ok "/metrics after the end == Prometheus ($got)" ||
  bad "/metrics after the end says $want, Prometheus $got"

kill -INT "$hostd_pid"
wait "$hostd_pid" && ok "hostd exits 0 on SIGINT while lingering" || bad "hostd exit status $?"
hostd_pid=''

if [ $fails -ne 0 ]; then
  echo "$fails check(s) failed"; echo "--- hostd stderr"; cat hostd.err; exit 1
fi
echo "all checks passed"
