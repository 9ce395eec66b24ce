#!/usr/bin/env python3
"""Extract the Kubernetes API definitions the test API server needs.

The official OpenAPI (Swagger 2.0) document of a Kubernetes release is large
(730 definitions); the test API server validates only a handful of kinds. This
script copies the transitive closure of those kinds' definitions into
tests/k8s/schema/k8s-definitions.json, so the tests never read anything outside
the repository. Descriptions are dropped (they are 80% of the bytes and carry no
rule); everything else - types, formats, required, enums, x-kubernetes-*
extensions - is kept verbatim.

Regenerate with:
    python3 tests/k8s/extract_schema.py ../shared/k8s/swagger-1.34.json
"""
import argparse
import hashlib
import json
import os
import sys

# The kinds the server serves or validates. Everything they reference is pulled
# in automatically.
ROOTS = [
    "io.k8s.api.core.v1.Namespace",
    "io.k8s.api.core.v1.ConfigMap",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.Event",
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.core.v1.ServiceAccount",
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.policy.v1.PodDisruptionBudget",
    "io.k8s.api.networking.v1.NetworkPolicy",
    "io.k8s.api.coordination.v1.Lease",
    "io.k8s.api.rbac.v1.ClusterRole",
    "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "io.k8s.api.rbac.v1.Role",
    "io.k8s.api.rbac.v1.RoleBinding",
    "io.k8s.api.events.v1.Event",
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
]

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "schema", "k8s-definitions.json")


def strip(node, keep_descriptions):
    """Return a copy of a schema node without descriptions (unless kept)."""
    if isinstance(node, dict):
        # A string "description" is documentation; a dict one is a property
        # named "description" (JSONSchemaProps has one) and must stay.
        return {k: strip(v, keep_descriptions) for k, v in node.items()
                if keep_descriptions or k != "description" or not isinstance(v, str)}
    if isinstance(node, list):
        return [strip(v, keep_descriptions) for v in node]
    return node


def refs(node):
    """Yield every definition name a schema node references."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            yield ref[len("#/definitions/"):]
        for v in node.values():
            yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("swagger", help="path to swagger-<version>.json")
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    ap.add_argument("--keep-descriptions", action="store_true")
    args = ap.parse_args()

    with open(args.swagger, "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    defs = doc["definitions"]
    todo, seen = list(ROOTS), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in defs:
            sys.exit(f"extract_schema: definition {name!r} not in {args.swagger}")
        seen.add(name)
        todo.extend(refs(defs[name]))

    out = {
        "x-source": {
            "file": os.path.basename(args.swagger),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "command": "python3 tests/k8s/extract_schema.py " + os.path.basename(args.swagger),
            "roots": ROOTS,
        },
        "definitions": {n: strip(defs[n], args.keep_descriptions) for n in sorted(seen)},
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"extract_schema: {len(seen)} definitions -> {args.output}")


if __name__ == "__main__":
    main()
