"""REST semantics of the API server: create, get, list, update, patch, apply,
delete, and the status and scale subresources.

This is where the rules clients rely on live: resourceVersion preconditions
(409), create conflicts (409), generation bumped only by spec changes,
status/spec separation, strict field validation (400) and schema validation
(422, with causes), server-side apply ownership, finalizers and deletion
options. Requests arrive parsed (Request); answers are (code, body, warnings)
or an ApiError carrying a Status shaped like the real API server's.
"""
import base64
import copy
import json
import random
import string
import time

from . import cel, patch, protobuf, ssa
from .resources import kind_problems, prepare
from .store import now_rfc3339
from .validation import (ENUM, FORBIDDEN, INVALID, REQUIRED, TYPE, UNKNOWN, CAUSE_REASON, Validator,
                         validate_labels)

OPERATOR = "observatory-operator"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or []

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            s["details"] = self.details
        return s


def not_found(rt, name):
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def conflict(rt, name, why="the object has been modified; please apply your changes to the latest "
                           "version and try again"):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def invalid(rt, name, errors):
    causes = [{"reason": CAUSE_REASON.get(k, "FieldValueInvalid"), "message": m, "field": f}
              for k, f, m in errors]
    text = ", ".join(f"{f}: {m}" if f else m for _, f, m in errors)
    if len(errors) > 1:
        text = "[" + text + "]"
    return ApiError(422, "Invalid", f'{rt.kind}{"." + rt.group if rt.group else ""} "{name}" is invalid: {text}',
                    {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes})


class Request:
    """A parsed API request. query holds the last value of each parameter."""

    def __init__(self, method, rt, namespace, name, sub, query, body, content_type, user_agent):
        self.method, self.rt, self.ns, self.name, self.sub = method, rt, namespace, name, sub
        self.query, self.body, self.content_type, self.user_agent = query, body, content_type, user_agent

    def q(self, key, default=None):
        return self.query.get(key, default)

    @property
    def dry_run(self):
        return self.q("dryRun") == "All"

    @property
    def manager(self):
        return self.q("fieldManager") or (self.user_agent or "unknown").split("/")[0] or "unknown"

    @property
    def from_operator(self):
        return OPERATOR in (self.user_agent or "") or self.q("fieldManager") == OPERATOR


def _strip_meta_for_compare(obj):
    o = copy.deepcopy(obj)
    md = o.get("metadata", {})
    for k in ("managedFields", "resourceVersion"):
        md.pop(k, None)
    return o


def _without(obj, *keys):
    return {k: v for k, v in obj.items() if k not in keys}


def get_field(obj, dotted):
    cur = obj
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def set_field(obj, dotted, value):
    parts = [p for p in dotted.split(".") if p]
    cur = obj
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


