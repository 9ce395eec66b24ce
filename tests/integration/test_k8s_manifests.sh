#!/usr/bin/env bash
# packaging/k8s: the kustomize base renders, every rendered object
# is valid against the official Kubernetes schema, and the real kubectl
# applies it to the test API server (tests/k8s/) and reads it back. Fast
# (a few seconds) and always on; skips (77) only when kubectl is missing.
#
#   tests/integration/test_k8s_manifests.sh [SOURCE_DIR]
#
# 1. `kubectl kustomize packaging/k8s` renders; packaging/k8s/crd/ and rbac/
#    are the same as config/crd/ and config/rbac/ (kustomize cannot load
#    those directly), and the image fields carry the names deploy.sh rewrites.
# 2. Each object is checked, strictly (unknown fields are errors), with
#    tests/k8s/fakeapi/validation.py: built-in kinds against the definitions
#    extracted from the official Kubernetes 1.34 OpenAPI document
#    (tests/k8s/schema/), plus the server's cross-field rules; the StageSet
#    against the rendered CRD's openAPIV3Schema and its CEL rules.
# 3. tests/k8s/apiserver.py on loopback: kubectl applies the CRD, waits until
#    it is Established, applies `-k packaging/k8s` (what deploy.sh does), and
#    every rendered object is read back with kubectl get.
set -euo pipefail

src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
command -v kubectl >/dev/null || { echo "test_k8s_manifests: skipped: kubectl not installed"; exit 77; }
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
  return 0
}
trap cleanup EXIT
fail() { echo "test_k8s_manifests: FAIL: $*" >&2; exit 1; }
t0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - t0) / 1000000)); }

# --- 1. render ---------------------------------------------------------------
k8s=$src/packaging/k8s
kubectl kustomize "$k8s" >"$work/rendered.yaml" || fail "kubectl kustomize packaging/k8s"
cmp -s "$k8s/crd/stagesets.observatory.dev.yaml" "$src/config/crd/stagesets.observatory.dev.yaml" ||
  fail "packaging/k8s/crd/ differs from config/crd/ (copy it again)"
cmp -s "$k8s/rbac/rbac.yaml" "$src/config/rbac/rbac.yaml" ||
  fail "packaging/k8s/rbac/ differs from config/rbac/ (copy it again)"
echo "test_k8s_manifests: rendered $(grep -c '^kind:' "$work/rendered.yaml") objects ($(ms) ms)"

# --- 2. schema ---------------------------------------------------------------
python3 - "$src/tests/k8s" "$work/rendered.yaml" <<'EOF' || fail "schema validation"
import sys, yaml
sys.path.insert(0, sys.argv[1])
from fakeapi import cel
from fakeapi.resources import BUILTINS, ResourceType, kind_problems
from fakeapi.validation import Validator, load_definitions, validate_labels

defs = load_definitions()
objs = [o for o in yaml.safe_load_all(open(sys.argv[2])) if o]
crds = {(c["spec"]["group"], c["spec"]["names"]["kind"]): c for c in objs
        if c["kind"] == "CustomResourceDefinition"}
meta = {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}


def cel_check(rule, value, old, path):
    try:
        return cel.check_rule(rule, value, old, path, old is not None)
    except cel.CelUnsupported:
        return None


def type_of(obj):
    group, _, version = obj["apiVersion"].rpartition("/")
    for rt in BUILTINS:
        if (rt.group, rt.version, rt.kind) == (group, version, obj["kind"]):
            return rt, {"$ref": "#/definitions/" + rt.definition}
    crd = crds.get((group, obj["kind"]))
    if crd:
        ver = next(v for v in crd["spec"]["versions"] if v["name"] == version)
        schema = dict(ver["schema"]["openAPIV3Schema"])
        schema["properties"] = dict(schema.get("properties", {}), metadata=meta)
        rt = ResourceType(group, version, crd["spec"]["names"]["plural"], obj["kind"],
                          builtin=False, schema=schema)
        return rt, schema
    return None, None


