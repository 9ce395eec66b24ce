#!/usr/bin/env bash
# Quick start, command 1: installs what is missing, builds, and runs the demo
# pipeline (config/demo.yaml: gen_market -> xf_json_fast -> xf_window ->
# sink_rocksdb, about 30 s), then prints per-stage records, rates and errors.
# Extra arguments go to hostd (e.g. --duration 5s).
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
# After the warm-up, the demo also runs a duet experiment on the parser (the
# parse stage's ab: in config/demo.yaml): the library-based xf_json_jansson as
# variant B beside the zero-copy xf_json_fast, for 10 s. It stores a profile
# of every second, from which it draws the differential flame graph of the
# two variants.
exec build/core/hostd --config config/demo.yaml --plugin-dir build/plugins \
    --profile-continuous 1s "$@"
