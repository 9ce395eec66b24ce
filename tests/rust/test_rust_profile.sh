#!/usr/bin/env bash
# A Rust stage in the profiler, as a user sees it: hostd runs gen_market ->
# xf_json_serde -> sink_null, and /profile (folded, SVG, JSON) names the
# plugin's Rust functions demangled ("xf_json_serde:xf_json_serde::..."),
# with no mangled symbol (_ZN... or _R...) left in any frame, while the pprof
# output keeps the mangled symbol as Function.system_name. Exits 77 (skipped)
# when xf_json_serde was not built (no cargo, or no Debian crates).
#
# usage: test_rust_profile.sh <build dir>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"

if [ ! -f "$build/plugins/xf_json_serde.so" ]; then
  echo "skip: $build/plugins/xf_json_serde.so was not built (cargo or the Debian crates are missing;" \
       "see docs/rust.md)"
  exit 77
fi

cat >rust.yaml <<YAML
pipeline: rust-profile
plugin_dirs: [$build/plugins]
batch_size: 256
run: {duration: 30s, warmup: 0s}
load: [{shape: constant, rate: 200000}]
stages:
  - {name: ticks, plugin: gen_market}
  - {name: parse, plugin: xf_json_serde}
  - {name: out, plugin: sink_null}
YAML
"$hostd" --config rust.yaml --no-store --listen 127.0.0.1:0 >report.txt 2>err.txt &
pid=$!
port=$(wait_port err.txt)
url=http://127.0.0.1:$port

curl -s -o folded.txt "$url/profile?seconds=2&stage=parse&format=folded"
if grep -q 'xf_json_serde:xf_json_serde::' folded.txt; then
  ok "folded: Rust functions named demangled ($(grep -o 'xf_json_serde:xf_json_serde::[^; ]*' folded.txt | sort -u | head -n 3 | tr '\n' ' '))"
else
  bad "folded: no demangled xf_json_serde:xf_json_serde:: frame"; head -c 2000 folded.txt
fi
# Frames are separated by ';' and the count follows the last one.
if tr ';' '\n' <folded.txt | sed 's/ [0-9]*$//' | grep -E '(^|:)_(ZN|R[A-Z])' >mangled.txt; then
  bad "folded: mangled frames left: $(head -n 3 mangled.txt | tr '\n' ' ')"
else
  ok "folded: no mangled frame"
fi
if grep -q '::h[0-9a-f]\{16\}' folded.txt; then
  bad "folded: a legacy Rust hash is left: $(grep -o '[^;]*::h[0-9a-f]\{16\}' folded.txt | head -n 1)"
else
  ok "folded: no ::h<hash> suffix"
fi

curl -s -o p.svg "$url/profile?seconds=1&stage=parse&format=svg"
grep -q 'xf_json_serde:xf_json_serde::' p.svg && ok "svg: demangled names" || bad "svg: no demangled name"
grep -q '>_ZN\|"_ZN\|>_R[A-Z]' p.svg && bad "svg: mangled names" || ok "svg: no mangled name"

curl -s -o p.pb "$url/profile?seconds=1&stage=parse&format=pprof"
grep -aq 'xf_json_serde:xf_json_serde::' p.pb && ok "pprof: Function.name demangled" || bad "pprof: no demangled name"
grep -aqE '_ZN13xf_json_serde|_R[A-Za-z0-9_]*13xf_json_serde' p.pb &&
  ok "pprof: the mangled symbol kept (Function.system_name)" || bad "pprof: no mangled xf_json_serde symbol"

kill -INT "$pid"
set +e
wait "$pid"
rc=$?
set -e
pid=
[ $rc = 0 ] && ok "hostd exited 0" || { bad "hostd exit $rc"; cat err.txt; }
finish