bad = 0
kinds = {}
images = []
for o in objs:
    what = f'{o["kind"]} {o["metadata"].get("namespace", "")}/{o["metadata"]["name"]}'
    rt, schema = type_of(o)
    if rt is None:
        print(f"  {what}: no schema for {o['apiVersion']} {o['kind']}", file=sys.stderr)
        bad += 1
        continue
    v = Validator(defs, free_form=rt.builtin, prune=False, cel=None if rt.builtin else cel_check)
    v.validate(o, schema)
    errs = [f"{f}: {m}" if f else m for _, f, m in v.errors]
    errs += [f"{f}: {m}" for f, m in validate_labels(o["metadata"].get("labels"))]
    errs += [f"{f}: {m}" for f, m in kind_problems(rt, o, None)]
    for e in errs:
        print(f"  {what}: {e}", file=sys.stderr)
    bad += len(errs)
    kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    if o["kind"] == "StageSet":
        images.append(o["spec"]["image"])
    for c in (o.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []):
        images.append(c["image"])
need = {"Namespace": 2, "CustomResourceDefinition": 1, "ServiceAccount": 2, "ClusterRole": 2,
        "ClusterRoleBinding": 2, "Deployment": 2, "ConfigMap": 1, "Service": 1, "StageSet": 1}
if kinds != need:
    print(f"  kinds rendered {kinds}, expected {need}", file=sys.stderr)
    bad += 1
# deploy.sh retags these two names; anything else would not be built.
for i in images:
    if i.rsplit(":", 1)[0] not in ("localhost:5000/observatory", "localhost:5000/observatory-prometheus"):
        print(f"  image {i}: not one packaging/deploy.sh builds", file=sys.stderr)
        bad += 1
print(f"test_k8s_manifests: {len(objs)} objects checked against the official schema "
      f"({len(defs)} definitions) and the CRD: {bad} error(s)")
sys.exit(1 if bad else 0)
EOF
echo "test_k8s_manifests: schema ok ($(ms) ms)"

# --- 3. kubectl apply against the test API server ----------------------------
python3 "$src/tests/k8s/apiserver.py" --port 0 --port-file "$work/port" \
  --kubeconfig "$work/kubeconfig" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/server.log" >&2; fail "test API server did not start"; }
export KUBECONFIG=$work/kubeconfig
k() { timeout 30 kubectl --request-timeout=20s "$@"; }

k apply -f "$k8s/crd/" >"$work/apply.log" 2>&1 || { cat "$work/apply.log" >&2; fail "kubectl apply -f crd/"; }
k wait --for=condition=Established --timeout=20s crd/stagesets.observatory.dev >/dev/null ||
  fail "CRD not Established"
k apply -k "$k8s" >"$work/apply.log" 2>&1 || { cat "$work/apply.log" >&2; fail "kubectl apply -k packaging/k8s"; }
sed 's/^/  /' "$work/apply.log"
# A second apply changes nothing.
k apply -k "$k8s" >"$work/apply2.log" 2>&1 || { cat "$work/apply2.log" >&2; fail "second kubectl apply"; }
grep -v ' unchanged$' "$work/apply2.log" && fail "second apply was not a no-op"

want=$(kubectl create --dry-run=client -o name -f "$work/rendered.yaml" | sort)
got=$(k get -o name -f "$work/rendered.yaml" | sort)
[ "$want" = "$got" ] || fail "kubectl get returned
$got
expected
$want"
[ "$(k get -n observatory stageset demo -o jsonpath='{.spec.stages[*].plugin}')" = \
  "gen_market xf_json_fast xf_window sink_rocksdb" ] || fail "StageSet read back differs"
[ "$(k get -n observatory-system configmap prometheus -o jsonpath='{.data.prometheus\.yml}' |
  grep -c 'kubernetes_sd_configs:')" = 2 ] || fail "Prometheus ConfigMap read back differs"
k get -n observatory stagesets >/dev/null
echo "test_k8s_manifests: applied and read back $(wc -l <<<"$got") objects with kubectl ($(ms) ms)"
echo "test_k8s_manifests: PASS"
