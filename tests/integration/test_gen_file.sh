#!/usr/bin/env bash
# The gen_file examples (config/examples/gen_file/) as a user runs them,
# from the repository root: hostd --check accepts both; ticks.yaml replays
# the sample file in a loop for 1 s, every tick parsed without error by
# xf_json_fast; replay.yaml ends by itself after exactly the 64 ticks of
# the sample, taking its timing from the replay load. Then a file given by
# a wrong path fails the run at init, naming the path and the errno text.
#
# usage: test_gen_file.sh <build dir> <source dir>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
src=$(cd "$2" && pwd)
plugins=$build/plugins
ex=config/examples/gen_file

expect_in() { # <file> <extended regex> <what>
  if grep -qE -- "$2" "$1"; then ok "$3"; else bad "$3: /$2/ not in:"; sed 's/^/    /' "$1"; fi
}

for c in ticks replay; do
  if (cd "$src" && "$hostd" --check --config $ex/$c.yaml --plugin-dir "$plugins") >out.txt 2>&1; then
    expect_in out.txt "ok: pipeline 'gen-file-$c'" "--check accepts $ex/$c.yaml"
  else
    bad "--check refused $ex/$c.yaml: $(cat out.txt)"
  fi
done

# ticks.yaml, 1 s instead of 5: the sample looped at 20,000/s.
if (cd "$src" && "$hostd" --config $ex/ticks.yaml --plugin-dir "$plugins" -d 1s --no-http \
      --no-store) >out.txt 2>&1; then
  ok "ticks.yaml runs"
else
  bad "ticks.yaml failed: $(cat out.txt)"
fi
expect_in out.txt "64 records in 5672 bytes" "gen_file validated the sample: 64 records"
expect_in out.txt "ticks: .*error:bad_records=0 error:read_errors=0 passes=[1-9][0-9]+ no_key=0" \
  "ticks.yaml looped over the sample (passes >= 10), every record keyed by its symbol"
expect_in out.txt "parse: error:parse_error=0 error:schema_error=0" \
  "xf_json_fast parsed every replayed tick"

# replay.yaml: no duration; the replay load and the file end together.
if (cd "$src" && timeout 30 "$hostd" --config $ex/replay.yaml --plugin-dir "$plugins" --no-http \
      --no-store) >out.txt 2>&1; then
  ok "replay.yaml ends by itself"
else
  bad "replay.yaml failed: $(cat out.txt)"
fi
expect_in out.txt "^ticks +gen_file +1\.0\.0 +- +64 " "replay.yaml sent exactly the 64 ticks"
expect_in out.txt "^sink +sink_null +1\.0\.0 +64 " "and all 64 reached the sink"

# A wrong path: the run does not start; the log names the path and errno.
cat >missing.yaml <<YAML
pipeline: gen-file-missing
plugin_dirs: [$plugins]
stages:
  - {name: ticks, plugin: gen_file, params: {file: no/such/ticks.jsonl}}
  - {name: sink, plugin: sink_null}
YAML
set +e
(cd "$src" && "$hostd" --config "$work/missing.yaml" --no-http --no-store) >out.txt 2>&1
rc=$?
set -e
[ $rc -ne 0 ] && ok "a missing file fails the run (exit $rc)" || bad "a missing file: exit 0"
expect_in out.txt "cannot open 'no/such/ticks.jsonl' \(relative to the working directory '.*'\): No such file or directory" \
  "the error names the path, the working directory and the errno text"
finish
