"""HTTP front end: routing, content negotiation, watch streams, the test
control endpoints (/_test/...), write recording and fault injection.

HTTP/1.1 on 127.0.0.1 with keep-alive; watches are chunked responses of
newline-delimited JSON events. See tests/k8s/README.md for the endpoints.
"""
import http.server
import json
import queue
import re
import socket
import threading
import time
import urllib.parse

from . import discovery
from .api import Api, ApiError, Request
from .controllers import Controllers
from .faults import Faults
from .resources import Registry, crd_cel_unsupported
from .store import Store, now_rfc3339
from .validation import load_definitions


# -- selectors -----------------------------------------------------------------

def _split_terms(s):
    terms, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur.strip())
    return terms


def label_selector(s):
    """Compile a label selector string into a predicate over a labels dict."""
    preds = []
    for t in _split_terms(s or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", t)
        if m:
            k, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            preds.append(lambda l, k=k, op=op, vals=vals: (l.get(k) in vals) if op == "in"
                         else (l.get(k) not in vals))
            continue
        m = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(\S*)", t)
        if m:
            k, op, v = m.groups()
            preds.append(lambda l, k=k, op=op, v=v: (l.get(k) == v) if op != "!=" else (l.get(k) != v))
            continue
        m = re.fullmatch(r"(!?)\s*([^!=\s]+)", t)
        if m:
            neg, k = m.groups()
            preds.append(lambda l, k=k, neg=neg: (k in l) != bool(neg))
            continue
        raise ApiError(400, "BadRequest", f"unable to parse requirement: {t!r}")
    return lambda labels: all(p(labels or {}) for p in preds)


def field_selector(s):
    preds = []
    for t in _split_terms(s or ""):
        m = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(.*)", t)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {t!r}; can't understand {t!r}")
        path, op, v = m.groups()

        def get(o, path=path):
            cur = o
            for p in path.split("."):
                cur = cur.get(p) if isinstance(cur, dict) else None
            return "" if cur is None else str(cur)
        preds.append(lambda o, get=get, op=op, v=v: (get(o) == v) if op != "!=" else (get(o) != v))
    return lambda o: all(p(o) for p in preds)


def make_selector(query):
    ls = label_selector(query.get("labelSelector"))
    fs = field_selector(query.get("fieldSelector"))
    return lambda o: ls(o.get("metadata", {}).get("labels")) and fs(o)


# -- the server ------------------------------------------------------------------

class _HttpServer(http.server.ThreadingHTTPServer):
    # socketserver's default backlog of 5 refuses connections while a large
    # object is being written to several watchers; a real server's is large.
    request_queue_size = 128


