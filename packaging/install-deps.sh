#!/usr/bin/env bash
# Installs the Debian 12 packages Observatory needs to build and test, when
# any is missing. Uses sudo when not run as root. Idempotent and quiet when
# everything is already there.
#
#   packaging/install-deps.sh            build + test dependencies
#   packaging/install-deps.sh --build    only what building needs (the image's builder stage)
#   packaging/install-deps.sh --runtime  only what running hostd and the operator need
#   packaging/install-deps.sh --image    what building the container image here needs
#                                        (buildah, debootstrap: tests/integration/test_image.sh)
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config
  libcyaml-dev libyaml-dev libjansson-dev libmsgpack-dev librocksdb-dev libmicrohttpd-dev
  libunwind-dev libgoogle-perftools-dev libcurl4-openssl-dev
  libprotobuf-c-dev protobuf-c-compiler google-perftools libnats-dev
  libiberty-dev
)
# chromium: the dashboard's browser test (tests/integration/test_dashboard.mjs);
# nats-server: the NATS JetStream links' tests (tests/integration/test_nats*.sh).
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev binutils prometheus curl jq chromium nats-server)
# The libraries hostd, the plugins and observatory-operator link directly
# (ldd lists the rest, which these depend on).
runtime_pkgs=(libcyaml1 libyaml-0-2 libjansson4 libmsgpackc2 librocksdb7.8 libmicrohttpd12 libunwind8
              libgoogle-perftools4 libcurl4 libprotobuf-c1 libnats3.4)
image_pkgs=(buildah debootstrap)
# Rust plugins (cmake/ObsRust.cmake, docs/rust.md): Debian's packaged crates,
# which cargo reads offline from /usr/share/cargo/registry.
rust_pkgs=(librust-serde-dev librust-serde-json-dev librust-serde-derive-dev)

case "${1:-}" in
  --build) want=("${build_pkgs[@]}") ;;
  --runtime) want=("${runtime_pkgs[@]}") ;;
  --image) want=("${image_pkgs[@]}") ;;
  "") want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 [--build|--runtime|--image]" >&2; exit 2 ;;
esac

# node and npm build the web dashboard (core/server/dashboard/, docs/dashboard.md);
# a newer node already installed (e.g. nodejs from another repository, which
# brings its own npm) is kept.
if [ "${1:-}" != --runtime ] && [ "${1:-}" != --image ] && ! { command -v node && command -v npm; } >/dev/null; then
  want+=(nodejs npm)
fi

# The Rust crates for building; Debian's cargo and rustc too when no Rust
# toolchain (e.g. one from rustup) is on PATH.
if [ "${1:-}" != --runtime ] && [ "${1:-}" != --image ]; then
  want+=("${rust_pkgs[@]}")
  if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
    want+=(cargo rustc)
  fi
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
((${#missing[@]} == 0)) && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
