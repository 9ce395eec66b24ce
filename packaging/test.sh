#!/usr/bin/env bash
# Quick start, command 2: installs what is missing, builds, and runs every
# test: once in an optimised build, once under AddressSanitizer+UBSan, and the
# threaded unit tests once more under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
jobs=$(nproc)

run() { # <build dir> <ctest args...> ; cmake options come from $opts
  local dir=$1; shift
  echo "== $dir: configure and build" >&2
  cmake -S . -B "$dir" -G Ninja "${opts[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== $dir: ctest" >&2
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@"
}

opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
run build
opts=(-DCMAKE_BUILD_TYPE=Debug -DOBS_SANITIZE=address,undefined)
# The container image is built once, from the plain build's test run.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 run build-asan -LE image
opts=(-DCMAKE_BUILD_TYPE=Debug -DOBS_SANITIZE=thread)
TSAN_OPTIONS=halt_on_error=1 run build-tsan -L threads

# The config parser, xf_iot's record parsers (JSON, binary, msgpack), the
# NATS frame decoder and gen_file's record scanners under libFuzzer for a
# bounded time (clang only): a crash, leak or sanitizer report fails the run.
# Seeds: the example configs; xf_iot, natsframe and gen_file start from their
# dictionaries.
echo "== build-fuzz: libFuzzer on the config parser (30 s), xf_iot's record parsers (20 s), the NATS frame decoder (10 s) and gen_file's record scanners (10 s)" >&2
CC=clang cmake -S . -B build-fuzz -G Ninja -DOBS_BUILD_TESTS=ON >/dev/null
cmake --build build-fuzz --target fuzz_config
mkdir -p build-fuzz/corpus
build-fuzz/tests/fuzz/fuzz_config -dict=tests/fuzz/config.dict -max_total_time=30 \
  -print_final_stats=0 build-fuzz/corpus config 2>&1 | tail -n 1
echo "fuzz_config: no crash, leak or sanitizer report in 30 s"
cmake --build build-fuzz --target fuzz_xf_iot
mkdir -p build-fuzz/corpus-iot
build-fuzz/tests/fuzz/fuzz_xf_iot -dict=tests/fuzz/msgpack.dict -max_total_time=20 \
  -print_final_stats=0 build-fuzz/corpus-iot 2>&1 | tail -n 1
echo "fuzz_xf_iot: no crash, leak or sanitizer report in 20 s"
cmake --build build-fuzz --target fuzz_natsframe
mkdir -p build-fuzz/corpus-natsframe
build-fuzz/tests/fuzz/fuzz_natsframe -dict=tests/fuzz/natsframe.dict -max_total_time=10 \
  -print_final_stats=0 build-fuzz/corpus-natsframe 2>&1 | tail -n 1
echo "fuzz_natsframe: no crash, leak or sanitizer report in 10 s"
cmake --build build-fuzz --target fuzz_gen_file
mkdir -p build-fuzz/corpus-gen-file
build-fuzz/tests/fuzz/fuzz_gen_file -dict=tests/fuzz/msgpack.dict -max_total_time=10 \
  -print_final_stats=0 build-fuzz/corpus-gen-file 2>&1 | tail -n 1
echo "fuzz_gen_file: no crash, leak or sanitizer report in 10 s"
