"""Field ownership (metadata.managedFields) and server-side apply.

A simplified model of the real structured-merge-diff: a field set is a set
of leaf paths. A path is a tuple of steps: ("f", name) for a map key,
("k", json-of-key-values) for an item of a keyed list, ("v", json) for an item
of a set. Atomic values and atomic lists are leaves. An Apply makes its
manager own exactly the leaves of its configuration; leaves it owned before
and no longer applies are removed unless another manager owns them. Changing
a leaf another manager owns, to a different value, without force, is a
conflict (409). An Update (PUT, merge/strategic/JSON patch) makes the updater
own the leaves it changed and takes them away from everyone else.
"""
import copy
import json

from .patch import SchemaView

# Fields the server owns; never tracked.
_UNTRACKED_META = {"name", "namespace", "uid", "resourceVersion", "generation",
                   "creationTimestamp", "managedFields", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "selfLink"}


def leaves(obj, schema, prefix=(), top=True):
    """Return the set of leaf paths of obj (see module doc)."""
    out = set()
    if not isinstance(obj, dict):
        return {prefix} if prefix else out
    for k, v in obj.items():
        if top and k in ("apiVersion", "kind", "status"):
            continue
        if prefix == (("f", "metadata"),) and k in _UNTRACKED_META:
            continue
        sub = schema.field(k) if schema else None
        p = prefix + (("f", k),)
        if isinstance(v, dict) and v:
            out |= leaves(v, sub, p, False)
        elif isinstance(v, list) and v and sub is not None:
            keys = sub.list_keys()
            if keys and all(isinstance(x, dict) for x in v):
                for item in v:
                    kp = p + (("k", json.dumps({kk: item.get(kk) for kk in keys}, sort_keys=True)),)
                    inner = leaves(item, sub.items(), kp, False)
                    out |= inner or {kp}
            elif sub.is_set():
                out |= {p + (("v", json.dumps(x, sort_keys=True)),) for x in v}
            else:
                out.add(p)
        else:
            out.add(p)
    return out


def get_path(obj, path):
    """Return (found, value) at path in obj."""
    cur = obj
    for kind, key in path:
        if kind == "f":
            if not isinstance(cur, dict) or key not in cur:
                return False, None
            cur = cur[key]
        elif kind == "k":
            want = json.loads(key)
            if not isinstance(cur, list):
                return False, None
            for item in cur:
                if isinstance(item, dict) and all(item.get(a) == b for a, b in want.items()):
                    cur = item
                    break
            else:
                return False, None
        else:
            want = json.loads(key)
            if not isinstance(cur, list) or want not in cur:
                return False, None
            cur = want
    return True, cur


def remove_path(obj, path):
    """Remove the field at path from obj, pruning maps left empty by it."""
    if not path:
        return
    parent_found, parent = get_path(obj, path[:-1])
    if not parent_found:
        return
    kind, key = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(key, None)
    elif kind == "k" and isinstance(parent, list):
        want = json.loads(key)
        parent[:] = [x for x in parent if not (isinstance(x, dict) and all(x.get(a) == b for a, b in want.items()))]
    elif kind == "v" and isinstance(parent, list):
        want = json.loads(key)
        parent[:] = [x for x in parent if x != want]
    found, p = get_path(obj, path[:-1])
    if found and (p == {} or p == []) and len(path) > 1:
        remove_path(obj, path[:-1])


