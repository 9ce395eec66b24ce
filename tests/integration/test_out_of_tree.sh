#!/usr/bin/env bash
# test_out_of_tree.sh BUILD_DIR [PREFIX]
#
# Proves a plugin can be written and built from the installed ABI alone:
# installs the project from BUILD_DIR into PREFIX (default: a fresh temporary
# directory), builds docs/example-plugin with nothing but the installed
# header found through PKG_CONFIG_PATH=<prefix>/share/pkgconfig, and checks
# that the result exports only the entry point and that its descriptor reads
# back correctly through that same header; checks that the shipped plugins
# are installed where the .pc file says, and runs the guide's pipeline with
# the installed hostd. Registered with ctest as out_of_tree_plugin.
set -euo pipefail

build=${1:?usage: test_out_of_tree.sh BUILD_DIR [PREFIX]}
build=$(cd "$build" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/obs-oot.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=${2:-$work/prefix}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

fail() { echo "out_of_tree_plugin: FAIL: $*" >&2; exit 1; }
step() { echo "out_of_tree_plugin: $*"; }

step "installing $build into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install failed"; }
[ -f "$prefix/include/observatory/stage.h" ] || fail "stage.h not installed under $prefix/include/observatory"
[ -f "$prefix/share/pkgconfig/observatory-stage.pc" ] || fail "observatory-stage.pc not installed under $prefix/share/pkgconfig"

# Only the installed .pc may be found, not one from the system or the build tree.
export PKG_CONFIG_PATH="$prefix/share/pkgconfig"
export PKG_CONFIG_LIBDIR="$prefix/share/pkgconfig"
cflags=$(pkg-config --cflags observatory-stage) || fail "pkg-config cannot read the installed observatory-stage.pc"
step "pkg-config --cflags observatory-stage: $cflags"

# Every include directory it names must lie in the prefix we installed to:
# a .pc that hard-codes the configure-time prefix is not relocatable with
# `cmake --install --prefix`.
for flag in $cflags; do
    case $flag in
    -I*)
        dir=${flag#-I}
        case $dir in
        "$prefix"/*) ;;
        *) fail "observatory-stage.pc points at $dir, outside the install prefix $prefix;" \
                "make it relocatable in core/observatory-stage.pc.in:" \
                "prefix=\${pcfiledir}/../.. and includedir=\${prefix}/@CMAKE_INSTALL_INCLUDEDIR@" ;;
        esac ;;
    esac
done

# The guide shows the example in full: it must be the file we build (from
# its #include on; the file's header comment is not in the guide).
guide_code=$(awk '/^\/\* xf_upper.c \*\/$/{on=1; next} on && /^```$/{exit} on' "$src/docs/plugin-guide.md")
file_code=$(sed -n '/^#include/,$p' "$src/docs/example-plugin/xf_upper.c")
[ -n "$guide_code" ] || fail "docs/plugin-guide.md has no xf_upper.c listing"
[ "$guide_code" = "$file_code" ] ||
    fail "docs/plugin-guide.md's xf_upper.c listing differs from docs/example-plugin/xf_upper.c:
$(diff <(echo "$guide_code") <(echo "$file_code") || true)"

# The shipped plugins are installed where the .pc file says.
plugindir=$(pkg-config --variable=plugindir observatory-stage)
[ -f "$plugindir/gen_static.so" ] && [ -f "$plugindir/sink_null.so" ] ||
    fail "cmake --install put no shipped plugins in the .pc file's plugindir ($plugindir)"

# Build the example exactly as the guide says, from a copy outside the tree:
# with PKG_CONFIG_PATH on make's command line, not in the environment.
cp -r "$src/docs/example-plugin" "$work/example"
step "building the example plugin: make PKG_CONFIG_PATH=<prefix>/share/pkgconfig"
env -u PKG_CONFIG_PATH -u PKG_CONFIG_LIBDIR make -C "$work/example" CC="${CC:-cc}" \
    PKG_CONFIG_PATH="$prefix/share/pkgconfig" >"$work/make.log" 2>&1 ||
    { cat "$work/make.log" >&2; fail "the example plugin does not build against the installed header"; }
so="$work/example/xf_upper.so"
[ -f "$so" ] || fail "make did not produce xf_upper.so"

# One exported symbol, the entry point.
exports=$(nm -D --defined-only "$so" | awk '{print $NF}' | sort | tr '\n' ' ')
[ "$exports" = "obs_stage_entry " ] || fail "xf_upper.so exports [$exports], expected only obs_stage_entry"

# Read the descriptor back through the installed header: what a host sees.
cat >"$work/probe.c" <<'PROBE'
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <observatory/stage.h>

int main(int argc, char **argv)
{
    void *h = dlopen(argc > 1 ? argv[1] : "", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    obs_stage_entry_fn entry = (obs_stage_entry_fn)dlsym(h, OBS_STAGE_ENTRY_NAME);
    const obs_stage_desc *d = entry ? entry() : NULL;
    if (!d || d->magic != OBS_STAGE_MAGIC || d->abi_major != OBS_ABI_MAJOR ||
        d->struct_size != sizeof(obs_stage_desc) || d->kind != OBS_KIND_TRANSFORM ||
        strcmp(d->name, "xf_upper") != 0 || !d->init || !d->process || !d->fini) {
        fprintf(stderr, "bad descriptor\n");
        return 1;
    }
    printf("%s %s: ABI %u.%u, %u bytes\n", d->name, d->version, (unsigned)d->abi_major,
           (unsigned)d->abi_minor, (unsigned)d->struct_size);
    return 0;
}
PROBE
"${CC:-cc}" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror $cflags -o "$work/probe" "$work/probe.c" -ldl ||
    fail "cannot build the descriptor probe against the installed header"
"$work/probe" "$so" || fail "xf_upper.so's descriptor is not what the header describes"

# Run the guide's pipeline, as written, with the installed hostd: the
# guide's plugin from plugins/ beside the file, the shipped ones from the
# installed hostd's own directory.
mkdir -p "$work/run/plugins"
cp "$so" "$work/run/plugins/"
awk '/^```yaml$/{on=1; buf=""; next} on && /^```$/{if (buf ~ /plugin: xf_upper/) {printf "%s", buf; exit} on=0; next} on {buf = buf $0 "\n"}' \
    "$src/docs/plugin-guide.md" >"$work/run/upper.yaml"
grep -q "^pipeline:" "$work/run/upper.yaml" || fail "the guide's pipeline has no 'pipeline:' line"
step "running the guide's pipeline with $prefix/bin/hostd"
(cd "$work/run" && "$prefix/bin/hostd" --config upper.yaml --duration 1s --no-http --no-store \
    >"$work/run/report.txt" 2>"$work/run/err.txt") ||
    { cat "$work/run/err.txt" >&2; fail "the guide's pipeline does not run from the installed copy"; }
grep -q "xf_upper" "$work/run/report.txt" ||
    { cat "$work/run/report.txt" >&2; fail "the report of the guide's pipeline lacks xf_upper"; }
step "PASS"
