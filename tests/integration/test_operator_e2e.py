#!/usr/bin/env python3
"""End-to-end test of observatory-operator with the real kubectl against the
test API server (tests/k8s/), loopback only, about 15 s.

    python3 tests/integration/test_operator_e2e.py BUILD_DIR SOURCE_DIR [-v] [--keep]

BUILD_DIR must hold operator/observatory-operator, core/hostd and plugins/
(gen_market, xf_json_fast, xf_json_jansson, xf_window, sink_rocksdb).

What it proves, in order (each step prints its elapsed time):
  1. setup      the server (record mode, Strict field validation, schema audit of
                every operator write); `kubectl apply` of the CRD, a namespace,
                config/rbac/rbac.yaml (stored and schema-checked, not enforced)
                and config/examples/stageset.yaml, all unmodified.
  2. ready      the operator, out of cluster with that kubeconfig, takes the
                Lease and `kubectl wait --for=condition=Ready stageset/demo`
                succeeds; `kubectl get stagesets` shows the printer columns.
  3. children   ConfigMap demo-pipeline (its pipeline.yaml accepted by
                `hostd --check`), Deployment (config hash on the pod template,
                equal to status.configHash) and Service (metrics port, scrape
                annotations), all controlled by the StageSet (ownerReferences).
  4. scale      `kubectl scale stageset/demo --replicas=3` -> Deployment 3,
                status.readyReplicas 3, pod template unchanged (no restart).
  5. idle       ~3 s with bookmarks every 0.3 s, a closed watch (resume) and a
                compacted history (410 -> relist -> every key reconciled
                again): zero operator writes other than Lease renewals.
  6. version    a plugin change of stage `parse`: the pods (simulated by the
                server, podIP 127.0.0.1) are asked to hot-swap; a real hostd
                runs behind that address. When it swaps: SwapSucceeded, same
                pods, same pod template, new activeVersions; then a version no
                plugin has, which hostd refuses (as does a hostd without the
                swap API): SwapFailed Warning event quoting hostd,
                Progressing=SwapFailedRollingOut, a new pod-template config
                hash, every pod replaced, Ready with the new activeVersions.
  7. faults     a spec change while the server answers 429 (Retry-After),
                500, drops connections, splits watch events, cuts a watch and
                expires its history (ERROR 410 in the stream, then 410 on
                resume): the operator converges anyway within 30 s.
  8. delete     `kubectl delete stageset demo` -> garbage collection removes
                the ConfigMap, Deployment, Service and pods.
  9. stop       SIGTERM: the operator exits 0 and releases the Lease.
  GET /_test/violations is empty after every step.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

NS = "default"
NAME = "demo"
SS_PATH = f"/apis/observatory.dev/v1alpha1/namespaces/{NS}/stagesets/{NAME}"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps/{NAME}-pipeline"
DEP_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}"
SVC_PATH = f"/api/v1/namespaces/{NS}/services/{NAME}"
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/observatory-system/leases/observatory-operator"
OPERATOR_UA = "observatory-operator"

T0 = time.monotonic()
VERBOSE = "-v" in sys.argv


class Failure(Exception):
    pass


def log(msg):
    print(f"[{time.monotonic() - T0:6.2f}s] {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise Failure(msg)
    if VERBOSE:
        log(f"  ok: {msg}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, fn, timeout, interval=0.05):
    """Poll fn() until it returns a true value; return it, or fail."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except (urllib.error.URLError, OSError, KeyError, TypeError, ValueError) as e:
            last = e
            last = None
        if last:
            return last
        time.sleep(interval)
    raise Failure(f"timed out after {timeout} s waiting for {what}")


