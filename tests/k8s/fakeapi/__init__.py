"""A small Kubernetes API server for tests (see tests/k8s/README.md).

Modules: store (objects, resourceVersion, history, watchers), validation
(OpenAPI schema checks), cel (the CEL subset CRD rules use), patch (merge,
strategic-merge, JSON patch), ssa (server-side apply field ownership),
resources (built-in kinds, defaults, CRD-backed kinds), discovery (discovery
and OpenAPI v3 documents), controllers (simulated kubelet, garbage collector),
faults (injectable failures), server (the HTTP front end).
"""
