#!/usr/bin/env bash
# Installs and configures k3s on this (Debian 12) machine for performance work,
# and starts a local image registry on localhost:5000 that k3s pulls from.
# Every setting is explained in docs/k3s.md.
#
#   sudo packaging/k3s/install-k3s.sh [options]
#
#   --cpu-manager-static      kubelet CPU manager policy "static": Guaranteed
#                             pods asking whole CPUs get exclusive cores
#                             (reserves CPU for the system, see below)
#   --kube-reserved LIST      with --cpu-manager-static (default cpu=500m,memory=512Mi)
#   --system-reserved LIST    with --cpu-manager-static (default cpu=500m,memory=512Mi)
#   --reserved-cpus LIST      with --cpu-manager-static: these CPUs (e.g. 0,1) for
#                             the system and k3s, instead of a CPU amount
#   --no-registry             no local registry: images are loaded with
#                             `k3s ctr images import` (packaging/deploy.sh --import)
#   --version V               k3s version to install (INSTALL_K3S_VERSION, e.g.
#                             v1.32.4+k3s1); default: the installer's stable channel
#   --dry-run                 print the files it would write and the commands it
#                             would run; change nothing
#   -h, --help                this text
#
# Idempotent: running it again with other options rewrites the configuration
# and restarts k3s.
set -euo pipefail

cpu_static=0
kube_reserved=cpu=500m,memory=512Mi
system_reserved=cpu=500m,memory=512Mi
reserved_cpus=
registry=1
version=
dry=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "install-k3s: $*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --cpu-manager-static) cpu_static=1 ;;
    --kube-reserved) kube_reserved=${2:?--kube-reserved needs a value}; shift ;;
    --system-reserved) system_reserved=${2:?--system-reserved needs a value}; shift ;;
    --reserved-cpus) reserved_cpus=${2:?--reserved-cpus needs a value}; shift ;;
    --no-registry) registry=0 ;;
    --version) version=${2:?--version needs a value}; shift ;;
    --dry-run) dry=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
  shift
done
if ((dry == 0)); then
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 $*)"
  command -v systemctl >/dev/null || die "k3s' installer needs systemd"
fi

# run <cmd...>: runs it, or prints it under --dry-run.
run() {
  if ((dry)); then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

# put <path> <mode>: writes stdin to <path> (or prints it under --dry-run);
# returns 0 when the content changed.
put() {
  local path=$1 mode=$2 new
  new=$(cat)
  if ((dry)); then
    printf -- '--- %s (mode %s)\n%s\n' "$path" "$mode" "$new"
    return 0
  fi
  if [ -f "$path" ] && [ "$(cat "$path")" = "$new" ]; then
    return 1
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$new" >"$path.tmp"
  chmod "$mode" "$path.tmp"
  mv "$path.tmp" "$path"
  return 0
}

# --- 1. the local registry (Debian's docker-registry) ---------------------------
if ((registry)); then
  echo "install-k3s: local registry on localhost:5000 (Debian package docker-registry)" >&2
  # A fresh machine (or container) has no package lists yet: install would
  # fail with "Unable to locate package".
  run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry
  if put /etc/docker/registry/config.yml 0644 <<'EOF'; then
# Written by packaging/k3s/install-k3s.sh: the lab's image registry, on
# loopback only (k3s' containerd runs in the host network namespace).
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
    run systemctl restart docker-registry
  fi
  run systemctl enable --now docker-registry
fi

# --- 2. k3s configuration (read by k3s at every start) ---------------------------
config="# Written by packaging/k3s/install-k3s.sh; docs/k3s.md explains each key.
# Nothing of k3s' bundled extras runs next to the measured pods.
disable:
  - traefik
  - servicelb
  - metrics-server"
if ((cpu_static)); then
  config+="
kubelet-arg:
  - cpu-manager-policy=static"
  if [ -n "$reserved_cpus" ]; then
    config+="
  - reserved-cpus=$reserved_cpus"
  else
    config+="
  - kube-reserved=$kube_reserved
  - system-reserved=$system_reserved"
  fi
fi
changed=0
put /etc/rancher/k3s/config.yaml 0600 <<<"$config" && changed=1

if ((registry)); then
  put /etc/rancher/k3s/registries.yaml 0600 <<'EOF' && changed=1
# Written by packaging/k3s/install-k3s.sh: images named localhost:5000/...
# are pulled from the local registry over plain HTTP.
mirrors:
  "localhost:5000":
    endpoint:
      - "http://localhost:5000"
EOF
elif grep -qs 'install-k3s.sh' /etc/rancher/k3s/registries.yaml || ((dry)); then
  # Only the file this script wrote; a registries.yaml of your own stays.
  run rm -f /etc/rancher/k3s/registries.yaml
  changed=1
fi

# --- 3. install or restart k3s ----------------------------------------------------
# The kubelet refuses to start when the CPU manager policy in its checkpoint
# differs from the configured one; the checkpoint is rebuilt on start.
state=/var/lib/kubelet/cpu_manager_state
want_policy=none
((cpu_static)) && want_policy=static
if ((dry)) || { [ -f "$state" ] && ! grep -q "\"policyName\":\"$want_policy\"" "$state"; }; then
  run systemctl stop k3s
  run rm -f "$state"
  changed=1
fi

if ((dry)) || ! command -v k3s >/dev/null || [ -n "$version" ]; then
  echo "install-k3s: installing k3s ${version:-(stable channel)} with get.k3s.io" >&2
  installer=$(mktemp)
  trap 'rm -f "$installer"' EXIT
  run curl -sfL https://get.k3s.io -o "$installer"
  if [ -n "$version" ]; then
    run env INSTALL_K3S_VERSION="$version" sh "$installer"
  else
    run sh "$installer"
  fi
elif ((changed)); then
  echo "install-k3s: configuration changed, restarting k3s" >&2
  run systemctl restart k3s
else
  run systemctl enable --now k3s
fi

# --- 4. wait for the node, hand out the kubeconfig -------------------------------
# The node registers a few seconds after k3s starts; wait for it to exist,
# then to be Ready.
if ((dry == 0)); then
  for _ in $(seq 60); do
    [ -n "$(k3s kubectl get nodes -o name 2>/dev/null)" ] && break
    sleep 2
  done
fi
run k3s kubectl wait --for=condition=Ready node --all --timeout=180s
user=${SUDO_USER:-}
if [ -n "$user" ] && [ "$user" != root ]; then
  home=$(getent passwd "$user" | cut -d: -f6)
  run install -d -m 0700 -o "$user" "$home/.kube"
  run install -m 0600 -o "$user" /etc/rancher/k3s/k3s.yaml "$home/.kube/config"
  echo "install-k3s: kubeconfig for $user in $home/.kube/config" >&2
fi
echo "install-k3s: done. Next: packaging/deploy.sh$( ((registry)) || echo ' --import')" >&2
