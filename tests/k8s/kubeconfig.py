#!/usr/bin/env python3
"""Write a kubeconfig for a plain-HTTP API server on loopback.

    python3 tests/k8s/kubeconfig.py http://127.0.0.1:PORT out.kubeconfig [namespace]

kubectl and client libraries talk plain HTTP to an http:// server; no TLS
settings or credentials are needed (or written).
"""
import json
import sys


def kubeconfig(url, namespace="default", name="observatory-test"):
    """Return the kubeconfig document (as a dict; JSON is valid kubeconfig YAML)."""
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
    }


def write_kubeconfig(path, url, namespace="default"):
    with open(path, "w") as f:
        json.dump(kubeconfig(url, namespace), f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    write_kubeconfig(sys.argv[2], sys.argv[1], *(sys.argv[3:4] or []))