class Env:
    def __init__(self, build, src, tmp):
        self.build, self.src, self.tmp = build, src, tmp
        self.kubeconfig = os.path.join(tmp, "kubeconfig")
        self.record = os.path.join(tmp, "writes.jsonl")
        self.procs = {}
        self.url = None

    # -- processes --------------------------------------------------------------
    def start(self, name, argv, **kw):
        out = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)
        self.procs[name] = p
        return p

    def stop(self, name, timeout=5):
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None

    def logtail(self, name, n=30):
        try:
            with open(os.path.join(self.tmp, name + ".log")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- HTTP to the test server -------------------------------------------------
    def http(self, method, path, body=None, ctype="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": ctype, "User-Agent": "e2e-test"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path):
        code, obj = self.http("GET", path)
        return obj if code == 200 else None

    def violations(self):
        return self.http("GET", "/_test/violations")[1]

    def assert_no_violations(self, when):
        v = self.violations()
        check(not v["violations"], f"no schema violations in operator writes ({when}): "
              + json.dumps(v["violations"], indent=1)[:3000])

    # -- kubectl -------------------------------------------------------------------
    def kubectl(self, *args, timeout=30, ok=True):
        argv = ["kubectl", "--kubeconfig", self.kubeconfig, "--cache-dir",
                os.path.join(self.tmp, "kcache"), *args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if VERBOSE:
            log("$ " + " ".join(argv[5:]) + "\n" + r.stdout + r.stderr)
        if ok and r.returncode != 0:
            raise Failure(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    # -- the record file ------------------------------------------------------------
    def operator_writes(self, start_line=0):
        out = []
        with open(self.record) as f:
            for i, line in enumerate(f):
                if i < start_line:
                    continue
                e = json.loads(line)
                if OPERATOR_UA in (e.get("userAgent") or "") or e.get("fieldManager") == OPERATOR_UA:
                    out.append(e)
        return out

    def record_lines(self):
        with open(self.record) as f:
            return sum(1 for _ in f)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def cond(ss, typ):
    for c in (ss or {}).get("status", {}).get("conditions") or []:
        if c.get("type") == typ:
            return c
    return {}


def tmpl_hash(dep):
    return dep["spec"]["template"]["metadata"]["annotations"]["observatory.dev/config-hash"]


def settled(env, generation=None):
    """The StageSet is Ready for its current generation, status agrees with the Deployment."""
    ss, dep = env.get(SS_PATH), env.get(DEP_PATH)
    if not ss or not dep:
        return None
    st = ss.get("status") or {}
    gen = ss["metadata"]["generation"]
    if generation is not None and gen != generation:
        return None
    want = ss["spec"].get("replicas", 1)
    if (st.get("observedGeneration") == gen and cond(ss, "Ready").get("status") == "True"
            and cond(ss, "Progressing").get("status") == "False"
            and st.get("readyReplicas") == want and dep["spec"]["replicas"] == want
            and tmpl_hash(dep) == st.get("configHash")
            and (dep.get("status") or {}).get("observedGeneration") == dep["metadata"]["generation"]):
        return ss, dep
    return None


def owned_by(obj, ss):
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("kind") == "StageSet" and r.get("apiVersion") == "observatory.dev/v1alpha1"
               and r.get("name") == NAME and r.get("uid") == ss["metadata"]["uid"]
               and r.get("controller") is True and r.get("blockOwnerDeletion") is True for r in refs)


def hostd_check(env, pipeline_yaml, label):
    """`hostd --check` the rendered pipeline.yaml. The operator points
    plugin_dirs at the image's directory, which does not exist on this host
    (hostd refuses a missing plugin directory), so only that line is changed."""
    text = re.sub(r"(?m)^plugin_dirs: .*$",
                  f'plugin_dirs: ["{env.build}/plugins"]', pipeline_yaml)
    path = os.path.join(env.tmp, f"pipeline-{label}.yaml")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([os.path.join(env.build, "core", "hostd"), "--check", "--config", path,
                        "--plugin-dir", os.path.join(env.build, "plugins")],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"hostd --check accepts the rendered pipeline.yaml ({label}): "
          f"{r.stdout}{r.stderr}")
    return path, (r.stdout + r.stderr).strip()


def swap_failed(env, m0, gen0, hash0, structure0, outcome, want):
    """hostd refused the swap (no swap API yet): the fallback rollout."""
    ss, dep = wait_for("Ready after the fallback rollout", lambda: settled(env, gen0 + 1), 15)
    m1 = env.metrics()
    failed = (m1['observatory_operator_swaps_total{result="failure"}']
              - m0['observatory_operator_swaps_total{result="failure"}'])
    check(failed == 3, f"one swap asked of each of the 3 ready pods, all failed ({failed:.0f})")
    check(m1['observatory_operator_swaps_total{result="success"}']
          == m0['observatory_operator_swaps_total{result="success"}'], "no swap succeeded")
    check(tmpl_hash(dep) != hash0 and tmpl_hash(dep) == ss["status"]["configHash"],
          f"the pod template's config hash changed {hash0} -> {tmpl_hash(dep)} (rollout)")
    check(dep["metadata"]["annotations"]["observatory.dev/structure-hash"] == structure0,
          "structure hash unchanged: a plugin/version-only change (swap candidate)")
    av = {a["stage"]: (a["plugin"], a["version"]) for a in ss["status"]["activeVersions"]}
    check(av["parse"] == want, f"activeVersions after the rollout: {av}")
    pods = env.get(PODS_PATH)["items"]
    check(len(pods) == 3 and all(p["metadata"]["annotations"]["observatory.dev/config-hash"]
                                 == tmpl_hash(dep) for p in pods), "all pods replaced by the rollout")
    evs = env.get(f"/api/v1/namespaces/{NS}/events")["items"]
    sf = [e for e in evs if e["reason"] == "SwapFailed"]
    check(len(sf) == 1 and sf[0]["type"] == "Warning" and sf[0]["involvedObject"]["name"] == NAME,
          "one SwapFailed Warning event on the StageSet")
    check(re.search(r"HTTP [45]\d\d", sf[0]["message"]) and "3 of 3 swaps failed" in sf[0]["message"],
          f"the event quotes hostd's answer: {sf[0]['message']}")
    log(f"   event SwapFailed: {sf[0]['message'][:200]}")
    r = env.kubectl("get", "stagesets", "--no-headers")
    check(r.stdout.split()[:5] == [NAME, "True", "3", "3", "Complete"],
          f"get after the rollout completed: {r.stdout}")
    check(cond(outcome, "Progressing").get("status") == "True"
          and cond(ss, "Progressing").get("reason") == "Complete",
          "Progressing went True/SwapFailedRollingOut -> False/Complete")


def swap_succeeded(env, m0, gen0, hash0):
    """hostd hot-swapped: same pods, same template, new activeVersions."""
    pods0 = {p["metadata"]["name"] for p in env.get(PODS_PATH)["items"]}

    def done():
        ss, dep = env.get(SS_PATH), env.get(DEP_PATH)
        st = ss.get("status") or {}
        ok = (ss["metadata"]["generation"] == gen0 + 1 and st.get("observedGeneration") == gen0 + 1
              and cond(ss, "Ready").get("status") == "True")
        return (ss, dep) if ok else None
    ss, dep = wait_for("Ready after the hot-swap", done, 15)
    m1 = env.metrics()
    ok = (m1['observatory_operator_swaps_total{result="success"}']
          - m0['observatory_operator_swaps_total{result="success"}'])
    check(ok == 3, f"one swap on each of the 3 ready pods, all succeeded ({ok:.0f})")
    check(tmpl_hash(dep) == hash0, "the pod template is unchanged (no restart)")
    check({p["metadata"]["name"] for p in env.get(PODS_PATH)["items"]} == pods0, "the same pods run")
    av = {a["stage"]: (a["plugin"], a["version"]) for a in ss["status"]["activeVersions"]}
    check(av["parse"] == ("xf_json_jansson", "1.0.0"), f"activeVersions after the swap: {av}")
    evs = env.get(f"/api/v1/namespaces/{NS}/events")["items"]
    check(any(e["reason"] == "SwapSucceeded" for e in evs), "a SwapSucceeded event")
    log("   hot-swapped: same pods, same pod template")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if len(args) != 2:
        sys.exit(__doc__)
    build, src = (os.path.abspath(a) for a in args)
    keep = "--keep" in sys.argv
    operator = os.path.join(build, "operator", "observatory-operator")
    hostd = os.path.join(build, "core", "hostd")
    for f in (operator, hostd):
        if not os.access(f, os.X_OK):
            print(f"missing {f} (build the default target first)", file=sys.stderr)
            return 1
    if not shutil.which("kubectl"):
        print("kubectl not installed: skipping", file=sys.stderr)
        return 77
    tmp = tempfile.mkdtemp(prefix="obs-op-e2e-")
    env = Env(build, src, tmp)
    rc = 1
    try:
        run(env, operator, hostd)
        rc = 0
        log("PASS")
    except Failure as e:
        log(f"FAIL: {e}")
        for name in ("operator", "apiserver", "hostd"):
            print(f"--- {name}.log (tail) ---\n{env.logtail(name)}", file=sys.stderr)
    finally:
        for name in list(env.procs):
            env.stop(name)
        if keep or rc:
            print(f"(files kept in {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


def run(env, operator, hostd):
    src = env.src
    # -- 1. setup ----------------------------------------------------------------
    log("1. setup: test API server (record mode), kubectl apply CRD, namespace, RBAC, StageSet")
    port_file = os.path.join(env.tmp, "port")
    env.start("apiserver", [sys.executable, os.path.join(src, "tests", "k8s", "apiserver.py"),
                            "--port", "0", "--port-file", port_file, "--kubeconfig", env.kubeconfig,
                            "--record", env.record, "--bookmark-interval", "0.3",
                            "--ready-delay", "0.2"])
    wait_for("the API server's port file", lambda: os.path.exists(port_file), 15)
    with open(port_file) as f:
        env.url = f"http://127.0.0.1:{int(f.read())}"
    # Pods for the hot-swap: podIP 127.0.0.1, where a real hostd will listen.
    env.http("POST", "/_test/kubelet", {"pods": True, "pod_ip": "127.0.0.1"})
    env.kubectl("apply", "-f", os.path.join(src, "config", "crd", "stagesets.observatory.dev.yaml"))
    env.kubectl("wait", "--for=condition=Established", "crd/stagesets.observatory.dev", "--timeout=10s")
    env.kubectl("create", "namespace", "observatory-system")
    r = env.kubectl("apply", "-f", os.path.join(src, "config", "rbac", "rbac.yaml"))
    check("clusterrole.rbac.authorization.k8s.io/observatory-operator created" in r.stdout,
          "rbac.yaml applied: " + r.stdout)
    r = env.kubectl("apply", "-f", os.path.join(src, "config", "examples", "stageset.yaml"))
    check("stageset.observatory.dev/demo created" in r.stdout, "stageset.yaml applied")

    # -- 2. operator, Ready ---------------------------------------------------------
    log("2. operator out of cluster; kubectl wait --for=condition=Ready; kubectl get stagesets")
    env.metrics_port = free_port()
    env.hostd_port = free_port()
    env.start("operator", [operator, "--kubeconfig", env.kubeconfig,
                           "--metrics-addr", f"127.0.0.1:{env.metrics_port}",
                           "--lease-namespace", "observatory-system",
                           "--hostd-port", str(env.hostd_port)])
    env.kubectl("wait", "--for=condition=Ready", f"stageset/{NAME}", "--timeout=20s", timeout=30)
    log("   Ready")
    lease = env.get(LEASE_PATH)
    check(lease and lease["spec"].get("holderIdentity"), "the operator holds the Lease")
    r = env.kubectl("get", "stagesets")
    lines = r.stdout.strip().splitlines()
    check(lines[0].split() == ["NAME", "READY", "REPLICAS", "AVAILABLE", "STATUS", "AGE"],
          f"kubectl get stagesets columns: {lines[0]}")
    check(lines[1].split()[:5] == [NAME, "True", "1", "1", "Complete"],
          f"kubectl get stagesets row: {lines[1]}")
    log("   " + " | ".join(lines))
    r = env.kubectl("get", "stagesets", "-o", "wide")
    wide = r.stdout.strip().splitlines()
    check(wide[0].split() == ["NAME", "READY", "REPLICAS", "AVAILABLE", "STATUS", "CONFIG",
                              "EXPERIMENT", "AGE"], f"-o wide columns: {wide[0]}")
    ss = env.get(SS_PATH)
    check(wide[1].split()[5] == ss["status"]["configHash"], "CONFIG column is status.configHash")
    env.assert_no_violations("after create")

    # -- 3. children ------------------------------------------------------------
    log("3. children: ConfigMap (hostd --check), Deployment, Service, ownerReferences")
    cm, dep, svc = env.get(CM_PATH), env.get(DEP_PATH), env.get(SVC_PATH)
    check(cm and dep and svc, "ConfigMap, Deployment and Service exist")
    for kind, o in (("ConfigMap", cm), ("Deployment", dep), ("Service", svc)):
        check(owned_by(o, ss), f"{kind} is controlled by the StageSet (ownerReferences)")
        check(o["metadata"]["labels"].get("app.kubernetes.io/managed-by") == OPERATOR_UA,
              f"{kind} labelled managed-by {OPERATOR_UA}")
    _, out = hostd_check(env, cm["data"]["pipeline.yaml"], "initial")
    log(f"   hostd --check: {out}")
    check("pipeline 'demo', 4 stages" in out, "hostd sees the 4 stages")
    check(tmpl_hash(dep) == ss["status"]["configHash"], "pod template config hash == status.configHash")
    check(re.fullmatch(r"[0-9a-f]{16}", tmpl_hash(dep)), "config hash is 16 hex digits")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    check(c["resources"]["requests"] == c["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"},
          "exclusiveCores: requests == limits, whole CPUs")
    ann = svc["metadata"].get("annotations") or {}
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9464"
          and ann.get("prometheus.io/path") == "/metrics", f"Service scrape annotations: {ann}")
    ports = svc["spec"]["ports"]
    check(any(p["name"] == "metrics" and p["port"] == 9464 for p in ports), f"Service metrics port: {ports}")
    check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], "Service selects the pods")

    # -- 4. scale ------------------------------------------------------------------
    log("4. kubectl scale stageset/demo --replicas=3")
    hash_before = tmpl_hash(dep)
    env.kubectl("scale", f"stageset/{NAME}", "--replicas=3")
    ss, dep = wait_for("3 ready replicas in the StageSet's status",
                       lambda: (lambda r: r if r and r[0]["status"]["readyReplicas"] == 3 else None)(
                           settled(env)), 15)
    check(dep["spec"]["replicas"] == 3, "Deployment spec.replicas == 3")
    check(tmpl_hash(dep) == hash_before, "scaling leaves the pod template alone (no restart)")
    r = env.kubectl("get", "stagesets", "--no-headers")
    check(r.stdout.split()[:5] == [NAME, "True", "3", "3", "Complete"], f"get after scale: {r.stdout}")
    pods = wait_for("3 pods", lambda: (lambda p: p if p and len(p["items"]) == 3 else None)(
        env.get(PODS_PATH)), 5)
    log(f"   {r.stdout.strip()}  ({len(pods['items'])} pods)")
    env.assert_no_violations("after scale")

    # -- 5. idle --------------------------------------------------------------------
    log("5. idle: 3 s of bookmarks, a closed watch and a 410 relist -> no writes")
    time.sleep(0.5)  # let the last status write's own watch event come back
    m0, line0 = env.metrics(), env.record_lines()
    time.sleep(1.0)
    env.http("POST", "/_test/close-watches")
    time.sleep(0.7)
    env.http("POST", "/_test/expire-history", {"notify_watchers": True})
    time.sleep(1.3)
    m1 = env.metrics()
    writes = env.operator_writes(line0)
    lease_writes = [w for w in writes if w["path"] == LEASE_PATH]
    other = [f"{w['method']} {w['path']}" for w in writes if w["path"] != LEASE_PATH]
    check(not other, f"no operator writes while idle, got: {other}")
    ev = m1["observatory_operator_watch_events_total"] - m0["observatory_operator_watch_events_total"]
    lists = m1["observatory_operator_lists_total"] - m0["observatory_operator_lists_total"]
    rec = (m1['observatory_operator_reconcile_total{result="success"}']
           - m0['observatory_operator_reconcile_total{result="success"}'])
    check(ev >= 6, f"bookmarks kept arriving while idle ({ev:.0f} watch events)")
    check(lists >= 2, f"the 410 made both informers list again ({lists:.0f} lists)")
    check(rec >= 1, f"the relist reconciled the StageSet again ({rec:.0f} reconciles)")
    log(f"   3.0 s: {ev:.0f} watch events (bookmarks), {lists:.0f} relists, {rec:.0f} reconciles, "
        f"0 writes besides {len(lease_writes)} Lease renewals")

    # -- 6. plugin version change -> swap refused by hostd -> rollout ------------------
    log("6. plugin change of stage 'parse': hot-swap asked of hostd; a refused swap rolls out")
    cm = env.get(CM_PATH)
    hpath, _ = hostd_check(env, cm["data"]["pipeline.yaml"], "pod")
    # The "pods" all have podIP 127.0.0.1: one real hostd runs there, on the
    # rendered config (its own store and sink paths, a gentle load).
    with open(hpath) as f:
        text = f.read()
    text = text.replace('"/var/lib/observatory/ticks"', json.dumps(os.path.join(env.tmp, "ticks")))
    text = text.replace("rate: 200000", "rate: 1000")
    with open(hpath, "w") as f:
        f.write(text)
    env.start("hostd", [hostd, "--config", hpath, "--plugin-dir", os.path.join(env.build, "plugins"),
                        "--listen", f"127.0.0.1:{env.hostd_port}", "--store", os.path.join(env.tmp, "store"),
                        "--duration", "0", "-q"])

    def hostd_up():
        with urllib.request.urlopen(f"http://127.0.0.1:{env.hostd_port}/api/v1/stages", timeout=2) as r:
            return r.status == 200
    wait_for("hostd's HTTP API", hostd_up, 10)
    m0 = env.metrics()
    gen0 = ss["metadata"]["generation"]
    hash0 = tmpl_hash(dep)
    structure0 = dep["metadata"]["annotations"]["observatory.dev/structure-hash"]
    env.kubectl("patch", "stageset", NAME, "--type=json", "-p",
                json.dumps([{"op": "test", "path": "/spec/stages/1/name", "value": "parse"},
                            {"op": "replace", "path": "/spec/stages/1/plugin", "value": "xf_json_jansson"}]))
    outcome = wait_for("a swap outcome in Progressing", lambda: (
        lambda s: s if cond(s, "Progressing").get("reason") in ("SwapFailedRollingOut", "SwapSucceeded")
        else None)(env.get(SS_PATH)), 10)
    log(f"   Progressing: {cond(outcome, 'Progressing')['reason']}: "
        f"{cond(outcome, 'Progressing')['message'][:160]}")
    want = ("xf_json_jansson", "1.0.0")
    if cond(outcome, "Progressing")["reason"] == "SwapSucceeded":
        # hostd has its swap API: the hot-swap path, no restart. Then a swap
        # hostd must refuse (a version no plugin has) for the fallback.
        swap_succeeded(env, m0, gen0, hash0)
        log("   a version hostd cannot load: the swap must fail and roll out")
        m0, ss = env.metrics(), env.get(SS_PATH)
        gen0, hash0 = ss["metadata"]["generation"], tmpl_hash(env.get(DEP_PATH))
        env.kubectl("patch", "stageset", NAME, "--type=json", "-p",
                    json.dumps([{"op": "replace", "path": "/spec/stages/1/version", "value": "9.9.9"}]))
        want = ("xf_json_jansson", "9.9.9")
        outcome = wait_for("Progressing=SwapFailedRollingOut", lambda: (
            lambda s: s if cond(s, "Progressing").get("reason") == "SwapFailedRollingOut" else None)(
                env.get(SS_PATH)), 10)
        log(f"   Progressing: {cond(outcome, 'Progressing')['message'][:160]}")
    swap_failed(env, m0, gen0, hash0, structure0, outcome, want)
    if want[1] == "1.0.0":
        hostd_check(env, env.get(CM_PATH)["data"]["pipeline.yaml"], "after-change")
    env.stop("hostd")
    env.assert_no_violations("after the version change")
    ss, dep = env.get(SS_PATH), env.get(DEP_PATH)

    # -- 7. faults -------------------------------------------------------------------
    log("7. faults: 429, 500, dropped connections, split events, cut watch, 410; spec change")
    m0 = env.metrics()
    gen0 = ss["metadata"]["generation"]
    hash0 = ss["status"]["configHash"]
    faults = [
        {"action": "split_watch_events", "path": "/stagesets|/deployments", "count": 6},
        {"action": "status", "code": 429, "retry_after": 1, "method": "PATCH", "path": "/status$", "count": 2},
        {"action": "status", "code": 500, "method": "PATCH", "path": "/deployments/", "count": 2},
        {"action": "drop", "method": "PATCH", "path": "/configmaps/", "count": 2},
        {"action": "status", "code": 500, "method": "GET", "path": "/pods$", "count": 1},
        {"action": "drop_watch", "path": "/deployments", "after_events": 1, "count": 1},
    ]
    code, _ = env.http("POST", "/_test/faults", faults)
    check(code == 200, "faults installed")
    env.kubectl("patch", "stageset", NAME, "--type=merge", "-p", '{"spec":{"run":{"seed":43}}}')
    # The StageSet watch loses its history: an ERROR 410 inside the stream,
    # then the resume from the last resourceVersion gets HTTP 410.
    time.sleep(0.1)
    env.http("POST", "/_test/faults", {"action": "expire_history", "notify_watchers": True})
    t_change = time.monotonic()
    ss, dep = wait_for("convergence under faults", lambda: settled(env, gen0 + 1), 30)
    took = time.monotonic() - t_change
    check(ss["status"]["configHash"] != hash0, "the new config is applied")
    cm = env.get(CM_PATH)
    check("seed: 43" in cm["data"]["pipeline.yaml"], "ConfigMap carries seed 43")
    fired = env.http("GET", "/_test/faults")[1]["faults"]
    m1 = env.metrics()
    summary = ", ".join(f"{f['action']}{'/' + str(f.get('code')) if f.get('code') else ''}"
                        f"x{f['fired']}" for f in fired)
    check(all(f["fired"] >= 1 for f in fired), f"every fault fired: {summary}")
    errs = (m1['observatory_operator_reconcile_total{result="error"}']
            - m0['observatory_operator_reconcile_total{result="error"}'])
    gone = m1["observatory_operator_watch_gone_total"] - m0["observatory_operator_watch_gone_total"]
    check(errs >= 4, f"failed reconciles were retried ({errs:.0f})")
    check(gone >= 1, f"410 led to a relist ({gone:.0f})")
    env.http("DELETE", "/_test/faults")
    log(f"   converged in {took:.2f} s; fired: {summary}; {errs:.0f} reconcile errors retried, "
        f"{gone:.0f} relists on 410")
    env.assert_no_violations("after the faults")

    # -- 8. delete -----------------------------------------------------------------------
    log("8. kubectl delete stageset demo -> children garbage-collected")
    env.kubectl("delete", "stageset", NAME, "--wait=true", "--timeout=10s")
    wait_for("ConfigMap, Deployment, Service and pods gone", lambda: (
        env.get(CM_PATH) is None and env.get(DEP_PATH) is None and env.get(SVC_PATH) is None
        and not env.get(PODS_PATH)["items"]), 10)
    time.sleep(0.5)
    late = [f"{w['method']} {w['path']} -> {w['status']}" for w in env.operator_writes()
            if w["status"] >= 400 and w["status"] != 409]
    # (Injected faults are answered before a write is recorded; a 409 is the
    # optimistic-concurrency retry a controller is expected to see.)
    check(not late, f"no operator write was refused: {late}")

    # -- 9. stop ------------------------------------------------------------------------
    log("9. SIGTERM the operator: exits 0, releases the Lease")
    rc = env.stop("operator", timeout=10)
    check(rc == 0, f"operator exit status 0 (got {rc})")
    lease = env.get(LEASE_PATH)
    check(lease["spec"].get("holderIdentity", "") == "", f"Lease released: {lease['spec']}")
    env.assert_no_violations("at the end")
    n = len(env.operator_writes())
    log(f"   {n} operator writes in all, 0 schema violations")


if __name__ == "__main__":
    sys.exit(main())
