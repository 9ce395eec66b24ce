#!/usr/bin/env bash
# test_store_full_disk.sh - the run store and sink_rocksdb on a full disk.
# The script mounts a 4 MiB tmpfs of its own (it needs root; it fails, not
# skips, when it cannot) and, once hostd writes there, fills it to the last
# byte with a file:
#   1. the run store fills up and stays full to the end: hostd goes on,
#      prints its report with the failed writes counted, logs the failure
#      once, keeps the end of the run in a pending file; `hostd runs` and
#      `hostd report` work on the still-full disk; once there is room,
#      `hostd runs` stores the pending end and the file goes;
#   2. the run store fills up and space comes back mid-run: RocksDB writes
#      again by itself and the run's end and report are stored as usual;
#   3. a sink_rocksdb database fills up: hostd goes on, the lost records are
#      counted on write_error (report and /metrics), logged once, and the
#      sink writes again once there is room.
#
# usage: test_store_full_disk.sh <build dir>
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$1"
plugins=$build/plugins
disk=$work/disk
mkdir -p "$disk" "$work/tmp"
export TMPDIR=$work/tmp
if ! mount -t tmpfs -o size=4m tmpfs "$disk" 2>mount.err; then
  echo "FAIL - cannot mount a 4 MiB tmpfs on $disk (this test needs root): $(cat mount.err)"
  exit 1
fi
trap 'umount "$disk" 2>/dev/null || umount -l "$disk" 2>/dev/null || true; cleanup' EXIT

# Fills the tmpfs to the last byte (RocksDB's own small writes fail too).
fill() { cat /dev/zero >"$disk/filler" 2>/dev/null || true; }

conf() { # conf NAME DURATION SINK_LINE
  cat >"$1.yaml" <<YAML
pipeline: $1
plugin_dirs: [$plugins]
batch_size: 256
run: {duration: $2}
load: [{shape: constant, rate: 20000}]
stages:
  - {name: ticks, plugin: gen_market}
  - {name: parse, plugin: xf_json_fast}
  - $3
YAML
}

