#!/usr/bin/env bash
# One command from a source change to a running pipeline in k3s: builds the
# image (packaging/Dockerfile) with buildah, podman or docker, pushes it to the
# local registry on localhost:5000 (or imports it into k3s' containerd),
# applies packaging/k8s with the new tag, waits until the operator, Prometheus
# and the demo StageSet are ready, and prints how to reach them.
# docs/k3s.md has the whole loop.
#
#   packaging/deploy.sh [options]      build, deliver, apply, wait
#   packaging/deploy.sh down           delete what it applied (images stay)
#
#   --import         no registry: `k3s ctr images import` (runs sudo k3s when not root)
#   --skip-build     apply and wait only, with --tag (default: the last tag deployed)
#   --tag TAG        image tag (default: dev-<UTC time>, new each time so pods roll)
#   --no-wait        apply and return
#   --timeout SECS   how long to wait for readiness (default 300)
#
# Environment: OBS_BUILDER=buildah|podman|docker (default: the first found),
# OBS_BASE (the Dockerfile's BASE build argument), KUBECTL (default kubectl,
# else `k3s kubectl`), OBS_JOBS (the Dockerfile's JOBS).
set -euo pipefail
cd "$(dirname "$0")/.."

registry=localhost:5000
repo=$registry/observatory
prom_repo=$registry/observatory-prometheus
state=${XDG_STATE_HOME:-$HOME/.local/state}/observatory/deploy-tag
import=0 build=1 wait=1 timeout=300 tag='' down=0

die() { echo "deploy: $*" >&2; exit 1; }
say() { echo "deploy: $*" >&2; }
while (($#)); do
  case $1 in
    down) down=1 ;;
    --import) import=1 ;;
    --skip-build) build=0 ;;
    --tag) tag=${2:?--tag needs a value}; shift ;;
    --no-wait) wait=0 ;;
    --timeout) timeout=${2:?--timeout needs a value}; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (--help)" ;;
  esac
  shift
done

if [ -n "${KUBECTL:-}" ]; then
  read -r -a kubectl <<<"$KUBECTL"
elif command -v kubectl >/dev/null; then
  kubectl=(kubectl)
elif command -v k3s >/dev/null; then
  kubectl=(k3s kubectl)
else
  die "no kubectl (set KUBECTL, or install k3s: packaging/k3s/install-k3s.sh)"
fi
k() { "${kubectl[@]}" "$@"; }

if ((down)); then
  # StageSets first, while the operator and the garbage collector are there
  # to take their Deployments, Services and ConfigMaps with them.
  k delete stagesets.observatory.dev --all -n observatory --ignore-not-found --wait=true --timeout=120s || true
  k delete -k packaging/k8s --ignore-not-found --wait=true --timeout=120s
  say "deleted. Images stay in the registry / containerd; remove them with" \
    "'k3s crictl rmi' or the registry's API."
  exit 0
fi

if [ -z "$tag" ]; then
  if ((build)); then
    tag=dev-$(date -u +%Y%m%d-%H%M%S)
  else
    tag=$(cat "$state" 2>/dev/null) || die "--skip-build needs --tag (no previous deploy recorded)"
  fi
fi

# --- build and deliver -----------------------------------------------------------
if ((build)); then
  builder=${OBS_BUILDER:-}
  if [ -z "$builder" ]; then
    for b in buildah podman docker; do command -v "$b" >/dev/null && { builder=$b; break; }; done
  fi
  [ -n "$builder" ] || die "no image builder: install buildah (apt-get install buildah), podman or docker"
  args=(-f packaging/Dockerfile)
  [ -n "${OBS_BASE:-}" ] && args+=(--build-arg "BASE=$OBS_BASE")
  [ -n "${OBS_JOBS:-}" ] && args+=(--build-arg "JOBS=$OBS_JOBS")
  for target in runtime prometheus; do
    name=$repo:$tag
    [ "$target" = prometheus ] && name=$prom_repo:$tag
    say "building $name ($builder, target $target)"
    start=$(date +%s)
    case $builder in
      buildah) buildah bud --layers "${args[@]}" --target "$target" -t "$name" . ;;
      *) "$builder" build "${args[@]}" --target "$target" -t "$name" . ;;
    esac
    say "built $name in $(($(date +%s) - start)) s"

    if ((import)); then
      tar=$(mktemp --suffix=.tar)
      case $builder in
        buildah) buildah push "$name" "docker-archive:$tar:$name" ;;
        *) "$builder" save -o "$tar" "$name" ;;
      esac
      sudo=()
      [ "$(id -u)" -eq 0 ] || sudo=(sudo)
      "${sudo[@]}" k3s ctr -n k8s.io images import "$tar"
      rm -f "$tar"
      say "imported $name into k3s' containerd"
    else
      case $builder in
        buildah | podman) "$builder" push --tls-verify=false "$name" ;;
        docker) docker push "$name" ;; # docker treats localhost registries as insecure
      esac
      say "pushed $name"
    fi
  done
fi

# --- apply -----------------------------------------------------------------------
# The CRD first: a StageSet cannot be applied before its kind is served.
k apply -f packaging/k8s/crd/
k wait --for=condition=Established --timeout=60s crd/stagesets.observatory.dev
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
cp packaging/k8s/kustomizeconfig.yaml "$overlay/"
cat >"$overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$overlay" "$PWD/packaging/k8s")
images:
  - name: $repo
    newTag: "$tag"
  - name: $prom_repo
    newTag: "$tag"
configurations:
  - kustomizeconfig.yaml
EOF
k apply -k "$overlay"
mkdir -p "$(dirname "$state")" && echo "$tag" >"$state"
say "applied packaging/k8s with images :$tag"

if ((wait)); then
  k -n observatory-system rollout status deployment/observatory-operator --timeout="${timeout}s"
  k -n observatory-system rollout status deployment/prometheus --timeout="${timeout}s"
  k -n observatory wait --for=condition=Ready stageset/demo --timeout="${timeout}s"
  k -n observatory get stagesets -o wide
fi

cat <<EOF

Observatory is deployed (images :$tag). To reach it, port-forward, e.g.:

  kubectl -n observatory port-forward svc/demo 9464:9464
      http://127.0.0.1:9464/metrics              hostd's Prometheus metrics
      http://127.0.0.1:9464/profile?seconds=10   flame graph of the stage threads (format=svg|folded|json|pprof)
      http://127.0.0.1:9464/api/v1/stages        per-stage figures (JSON)
  kubectl -n observatory-system port-forward svc/prometheus 9090:9090
      http://127.0.0.1:9090/                     Prometheus (dashboard: graph, /targets)
  kubectl -n observatory-system port-forward deploy/observatory-operator 8080:8080
      http://127.0.0.1:8080/metrics              the operator's metrics

Change code, run packaging/deploy.sh again: only the compile step rebuilds, and
the new tag rolls the operator, Prometheus and the StageSet's pods.
Tear down: packaging/deploy.sh down
EOF
