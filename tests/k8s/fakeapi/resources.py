"""The kinds the server serves: built-in ones and those CRDs define.

A ResourceType carries what discovery, routing and validation need: group,
version, plural, kind, scope, subresources and a schema. Built-in kinds are
validated against the official definitions extracted into tests/k8s/schema/;
custom kinds against their CRD's openAPIV3Schema. This module also holds the
per-kind behaviour a real server gets from its registry strategies: defaults
(Deployment, Service, Namespace), allocated fields (Service clusterIP),
immutable fields and cross-field checks.
"""
import copy
import itertools
import threading

from . import cel
from .patch import SchemaView
from .validation import apply_defaults, validate_name

DEF = "io.k8s.api."


class ResourceType:
    def __init__(self, group, version, plural, kind, namespaced=True, singular=None,
                 short_names=(), status=False, scale=None, definition=None, schema=None,
                 name_rule="subdomain", categories=(), printer_columns=None, builtin=True,
                 verbs=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced = namespaced
        self.singular = singular or kind.lower()
        self.short_names = list(short_names)
        self.status = status
        self.scale = scale  # {"specReplicasPath":..., "statusReplicasPath":..., "labelSelectorPath":...}
        self.definition = definition  # Swagger definition name (built-in)
        self.schema = schema  # openAPIV3Schema (custom)
        self.name_rule = name_rule
        self.categories = list(categories)
        self.printer_columns = printer_columns or []
        self.builtin = builtin
        self.verbs = verbs or ["create", "delete", "deletecollection", "get", "list", "patch",
                               "update", "watch"]

    @property
    def key(self):
        return (self.group, self.plural)

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self):
        return self.kind + "List"

    @property
    def qualified(self):
        """'deployments.apps' style name used in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def schema_view(self, defs):
        if self.definition:
            return SchemaView({"$ref": "#/definitions/" + self.definition}, defs)
        return SchemaView(self.schema or {}, defs)


SCALE_SPEC = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}

BUILTINS = [
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, short_names=["ns"],
                 status=True, definition=DEF + "core.v1.Namespace", name_rule="label",
                 verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=["cm"],
                 definition=DEF + "core.v1.ConfigMap"),
    ResourceType("", "v1", "secrets", "Secret", definition=DEF + "core.v1.Secret"),
    ResourceType("", "v1", "services", "Service", short_names=["svc"], status=True,
                 definition=DEF + "core.v1.Service", name_rule="1035", categories=["all"],
                 verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update",
                        "watch"]),
    ResourceType("", "v1", "events", "Event", short_names=["ev"], definition=DEF + "core.v1.Event"),
    # Pods exist only when the simulated kubelet is asked to make them
    # (POST /_test/kubelet {"pods": true}); see controllers.py.
    ResourceType("", "v1", "pods", "Pod", short_names=["po"], status=True,
                 definition=DEF + "core.v1.Pod", categories=["all"]),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=["sa"],
                 definition=DEF + "core.v1.ServiceAccount"),
    # RBAC objects are stored and validated, never enforced (no authorization).
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False,
                 definition=DEF + "rbac.v1.ClusterRole", name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
                 namespaced=False, definition=DEF + "rbac.v1.ClusterRoleBinding", name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role",
                 definition=DEF + "rbac.v1.Role", name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding",
                 definition=DEF + "rbac.v1.RoleBinding", name_rule="path"),
    ResourceType("apps", "v1", "deployments", "Deployment", short_names=["deploy"], status=True,
                 scale=SCALE_SPEC, definition=DEF + "apps.v1.Deployment", categories=["all"]),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=["pdb"],
                 status=True, definition=DEF + "policy.v1.PodDisruptionBudget"),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy",
                 short_names=["netpol"], definition=DEF + "networking.v1.NetworkPolicy"),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease",
                 definition=DEF + "coordination.v1.Lease"),
    ResourceType("events.k8s.io", "v1", "events", "Event", short_names=["ev"],
                 definition=DEF + "events.v1.Event"),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                 "CustomResourceDefinition", namespaced=False, short_names=["crd", "crds"],
                 status=True, definition="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                 "CustomResourceDefinition", categories=["api-extensions"]),
]


class Registry:
    """Kinds by (group, version, plural); custom kinds come and go with CRDs."""

    def __init__(self):
        self.lock = threading.RLock()
        self.types = {}
        for rt in BUILTINS:
            self.types[(rt.group, rt.version, rt.plural)] = rt
        self.crd_types = {}  # crd name -> [ResourceType]

    def find(self, group, version, plural):
        with self.lock:
            return self.types.get((group, version, plural))

    def storage_key_types(self, key):
        with self.lock:
            return [rt for rt in self.types.values() if rt.key == key]

    def group_versions(self):
        """{group: [versions]} of everything served, preferred version first."""
        with self.lock:
            out = {}
            for (g, v, _) in self.types:
                out.setdefault(g, [])
                if v not in out[g]:
                    out[g].append(v)
            return out

    def in_group_version(self, group, version):
        with self.lock:
            return [rt for (g, v, _), rt in sorted(self.types.items()) if g == group and v == version]

    def by_kind(self, group, kind):
        with self.lock:
            for rt in self.types.values():
                if rt.group == group and rt.kind == kind:
                    return rt
            return None

    def install_crd(self, crd):
        """Serve the kinds a CRD defines (replacing earlier ones)."""
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        with self.lock:
            self.remove_crd(crd["metadata"]["name"])
            made = []
            for ver in spec.get("versions", []):
                if not ver.get("served", True):
                    continue
                sub = ver.get("subresources") or {}
                scale = sub.get("scale")
                rt = ResourceType(
                    spec["group"], ver["name"], names["plural"], names["kind"],
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    singular=names.get("singular"), short_names=names.get("shortNames", []),
                    status="status" in sub, scale=scale,
                    schema=(ver.get("schema") or {}).get("openAPIV3Schema") or {},
                    categories=names.get("categories", []),
                    printer_columns=ver.get("additionalPrinterColumns"), builtin=False)
                self.types[(rt.group, rt.version, rt.plural)] = rt
                made.append(rt)
            self.crd_types[crd["metadata"]["name"]] = made
            return made

    def remove_crd(self, name):
        with self.lock:
            for rt in self.crd_types.pop(name, []):
                self.types.pop((rt.group, rt.version, rt.plural), None)


def crd_problems(crd):
    """Return (field, message) pairs for a CRD a real server would refuse."""
    out = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    g, plural = spec.get("group", ""), names.get("plural", "")
    if crd["metadata"].get("name") != f"{plural}.{g}":
        out.append(("metadata.name", f'Invalid value: "{crd["metadata"].get("name")}": must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        out.append(("spec.scope", f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        out.append(("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        out.append(("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    for i, v in enumerate(versions):
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            out.append((f"spec.versions[{i}].schema.openAPIV3Schema", "Required value: schemas are required"))
        elif schema.get("type") != "object":
            out.append((f"spec.versions[{i}].schema.openAPIV3Schema.type", 'Required value: must be object at the root'))
    return out


def crd_cel_unsupported(crd):
    """Return [(path, rule, reason)] for CEL rules this server cannot evaluate."""
    out = []

    def walk(node, path):
        if not isinstance(node, dict):
            return
        for r in node.get("x-kubernetes-validations") or []:
            try:
                cel.compile_rule(r.get("rule", ""))
            except cel.CelUnsupported as e:
                out.append((path, r.get("rule"), str(e)))
        for k, v in (node.get("properties") or {}).items():
            walk(v, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + "[*]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], path + "[*]")

    for v in (crd.get("spec") or {}).get("versions") or []:
        walk((v.get("schema") or {}).get("openAPIV3Schema"), "")
    return out


_cluster_ip = itertools.count(10)


def prepare(rt, obj, old):
    """Apply defaults and server-allocated fields before validation (in place)."""
    md = obj.setdefault("metadata", {})
    k = rt.kind
    if not rt.builtin:
        apply_defaults(obj, rt.schema or {})
        return
    if rt.group == "" and k == "Namespace":
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md.get("name")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        st = obj.setdefault("status", {})
        st.setdefault("phase", "Active")
    elif rt.group == "" and k == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            if not spec.get("clusterIP"):
                if old and old.get("spec", {}).get("clusterIP"):
                    spec["clusterIP"] = old["spec"]["clusterIP"]
                else:
                    n = next(_cluster_ip)
                    spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p:
                    p.setdefault("targetPort", p["port"])
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif rt.group == "apps" and k == "Deployment":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strat = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strat.get("type", "RollingUpdate") == "RollingUpdate":
            strat.setdefault("type", "RollingUpdate")
            strat.setdefault("rollingUpdate", {}).setdefault("maxUnavailable", "25%")
            strat["rollingUpdate"].setdefault("maxSurge", "25%")
        pod = spec.setdefault("template", {}).setdefault("spec", {})
        if isinstance(pod, dict):
            pod.setdefault("restartPolicy", "Always")
            pod.setdefault("terminationGracePeriodSeconds", 30)
            pod.setdefault("dnsPolicy", "ClusterFirst")
            pod.setdefault("securityContext", {})
            pod.setdefault("schedulerName", "default-scheduler")
            for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
                if not isinstance(c, dict):
                    continue
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("terminationMessagePolicy", "File")
                img = c.get("image", "")
                tagged = ":" in img.rsplit("/", 1)[-1] or "@" in img
                c.setdefault("imagePullPolicy", "IfNotPresent" if tagged and not img.endswith(":latest")
                             else "Always")
                c.setdefault("resources", {})
                for p in c.get("ports") or []:
                    if isinstance(p, dict):
                        p.setdefault("protocol", "TCP")
    elif rt.group == "apiextensions.k8s.io":
        spec = obj.get("spec") or {}
        names = copy.deepcopy(spec.get("names") or {})
        if names.get("kind"):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
        obj["status"] = {
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": md.get("creationTimestamp") or ""},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted",
                 "lastTransitionTime": md.get("creationTimestamp") or ""},
            ],
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        }


def _selector_matches(sel, labels):
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        val, op, vals = labels.get(e.get("key")), e.get("operator"), e.get("values") or []
        if op == "In" and val not in vals or op == "NotIn" and val in vals:
            return False
        if op == "Exists" and e.get("key") not in labels or op == "DoesNotExist" and e.get("key") in labels:
            return False
    return True


# ConfigMaps and Secrets hold at most 1 MiB of data (MaxSecretSize in the
# Kubernetes API validation).
MAX_DATA_BYTES = 1 << 20


def kind_problems(rt, obj, old):
    """Cross-field and immutability rules of built-in kinds: (field, message)."""
    out = []
    name = obj["metadata"].get("name", "")
    msg = validate_name(name, rt.name_rule) if name else None
    if msg:
        out.append(("metadata.name", msg))
    if rt.group == "apps" and rt.kind == "Deployment":
        spec = obj.get("spec") or {}
        sel = spec.get("selector")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if isinstance(sel, dict):
            if not sel.get("matchLabels") and not sel.get("matchExpressions"):
                out.append(("spec.selector", "Invalid value: empty selector is invalid for deployment"))
            elif not _selector_matches(sel, labels):
                out.append(("spec.template.metadata.labels",
                            f"Invalid value: {labels}: `selector` does not match template `labels`"))
            if old and old.get("spec", {}).get("selector") != sel:
                out.append(("spec.selector", f"Invalid value: {sel}: field is immutable"))
        if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
            out.append(("spec.template.spec.containers", "Required value"))
        if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
            out.append(("spec.replicas", f"Invalid value: {spec['replicas']}: must be greater than or equal to 0"))
    elif rt.group == "" and rt.kind == "Service":
        spec = obj.get("spec") or {}
        if spec.get("type") != "ExternalName" and not spec.get("ports") and spec.get("clusterIP") != "None":
            out.append(("spec.ports", "Required value"))
        if old and old.get("spec", {}).get("clusterIP") and spec.get("clusterIP") != old["spec"]["clusterIP"]:
            out.append(("spec.clusterIP", f'Invalid value: "{spec.get("clusterIP")}": field is immutable'))
        for i, p in enumerate(spec.get("ports") or []):
            if isinstance(p, dict) and len(spec["ports"]) > 1 and not p.get("name"):
                out.append((f"spec.ports[{i}].name", "Required value"))
    elif rt.group == "" and rt.kind in ("ConfigMap", "Secret"):
        import re
        # The API server's limit on the data of one object (values only,
        # bytes as stored: base64 decoded for binaryData and Secret data).
        data = (obj.get("data") or {}).values()
        if rt.kind == "Secret":
            total = sum(len(str(v)) * 3 // 4 for v in data)
        else:
            total = sum(len(str(v).encode()) for v in data)
        total += sum(len(str(v)) * 3 // 4 for v in (obj.get("binaryData") or {}).values())
        if total > MAX_DATA_BYTES:
            out.append(("", f"Too long: may not be more than {MAX_DATA_BYTES} bytes"))
        for k in list((obj.get("data") or {})) + list((obj.get("binaryData") or {})):
            if not re.match(r"^[-._a-zA-Z0-9]+$", k) or len(k) > 253:
                out.append((f"data[{k}]", f'Invalid value: "{k}": a valid config key must consist of '
                            "alphanumeric characters, '-', '_' or '.'"))
    elif rt.group == "apiextensions.k8s.io":
        out.extend(crd_problems(obj))
        if old:
            if old["spec"].get("group") != obj["spec"].get("group"):
                out.append(("spec.group", "Invalid value: field is immutable"))
            if old["spec"].get("scope") != obj["spec"].get("scope"):
                out.append(("spec.scope", "Invalid value: field is immutable"))
    return out
