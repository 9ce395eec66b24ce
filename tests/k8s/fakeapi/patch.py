"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the
part of strategic merge patch that kubectl's client-side apply and edit send.

Strategic merge needs to know, per list, whether it merges by key; `schema`
is a resolver-bound view (see SchemaView) that answers that from the Swagger
definitions (x-kubernetes-patch-merge-key / patch-strategy). Without one (a
custom resource), lists are replaced, which is what the real server does for
CRDs - and why kubectl sends merge patches for them.
"""
import copy
import json


class PatchError(Exception):
    """The patch cannot be applied; the server answers 422 (or 400)."""


def merge_patch(target, patch):
    """Return target merged with an RFC 7386 merge patch (target is not changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    for p in parts:
        if isinstance(doc, list):
            doc = doc[int(p)]
        elif isinstance(doc, dict):
            doc = doc[p]
        else:
            raise KeyError(p)
    return doc


def json_patch(target, ops):
    """Return target with RFC 6902 operations applied."""
    doc = copy.deepcopy(target)
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    for op in ops:
        try:
            kind, parts = op["op"], _pointer(op["path"])
            if kind in ("move", "copy"):
                src = _pointer(op["from"])
                value = copy.deepcopy(_walk(doc, src))
                if kind == "move":
                    parent = _walk(doc, src[:-1])
                    if isinstance(parent, list):
                        parent.pop(int(src[-1]))
                    else:
                        del parent[src[-1]]
                kind, op = "add", dict(op, value=value)
            if kind == "test":
                if _walk(doc, parts) != op["value"]:
                    raise PatchError(f"testing value {op['path']} failed")
                continue
            if not parts:
                if kind in ("add", "replace"):
                    doc = copy.deepcopy(op["value"])
                    continue
                raise PatchError("cannot remove the document root")
            parent, last = _walk(doc, parts[:-1]), parts[-1]
            if kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
                else:
                    parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = copy.deepcopy(op["value"])
                else:
                    if last not in parent:
                        raise PatchError(f"replace operation does not apply: doc is missing key: {op['path']}")
                    parent[last] = copy.deepcopy(op["value"])
            else:
                raise PatchError(f"unexpected kind: {kind}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise PatchError(f"the server rejected our request due to an error in our request: {op} ({e})")
    return doc


class SchemaView:
    """A schema node plus the definitions that resolve its $refs."""

    def __init__(self, node, defs):
        self.defs = defs or {}
        self.node = self._resolve(node) or {}

    def _resolve(self, n):
        while isinstance(n, dict) and "$ref" in n:
            n = self.defs.get(n["$ref"].split("/")[-1])
        return n

    def field(self, key):
        props = self.node.get("properties") or {}
        if key in props:
            return SchemaView(props[key], self.defs)
        if isinstance(self.node.get("additionalProperties"), dict):
            return SchemaView(self.node["additionalProperties"], self.defs)
        return SchemaView({}, self.defs)

    def items(self):
        return SchemaView(self.node.get("items") or {}, self.defs)

    def list_keys(self):
        """Merge keys of a list of maps, or None if the list is atomic/set."""
        if self.node.get("x-kubernetes-list-type") == "map":
            return list(self.node.get("x-kubernetes-list-map-keys") or [])
        mk = self.node.get("x-kubernetes-patch-merge-key")
        if mk and "merge" in (self.node.get("x-kubernetes-patch-strategy") or ""):
            return [mk]
        return None

    def is_set(self):
        return (self.node.get("x-kubernetes-list-type") == "set"
                or (self.node.get("x-kubernetes-patch-strategy") == "merge"
                    and not self.node.get("x-kubernetes-patch-merge-key")))


def _key_of(item, keys):
    return json.dumps([item.get(k) for k in keys]) if isinstance(item, dict) else json.dumps(item)


def strategic_merge_patch(target, patch, schema):
    """Return target with a strategic merge patch applied (see module doc)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in copy.deepcopy(patch).items() if k != "$patch"}
    if directive == "delete":
        return None
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            out[name] = [x for x in out.get(name) or [] if x not in v]
            continue
        sub = schema.field(k) if schema else None
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            r = strategic_merge_patch(out.get(k), v, sub)
            if r is None:
                out.pop(k, None)
            else:
                out[k] = r
        elif isinstance(v, list) and sub is not None and isinstance(out.get(k), list):
            out[k] = _merge_list(out[k], v, sub)
        else:
            out[k] = copy.deepcopy(v)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(cur, patch, schema):
    keys = schema.list_keys()
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [p for p in copy.deepcopy(patch) if not (isinstance(p, dict) and "$patch" in p)]
    if keys:
        out = copy.deepcopy(cur)
        index = {_key_of(x, keys): i for i, x in enumerate(out)}
        deleted = set()
        for p in patch:
            if not isinstance(p, dict):
                raise PatchError("strategic merge patch: list item is not a map")
            k = _key_of(p, keys)
            if p.get("$patch") == "delete":
                deleted.add(k)
            elif k in index:
                out[index[k]] = strategic_merge_patch(out[index[k]], p, schema.items())
            else:
                index[k] = len(out)
                out.append({kk: vv for kk, vv in copy.deepcopy(p).items() if kk != "$patch"})
        return [x for x in out if _key_of(x, keys) not in deleted]
    if schema.is_set():
        out = copy.deepcopy(cur)
        for p in patch:
            if p not in out:
                out.append(copy.deepcopy(p))
        return out
    return copy.deepcopy(patch)
