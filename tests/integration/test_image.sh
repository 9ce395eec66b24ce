#!/usr/bin/env bash
# The container image, built and run here with buildah: no Docker
# engine and no registry are needed. Opt-in: runs only with OBS_IMAGE_TEST=1,
# else exits 77 (skipped).
#
#   OBS_IMAGE_TEST=1 tests/integration/test_image.sh [SOURCE_DIR]
#
# 1. Installs buildah and debootstrap when missing (install-deps.sh --image).
# 2. Makes the base image when it is missing: no base image can be pulled
#    here, so a Debian 12 root filesystem made by debootstrap (minbase) from
#    Debian's mirror stands in for debian:bookworm-slim. The rootfs tarball is
#    cached in ${XDG_CACHE_HOME:-~/.cache}/observatory/ and the image kept in
#    buildah's local storage as $OBS_IMAGE_BASE.
# 3. Builds packaging/Dockerfile (targets runtime and debuginfo) with
#    `buildah bud --isolation chroot --layers --build-arg BASE=...`; layers are
#    kept, so a second run rebuilds nothing.
# 4. Checks the runtime image: non-root user, every ELF's libraries resolve,
#    `hostd --version`, a 2 s pipeline (config/null.yaml as shipped in the
#    image) that ends cleanly, `observatory-operator --help`; .symtab kept and
#    DWARF stripped in the binaries, and the debuginfo image holds
#    /usr/lib/debug/.build-id/xx/yyyy.debug for each of them.
# Containers are removed on exit; images stay (they are the cache). Prints the
# time of each step and the image sizes.
set -euo pipefail

[ "${OBS_IMAGE_TEST:-0}" = 1 ] || { echo "test_image: skipped (set OBS_IMAGE_TEST=1 to run)"; exit 77; }

