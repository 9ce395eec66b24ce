#!/bin/sh
# Splits the DWARF debug info of ELF files out by build-id, the layout gdb,
# perf, eu-stack and debuginfod look up:
#
#   packaging/split-debug.sh DEBUG_ROOT FILE...
#
# For each FILE: DEBUG_ROOT/.build-id/xx/yyyy.debug gets the debug info
# (objcopy --only-keep-debug), and FILE loses only its .debug_* sections
# (--strip-debug): the symbol table (.symtab) stays, because the profiler
# names functions from it. Used by packaging/Dockerfile's builder stage.
set -eu
root=$1
shift
for f in "$@"; do
  id=$(readelf -nW "$f" | awk '/Build ID:/ { print $NF }')
  if [ -z "$id" ]; then
    echo "split-debug: $f has no build-id (link with -Wl,--build-id)" >&2
    exit 1
  fi
  dir=$root/.build-id/$(echo "$id" | cut -c1-2)
  dbg=$dir/$(echo "$id" | cut -c3-).debug
  mkdir -p "$dir"
  objcopy --only-keep-debug --compress-debug-sections=zlib "$f" "$dbg"
  chmod 0644 "$dbg"
  objcopy --strip-debug "$f"
  echo "split-debug: $f -> $dbg"
done
