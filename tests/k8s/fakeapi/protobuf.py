"""Just enough Kubernetes protobuf to accept kubectl's typed-client writes.

kubectl's typed clients (`kubectl create namespace`, `kubectl create
configmap`) send `application/vnd.kubernetes.protobuf` bodies and accept JSON
back. This decodes the envelope (magic "k8s\\0" + runtime.Unknown) and the
few messages those commands send - Namespace, ConfigMap, Secret and the
common ObjectMeta fields - into the JSON shape. Anything else gets 415 from
the caller; the operator and kubectl's dynamic paths (apply, patch, scale,
get, wait) use JSON.
"""

MAGIC = b"k8s\x00"


class Unsupported(Exception):
    pass


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf):
    """Yield (field number, wire type, value) for a message's bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise Unsupported(f"wire type {wt}")
        yield num, wt, v


def _map_entry(b):
    k = v = ""
    for n, _, x in fields(b):
        if n == 1:
            k = x.decode()
        elif n == 2:
            v = x.decode() if isinstance(x, bytes) else x
    return k, v


def _owner_ref(b):
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    out = {}
    for n, _, x in fields(b):
        if n in names:
            out[names[n]] = x.decode()
        elif n == 6:
            out["controller"] = bool(x)
        elif n == 7:
            out["blockOwnerDeletion"] = bool(x)
    return out


def object_meta(b):
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    md = {}
    for n, _, x in fields(b):
        if n in strings and x:
            md[strings[n]] = x.decode()
        elif n in (11, 12):
            k, v = _map_entry(x)
            md.setdefault("labels" if n == 11 else "annotations", {})[k] = v
        elif n == 13:
            md.setdefault("ownerReferences", []).append(_owner_ref(x))
        elif n == 14:
            md.setdefault("finalizers", []).append(x.decode())
    return md


def _namespace(raw):
    obj = {}
    for n, _, x in fields(raw):
        if n == 1:
            obj["metadata"] = object_meta(x)
        elif n == 2:
            fins = [f.decode() for m, _, f in fields(x) if m == 1]
            if fins:
                obj["spec"] = {"finalizers": fins}
    return obj


def _configmap(raw, secret=False):
    obj = {}
    for n, _, x in fields(raw):
        if n == 1:
            obj["metadata"] = object_meta(x)
        elif (n == 2 and not secret) or (n == 3 and secret):
            k, v = _map_entry(x)
            obj.setdefault("data" if not secret else "stringData", {})[k] = v
        elif n == 3 and not secret or n == 2 and secret:
            import base64
            k, v = _map_entry(x)
            if isinstance(v, str):
                v = v.encode()
            obj.setdefault("binaryData" if not secret else "data", {})[k] = base64.b64encode(v).decode()
        elif (n == 4 and not secret) or (n == 5 and secret):
            obj["immutable"] = bool(x)
        elif n == 4 and secret:
            obj["type"] = x.decode()
    return obj


DECODERS = {("v1", "Namespace"): _namespace, ("v1", "ConfigMap"): _configmap,
            ("v1", "Secret"): lambda raw: _configmap(raw, True)}


def decode(body):
    """Return the JSON-shaped object of a protobuf request body."""
    if not body.startswith(MAGIC):
        raise Unsupported("missing k8s protobuf magic")
    api_version = kind = ""
    raw = b""
    for n, _, x in fields(body[len(MAGIC):]):
        if n == 1:
            for m, _, y in fields(x):
                if m == 1:
                    api_version = y.decode()
                elif m == 2:
                    kind = y.decode()
        elif n == 2:
            raw = x
    dec = DECODERS.get((api_version, kind))
    if dec is None:
        raise Unsupported(f"protobuf bodies of {api_version} {kind}")
    obj = dec(raw)
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj
