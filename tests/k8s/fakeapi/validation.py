"""OpenAPI schema validation, shaped like the real API server's errors.

One walker serves two kinds of schema: the Swagger 2.0 definitions of the
built-in kinds (extracted into tests/k8s/schema/, resolved through $ref) and
the structural openAPIV3Schema of a CustomResourceDefinition. It reports
errors as (kind, field path, message) triples; the caller turns them into a
400 (unknown fields under strict field validation, JSON type mismatches of
built-in kinds) or a 422 Invalid Status with one cause per error.
"""
import datetime
import json
import os
import re

UNKNOWN, TYPE, REQUIRED, ENUM, INVALID, FORBIDDEN = (
    "unknown", "type", "required", "enum", "invalid", "forbidden")

# Status cause reasons the real server uses for each error kind.
CAUSE_REASON = {
    UNKNOWN: "FieldValueInvalid", TYPE: "FieldValueTypeInvalid",
    REQUIRED: "FieldValueRequired", ENUM: "FieldValueNotSupported",
    INVALID: "FieldValueInvalid", FORBIDDEN: "FieldValueForbidden",
}

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "schema", "k8s-definitions.json")


def load_definitions(path=SCHEMA_FILE):
    """Return the extracted definitions dict (name -> Swagger schema)."""
    with open(path) as f:
        return json.load(f)["definitions"]


def _fmt(v):
    return json.dumps(v) if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def _join(path, key):
    return f"{path}.{key}" if path else key


def _type_ok(value, t):
    if t == "string":
        return isinstance(value, str)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    return True


def _go_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