# Waits up to 20 s for a line matching $2 in file $1.
wait_for() {
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# 1. The store fills up and stays full.
conf full 15s "{name: sink, plugin: sink_null}"
"$hostd" --config full.yaml --store "$disk/st" --no-http >out1.txt 2>err1.txt &
pid=$!
wait_for err1.txt "recorded in store" || bad "run 1 did not start"
sleep 2
fill
set +e
wait "$pid"
rc=$?
set -e
pid=
[ "$rc" = 0 ] && ok "hostd ends normally with its store on a full disk (exit 0)" ||
  { bad "hostd exit $rc with its store on a full disk"; tail -n 20 err1.txt; }
grep -q "No space left on device" err1.txt && ok "the disk did fill up" ||
  bad "the store never saw ENOSPC (the test's premise)"
n=$(grep -c "the run goes on: later failed writes are counted" err1.txt || true)
[ "$n" = 1 ] && ok "the store's failed writes are logged once" || bad "logged $n times"
got=$(sed -n 's/^  sink: .* records=\([0-9]*\) .*/\1/p' out1.txt | head -n 1)
[ "${got:-0}" -ge 290000 ] && ok "the run went on to its end ($got records of about 300k)" ||
  { bad "the run did not go on (${got:-no} records)"; tail -n 5 out1.txt; }
grep -Eq "^  store: [1-9][0-9]* of [0-9]+ writes failed, still failing at the end" out1.txt &&
  ok "the printed report counts the failed writes" || { bad "no store line in the report"; tail -n 3 out1.txt; }
pending=$(sed -n 's/.*kept in \(.*\.json\) until the next hostd.*/\1/p' err1.txt)
[ -n "$pending" ] && [ -f "$pending" ] && ok "the end of the run is kept in $(basename "$pending")" ||
  { bad "no pending end of run"; grep store err1.txt; }
set +e
"$hostd" runs --store "$disk/st" >runs1.txt 2>runs1.err
rc=$?
set -e
[ "$rc" = 0 ] && ok "hostd runs works on the still-full disk" || { bad "hostd runs: exit $rc"; cat runs1.err; }
grep -Eq "^ +1 +complete +full .* yes " runs1.txt && ok "it lists run 1 complete, with its report" ||
  { bad "run 1 not listed as complete with a report"; cat runs1.txt; }
"$hostd" report 1 --store "$disk/st" >rep1.txt 2>&1 && grep -q "writes failed" rep1.txt &&
  ok "hostd report prints the kept report on the full disk" || { bad "hostd report 1"; cat rep1.txt; }
rm -f "$disk/filler"
"$hostd" runs --store "$disk/st" --json >runs1b.json 2>runs1b.err || bad "hostd runs after space came back"
[ ! -e "$pending" ] && grep -q "are now stored" runs1b.err &&
  ok "with room again, the pending end is stored and its file removed" ||
  { bad "pending end not imported"; cat runs1b.err; }
jq -e '.[0].status == "complete" and .[0].has_report and (.[0] | has("report_pending") | not)' \
  runs1b.json >/dev/null && ok "the run reads back complete with its report from the store" ||
  { bad "run 1 after import"; cat runs1b.json; }

# 2. The store fills up; space comes back mid-run.
conf back 25s "{name: sink, plugin: sink_null}"
"$hostd" --config back.yaml --store "$disk/st" --no-http >out2.txt 2>err2.txt &
pid=$!
wait_for err2.txt "recorded in store" || bad "run 2 did not start"
sleep 2
fill
if wait_for err2.txt "the run goes on"; then
  sleep 2
  rm -f "$disk/filler"
  ok "the disk filled during run 2; space freed"
else
  bad "run 2 never saw its disk full"
fi
set +e
wait "$pid"
rc=$?
set -e
pid=
[ "$rc" = 0 ] && ok "run 2 ends normally (exit 0)" || { bad "run 2: exit $rc"; tail -n 20 err2.txt; }
grep -q "writing again after [0-9]* failed writes" err2.txt &&
  ok "the store writes again once there is room" || { bad "no recovery"; cat err2.txt; }
"$hostd" runs --store "$disk/st" --json >runs2.json
jq -e '.[0].id == 2 and .[0].status == "complete" and .[0].has_report and
       (.[0] | has("report_pending") | not)' runs2.json >/dev/null &&
  ok "run 2's end and report are in the store" || { bad "run 2 not stored"; cat runs2.json; }
"$hostd" report 2 --store "$disk/st" | grep -Eq "^  store: [1-9][0-9]* of [0-9]+ writes failed \(" &&
  ok "the stored report counts the writes that failed meanwhile" || bad "stored report of run 2"

# 3. A sink_rocksdb database fills up; space comes back mid-run.
rm -rf "$disk/st"
conf sink 12s "{name: sink, plugin: sink_rocksdb, params: {path: $disk/ticks, write_buffer_size: 262144}}"
"$hostd" --config sink.yaml --store st3 --listen 127.0.0.1:0 >out3.txt 2>err3.txt &
pid=$!
port=$(wait_port err3.txt)
sleep 1
fill
if wait_for err3.txt "sink_rocksdb: write of .* failed"; then
  sleep 0.5
  curl -s -H "Host: 127.0.0.1" "http://127.0.0.1:$port/metrics" >m3.txt || true
  lost=$(sed -n 's/^observatory_errors_total{[^}]*stage="sink"[^}]*reason="write_error"} \(.*\)/\1/p' m3.txt)
  [ "${lost:-0}" -gt 0 ] && ok "/metrics counts the sink's lost records (write_error $lost)" ||
    { bad "/metrics write_error: '${lost}'"; grep write_error m3.txt || true; }
  sleep 1
  rm -f "$disk/filler"
else
  bad "sink_rocksdb never saw its disk full"
fi
set +e
wait "$pid"
rc=$?
set -e
pid=
[ "$rc" = 0 ] && ok "hostd ends normally with sink_rocksdb on a full disk" ||
  { bad "sink run: exit $rc"; tail -n 20 err3.txt; }
# One line per streak of failures (the 4 MiB disk may fill up again).
n=$(grep -c "sink_rocksdb: write of .* failed" err3.txt || true)
m=$(grep -c "sink_rocksdb: writing again after" err3.txt || true)
[ "$n" -ge 1 ] && [ "$n" -le $((m + 1)) ] &&
  ok "the sink logs the first failure of each streak only ($n streaks, $m recoveries)" ||
  bad "the sink logged $n failures for $m recoveries"
grep -Eq "^  sink: .*error:write_error=[1-9]" out3.txt &&
  ok "the report counts the lost records (write_error)" || { bad "no write_error in the report"; tail -n 3 out3.txt; }
grep -q "sink_rocksdb: writing again after" err3.txt && ok "the sink writes again once there is room" ||
  { bad "the sink did not write again"; grep sink err3.txt | tail -n 5; }
"$hostd" runs --store st3 | grep -Eq "^ +1 +complete +sink .* yes " &&
  ok "hostd runs shows the sink's run with its report" || bad "run of the sink case"
finish