class Api:
    def __init__(self, store, registry, defs, default_validation="Strict", violations=None):
        self.store, self.registry, self.defs = store, registry, defs
        self.default_validation = default_validation
        self.violations = violations  # callable(req, obj, errors) or None

    # -- helpers -----------------------------------------------------------
    def tracks_generation(self, rt):
        return not rt.builtin or rt.kind in ("Deployment", "CustomResourceDefinition")

    def schema_for(self, rt):
        """The schema node an object of rt is validated against."""
        if rt.definition:
            return {"$ref": "#/definitions/" + rt.definition}
        s = copy.deepcopy(rt.schema or {"type": "object"})
        props = s.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {"$ref": "#/definitions/" + OBJECT_META}
        return s

    def _cel(self, rule, value, old, path):
        try:
            return cel.check_rule(rule, value, old, path, old is not None)
        except cel.CelUnsupported:
            return None  # reported once when the CRD was written

    def validate(self, req, rt, obj, old=None, prune=True):
        """Validate obj in place (pruning unknown fields unless strict).

        Returns warning strings; raises 400/422 ApiError.
        """
        mode = req.q("fieldValidation") or self.default_validation
        v = Validator(self.defs, free_form=rt.builtin, prune=(mode != "Strict" and prune),
                      cel=None if rt.builtin else self._cel)
        v.validate(obj, self.schema_for(rt), "", old, old is not None)
        unknown = [e for e in v.errors if e[0] == UNKNOWN]
        warnings = []
        if unknown and mode == "Strict":
            detail = ", ".join(m for _, _, m in unknown)
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                              f"strict decoding error: {detail}")
        if unknown and mode == "Warn":
            warnings = [m for _, _, m in unknown]
        typ = [e for e in v.errors if e[0] == TYPE]
        if typ and rt.builtin:
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                              + "; ".join(f"{f}: {m}" for _, f, m in typ))
        errors = [e for e in v.errors if e[0] != UNKNOWN]
        errors += [(INVALID, f, m) for f, m in validate_labels(obj.get("metadata", {}).get("labels"))]
        errors += [(REQUIRED if m.startswith("Required") else INVALID, f, m)
                   for f, m in kind_problems(rt, obj, old)]
        if errors:
            raise invalid(rt, obj.get("metadata", {}).get("name", ""), errors)
        return warnings

    def audit(self, req, rt, obj):
        """Check an object the operator wrote against the official schema, strictly."""
        if not self.violations or not req.from_operator:
            return
        v = Validator(self.defs, free_form=rt.builtin, prune=False, cel=None if rt.builtin else self._cel)
        v.validate(copy.deepcopy(obj), self.schema_for(rt))
        if v.errors:
            self.violations(req, obj, [f"{f}: {m}" if f else m for _, f, m in v.errors])

    def present(self, rt, obj):
        if not rt.builtin:
            obj["apiVersion"] = rt.api_version
        else:
            obj.setdefault("apiVersion", rt.api_version)
            obj.setdefault("kind", rt.kind)
        return obj

    def _decode(self, req):
        if (req.content_type or "").startswith("application/vnd.kubernetes.protobuf"):
            try:
                return protobuf.decode(req.body)
            except (protobuf.Unsupported, IndexError, UnicodeDecodeError) as e:
                raise ApiError(415, "UnsupportedMediaType", f"this test API server decodes only a few "
                               f"protobuf kinds; send JSON ({e})")
        try:
            body = json.loads(req.body or b"null")
        except ValueError as e:
            if req.content_type and "yaml" in req.content_type:
                raise ApiError(415, "UnsupportedMediaType",
                               "this test API server accepts apply configurations as JSON only "
                               f"(JSON is valid YAML): {e}")
            raise bad_request(f"couldn't get version/kind; json parse error: {e}")
        return body

    def _check_identity(self, req, rt, obj, need_name=True):
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was in an unknown format")
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if av is None or kind is None:
            raise bad_request("Object 'Kind' is missing in '" + json.dumps(obj)[:200] + "'")
        if kind != rt.kind or av.split("/")[0] != (rt.group or av.split("/")[0]) or (
                rt.group == "" and "/" in av):
            raise bad_request(f"the API version in the data ({av}) does not match the expected API "
                              f"version ({rt.api_version})")
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise bad_request("metadata must be an object")
        if req.ns and md.get("namespace") and md["namespace"] != req.ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent "
                              "on the request")
        if req.name and md.get("name") and md["name"] != req.name:
            raise bad_request(f"the name of the object ({md['name']}) does not match the name on the URL "
                              f"({req.name})")
        if req.name:
            md["name"] = req.name
        if rt.namespaced:
            md["namespace"] = req.ns
        else:
            md.pop("namespace", None)

    def _check_namespace(self, rt, ns):
        if not rt.namespaced:
            return
        nsobj = self.store.get(("", "namespaces"), None, ns)
        if nsobj is None:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                           {"name": ns, "kind": "namespaces"})
        if nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"{rt.plural} \"{'' }\" is forbidden: unable to create new "
                           f"content in namespace {ns} because it is being terminated")

    def _key(self, rt):
        return rt.key

    def _current(self, req):
        obj = self.store.get(req.rt.key, req.ns if req.rt.namespaced else None, req.name)
        if obj is None:
            raise not_found(req.rt, req.name)
        return obj

    # -- reads -------------------------------------------------------------
    def get(self, req):
        obj = self._current(req)
        if req.sub == "scale":
            return 200, self.to_scale(req.rt, obj), []
        return 200, self.present(req.rt, obj), []

    def list(self, req, selector):
        rt = req.rt
        rv, items = self.store.list(rt.key, req.ns if rt.namespaced else None)
        rvq = req.q("resourceVersion")
        if rvq not in (None, "", "0"):
            try:
                n = int(rvq)
            except ValueError:
                raise bad_request(f"invalid resource version: {rvq}")
            if n > rv:
                raise ApiError(504, "Timeout", f"Too large resource version: {n}, current: {rv}",
                               {"causes": [{"reason": "ResourceVersionTooLarge",
                                            "message": "Too large resource version"}], "retryAfterSeconds": 1})
            if req.q("resourceVersionMatch") == "Exact" and n != rv and n < self.store.compacted_rv:
                raise ApiError(410, "Expired", f"too old resource version: {n} ({self.store.compacted_rv})")
        items = [o for o in items if selector(o)]
        start = None
        if req.q("continue"):
            try:
                tok = json.loads(base64.b64decode(req.q("continue")))
                start, crv = tok["start"], tok["rv"]
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid")
            if crv < self.store.compacted_rv:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                               "consistent list result. You can start a new list without the continue "
                               "parameter.", {"causes": [{"reason": "ResourceVersionTooOld"}]})
            items = [o for o in items if [o["metadata"].get("namespace") or "", o["metadata"]["name"]] > start]
        meta = {"resourceVersion": str(rv)}
        limit = int(req.q("limit") or 0)
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            items = items[:limit]
            meta["continue"] = base64.b64encode(json.dumps(
                {"rv": rv, "start": [last.get("namespace") or "", last["name"]]}).encode()).decode()
            meta["remainingItemCount"] = 0
        for o in items:
            self.present(rt, o)
            if rt.builtin:
                o.pop("apiVersion", None)
                o.pop("kind", None)
        return 200, {"apiVersion": rt.api_version, "kind": rt.list_kind, "metadata": meta,
                     "items": items}, []

    # -- scale -------------------------------------------------------------
    def to_scale(self, rt, obj):
        sc = rt.scale or {}
        md = obj["metadata"]
        spec_r = get_field(obj, sc.get("specReplicasPath", ".spec.replicas"))
        stat_r = get_field(obj, sc.get("statusReplicasPath", ".status.replicas"))
        status = {"replicas": stat_r or 0}
        if rt.builtin and rt.kind == "Deployment":
            ml = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(ml.items()))
        elif sc.get("labelSelectorPath"):
            sel = get_field(obj, sc["labelSelectorPath"])
            if sel:
                status["selector"] = sel
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": md["name"], "namespace": md.get("namespace"), "uid": md["uid"],
                             "resourceVersion": md["resourceVersion"],
                             "creationTimestamp": md["creationTimestamp"]},
                "spec": {"replicas": spec_r or 0}, "status": status}

    def _write_scale(self, req, cur, scale):
        rt = req.rt
        if not isinstance(scale, dict) or not isinstance(scale.get("spec", {}), dict):
            raise bad_request("invalid Scale body")
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != cur["metadata"]["resourceVersion"]:
            raise conflict(rt, req.name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{req.name}" is invalid: spec.replicas: '
                           f"Invalid value: {replicas}: must be greater than or equal to 0",
                           {"name": req.name, "group": "autoscaling", "kind": "Scale", "causes": [
                               {"reason": "FieldValueInvalid", "field": "spec.replicas",
                                "message": f"Invalid value: {replicas}: must be greater than or equal to 0"}]})
        new = copy.deepcopy(cur)
        set_field(new, (rt.scale or {}).get("specReplicasPath", ".spec.replicas"), replicas)
        out, warn = self._store_update(req, cur, new, subresource="scale")
        return 200, self.to_scale(rt, out), warn

    # -- writes ------------------------------------------------------------
    def create(self, req):
        rt = req.rt
        obj = self._decode(req)
        self._check_identity(req, rt, obj)
        md = obj["metadata"]
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + "".join(random.choices(string.ascii_lowercase + "2456789", k=5))
            else:
                raise invalid(rt, "", [(REQUIRED, "metadata.name", "Required value: name or generateName is required")])
        if md.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        self._check_namespace(rt, req.ns)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "managedFields", "generation", "selfLink"):
            md.pop(k, None)
        if rt.status:
            obj.pop("status", None)
        prepare(rt, obj, None)
        as_sent = copy.deepcopy(obj)
        warnings = self.validate(req, rt, obj)
        self.audit(req, rt, as_sent)
        if self.store.get(rt.key, md.get("namespace"), md["name"]) is not None:
            raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{md["name"]}" already exists',
                           {"name": md["name"], "group": rt.group, "kind": rt.plural})
        if self.tracks_generation(rt):
            md["generation"] = 1
        ssa.record_update(None, obj, req.manager, rt.api_version, rt.schema_view(self.defs), now_rfc3339())
        if req.dry_run:
            md.setdefault("uid", "dry-run")
            md["creationTimestamp"] = now_rfc3339()
            return 201, self.present(rt, obj), warnings
        with self.store.lock:
            if self.store.get(rt.key, md.get("namespace"), md["name"]) is not None:
                raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{md["name"]}" already exists',
                               {"name": md["name"], "group": rt.group, "kind": rt.plural})
            out = self.store.create(rt.key, obj)
        self.on_written(rt, out, None)
        return 201, self.present(rt, out), warnings

    def update(self, req):
        rt = req.rt
        body = self._decode(req)
        cur = self._current(req)
        if req.sub == "scale":
            return self._write_scale(req, cur, body)
        self._check_identity(req, rt, body)
        rv = body["metadata"].get("resourceVersion")
        if rv and rv != cur["metadata"]["resourceVersion"]:
            raise conflict(rt, req.name)
        out, warn = self._store_update(req, cur, body, subresource=req.sub)
        return 200, self.present(rt, out), warn

    def patch(self, req):
        rt = req.rt
        ct = (req.content_type or "").split(";")[0].strip()
        body = self._decode(req)
        if ct == "application/apply-patch+yaml":
            return self.apply(req, body)
        cur = self._current(req)
        base = self.to_scale(rt, cur) if req.sub == "scale" else self.present(rt, copy.deepcopy(cur))
        try:
            if ct == "application/merge-patch+json":
                if not isinstance(body, dict):
                    raise bad_request("merge patch must be a JSON object")
                new = patch.merge_patch(base, body)
            elif ct == "application/strategic-merge-patch+json":
                if not rt.builtin:
                    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown "
                                   "format - accepted media types include: application/json-patch+json, "
                                   "application/merge-patch+json, application/apply-patch+yaml")
                view = rt.schema_view(self.defs) if req.sub != "scale" else None
                new = patch.strategic_merge_patch(base, body, view)
            elif ct == "application/json-patch+json":
                new = patch.json_patch(base, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                               f"format - accepted media types include: application/json-patch+json, "
                               f"application/merge-patch+json, application/apply-patch+yaml")
        except patch.PatchError as e:
            raise ApiError(422, "Invalid", str(e))
        if req.sub == "scale":
            return self._write_scale(req, cur, new)
        if not isinstance(new, dict):
            raise bad_request("patch produced a non-object")
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != cur["metadata"]["resourceVersion"]:
            raise conflict(rt, req.name)
        new.setdefault("metadata", {})
        new["metadata"]["name"] = req.name
        out, warn = self._store_update(req, cur, new, subresource=req.sub)
        return 200, self.present(rt, out), warn

    def apply(self, req, cfg):
        rt = req.rt
        if not req.q("fieldManager"):
            raise bad_request("PATCH is not supported: fieldManager is required for apply requests")
        if req.sub == "scale":
            raise ApiError(415, "UnsupportedMediaType", "apply to the scale subresource is not implemented "
                           "by this test server")
        self._check_identity(req, rt, cfg)
        force = req.q("force") in ("true", "1")
        now = now_rfc3339()
        cur = self.store.get(rt.key, req.ns if rt.namespaced else None, req.name)
        view = rt.schema_view(self.defs)
        # Validate the configuration itself first, so unknown fields are reported as sent.
        v = Validator(self.defs, free_form=rt.builtin, prune=False, check_required=False)
        v.validate(copy.deepcopy(cfg), self.schema_for(rt))
        unknown = [m for k, _, m in v.errors if k == UNKNOWN]
        mode = req.q("fieldValidation") or self.default_validation
        if unknown and mode == "Strict":
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                              f"strict decoding error: {', '.join(unknown)}")
        rv = cfg["metadata"].get("resourceVersion")
        if cur is None:
            if rv:
                raise not_found(rt, req.name)
            self._check_namespace(rt, req.ns)
            merged = ssa.apply(None, cfg, req.manager, rt.api_version, view, force, now)
            req2 = Request("POST", rt, req.ns, req.name, None, req.query,
                           json.dumps(_strip_managed(merged)).encode(), "application/json", req.user_agent)
            mf = merged["metadata"].get("managedFields")
            code, out, warn = self._create_with_fields(req2, mf)
            return code, out, warn
        if rv and rv != cur["metadata"]["resourceVersion"]:
            raise conflict(rt, req.name)
        try:
            merged = ssa.apply(cur, cfg, req.manager, rt.api_version, view, force, now,
                               subresource=req.sub)
        except ssa.Conflict as e:
            causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using '
                       f"{rt.api_version}", "field": ssa.path_str(p)} for m, p in e.conflicts]
            raise ApiError(409, "Conflict", str(e), {"causes": causes})
        out, warn = self._store_update(req, cur, merged, subresource=req.sub,
                                       managed=merged["metadata"].get("managedFields"))
        return 200, self.present(rt, out), warn

    def _create_with_fields(self, req, managed):
        code, out, warn = self.create(req)
        if managed and not req.dry_run:
            with self.store.lock:
                obj = self.store.get(req.rt.key, out["metadata"].get("namespace"), out["metadata"]["name"])
                obj["metadata"]["managedFields"] = managed
                # Rewriting ownership is bookkeeping, not a change: keep the resourceVersion.
                self.store.objects[req.rt.key][(obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
            out["metadata"]["managedFields"] = managed
        return code, out, warn

    def _store_update(self, req, cur, new, subresource=None, managed=None):
        """Turn a requested new state into a stored one (see module doc)."""
        rt = req.rt
        new = copy.deepcopy(new)
        md, cmd = new.setdefault("metadata", {}), cur["metadata"]
        if subresource == "status":
            merged = copy.deepcopy(cur)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
            md = new["metadata"]
        elif rt.status and subresource != "scale":
            if "status" in cur:
                new["status"] = copy.deepcopy(cur["status"])
            else:
                new.pop("status", None)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in cmd:
                md[k] = cmd[k]
            else:
                md.pop(k, None)
        md["name"], md["resourceVersion"] = cmd["name"], cmd["resourceVersion"]
        if rt.namespaced:
            md["namespace"] = cmd["namespace"]
        new["apiVersion"], new["kind"] = cur.get("apiVersion", rt.api_version), cur.get("kind", rt.kind)
        if cmd.get("deletionTimestamp"):
            added = set(md.get("finalizers") or []) - set(cmd.get("finalizers") or [])
            if added:
                raise invalid(rt, req.name, [(FORBIDDEN, "metadata.finalizers",
                                              "Forbidden: no new finalizers can be added if the object is "
                                              "being deleted, found new finalizers " + json.dumps(sorted(added)))])
        prepare(rt, new, cur)
        as_sent = copy.deepcopy(new)
        warnings = self.validate(req, rt, new, cur)
        self.audit(req, rt, as_sent)
        if self.tracks_generation(rt):
            ignore = ("metadata", "status") if rt.status else ("metadata",)
            if _without(new, *ignore) != _without(cur, *ignore):
                md["generation"] = cmd.get("generation", 1) + 1
        if managed is not None:
            md["managedFields"] = managed
        else:
            md["managedFields"] = cmd.get("managedFields")
            ssa.record_update(cur, new, req.manager, rt.api_version, rt.schema_view(self.defs), now_rfc3339(),
                              "status" if subresource == "status" else None)
        if not md.get("managedFields"):
            md.pop("managedFields", None)
        if _strip_meta_for_compare(new) == _strip_meta_for_compare(cur):
            return cur, warnings  # a no-op write stores nothing and sends no event
        if req.dry_run:
            return new, warnings
        with self.store.lock:
            latest = self.store.get(rt.key, cmd.get("namespace"), cmd["name"])
            if latest is None:
                raise not_found(rt, req.name)
            if latest["metadata"]["resourceVersion"] != cmd["resourceVersion"]:
                raise conflict(rt, req.name)
            if md.get("deletionTimestamp") and not md.get("finalizers") and not (
                    rt.kind == "Namespace" and rt.builtin):
                out = self.store.remove(rt.key, cmd.get("namespace"), cmd["name"])
                self.on_written(rt, None, cur)
                return out, warnings
            out = self.store.update(rt.key, new)
        self.on_written(rt, out, cur)
        return out, warnings

    # -- delete ------------------------------------------------------------
    def delete(self, req):
        rt = req.rt
        opts = {}
        if req.body and req.body.strip():
            try:
                opts = json.loads(req.body)
            except ValueError:
                raise bad_request("invalid DeleteOptions body")
        policy = opts.get("propagationPolicy") or req.q("propagationPolicy")
        if policy is None and opts.get("orphanDependents") is not None:
            policy = "Orphan" if opts["orphanDependents"] else "Background"
        pre = opts.get("preconditions") or {}
        cur = self._current(req)
        if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
            raise conflict(rt, req.name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                           f"object meta: {cur['metadata']['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            raise conflict(rt, req.name, "Precondition failed: ResourceVersion in precondition: "
                           f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                           f"{cur['metadata']['resourceVersion']}")
        if opts.get("dryRun") == ["All"] or req.dry_run:
            return 200, self.present(rt, cur), []
        return self.delete_object(rt, cur, policy)

    def delete_object(self, rt, cur, policy=None):
        """Delete cur now, or mark it deleting if finalizers (or the namespace
        finalizer) hold it. Returns (code, body, warnings)."""
        md = cur["metadata"]
        if md.get("deletionTimestamp"):
            return 200, self.present(rt, cur), []
        fins = list(md.get("finalizers") or [])
        if policy == "Orphan":
            self.orphan_dependents(md["uid"])
        elif policy == "Foreground" and self.dependents(md["uid"]) and "foregroundDeletion" not in fins:
            fins.append("foregroundDeletion")
        is_ns = rt.builtin and rt.kind == "Namespace"
        with self.store.lock:
            latest = self.store.get(rt.key, md.get("namespace"), md["name"])
            if latest is None:
                raise not_found(rt, md["name"])
            if fins or is_ns:
                latest["metadata"]["deletionTimestamp"] = now_rfc3339()
                latest["metadata"]["deletionGracePeriodSeconds"] = 0
                if fins:
                    latest["metadata"]["finalizers"] = fins
                if latest["metadata"].get("generation"):
                    latest["metadata"]["generation"] += 1
                if is_ns:
                    latest.setdefault("status", {})["phase"] = "Terminating"
                out = self.store.update(rt.key, latest)
                return 200, self.present(rt, out), []
            out = self.store.remove(rt.key, md.get("namespace"), md["name"])
        self.on_written(rt, None, cur)
        if rt.builtin:
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": md["name"], "group": rt.group, "kind": rt.plural,
                                     "uid": md["uid"]}}, []
        return 200, self.present(rt, out), []

    def dependents(self, uid):
        return [(k, o) for k, o in self.store.all_objects()
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]

    def orphan_dependents(self, uid):
        for key, o in self.dependents(uid):
            with self.store.lock:
                latest = self.store.get(key, o["metadata"].get("namespace"), o["metadata"]["name"])
                if latest is None:
                    continue
                refs = [r for r in latest["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                if refs:
                    latest["metadata"]["ownerReferences"] = refs
                else:
                    latest["metadata"].pop("ownerReferences", None)
                self.store.update(key, latest)

    def on_written(self, rt, new, old):
        """Hook for side effects of a committed write (CRD install/removal)."""
        if rt.builtin and rt.kind == "CustomResourceDefinition":
            if new is not None:
                self.registry.install_crd(new)
            elif old is not None:
                name = old["metadata"]["name"]
                for t in self.registry.crd_types.get(name, [])[:1]:
                    for ns_name in list(self.store.objects[t.key]):
                        self.store.remove(t.key, *ns_name)
                self.registry.remove_crd(name)


def _strip_managed(obj):
    o = copy.deepcopy(obj)
    o.get("metadata", {}).pop("managedFields", None)
    return o


def now_monotonic():
    return time.monotonic()