class Validator:
    """Walks a value against a schema.

    definitions: the $ref namespace (Swagger definitions); free_form: whether an
    object schema without properties accepts anything (true for Swagger, where
    such schemas are RawExtension-like; false for structural CRD schemas,
    where only x-kubernetes-preserve-unknown-fields does that); prune: delete
    unknown fields in place while reporting them; check_required: off for
    partial objects such as server-side apply configurations; cel: a callable
    (rule, self, old_self, path) -> error message or None, or None to skip
    x-kubernetes-validations.
    """

    def __init__(self, definitions=None, free_form=True, prune=False,
                 check_required=True, cel=None):
        self.defs = definitions or {}
        self.free_form = free_form
        self.prune = prune
        self.check_required = check_required
        self.cel = cel
        self.errors = []

    def resolve(self, schema):
        while isinstance(schema, dict) and "$ref" in schema:
            name = schema["$ref"].split("/")[-1]
            schema = self.defs[name]
            if name.endswith(".api.resource.Quantity"):
                # A Quantity also decodes from a JSON number.
                schema = dict(schema, **{"x-quantity": True})
        return schema

    def err(self, kind, path, msg):
        self.errors.append((kind, path, msg))

    def validate(self, value, schema, path="", old=None, has_old=False):
        # Swagger definitions (reached through $ref) treat an object schema
        # without properties as free-form (FieldsV1, RawExtension).
        via_ref = isinstance(schema, dict) and "$ref" in schema
        schema = self.resolve(schema)
        if schema is None:
            return
        if value is None:
            return  # null is decoded as "absent" for non-nullable fields
        t = schema.get("type")
        fmt = schema.get("format")
        int_or_string = schema.get("x-kubernetes-int-or-string") or fmt == "int-or-string"
        if int_or_string:
            if not (isinstance(value, str) or _type_ok(value, "integer")):
                self.err(TYPE, path, f"Invalid value: {_fmt(value)}: {path} in body must be of type "
                         f"integer,string: \"{_go_type(value)}\"")
                return
        elif self._is_quantity(schema) and isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        elif t and not _type_ok(value, t):
            self.err(TYPE, path, f"Invalid value: \"{_go_type(value)}\": {path} in body must be of "
                     f"type {t}: \"{_go_type(value)}\"")
            return
        if "enum" in schema and value not in schema["enum"]:
            sup = ", ".join(_fmt(e) for e in schema["enum"])
            self.err(ENUM, path, f"Unsupported value: {_fmt(value)}: supported values: {sup}")
        self._scalar_limits(value, schema, path, fmt)
        if isinstance(value, dict):
            self._object(value, schema, path, old if isinstance(old, dict) else None, has_old, via_ref)
        elif isinstance(value, list):
            self._array(value, schema, path)
        for sub in ("allOf", "anyOf", "oneOf"):
            if sub in schema:
                self._combinator(sub, value, schema[sub], path)
        if self.cel is not None:
            for rule in schema.get("x-kubernetes-validations") or []:
                is_transition = "oldSelf" in rule.get("rule", "")
                if is_transition and not has_old:
                    continue
                msg = self.cel(rule, value, old, path)
                if msg:
                    fp = rule.get("fieldPath")
                    self.err(INVALID if not rule.get("reason") == "FieldValueForbidden" else FORBIDDEN,
                             path + (fp if fp else ""), msg)

    @staticmethod
    def _is_quantity(schema):
        return bool(schema.get("x-quantity"))

    def _scalar_limits(self, value, schema, path, fmt):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if fmt == "int32" and not -2**31 <= value < 2**31:
                self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body should be a 32-bit integer")
            mn, mx = schema.get("minimum"), schema.get("maximum")
            if mn is not None:
                if schema.get("exclusiveMinimum") and not value > mn:
                    self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body should be greater than {mn}")
                elif value < mn:
                    self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body should be greater "
                             f"than or equal to {mn}")
            if mx is not None:
                if schema.get("exclusiveMaximum") and not value < mx:
                    self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body should be less than {mx}")
                elif value > mx:
                    self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body should be less "
                             f"than or equal to {mx}")
            if schema.get("multipleOf") and value % schema["multipleOf"]:
                self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body should be a multiple "
                         f"of {schema['multipleOf']}")
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body should be at least "
                         f"{schema['minLength']} chars long")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                self.err(INVALID, path, f"Too long: may not be more than {schema['maxLength']} bytes")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body should match "
                         f"'{schema['pattern']}'")
            if fmt == "date-time" and value and not _is_datetime(value):
                self.err(INVALID, path, f"Invalid value: {_fmt(value)}: {path} in body must be of type "
                         f"date-time: {_fmt(value)}")

    def _object(self, value, schema, path, old, has_old, via_ref=False):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        if self.check_required:
            for r in schema.get("required") or []:
                if value.get(r) is None:
                    self.err(REQUIRED, _join(path, r), "Required value")
        for key in ("minProperties", "maxProperties"):
            if key in schema:
                n = len(value)
                if (key == "minProperties" and n < schema[key]) or (key == "maxProperties" and n > schema[key]):
                    self.err(INVALID, path, f"Too {'few' if key == 'minProperties' else 'many'} properties")
        embedded = schema.get("x-kubernetes-embedded-resource")
        for k in list(value):
            v = value[k]
            sub = _join(path, k)
            o = old.get(k) if old else None
            ho = has_old and old is not None and k in old
            if props is not None and k in props:
                self.validate(v, props[k], sub, o, ho)
            elif isinstance(addl, dict):
                self.validate(v, addl, sub, o, ho)
            elif addl is True or preserve:
                continue
            elif embedded and k in ("apiVersion", "kind", "metadata"):
                continue
            elif props is None and addl is None and (self.free_form or via_ref):
                continue
            else:
                self.err(UNKNOWN, sub, f'unknown field "{sub}"')
                if self.prune:
                    del value[k]

    def _array(self, value, schema, path):
        items = schema.get("items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.err(INVALID, path, f"Invalid value: {len(value)}: {path} in body should have at least "
                     f"{schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.err(INVALID, path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items")
        lt = schema.get("x-kubernetes-list-type")
        if lt == "set" or schema.get("uniqueItems"):
            seen = set()
            for i, v in enumerate(value):
                k = json.dumps(v, sort_keys=True)
                if k in seen:
                    self.err("duplicate", f"{path}[{i}]", f"Duplicate value: {_fmt(v)}")
                seen.add(k)
        elif lt == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            seen = set()
            for i, v in enumerate(value):
                if isinstance(v, dict):
                    k = tuple(json.dumps(v.get(x)) for x in keys)
                    if k in seen:
                        self.err("duplicate", f"{path}[{i}]", "Duplicate value: " + _fmt(
                            {x: v.get(x) for x in keys}))
                    seen.add(k)
        if items is not None:
            for i, v in enumerate(value):
                self.validate(v, items, f"{path}[{i}]")

    def _combinator(self, kind, value, schemas, path):
        results = []
        for s in schemas:
            sub = Validator(self.defs, True, False, self.check_required, self.cel)
            sub.validate(value, s, path)
            results.append(not sub.errors)
            if kind == "allOf":
                self.errors.extend(e for e in sub.errors if e[0] != UNKNOWN)
        if kind == "anyOf" and not any(results):
            self.err(INVALID, path, f"Invalid value: {path} must validate at least one schema (anyOf)")
        if kind == "oneOf" and results.count(True) != 1:
            self.err(INVALID, path, f"Invalid value: {path} must validate one and only one schema (oneOf)")