def apply_merge(cur, cfg, schema):
    """Merge an apply configuration into the current object (neither changed)."""
    if not isinstance(cfg, dict) or not isinstance(cur, dict):
        return copy.deepcopy(cfg)
    out = copy.deepcopy(cur)
    for k, v in cfg.items():
        sub = schema.field(k) if schema else None
        if isinstance(v, dict):
            out[k] = apply_merge(out.get(k), v, sub)
        elif isinstance(v, list) and sub is not None and isinstance(out.get(k), list):
            keys = sub.list_keys()
            if keys and all(isinstance(x, dict) for x in v):
                merged = copy.deepcopy(out[k])
                for item in v:
                    for i, old in enumerate(merged):
                        if isinstance(old, dict) and all(old.get(a) == item.get(a) for a in keys):
                            merged[i] = apply_merge(old, item, sub.items())
                            break
                    else:
                        merged.append(copy.deepcopy(item))
                out[k] = merged
            elif sub.is_set():
                out[k] = copy.deepcopy(out[k]) + [x for x in v if x not in out[k]]
            else:
                out[k] = copy.deepcopy(v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def encode(paths):
    """Encode a path set as FieldsV1 JSON (the managedFields fieldsV1 value)."""
    root = {}
    for p in sorted(paths):
        node = root
        for i, (kind, key) in enumerate(p):
            node = node.setdefault(f"{kind}:{key}", {})
            if kind == "k" and i < len(p) - 1:
                node.setdefault(".", {})
    return root


def decode(fields, prefix=()):
    """Decode FieldsV1 back into a set of leaf paths."""
    out = set()
    for k, v in (fields or {}).items():
        if k == ".":
            continue
        kind, key = k.split(":", 1)
        p = prefix + ((kind, key),)
        inner = decode(v, p)
        out |= inner or {p}
    return out


def path_str(p):
    s = ""
    for kind, key in p:
        s += f".{key}" if kind == "f" else f"[{key}]"
    return s


class Conflict(Exception):
    """An apply would change fields other managers own."""

    def __init__(self, conflicts, api_version):
        self.conflicts = conflicts  # list of (manager, path)
        self.api_version = api_version
        n = len(conflicts)
        lines = "\n".join(f'- {path_str(p)}' for _, p in conflicts)
        first = conflicts[0][0]
        super().__init__(f"Apply failed with {n} conflict{'s' if n != 1 else ''}: conflict with "
                         f'"{first}" using {api_version}: ' + (path_str(conflicts[0][1]) if n == 1 else "\n" + lines))


def _entries(obj):
    return obj.get("metadata", {}).get("managedFields") or []


def _set_entries(obj, entries):
    entries = [e for e in entries if e.get("fieldsV1")]
    if entries:
        obj["metadata"]["managedFields"] = entries
    else:
        obj["metadata"].pop("managedFields", None)


def _entry(manager, op, api_version, paths, now, subresource=None):
    e = {"manager": manager, "operation": op, "apiVersion": api_version, "time": now,
         "fieldsType": "FieldsV1", "fieldsV1": encode(paths)}
    if subresource:
        e["subresource"] = subresource
    return e


def _restrict(paths, subresource):
    if subresource == "status":
        return {p for p in paths if p[:1] == (("f", "status"),)}
    return {p for p in paths if p[:1] != (("f", "status"),)}


def record_update(old, new, manager, api_version, schema, now, subresource=None):
    """Give manager the leaves that changed from old to new (in new, in place)."""
    entries = copy.deepcopy(_entries(old) if old else [])
    status_aware = subresource == "status"
    ol = _with_status(old, schema, status_aware) if old else set()
    nl = _with_status(new, schema, status_aware)
    changed = set()
    for p in nl:
        fo, vo = get_path(old, p) if old else (False, None)
        fn, vn = get_path(new, p)
        if not fo or vo != vn:
            changed.add(p)
    removed = ol - nl
    changed = _restrict(changed, subresource)
    out = []
    mine = None
    for e in entries:
        paths = decode(e.get("fieldsV1")) - removed
        if e["manager"] == manager and e["operation"] == "Update" and e.get("subresource") == subresource:
            mine = paths
            continue
        out.append(dict(e, fieldsV1=encode(paths - changed)))
    paths = ((mine or set()) | changed) - removed
    if paths:
        out.append(_entry(manager, "Update", api_version, paths, now, subresource))
    elif mine is not None:
        pass
    _set_entries(new, out)


def _with_status(obj, schema, status):
    ls = leaves(obj, schema)
    if status and isinstance(obj.get("status"), dict):
        ls |= leaves(obj["status"], schema.field("status") if schema else None, (("f", "status"),), False)
    return ls


def apply(cur, cfg, manager, api_version, schema, force, now, subresource=None):
    """Server-side apply cfg over cur (None to create); return the new object.

    Raises Conflict unless force. cur is not modified.
    """
    base = copy.deepcopy(cur) if cur else {}
    status = subresource == "status"
    cfg_leaves = _restrict(_with_status(cfg, schema, status), subresource)
    entries = copy.deepcopy(_entries(base))
    conflicts = []
    for e in entries:
        # Managers are identified by name and operation: "kubectl" applying
        # conflicts with fields "kubectl" set through an update.
        if e["manager"] == manager and e["operation"] == "Apply" and e.get("subresource") == subresource:
            continue
        owned = decode(e.get("fieldsV1"))
        for p in sorted(cfg_leaves & owned):
            fo, vo = get_path(base, p)
            fn, vn = get_path(cfg, p)
            if fo and vo != vn:
                conflicts.append((e["manager"], p))
    if conflicts and not force:
        raise Conflict(conflicts, api_version)
    prev = set()
    others = set()
    for e in entries:
        if e["manager"] == manager and e["operation"] == "Apply" and e.get("subresource") == subresource:
            prev = decode(e.get("fieldsV1"))
        else:
            others |= decode(e.get("fieldsV1"))
    merged = apply_merge(base, cfg if not status else {"status": cfg.get("status", {})}, schema)
    for p in sorted(prev - cfg_leaves - others, key=len, reverse=True):
        remove_path(merged, p)
    out = []
    for e in entries:
        if e["manager"] == manager and e["operation"] == "Apply" and e.get("subresource") == subresource:
            continue
        paths = decode(e.get("fieldsV1"))
        if force:
            paths -= cfg_leaves
        else:
            # Same value applied by two managers: shared ownership, as in the real server.
            pass
        out.append(dict(e, fieldsV1=encode(paths)))
    out.append(_entry(manager, "Apply", api_version, cfg_leaves, now, subresource))
    merged.setdefault("metadata", {})
    _set_entries(merged, out)
    return merged
