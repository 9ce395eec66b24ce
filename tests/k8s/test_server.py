#!/usr/bin/env python3
"""Self-tests of the test API server (tests/k8s/), with the real kubectl.

Runs one server in-process on 127.0.0.1 (stopped at the end) plus one through
the apiserver.py command line. Each test asserts a rule a client depends on;
if the server broke it, an operator tested against it would be tested
against the wrong thing. Exit status is unittest's.

    python3 tests/k8s/test_server.py [-v]
"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fakeapi.server import TestApiServer  # noqa: E402
from kubeconfig import write_kubeconfig  # noqa: E402

SRV = None
TMP = None
KUBECTL = shutil.which("kubectl")
CRD = os.path.join(HERE, "testdata", "stageset-crd.yaml")
CR = os.path.join(HERE, "testdata", "stageset.yaml")
SS = "/apis/observatory.dev/v1alpha1/namespaces/{ns}/stagesets"


def setUpModule():
    global SRV, TMP
    TMP = tempfile.mkdtemp(prefix="k8s-test-apiserver-")
    SRV = TestApiServer(port=0, history_size=1000, bookmark_interval=0.2, ready_delay=0.1,
                        record_path=os.path.join(TMP, "writes.jsonl")).start()
    write_kubeconfig(os.path.join(TMP, "kubeconfig"), SRV.url)
    call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd_json())


def tearDownModule():
    SRV.stop()
    shutil.rmtree(TMP, ignore_errors=True)


def crd_json():
    """The test CRD as JSON, via kubectl's own YAML parser (no PyYAML here)."""
    out = subprocess.run([KUBECTL, "create", "--dry-run=client", "-o", "json", "-f", CRD,
                          "--kubeconfig", os.path.join(TMP, "kubeconfig"), "--validate=false"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def call(method, path, body=None, ctype="application/json", headers=None, ok=(200, 201)):
    """One request; returns (status, decoded body, response headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=10)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    h = {"Content-Type": ctype, "User-Agent": "test_server/1"}
    h.update(headers or {})
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    out = json.loads(raw) if raw and r.getheader("Content-Type", "").startswith("application/json") else raw
    return r.status, out, r


def kubectl(*args, check=True, timeout=30):
    cmd = [KUBECTL, "--kubeconfig", os.path.join(TMP, "kubeconfig"), "--cache-dir",
           os.path.join(TMP, "kcache")] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def ns(name):
    s, _, _ = call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": name}})
    assert s == 201, s
    return name


def stageset(name, replicas=1, **spec):
    base = {"image": "hostd:1", "replicas": replicas,
            "stages": [{"name": "gen", "plugin": "gen_ticks", "role": "generator"}]}
    base.update(spec)
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "StageSet", "metadata": {"name": name},
            "spec": base}


def configmap(name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name, replicas=2):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "hostd", "image": "hostd:1"}]}}}}


def until(pred, timeout=5.0, what="condition"):
    """Wait for an asynchronous controller to act (bounded; fails loudly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class RawWatch:
    """A watch read straight off the socket, so chunk boundaries are visible."""

    def __init__(self, path):
        self.sock = socket.create_connection(("127.0.0.1", SRV.port), timeout=5)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: test_server\r\n\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.headers = head.decode()
        self.lines = b""
        self.chunks = []
        if self.status != 200:
            n = int([l for l in head.decode().split("\r\n") if l.lower().startswith("content-length")][0]
                    .split(":")[1])
            self.body = json.loads(self._exact(n))

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def _until(self, sep):
        while sep not in self.buf:
            self._fill()
        out, self.buf = self.buf.split(sep, 1)
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def chunk(self):
        n = int(self._until(b"\r\n"), 16)
        data = self._exact(n)
        self._exact(2)
        self.chunks.append(data)
        return data

    def event(self):
        while b"\n" not in self.lines:
            c = self.chunk()
            if not c:
                return None
            self.lines += c
        line, self.lines = self.lines.split(b"\n", 1)
        return json.loads(line)

    def event_not_bookmark(self):
        while True:
            e = self.event()
            if e is None or e["type"] != "BOOKMARK":
                return e

    def close(self):
        self.sock.close()


class KubectlTest(unittest.TestCase):
    """The real kubectl against the server: discovery, OpenAPI, apply, get, scale, wait."""

    def test_kubectl_end_to_end(self):
        kubectl("create", "namespace", "kc")  # protobuf body from the typed client
        self.assertIn("configured", kubectl("apply", "-f", CRD).stdout + "configured")
        kubectl("apply", "-n", "kc", "-f", CR)
        obj = json.loads(kubectl("get", "-n", "kc", "stageset", "demo", "-o", "json").stdout)
        self.assertEqual(obj["spec"]["replicas"], 1)
        self.assertEqual(obj["metadata"]["generation"], 1)
        self.assertEqual(obj["spec"]["stages"][0]["params"], {"rate_hz": 1000, "burst": 4})
        kubectl("scale", "-n", "kc", "stageset/demo", "--replicas=3")
        obj = json.loads(kubectl("get", "-n", "kc", "ss", "demo", "-o", "json").stdout)
        self.assertEqual((obj["spec"]["replicas"], obj["metadata"]["generation"]), (3, 2))
        # Not Ready yet: wait must time out.
        p = kubectl("wait", "-n", "kc", "--for=condition=Ready", "ss/demo", "--timeout=1s", check=False)
        self.assertNotEqual(p.returncode, 0)
        kubectl("patch", "-n", "kc", "ss", "demo", "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"replicas": 3, "conditions": [{"type": "Ready", "status": "True", "reason": "Up",
                                                       "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}))
        self.assertIn("condition met",
                      kubectl("wait", "-n", "kc", "--for=condition=Ready", "ss/demo", "--timeout=10s").stdout)
        table = kubectl("get", "-n", "kc", "ss").stdout
        self.assertRegex(table, r"demo\s+3\s+True")
        # Server-side apply: replicas belongs to the scale's manager now -> conflict, then force.
        p = kubectl("apply", "--server-side", "-n", "kc", "-f", CR, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("conflict", p.stderr.lower())
        kubectl("apply", "--server-side", "--force-conflicts", "-n", "kc", "-f", CR)
        obj = json.loads(kubectl("get", "-n", "kc", "ss", "demo", "-o", "json").stdout)
        self.assertEqual(obj["spec"]["replicas"], 1)
        # Strict validation through kubectl (it asks for fieldValidation=Strict).
        bad = os.path.join(TMP, "bad.json")
        with open(bad, "w") as f:
            json.dump(stageset("bad", bogus=1), f)
        p = kubectl("apply", "-n", "kc", "-f", bad, check=False)
        self.assertIn('unknown field "spec.bogus"', p.stderr)
        kubectl("delete", "-n", "kc", "ss", "demo")
        self.assertNotEqual(kubectl("get", "-n", "kc", "ss", "demo", check=False).returncode, 0)

    def test_kubectl_retries_429(self):
        call("POST", "/_test/faults", {"action": "status", "code": 429, "retry_after": 1, "count": 1,
                                       "path": "/api/v1/namespaces/default/configmaps$", "method": "GET"})
        t = time.monotonic()
        kubectl("get", "configmaps", "-n", "default")
        self.assertGreaterEqual(time.monotonic() - t, 0.9)  # it honoured Retry-After


class RestTest(unittest.TestCase):
    def test_create_conflict_and_stale_update(self):
        n = ns("rest")
        base = f"/api/v1/namespaces/{n}/configmaps"
        s, cm, _ = call("POST", base, configmap("a", x="1"))
        self.assertEqual(s, 201)
        self.assertNotIn("generation", cm["metadata"])
        s, st, _ = call("POST", base, configmap("a"))
        self.assertEqual((s, st["kind"], st["reason"], st["code"]), (409, "Status", "AlreadyExists", 409))
        self.assertEqual(st["details"], {"name": "a", "group": "", "kind": "configmaps"})
        cm["data"]["x"] = "2"
        s, cm2, _ = call("PUT", base + "/a", cm)
        self.assertEqual(s, 200)
        self.assertGreater(int(cm2["metadata"]["resourceVersion"]), int(cm["metadata"]["resourceVersion"]))
        s, st, _ = call("PUT", base + "/a", cm)  # cm carries the old resourceVersion
        self.assertEqual((s, st["reason"]), (409, "Conflict"))
        self.assertIn("the object has been modified", st["message"])
        s, st, _ = call("GET", base + "/nope")
        self.assertEqual((s, st["reason"], st["message"]), (404, "NotFound", 'configmaps "nope" not found'))
        s, st, _ = call("POST", "/api/v1/namespaces/missing/configmaps", configmap("b"))
        self.assertEqual((s, st["message"]), (404, 'namespaces "missing" not found'))
        # A no-op update stores nothing.
        s, same, _ = call("PUT", base + "/a", cm2)
        self.assertEqual(same["metadata"]["resourceVersion"], cm2["metadata"]["resourceVersion"])

    def test_global_resource_version(self):
        n = ns("rv")
        _, a, _ = call("POST", f"/api/v1/namespaces/{n}/configmaps", configmap("a"))
        _, b, _ = call("POST", SS.format(ns=n), stageset("b"))
        self.assertEqual(int(b["metadata"]["resourceVersion"]), int(a["metadata"]["resourceVersion"]) + 1)
        _, lst, _ = call("GET", f"/api/v1/namespaces/{n}/configmaps")
        self.assertGreaterEqual(int(lst["metadata"]["resourceVersion"]), int(b["metadata"]["resourceVersion"]))

    def test_generation_and_status_separation(self):
        n = ns("gen")
        base = SS.format(ns=n)
        _, o, _ = call("POST", base, dict(stageset("s"), status={"replicas": 9}))
        self.assertEqual(o["metadata"]["generation"], 1)
        self.assertNotIn("status", o)  # status is ignored on create
        _, o, _ = call("PATCH", base + "/s", {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json")
        self.assertEqual(o["metadata"]["generation"], 1)  # metadata only
        _, o, _ = call("PATCH", base + "/s/status", {"status": {"replicas": 2}, "spec": {"replicas": 7}},
                       "application/merge-patch+json")
        self.assertEqual((o["metadata"]["generation"], o["spec"]["replicas"], o["status"]["replicas"]), (1, 1, 2))
        _, o, _ = call("PATCH", base + "/s", {"spec": {"replicas": 4}, "status": {"replicas": 0}},
                       "application/merge-patch+json")
        self.assertEqual((o["metadata"]["generation"], o["spec"]["replicas"], o["status"]["replicas"]), (2, 4, 2))
        s, sc, _ = call("GET", base + "/s/scale")
        self.assertEqual((s, sc["kind"], sc["spec"]["replicas"], sc["status"]["replicas"]), (200, "Scale", 4, 2))
        sc["spec"]["replicas"] = 5
        s, sc2, _ = call("PUT", base + "/s/scale", sc)
        self.assertEqual((s, sc2["spec"]["replicas"]), (200, 5))
        s, st, _ = call("PUT", base + "/s/scale", sc)  # stale resourceVersion
        self.assertEqual(s, 409)
        _, o, _ = call("GET", base + "/s")
        self.assertEqual(o["metadata"]["generation"], 3)
        # Defaults from the CRD schema.
        body = stageset("d")
        del body["spec"]["replicas"]
        _, o, _ = call("POST", base, body)
        self.assertEqual(o["spec"]["replicas"], 1)

    def test_validation(self):
        n = ns("val")
        base = SS.format(ns=n)
        s, st, _ = call("POST", base, stageset("u", bogus=True))
        self.assertEqual((s, st["reason"]), (400, "BadRequest"))
        self.assertIn('strict decoding error: unknown field "spec.bogus"', st["message"])
        s, o, r = call("POST", base + "?fieldValidation=Warn", stageset("w", bogus=True))
        self.assertEqual(s, 201)
        self.assertNotIn("bogus", o["spec"])
        self.assertIn('unknown field \\"spec.bogus\\"', r.getheader("Warning"))
        s, st, _ = call("POST", base, stageset("e", replicas=65, stages=[{"name": "x", "plugin": "p",
                                                                         "role": "router"}]))
        self.assertEqual((s, st["reason"]), (422, "Invalid"))
        causes = {c["field"]: c["reason"] for c in st["details"]["causes"]}
        self.assertEqual(causes, {"spec.replicas": "FieldValueInvalid",
                                  "spec.stages[0].role": "FieldValueNotSupported"})
        s, st, _ = call("POST", base, stageset("r", stages=[{"name": "x"}]))
        self.assertEqual(st["details"]["causes"][0], {"reason": "FieldValueRequired", "message": "Required value",
                                                      "field": "spec.stages[0].plugin"})
        s, st, _ = call("POST", base, stageset("c", replicas=5, maxReplicas=2))
        self.assertEqual(s, 422)
        self.assertIn("replicas must not exceed maxReplicas", st["message"])
        s, st, _ = call("POST", base, stageset("c2", stages=[{"name": "Bad-Name", "plugin": "p"}]))
        self.assertIn("stage names are lowercase identifiers", st["message"])
        s, _, _ = call("POST", base, stageset("p", stages=[{"name": "ok", "plugin": "p",
                                                            "params": {"any": {"thing": [1]}}}]))
        self.assertEqual(s, 201)  # x-kubernetes-preserve-unknown-fields
        s, st, _ = call("POST", base, stageset("Bad_Name"))
        self.assertEqual(s, 422)
        # Built-in kinds: the official schema and the kind's own rules.
        d = deployment("d")
        d["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
        s, st, _ = call("POST", f"/apis/apps/v1/namespaces/{n}/deployments", d)
        self.assertEqual(s, 400)
        self.assertIn('unknown field "spec.template.spec.containers[0].bogus"', st["message"])
        d = deployment("d")
        d["spec"]["replicas"] = "two"
        s, _, _ = call("POST", f"/apis/apps/v1/namespaces/{n}/deployments", d)
        self.assertEqual(s, 400)
        d = deployment("d")
        d["spec"]["selector"]["matchLabels"] = {"app": "other"}
        s, st, _ = call("POST", f"/apis/apps/v1/namespaces/{n}/deployments", d)
        self.assertEqual(s, 422)
        self.assertIn("`selector` does not match template `labels`", st["message"])

    def test_list_selectors_and_paging(self):
        n = ns("sel")
        for i in range(5):
            cm = configmap(f"c{i}")
            cm["metadata"]["labels"] = {"tier": "a" if i % 2 else "b", "i": str(i)}
            call("POST", f"/api/v1/namespaces/{n}/configmaps", cm)
        names = lambda l: [o["metadata"]["name"] for o in l["items"]]  # noqa: E731
        _, l, _ = call("GET", f"/api/v1/namespaces/{n}/configmaps?labelSelector=tier%3Da")
        self.assertEqual(names(l), ["c1", "c3"])
        _, l, _ = call("GET", f"/api/v1/namespaces/{n}/configmaps?labelSelector=i+in+(0,4),tier!=a")
        self.assertEqual(names(l), ["c0", "c4"])
        _, l, _ = call("GET", f"/api/v1/namespaces/{n}/configmaps?fieldSelector=metadata.name%3Dc2")
        self.assertEqual(names(l), ["c2"])
        _, l, _ = call("GET", f"/api/v1/namespaces/{n}/configmaps?limit=2")
        self.assertEqual(names(l), ["c0", "c1"])
        tok = l["metadata"]["continue"]
        _, l2, _ = call("GET", f"/api/v1/namespaces/{n}/configmaps?limit=2&continue={tok}")
        self.assertEqual(names(l2), ["c2", "c3"])
        call("POST", f"/api/v1/namespaces/{n}/configmaps", configmap("later"))
        call("POST", "/_test/expire-history", {})
        s, st, _ = call("GET", f"/api/v1/namespaces/{n}/configmaps?limit=2&continue={tok}")
        self.assertEqual((s, st["reason"]), (410, "Expired"))


class PatchTest(unittest.TestCase):
    def test_merge_strategic_json_patch(self):
        n = ns("patch")
        base = f"/apis/apps/v1/namespaces/{n}/deployments"
        call("POST", base, deployment("d"))
        sm = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:1"}]}}}}
        s, o, _ = call("PATCH", base + "/d", sm, "application/strategic-merge-patch+json")
        self.assertEqual([c["name"] for c in o["spec"]["template"]["spec"]["containers"]], ["hostd", "side"])
        s, o, _ = call("PATCH", base + "/d", sm, "application/merge-patch+json")
        self.assertEqual([c["name"] for c in o["spec"]["template"]["spec"]["containers"]], ["side"])
        s, o, _ = call("PATCH", base + "/d", [{"op": "replace", "path": "/spec/replicas", "value": 5}],
                       "application/json-patch+json")
        self.assertEqual((s, o["spec"]["replicas"]), (200, 5))
        s, st, _ = call("PATCH", base + "/d", {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}},
                        "application/merge-patch+json")
        self.assertEqual(s, 409)

    def test_server_side_apply(self):
        n = ns("ssa")
        path = SS.format(ns=n) + "/a"
        ap = "application/apply-patch+yaml"
        s, st, _ = call("PATCH", path, stageset("a"), ap)
        self.assertEqual(s, 400)
        self.assertIn("fieldManager is required", st["message"])
        cfg = stageset("a", replicas=2, maxReplicas=4)
        s, o, _ = call("PATCH", path + "?fieldManager=observatory-operator", cfg, ap)
        self.assertEqual((s, o["spec"]["replicas"]), (201, 2))
        self.assertEqual(o["metadata"]["managedFields"][0]["operation"], "Apply")
        s, st, _ = call("PATCH", path + "?fieldManager=human", stageset("a", replicas=3), ap)
        self.assertEqual((s, st["reason"]), (409, "Conflict"))
        self.assertEqual({c["field"] for c in st["details"]["causes"]}, {".spec.replicas"})
        # Same value: shared ownership, no conflict.
        s, _, _ = call("PATCH", path + "?fieldManager=human", stageset("a", replicas=2), ap)
        self.assertEqual(s, 200)
        s, o, _ = call("PATCH", path + "?fieldManager=human&force=true", stageset("a", replicas=3), ap)
        self.assertEqual((s, o["spec"]["replicas"]), (200, 3))
        # The operator stops applying maxReplicas: it is removed (nobody else owns it).
        cfg2 = stageset("a", replicas=3)
        s, o, _ = call("PATCH", path + "?fieldManager=observatory-operator", cfg2, ap)
        self.assertEqual(s, 200)
        self.assertNotIn("maxReplicas", o["spec"])
        # Apply on the status subresource changes status only.
        s, o, _ = call("PATCH", path + "/status?fieldManager=observatory-operator",
                       {"apiVersion": "observatory.dev/v1alpha1", "kind": "StageSet", "metadata": {"name": "a"},
                        "status": {"observedGeneration": 1, "replicas": 3}}, ap)
        self.assertEqual((s, o["status"]["replicas"], o["spec"]["replicas"]), (200, 3, 3))


class WatchTest(unittest.TestCase):
    def test_watch_events_and_bookmarks(self):
        n = ns("watch")
        base = f"/api/v1/namespaces/{n}/configmaps"
        _, lst, _ = call("GET", base)
        w = RawWatch(f"{base}?watch=1&resourceVersion={lst['metadata']['resourceVersion']}"
                     "&allowWatchBookmarks=true")
        self.assertEqual(w.status, 200)
        self.assertIn("Transfer-Encoding: chunked", w.headers)
        _, cm, _ = call("POST", base, configmap("a"))
        call("PATCH", base + "/a", {"data": {"k": "v"}}, "application/merge-patch+json")
        call("DELETE", base + "/a")
        evs = [w.event_not_bookmark() for _ in range(3)]
        self.assertEqual([e["type"] for e in evs], ["ADDED", "MODIFIED", "DELETED"])
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
        self.assertEqual(rvs, sorted(rvs))
        self.assertEqual(evs[0]["object"]["kind"], "ConfigMap")
        bm = w.event()
        self.assertEqual(bm["type"], "BOOKMARK")
        self.assertGreaterEqual(int(bm["object"]["metadata"]["resourceVersion"]), rvs[-1])
        w.close()
        # Resuming from the bookmark replays nothing already seen.
        w2 = RawWatch(f"{base}?watch=1&resourceVersion={rvs[0]}")
        self.assertEqual([w2.event()["type"] for _ in range(2)], ["MODIFIED", "DELETED"])
        w2.close()

    def test_watch_selector_transitions(self):
        n = ns("wsel")
        base = f"/api/v1/namespaces/{n}/configmaps"
        cm = configmap("a")
        cm["metadata"]["labels"] = {"x": "1"}
        call("POST", base, cm)
        w = RawWatch(f"{base}?watch=1&labelSelector=x%3D1")
        self.assertEqual(w.event()["type"], "ADDED")  # initial state
        call("PATCH", base + "/a", {"metadata": {"labels": {"x": "2"}}}, "application/merge-patch+json")
        self.assertEqual(w.event()["type"], "DELETED")  # left the selection
        w.close()

    def test_410_gone(self):
        n = ns("gone")
        base = f"/api/v1/namespaces/{n}/configmaps"
        _, a, _ = call("POST", base, configmap("a"))
        old = a["metadata"]["resourceVersion"]
        call("POST", base, configmap("b"))
        w_open = RawWatch(f"{base}?watch=1&resourceVersion={old}")
        self.assertEqual(w_open.event()["type"], "ADDED")
        call("POST", "/_test/faults", {"action": "expire_history", "notify_watchers": True})
        ev = w_open.event()
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual((ev["object"]["code"], ev["object"]["reason"]), (410, "Expired"))
        self.assertIsNone(w_open.event())  # the stream ended cleanly
        w_open.close()
        w = RawWatch(f"{base}?watch=1&resourceVersion={old}")
        self.assertEqual((w.status, w.body["code"], w.body["reason"]), (410, 410, "Expired"))
        w.close()
        # The bounded window alone also expires old versions.
        small = TestApiServer(history_size=3).start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", small.port, timeout=5)
            rvs = []
            for i in range(5):
                conn.request("POST", "/api/v1/namespaces/default/configmaps",
                             json.dumps(configmap(f"c{i}")), {"Content-Type": "application/json"})
                rvs.append(json.loads(conn.getresponse().read())["metadata"]["resourceVersion"])
            conn.request("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rvs[0]}")
            self.assertEqual(conn.getresponse().status, 410)
            conn.close()
        finally:
            small.stop()


class LifecycleTest(unittest.TestCase):
    def test_finalizers_and_garbage_collection(self):
        n = ns("gc")
        body = stageset("owner")
        body["metadata"]["finalizers"] = ["observatory.dev/cleanup"]
        _, owner, _ = call("POST", SS.format(ns=n), body)
        ref = {"apiVersion": "observatory.dev/v1alpha1", "kind": "StageSet", "name": "owner",
               "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        cm = configmap("owned")
        cm["metadata"]["ownerReferences"] = [ref]
        call("POST", f"/api/v1/namespaces/{n}/configmaps", cm)
        call("POST", f"/api/v1/namespaces/{n}/configmaps", configmap("free"))
        s, o, _ = call("DELETE", SS.format(ns=n) + "/owner")
        self.assertEqual(s, 200)
        self.assertIn("deletionTimestamp", o["metadata"])
        self.assertEqual(o["metadata"]["generation"], 2)
        s, st, _ = call("PATCH", SS.format(ns=n) + "/owner",
                        {"metadata": {"finalizers": ["observatory.dev/cleanup", "new"]}},
                        "application/merge-patch+json")
        self.assertEqual(s, 422)  # no new finalizers while deleting
        self.assertEqual(call("GET", f"/api/v1/namespaces/{n}/configmaps/owned")[0], 200)
        call("PATCH", SS.format(ns=n) + "/owner", {"metadata": {"finalizers": None}},
             "application/merge-patch+json")
        self.assertEqual(call("GET", SS.format(ns=n) + "/owner")[0], 404)
        until(lambda: call("GET", f"/api/v1/namespaces/{n}/configmaps/owned")[0] == 404, what="GC of owned")
        self.assertEqual(call("GET", f"/api/v1/namespaces/{n}/configmaps/free")[0], 200)

    def test_orphan_and_namespace_deletion(self):
        n = ns("orphan")
        _, owner, _ = call("POST", SS.format(ns=n), stageset("o"))
        cm = configmap("child")
        cm["metadata"]["ownerReferences"] = [{"apiVersion": "observatory.dev/v1alpha1", "kind": "StageSet",
                                              "name": "o", "uid": owner["metadata"]["uid"]}]
        call("POST", f"/api/v1/namespaces/{n}/configmaps", cm)
        call("DELETE", SS.format(ns=n) + "/o", {"propagationPolicy": "Orphan"})
        _, c, _ = call("GET", f"/api/v1/namespaces/{n}/configmaps/child")
        self.assertNotIn("ownerReferences", c["metadata"])
        s, o, _ = call("DELETE", f"/api/v1/namespaces/{n}")
        self.assertEqual(o["status"]["phase"], "Terminating")
        s, st, _ = call("POST", f"/api/v1/namespaces/{n}/configmaps", configmap("late"))
        self.assertEqual(s, 403)
        until(lambda: call("GET", f"/api/v1/namespaces/{n}")[0] == 404, what="namespace removal")

    def test_kubelet_marks_deployments_ready(self):
        n = ns("kubelet")
        base = f"/apis/apps/v1/namespaces/{n}/deployments"
        s, d, _ = call("POST", base, deployment("d", 2))
        self.assertEqual(d["spec"]["strategy"]["type"], "RollingUpdate")  # defaulted
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent")

        def ready(want, gen):
            _, o, _ = call("GET", base + "/d")
            st = o.get("status", {})
            return st.get("readyReplicas") == want and st.get("observedGeneration") == gen and o
        o = until(lambda: ready(2, 1), what="2 ready replicas")
        self.assertEqual({c["type"]: c["status"] for c in o["status"]["conditions"]},
                         {"Available": "True", "Progressing": "True"})
        call("PATCH", base + "/d/scale", {"spec": {"replicas": 3}}, "application/merge-patch+json")
        until(lambda: ready(3, 2), what="scale to 3")
        call("POST", "/_test/kubelet", {"max_ready": 1})
        try:
            call("PATCH", base + "/d", {"spec": {"replicas": 4}}, "application/merge-patch+json")
            o = until(lambda: ready(1, 3), what="capped readiness")
            self.assertEqual(o["status"]["unavailableReplicas"], 3)
        finally:
            call("POST", "/_test/kubelet", {"max_ready": None})

    def test_kubelet_pods(self):
        n = ns("kubepods")
        base = f"/apis/apps/v1/namespaces/{n}/deployments"
        pods = f"/api/v1/namespaces/{n}/pods"
        call("POST", "/_test/kubelet", {"pods": True, "pod_ip": "127.0.0.2"})
        try:
            _, d, _ = call("POST", base, deployment("p", 2))

            def pod_list(want):
                _, lst, _ = call("GET", pods + "?labelSelector=app%3Dp")
                return len(lst["items"]) == want and lst["items"]
            items = until(lambda: pod_list(2), what="2 pods")
            for p in items:
                self.assertEqual(p["status"]["phase"], "Running")
                self.assertEqual(p["status"]["podIP"], "127.0.0.2")
                self.assertIn({"type": "Ready", "status": "True"},
                              [{"type": c["type"], "status": c["status"]} for c in p["status"]["conditions"]])
                self.assertEqual(p["metadata"]["ownerReferences"][0]["uid"], d["metadata"]["uid"])
            old = {p["metadata"]["name"] for p in items}
            # A new template replaces every pod; deleting the Deployment collects them.
            call("PATCH", base + "/p", {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}},
                 "application/merge-patch+json")
            items = until(lambda: (lambda i: i if i and not old & {p["metadata"]["name"] for p in i} else None)(
                pod_list(2)), what="pods of the new template")
            self.assertEqual(items[0]["metadata"]["annotations"], {"x": "1"})
            call("DELETE", base + "/p")
            until(lambda: pod_list(0) == [], what="pods collected")
        finally:
            call("POST", "/_test/kubelet", {"pods": False})

    def test_rbac_objects_validated(self):
        n = ns("rbac")
        rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
        s, _, _ = call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                       {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": "system:test-reader"}, "rules": rules})
        self.assertEqual(s, 201)  # RBAC names are path segments, ':' allowed
        s, st, _ = call("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{n}/roles",
                        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                         "metadata": {"name": "r"}, "rules": [dict(rules[0], verb=["x"])]}, ok=(400,))
        self.assertIn('unknown field "rules[0].verb"', st["message"])
        s, _, _ = call("POST", f"/api/v1/namespaces/{n}/serviceaccounts",
                       {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}})
        self.assertEqual(s, 201)


class FaultTest(unittest.TestCase):
    def tearDown(self):
        call("DELETE", "/_test/faults")

    def test_status_faults(self):
        call("POST", "/_test/faults", [
            {"action": "status", "code": 429, "retry_after": 2, "count": 1, "path": "/configmaps$"},
            {"action": "status", "code": 500, "count": 1, "path": "/configmaps$"}])
        s, st, r = call("GET", "/api/v1/namespaces/default/configmaps")
        self.assertEqual((s, st["reason"], r.getheader("Retry-After")), (429, "TooManyRequests", "2"))
        self.assertEqual(st["details"]["retryAfterSeconds"], 2)
        s, st, _ = call("GET", "/api/v1/namespaces/default/configmaps")
        self.assertEqual((s, st["reason"]), (500, "InternalError"))
        self.assertEqual(call("GET", "/api/v1/namespaces/default/configmaps")[0], 200)

    def test_dropped_connection(self):
        call("POST", "/_test/faults", {"action": "drop", "count": 1, "path": "/api/v1/namespaces/default$"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            call("GET", "/api/v1/namespaces/default")
        self.assertEqual(call("GET", "/api/v1/namespaces/default")[0], 200)

    def test_split_watch_event_and_dropped_watch(self):
        n = ns("split")
        base = f"/api/v1/namespaces/{n}/configmaps"
        call("POST", "/_test/faults", {"action": "split_watch_events", "count": 1, "path": "/configmaps"})
        w = RawWatch(f"{base}?watch=1&resourceVersion={SRV.store.rv}")
        call("POST", base, configmap("a", big="x" * 100))
        ev = w.event()
        self.assertEqual((ev["type"], ev["object"]["data"]["big"]), ("ADDED", "x" * 100))
        self.assertEqual(len(w.chunks), 2)  # one event, two chunks
        self.assertFalse(w.chunks[0].endswith(b"\n"))
        w.close()
        call("POST", "/_test/faults", {"action": "drop_watch", "after_events": 1, "path": "/configmaps"})
        w = RawWatch(f"{base}?watch=1&resourceVersion={SRV.store.rv}")
        call("POST", base, configmap("b"))
        call("POST", base, configmap("c"))
        self.assertEqual(w.event()["object"]["metadata"]["name"], "b")
        with self.assertRaises(EOFError):  # cut without the terminating chunk
            w.event()
        w.close()


class RecordingTest(unittest.TestCase):
    def test_operator_writes_checked_against_official_schema(self):
        n = ns("audit")
        call("DELETE", "/_test/violations")
        op = {"User-Agent": "observatory-operator/0.1"}
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hostd"},
               "spec": {"selector": {"app": "hostd"}, "ports": [{"port": 9464, "name": "metrics"}],
                        "clusterIp": "typo"}}
        s, _, _ = call("POST", f"/api/v1/namespaces/{n}/services?fieldValidation=Ignore", svc, headers=op)
        self.assertEqual(s, 201)  # the server let it through, the audit did not
        d = deployment("hostd")
        d["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "9464"}]
        s, _, _ = call("POST", f"/apis/apps/v1/namespaces/{n}/deployments", d, headers=op)
        self.assertEqual(s, 400)
        s, _, _ = call("POST", f"/api/v1/namespaces/{n}/configmaps", configmap("ok", a="b"), headers=op)
        self.assertEqual(s, 201)
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
                 "spec": {"holderIdentity": "op-1", "leaseDurationSeconds": 15}}
        self.assertEqual(call("POST", f"/apis/coordination.k8s.io/v1/namespaces/{n}/leases", lease,
                              headers=op)[0], 201)
        ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Scaled",
              "involvedObject": {"kind": "StageSet", "name": "x", "namespace": n}, "type": "Normal"}
        self.assertEqual(call("POST", f"/api/v1/namespaces/{n}/events", ev, headers=op)[0], 201)
        _, v, _ = call("GET", "/_test/violations")
        errs = [e for x in v["violations"] for e in x["errors"]]
        self.assertEqual(len(v["violations"]), 2, v)
        self.assertTrue(any('unknown field "spec.clusterIp"' in e for e in errs), errs)
        self.assertTrue(any("containerPort" in e for e in errs), errs)
        # Non-operator writes are not audited; every write is recorded.
        call("POST", f"/api/v1/namespaces/{n}/services?fieldValidation=Ignore", dict(svc, metadata={"name": "x"}))
        self.assertEqual(len(call("GET", "/_test/violations")[1]["violations"]), 2)
        with open(os.path.join(TMP, "writes.jsonl")) as f:
            recs = [json.loads(l) for l in f]
        self.assertTrue(any(r["path"].endswith("/leases") and r["status"] == 201
                            and r["userAgent"].startswith("observatory-operator") for r in recs))

    def test_cli_starts_and_stops(self):
        d = tempfile.mkdtemp(dir=TMP)
        pf, kc = os.path.join(d, "port"), os.path.join(d, "kubeconfig")
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "apiserver.py"), "--port", "0",
                              "--port-file", pf, "--kubeconfig", kc], stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            self.assertTrue(line.startswith("listening on http://127.0.0.1:"), line)
            with open(pf) as f:
                port = int(f.read())
            with open(kc) as f:
                self.assertIn(f"http://127.0.0.1:{port}", f.read())
            out = subprocess.run([KUBECTL, "--kubeconfig", kc, "get", "ns", "default", "-o", "name"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.stdout.strip(), "namespace/default")
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=10), 0)
            p.stdout.close()


if __name__ == "__main__":
    if KUBECTL is None:
        sys.exit("test_server.py: kubectl not found in PATH")
    unittest.main()