_DT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _is_datetime(s):
    if not _DT.match(s):
        return False
    try:
        datetime.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        return True
    except ValueError:
        return False


# Names: metadata.name rules the real server enforces per kind.
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def validate_name(name, rule):
    """Return an error message for metadata.name under rule, or None."""
    if rule == "label":
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            return (f"Invalid value: {_fmt(name)}: a lowercase RFC 1123 label must consist of lower case "
                    "alphanumeric characters or '-', and must start and end with an alphanumeric character")
    elif rule == "1035":
        if len(name) > 63 or not DNS1035_LABEL.match(name):
            return (f"Invalid value: {_fmt(name)}: a DNS-1035 label must consist of lower case alphanumeric "
                    "characters or '-', start with an alphabetic character, and end with an alphanumeric character")
    elif rule == "path":
        # RBAC kinds: any name that is a valid path segment (system:foo is fine).
        if name in (".", "..") or "/" in name or "%" in name:
            return f"Invalid value: {_fmt(name)}: may not contain '/' or '%' and may not be '.' or '..'"
    elif len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        return (f"Invalid value: {_fmt(name)}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")
    return None


def validate_labels(labels, path="metadata.labels"):
    """Return (field, message) pairs for invalid label keys or values."""
    out = []
    for k, v in (labels or {}).items():
        name = k.split("/", 1)[-1]
        prefix = k.split("/", 1)[0] if "/" in k else None
        if len(name) > 63 or not LABEL_NAME.match(name) or (
                prefix is not None and not DNS1123_SUBDOMAIN.match(prefix)):
            out.append((path, f"Invalid value: {_fmt(k)}: name part must consist of alphanumeric characters, "
                        "'-', '_' or '.', and must start and end with an alphanumeric character"))
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            out.append((f"{path}.{k}" if path else k,
                        f"Invalid value: {_fmt(v)}: a valid label must be an empty string or consist of "
                        "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                        "alphanumeric character"))
    return out


def apply_defaults(value, schema):
    """Set structural-schema `default`s of absent fields, in place (CRDs)."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for k, sub in (schema.get("properties") or {}).items():
            if k not in value and isinstance(sub, dict) and "default" in sub:
                value[k] = json.loads(json.dumps(sub["default"]))
            if k in value:
                apply_defaults(value[k], sub)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for k, v in value.items():
                if k not in (schema.get("properties") or {}):
                    apply_defaults(v, addl)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for v in value:
            apply_defaults(v, schema["items"])