class TestApiServer:
    """Everything one server instance owns; start() / stop() bracket its life."""

    def __init__(self, port=0, history_size=1000, bookmark_interval=1.0, ready_delay=0.3,
                 record_path=None, default_validation="Strict", verbose=False):
        self.defs = load_definitions()
        self.store = Store(history_size)
        self.registry = Registry()
        self.faults = Faults()
        self.violations = []
        self.notes = []
        self.writes = []
        self.lock = threading.Lock()
        self.record_path = record_path
        self.record_file = open(record_path, "a") if record_path else None
        self.api = Api(self.store, self.registry, self.defs, default_validation, self._violation)
        self.controllers = Controllers(self.store, self.registry, self.api, ready_delay=ready_delay)
        self.bookmark_interval = bookmark_interval
        self.verbose = verbose
        self.stopping = threading.Event()
        handler = type("Handler", (Handler,), {"srv": self})
        self.httpd = _HttpServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="httpd", daemon=True)
        for ns in ("default", "kube-system", "kube-public"):
            self.store.create(("", "namespaces"), {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    def start(self):
        self.thread.start()
        self.controllers.start()
        return self

    def stop(self):
        self.stopping.set()
        self.store.close_watches()
        self.controllers.shutdown()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.record_file:
            self.record_file.close()

    def _violation(self, req, obj, errors):
        md = obj.get("metadata", {})
        v = {"time": now_rfc3339(), "method": req.method, "kind": req.rt.kind,
             "apiVersion": req.rt.api_version, "namespace": md.get("namespace"), "name": md.get("name"),
             "subresource": req.sub, "userAgent": req.user_agent, "fieldManager": req.q("fieldManager"),
             "errors": errors}
        with self.lock:
            self.violations.append(v)

    def record(self, entry):
        with self.lock:
            self.writes.append(entry)
            if len(self.writes) > 10000:
                del self.writes[:1000]
            if self.record_file:
                self.record_file.write(json.dumps(entry, sort_keys=True) + "\n")
                self.record_file.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as Go's net/http (hence a real API server) sets it: without
    # it the body, written after the headers, waits for the client's delayed
    # ACK - 40 ms per request on Linux, which a keep-alive client such as
    # libcurl pays on every call.
    disable_nagle_algorithm = True
    srv = None  # set on the subclass made per server

    def log_message(self, fmt, *args):
        if self.srv.verbose:
            super().log_message(fmt, *args)

    # -- plumbing ----------------------------------------------------------------
    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int(self.rfile.readline().strip().split(b";")[0], 16)
                if n == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_json(self, code, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return code

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_HEAD(self):
        self.dispatch("HEAD")

    # -- dispatch ------------------------------------------------------------------
    def dispatch(self, method):
        srv = self.srv
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        body = self._body()
        if path.startswith("/_test"):
            return self.control(method, path, body)
        rule = srv.faults.take({"drop", "status", "delay"}, method, path)
        if rule is not None:
            if rule.action == "drop":
                return self.drop()
            if rule.action == "delay":
                time.sleep(rule.seconds)
            else:
                hdrs = []
                details = None
                if rule.retry_after is not None:
                    hdrs.append(("Retry-After", str(rule.retry_after)))
                    details = {"retryAfterSeconds": int(rule.retry_after)}
                reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                          504: "Timeout", 409: "Conflict"}.get(rule.code, "InternalError")
                err = ApiError(rule.code, reason, rule.message or f"injected fault: {rule.code}", details)
                return self.send_json(rule.code, err.status(), hdrs)
        code, entry = 500, None
        is_write = method in ("POST", "PUT", "PATCH", "DELETE")
        if is_write:
            entry = {"time": now_rfc3339(), "method": method, "path": path, "query": query,
                     "userAgent": self.headers.get("User-Agent"),
                     "contentType": self.headers.get("Content-Type"),
                     "fieldManager": query.get("fieldManager")}
            try:
                entry["body"] = json.loads(body) if body else None
            except ValueError:
                entry["body"] = body.decode("utf-8", "replace")
        try:
            code = self.route(method, path, query, body)
        except ApiError as e:
            code = self.send_json(e.code, e.status(), e.headers)
            entry and entry.update(error=e.status())
            self._operator_rejected(method, path, query, e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug here must not look like a network error
            import traceback
            traceback.print_exc()
            code = self.send_json(500, ApiError(500, "InternalError", f"test apiserver bug: {e!r}").status())
        if entry is not None:
            entry["status"] = code
            srv.record(entry)

    def _operator_rejected(self, method, path, query, e):
        ua = self.headers.get("User-Agent") or ""
        if e.code in (400, 422) and ("observatory-operator" in ua
                                      or query.get("fieldManager") == "observatory-operator"):
            with self.srv.lock:
                self.srv.violations.append({"time": now_rfc3339(), "method": method, "path": path,
                                            "userAgent": ua, "fieldManager": query.get("fieldManager"),
                                            "rejected": e.code, "errors": [e.message]})

    def route(self, method, path, query, body):
        srv = self.srv
        if path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(data)
            return 200
        if path == "/version":
            return self.send_json(200, discovery.VERSION)
        if path == "/api":
            return self.send_json(200, discovery.api_versions(f"127.0.0.1:{srv.port}"))
        if path == "/apis":
            return self.send_json(200, discovery.api_group_list(srv.registry))
        if path == "/openapi/v3":
            return self.send_json(200, discovery.openapi_index(srv.registry, srv.defs))
        if path.startswith("/openapi/v3/"):
            parts = path[len("/openapi/v3/"):].split("/")
            g, v = ("", parts[1]) if parts[0] == "api" and len(parts) == 2 else (
                (parts[1], parts[2]) if parts[0] == "apis" and len(parts) == 3 else (None, None))
            doc = discovery.openapi_gv(srv.registry, srv.defs, g, v) if v else None
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self.send_json(200, doc)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, segs = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                g = discovery.api_group(srv.registry, parts[1])
                if g is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return self.send_json(200, g)
            group, version, segs = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not segs:
            rl = discovery.resource_list(srv.registry, group, version)
            if rl is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self.send_json(200, rl)
        if segs[0] == "watch":
            segs = segs[1:]
            query["watch"] = "true"
        ns = None
        if segs[0] == "namespaces" and len(segs) >= 3 and segs[2] not in ("status", "finalize"):
            ns, segs = segs[1], segs[2:]
        plural, name, sub = segs[0], segs[1] if len(segs) > 1 else None, segs[2] if len(segs) > 2 else None
        rt = srv.registry.find(group, version, plural)
        if rt is None or len(segs) > 3 or (ns is not None and not rt.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub not in (None, "status", "scale") or (sub == "status" and not rt.status) or (
                sub == "scale" and not rt.scale):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced and name is not None and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        req = Request(method, rt, ns, name, sub, query, body, self.headers.get("Content-Type"),
                      self.headers.get("User-Agent"))
        api = srv.api
        if name is None:
            if method == "GET" and query.get("watch") in ("1", "true"):
                return self.watch(req)
            if method in ("GET", "HEAD"):
                code, out, _ = api.list(req, make_selector(query))
                if "as=Table" in (self.headers.get("Accept") or ""):
                    out = discovery.table(rt, out["items"], out["metadata"])
                return self.send_json(code, out)
            if method == "POST":
                code, out, warn = api.create(req)
                self._after_crd_write(rt, out, warn)
                return self.send_json(code, out, self._warn(warn))
            if method == "DELETE":
                return self.delete_collection(req)
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                           f"resource")
        if method in ("GET", "HEAD"):
            code, out, _ = api.get(req)
            if "as=Table" in (self.headers.get("Accept") or "") and sub is None:
                out = discovery.table(rt, [out], {"resourceVersion": out["metadata"]["resourceVersion"]})
            return self.send_json(code, out)
        if method == "PUT":
            code, out, warn = api.update(req)
        elif method == "PATCH":
            code, out, warn = api.patch(req)
        elif method == "DELETE":
            code, out, warn = api.delete(req)
        else:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                           "resource")
        if method in ("PUT", "PATCH"):
            self._after_crd_write(rt, out, warn)
        return self.send_json(code, out, self._warn(warn))

    @staticmethod
    def _warn(warnings):
        return [("Warning", "299 - " + json.dumps(w)) for w in warnings]

    def _after_crd_write(self, rt, out, warnings):
        if rt.builtin and rt.kind == "CustomResourceDefinition":
            for path, rule, why in crd_cel_unsupported(out):
                note = f"CRD {out['metadata']['name']}: CEL rule at {path or '.'} not evaluated ({why}): {rule}"
                warnings.append("test apiserver: " + note)
                with self.srv.lock:
                    if note not in self.srv.notes:
                        self.srv.notes.append(note)

    def delete_collection(self, req):
        sel = make_selector(req.query)
        _, items = self.srv.store.list(req.rt.key, req.ns if req.rt.namespaced else None)
        gone = []
        for o in items:
            if sel(o):
                try:
                    self.srv.api.delete_object(req.rt, o, req.q("propagationPolicy"))
                    gone.append(o)
                except ApiError:
                    pass
        return self.send_json(200, {"apiVersion": req.rt.api_version, "kind": req.rt.list_kind,
                                    "metadata": {"resourceVersion": str(self.srv.store.rv)},
                                    "items": [self.srv.api.present(req.rt, o) for o in gone]})

    # -- watch -----------------------------------------------------------------------
    def watch(self, req):
        srv, store, rt = self.srv, self.srv.store, req.rt
        sel = make_selector(req.query)
        rvq = req.q("resourceVersion") or ""
        bookmarks = req.q("allowWatchBookmarks") in ("true", "1")
        initial = req.q("sendInitialEvents") in ("true", "1")
        ns = req.ns if rt.namespaced else None
        try:
            timeout = float(req.q("timeoutSeconds") or 0)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid timeoutSeconds")
        with store.lock:
            if rvq in ("", "0") or initial:
                start_rv, items = store.list(rt.key, ns)
                items = [o for o in items if sel(o)]
                w = store.watch(rt.key, ns, start_rv)
            else:
                try:
                    start_rv = int(rvq)
                except ValueError:
                    raise ApiError(400, "BadRequest", f"invalid resource version: {rvq}")
                if start_rv > store.rv:
                    raise ApiError(504, "Timeout", f"Too large resource version: {start_rv}, current: {store.rv}")
                items = []
                w = store.watch(rt.key, ns, start_rv)
                if w is None:
                    raise ApiError(410, "Expired", f"too old resource version: {start_rv} ({store.compacted_rv})")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True
        drop = srv.faults.take({"drop_watch"}, "GET", self.path)
        budget = drop.after_events if drop else None
        deadline = time.monotonic() + timeout if timeout > 0 else None
        try:
            for o in items:
                self._event("ADDED", rt, o)
            if initial and bookmarks:
                self._event("BOOKMARK", rt, {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {
                    "resourceVersion": str(start_rv), "annotations": {"k8s.io/initial-events-end": "true"}}})
            while not srv.stopping.is_set():
                wait = srv.bookmark_interval
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                try:
                    ev = w.q.get(timeout=max(wait, 0.01))
                except queue.Empty:
                    if bookmarks:
                        with store.lock:
                            rv = store.rv if w.q.empty() else None
                        if rv is not None:
                            self._event("BOOKMARK", rt, {"kind": rt.kind, "apiVersion": rt.api_version,
                                                         "metadata": {"resourceVersion": str(rv)}})
                    continue
                if isinstance(ev, tuple):
                    if ev[0] == "error":
                        self._event("ERROR", rt, ApiError(ev[1], ev[2], ev[3]).status())
                    break
                typ = self._transition(ev, sel)
                if typ is None:
                    continue
                if budget is not None:
                    if budget <= 0:
                        self.drop()
                        return 200
                    budget -= 1
                self._event(typ, rt, ev.obj)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            store.unwatch(w)
        return 200

    @staticmethod
    def _transition(ev, sel):
        now = sel(ev.obj)
        if ev.type == "MODIFIED" and ev.old is not None:
            was = sel(ev.old)
            if was and not now:
                return "DELETED"
            if now and not was:
                return "ADDED"
        return ev.type if now else None

    def _event(self, typ, rt, obj):
        if typ not in ("ERROR", "BOOKMARK"):
            obj = self.srv.api.present(rt, dict(obj))
        line = (json.dumps({"type": typ, "object": obj}) + "\n").encode()
        split = typ != "BOOKMARK" and self.srv.faults.take({"split_watch_events"}, "GET", self.path)
        pieces = [line[:len(line) // 2], line[len(line) // 2:]] if split else [line]
        for i, p in enumerate(pieces):
            if i:
                time.sleep(0.05)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
            self.wfile.flush()

    # -- control endpoints --------------------------------------------------------------
    def control(self, method, path, body):
        srv = self.srv
        try:
            data = json.loads(body) if body else {}
        except ValueError as e:
            return self.send_json(400, {"error": f"bad JSON: {e}"})
        what = path[len("/_test/"):]
        if what == "health":
            return self.send_json(200, {"ok": True, "port": srv.port})
        if what == "state":
            with srv.store.lock:
                return self.send_json(200, {"resourceVersion": srv.store.rv,
                                            "compactedResourceVersion": srv.store.compacted_rv,
                                            "history": len(srv.store.history),
                                            "watchers": len(srv.store.watchers)})
        if what == "faults":
            if method == "DELETE":
                srv.faults.clear()
                return self.send_json(200, {"faults": []})
            if method == "POST":
                specs = data if isinstance(data, list) else [data]
                try:
                    for s in specs:
                        if s.get("action") == "expire_history":
                            srv.store.expire(bool(s.get("notify_watchers")))
                        elif s.get("action") == "close_watches":
                            srv.store.close_watches()
                        else:
                            srv.faults.add(s)
                except (ValueError, KeyError, TypeError, re.error) as e:
                    return self.send_json(400, {"error": str(e)})
            return self.send_json(200, {"faults": srv.faults.snapshot()})
        if what == "expire-history" and method == "POST":
            srv.store.expire(bool(data.get("notify_watchers")))
            return self.send_json(200, {"compactedResourceVersion": srv.store.compacted_rv})
        if what == "reset" and method == "POST":
            # Namespaces and CRDs survive (the CRD's types stay registered).
            srv.store.reset([("", "namespaces"), ("apiextensions.k8s.io", "customresourcedefinitions")])
            return self.send_json(200, {"resourceVersion": srv.store.rv})
        if what == "close-watches" and method == "POST":
            srv.store.close_watches()
            return self.send_json(200, {})
        if what == "violations":
            with srv.lock:
                if method == "DELETE":
                    srv.violations.clear()
                return self.send_json(200, {"violations": list(srv.violations), "notes": list(srv.notes)})
        if what == "writes":
            with srv.lock:
                if method == "DELETE":
                    srv.writes.clear()
                return self.send_json(200, {"writes": list(srv.writes)})
        if what == "kubelet":
            c = srv.controllers
            if method == "POST":
                c.paused = bool(data.get("paused", c.paused))
                if "max_ready" in data:
                    c.max_ready = data["max_ready"]
                c.ready_delay = float(data.get("ready_delay", c.ready_delay))
                c.pods = bool(data.get("pods", c.pods))
                c.pod_ip = str(data.get("pod_ip", c.pod_ip))
            return self.send_json(200, {"paused": c.paused, "max_ready": c.max_ready,
                                        "ready_delay": c.ready_delay, "pods": c.pods,
                                        "pod_ip": c.pod_ip})
        return self.send_json(404, {"error": f"no control endpoint {path}"})