src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/observatory
base=${OBS_IMAGE_BASE:-localhost/observatory-base:bookworm}
mirror=${OBS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
tag=${OBS_IMAGE_TAG:-localhost/observatory:test}
jobs=${OBS_IMAGE_JOBS:-2}

t_start=$(date +%s)
step_t=$t_start
step() { # <name>: prints the time the previous step took
  local now; now=$(date +%s)
  echo "test_image: [$((now - step_t)) s] $*" >&2
  step_t=$now
}
fail() { echo "test_image: FAIL: $*" >&2; exit 1; }

containers=()
mounted=()
# A build cut short (timeout) leaves its working containers behind: remove
# those that were not there before.
before=$(buildah containers --quiet --notruncate 2>/dev/null | sort || true)
cleanup() {
  local c
  for c in $(comm -13 <(echo "$before") <(buildah containers --quiet --notruncate 2>/dev/null | sort)); do
    containers+=("$c")
  done
  for c in "${mounted[@]}"; do buildah umount "$c" >/dev/null 2>&1 || true; done
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  [ -n "${rootfs_tmp:-}" ] && rm -rf "$rootfs_tmp"
  return 0
}
trap cleanup EXIT

"$src/packaging/install-deps.sh" --image
step "dependencies: $(buildah --version)"

# --- base image ------------------------------------------------------------
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  mkdir -p "$cache"
  tarball=$cache/debian-bookworm-minbase.tar
  if [ ! -s "$tarball" ]; then
    rootfs_tmp=$(mktemp -d "$cache/rootfs.XXXXXX")
    echo "test_image: debootstrap --variant=minbase bookworm from $mirror" >&2
    timeout 1200 debootstrap --variant=minbase bookworm "$rootfs_tmp/root" "$mirror" >"$rootfs_tmp/log" 2>&1 ||
      { tail -n 20 "$rootfs_tmp/log" >&2; fail "debootstrap"; }
    # The same sources as debian:bookworm-slim (updates and security too),
    # and no package lists or caches in the image.
    cat >"$rootfs_tmp/root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
    rm -rf "$rootfs_tmp"/root/var/lib/apt/lists/* "$rootfs_tmp"/root/var/cache/apt/*.bin \
      "$rootfs_tmp"/root/var/cache/apt/archives/*.deb "$rootfs_tmp"/root/var/log/*.log
    tar -C "$rootfs_tmp/root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs_tmp"; rootfs_tmp=
    step "debootstrap: $tarball ($(du -h "$tarball" | cut -f1))"
  fi
  c=$(buildah from scratch); containers+=("$c")
  buildah add "$c" "$tarball" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash "$c"
  buildah commit --quiet --rm "$c" "$base" >/dev/null
  containers=()
  step "base image $base imported"
else
  step "base image $base present"
fi

# --- build -----------------------------------------------------------------
bud=(buildah bud --isolation chroot --layers --build-arg "BASE=$base" --build-arg "JOBS=$jobs"
  -f "$src/packaging/Dockerfile")
timeout 2400 "${bud[@]}" --target runtime -t "$tag" "$src" >"${TMPDIR:-/tmp}/test_image.build.log" 2>&1 ||
  { tail -n 40 "${TMPDIR:-/tmp}/test_image.build.log" >&2; fail "buildah bud --target runtime"; }
step "built $tag"
timeout 600 "${bud[@]}" --target debuginfo -t "$tag-debuginfo" "$src" >>"${TMPDIR:-/tmp}/test_image.build.log" 2>&1 ||
  { tail -n 40 "${TMPDIR:-/tmp}/test_image.build.log" >&2; fail "buildah bud --target debuginfo"; }
step "built $tag-debuginfo"

# --- run -------------------------------------------------------------------
user=$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")
case "$user" in "" | 0 | 0:* | root | root:*) fail "image runs as root (User '$user')" ;; esac

c=$(buildah from "$tag"); containers+=("$c")
run() { timeout 60 buildah run --isolation chroot "$c" -- "$@"; }

[ "$(run id -u)" != 0 ] || fail "processes in the image run as root"
missing=$(run sh -c 'for f in /usr/local/bin/* /usr/local/lib/observatory/plugins/*.so; do
  ldd "$f" | sed -n "s|^|$f: |; /not found/p"; done')
[ -z "$missing" ] || fail "unresolved libraries:
$missing"

version=$(run hostd --version)
echo "test_image: hostd --version: $version" >&2
case "$version" in *0.*) ;; *) fail "hostd --version printed '$version'" ;; esac
run observatory-operator --help >/dev/null 2>&1 || fail "observatory-operator --help"

out=$(run hostd --config /etc/observatory/null.yaml --duration 2s --listen 127.0.0.1:0 --store /tmp/obs-store 2>&1) ||
  { echo "$out" >&2; fail "hostd pipeline in the image"; }
echo "$out" | grep -q "ended cleanly" || { echo "$out" >&2; fail "pipeline did not end cleanly"; }
echo "$out" | awk '/^sink /{ gsub(",", "", $4); if ($4 + 0 > 0) ok = 1 } END { exit !ok }' ||
  { echo "$out" >&2; fail "no record reached the sink"; }
echo "$out" | sed -n '1,4p' >&2
step "ran hostd --version, a 2 s pipeline and observatory-operator --help in the image"

# --- symbols and split debug info ----------------------------------------
root=$(buildah mount "$c"); mounted+=("$c")
d=$(buildah from "$tag-debuginfo"); containers+=("$d")
droot=$(buildah mount "$d"); mounted+=("$d")
n=0
for f in "$root"/usr/local/bin/* "$root"/usr/local/lib/observatory/plugins/*.so; do
  name=${f#"$root"}
  sections=$(readelf -SW "$f")
  grep -q ' \.symtab ' <<<"$sections" || fail "$name: .symtab stripped (the profiler needs it)"
  ! grep -q ' \.debug_info ' <<<"$sections" || fail "$name: DWARF not split out"
  id=$(readelf -nW "$f" | awk '/Build ID:/{print $NF}')
  [ -n "$id" ] || fail "$name: no build-id"
  dbg=$droot/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
  [ -s "$dbg" ] || fail "$name: no ${dbg#"$droot"} in the debuginfo image"
  # Captured first: under pipefail, `readelf | grep -q` fails whenever grep
  # stops reading before readelf has written everything (SIGPIPE).
  dbg_sections=$(readelf -SW "$dbg")
  grep -q ' \.debug_info ' <<<"$dbg_sections" || fail "${dbg#"$droot"}: no DWARF"
  [ "$(readelf -nW "$dbg" | awk '/Build ID:/{print $NF}')" = "$id" ] ||
    fail "${dbg#"$droot"}: build-id differs from $name's"
  n=$((n + 1))
done
((n >= 3)) || fail "only $n ELF files in the image"
n_dbg=$(find "$droot/usr/lib/debug/.build-id" -name '*.debug' | wc -l)
((n_dbg == n)) || fail "$n_dbg .debug files for $n ELF files"
step "$n ELF files: .symtab kept, DWARF in the debuginfo image by build-id"

size() { buildah inspect --type image --format '{{.Docker.Size}}' "$1" 2>/dev/null || echo "?"; }
echo "test_image: image sizes:" >&2
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E "^(${tag%:*}|${base%:*})[:-]" >&2 || true
echo "test_image: PASS in $(($(date +%s) - t_start)) s"
