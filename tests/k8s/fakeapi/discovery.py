"""Discovery and OpenAPI documents: what kubectl reads before it acts.

Legacy (unaggregated) discovery at /api, /api/v1, /apis, /apis/<g>,
/apis/<g>/<v>; kubectl asks for aggregated discovery first and falls back
when it gets a plain APIGroupList. OpenAPI v3 at /openapi/v3 and
/openapi/v3/<path>: one document per group-version with a PATCH operation
per kind that declares the fieldValidation parameter (that is how kubectl
decides to leave validation to the server) and component schemas converted
from the extracted definitions or from each CRD's openAPIV3Schema.
"""
import copy
import datetime
import hashlib
import json
import re

VERSION = {"major": "1", "minor": "34", "gitVersion": "v1.34.0", "gitCommit": "observatory-test-apiserver",
           "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "python",
           "compiler": "python", "platform": "linux/amd64"}


def api_versions(host):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}


def _group(name, versions):
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def api_group_list(registry):
    gv = registry.group_versions()
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, vs) for g, vs in sorted(gv.items()) if g]}


def api_group(registry, group):
    vs = registry.group_versions().get(group)
    if not vs:
        return None
    return dict(_group(group, vs), kind="APIGroup", apiVersion="v1")


def resource_list(registry, group, version):
    types = registry.in_group_version(group, version)
    if not types:
        return None
    res = []
    for rt in types:
        r = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
             "kind": rt.kind, "verbs": rt.verbs}
        if rt.short_names:
            r["shortNames"] = rt.short_names
        if rt.categories:
            r["categories"] = rt.categories
        res.append(r)
        if rt.status:
            res.append({"name": rt.plural + "/status", "singularName": "", "namespaced": rt.namespaced,
                        "kind": rt.kind, "verbs": ["get", "patch", "update"]})
        if rt.scale:
            res.append({"name": rt.plural + "/scale", "singularName": "", "namespaced": rt.namespaced,
                        "group": "autoscaling", "version": "v1", "kind": "Scale",
                        "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": res}


# -- OpenAPI v3 --------------------------------------------------------------

def _v3_refs(node):
    if isinstance(node, dict):
        return {k: (v.replace("#/definitions/", "#/components/schemas/") if k == "$ref" and isinstance(v, str) else _v3_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_v3_refs(v) for v in node]
    return node


def _closure(defs, roots):
    seen, todo = set(), list(roots)
    while todo:
        n = todo.pop()
        if n in seen or n not in defs:
            continue
        seen.add(n)
        todo.extend(r.split("/")[-1] for r in _refs(defs[n]))
    return seen


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


_PATCH_PARAMS = [{"name": n, "in": "query", "schema": {"type": "string"}}
                 for n in ("dryRun", "fieldManager", "fieldValidation", "force")]


def openapi_gv(registry, defs, group, version):
    """The OpenAPI v3 document of one group-version, or None."""
    types = registry.in_group_version(group, version)
    if not types:
        return None
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    paths, schemas, roots = {}, {}, ["io.k8s.apimachinery.pkg.apis.meta.v1.Status",
                                     "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                                     "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]
    for rt in types:
        gvk = {"group": group, "version": version, "kind": rt.kind}
        if rt.definition:
            name = rt.definition
            roots.append(name)
        else:
            name = ".".join(reversed(group.split("."))) + f".{version}.{rt.kind}"
            s = copy.deepcopy(rt.schema or {"type": "object"})
            props = s.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props["metadata"] = {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
            s["x-kubernetes-group-version-kind"] = [gvk]
            schemas[name] = s
        ref = {"$ref": f"#/components/schemas/{name}"}
        item = (f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}" if rt.namespaced
                else f"{prefix}/{rt.plural}/{{name}}")
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        op = {"x-kubernetes-group-version-kind": gvk, "responses": ok}
        paths[item] = {
            "get": dict(op, **{"x-kubernetes-action": "get"}),
            "put": dict(op, **{"x-kubernetes-action": "put", "parameters": copy.deepcopy(_PATCH_PARAMS)}),
            "patch": dict(op, **{"x-kubernetes-action": "patch", "parameters": copy.deepcopy(_PATCH_PARAMS)}),
            "delete": dict(op, **{"x-kubernetes-action": "delete"}),
        }
        coll = item.rsplit("/", 1)[0]
        paths[coll] = {"post": dict(op, **{"x-kubernetes-action": "post",
                                           "parameters": copy.deepcopy(_PATCH_PARAMS)})}
    for n in _closure(defs, roots):
        schemas[n] = defs[n]
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.34.0"},
            "paths": paths, "components": {"schemas": _v3_refs(schemas)}}


def openapi_index(registry, defs):
    out = {}
    for g, vs in registry.group_versions().items():
        for v in vs:
            key = f"apis/{g}/{v}" if g else f"api/{v}"
            doc = json.dumps(openapi_gv(registry, defs, g, v), sort_keys=True).encode()
            h = hashlib.sha512(doc).hexdigest()[:32].upper()
            out[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
    return {"paths": out}


# -- Tables (kubectl get's human output) -------------------------------------

def _age(ts):
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    s = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


_STEP = re.compile(r"""\.?([A-Za-z0-9_-]+)|\[(\d+|\*|\?\(@\.([A-Za-z0-9_]+)\s*==\s*["']([^"']*)["']\))\]""")


def _jsonpath(obj, path):
    """Evaluate the JSONPath subset printer columns use (fields, [N], [*],
    [?(@.k=="v")]); several matches are joined with commas like kubectl."""
    cur = [obj]
    pos = 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if not m:
            return None
        pos = m.end()
        nxt = []
        for c in cur:
            if m.group(1) is not None:
                if isinstance(c, dict) and m.group(1) in c:
                    nxt.append(c[m.group(1)])
            elif isinstance(c, list):
                sel = m.group(2)
                if sel == "*":
                    nxt.extend(c)
                elif sel.isdigit():
                    nxt.extend(c[int(sel):int(sel) + 1])
                else:
                    nxt.extend(x for x in c if isinstance(x, dict) and str(x.get(m.group(3))) == m.group(4))
        cur = nxt
    if not cur:
        return None
    return cur[0] if len(cur) == 1 else ",".join(str(x) for x in cur)


def table(rt, objs, list_meta):
    """A meta.k8s.io/v1 Table: Name, the CRD's printer columns, Age."""
    cols = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    extra = [c for c in rt.printer_columns if c.get("jsonPath") != ".metadata.creationTimestamp"]
    for c in extra:
        cols.append({"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                     "description": c.get("description", ""), "priority": c.get("priority", 0)})
    cols.append({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0})
    rows = []
    for o in objs:
        md = o["metadata"]
        cells = [md["name"]] + [_jsonpath(o, c["jsonPath"]) for c in extra] + [_age(md.get("creationTimestamp"))]
        rows.append({"cells": cells, "object": {"kind": "PartialObjectMetadata",
                                                "apiVersion": "meta.k8s.io/v1", "metadata": md}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": cols, "rows": rows}
