#!/usr/bin/env python3
"""Benchmark of observatory-operator against the test API server (loopback).

    python3 tests/bench/bench_operator.py BUILD_DIR [SOURCE_DIR] [--stagesets 100]
                                          [--changes 5] [--samples 5] [--json FILE]

  1. creates N StageSets (config/examples/stageset.yaml, renamed ss-000..),
     waits until every one is Ready (the test server's simulated kubelet
     makes the Deployments ready);
  2. RSS: VmRSS and VmHWM of the operator from /proc/<pid>/status, SAMPLES
     samples 0.5 s apart while idle; the median is reported (target: VmRSS
     <= 5 MiB; Go controllers idle at 30-50 MB); also the operator's CPU time
     and its writes (Lease renewals apart) over that idle window;
  3. change latency: CHANGES times, a merge patch of one StageSet's
     spec.run.seed sent straight to the server, timed until the watch
     (opened before) delivers both the ConfigMap with the new content and the
     Deployment with the new pod-template config hash; median, min, max
     (target: median <= 100 ms on loopback).

The time includes the Python test server's own work (admission, schema
validation, JSON, watch fan-out) for the patch, the operator's GETs and its
applies: it is an upper bound of the operator's share. Prints the commands it
runs and the targets. Exit status 0 when it ran (targets are reported, not
enforced), 1 on an error.
"""
import argparse
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

RSS_TARGET_KIB = 5 * 1024
LATENCY_TARGET_MS = 100.0
NS = "default"
OPERATOR_UA = "observatory-operator"
LEASE = "/leases/observatory-operator"
HASH = "observatory.dev/config-hash"


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url):
        self.url = url

    def req(self, method, path, body=None, ctype="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.url + path, data=data, method=method,
                                   headers={"Content-Type": ctype, "User-Agent": "bench-operator"})
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def example_stageset(kubectl, src):
    """config/examples/stageset.yaml as JSON (kubectl does the YAML)."""
    r = subprocess.run(kubectl + ["create", "--dry-run=client", "-o", "json", "-f",
                        os.path.join(src, "config", "examples", "stageset.yaml")],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"kubectl could not read the example: {r.stderr}")
    return json.loads(r.stdout)


class Watch(threading.Thread):
    """One watch stream; every event goes to a queue with its arrival time."""

    def __init__(self, url, path, rv):
        super().__init__(daemon=True)
        self.url = f"{url}{path}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"
        self.q = queue.Queue()

    def run(self):
        try:
            with urllib.request.urlopen(self.url, timeout=600) as r:
                for line in r:
                    t = time.monotonic()
                    ev = json.loads(line)
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self.q.put((t, ev["object"]))
        except Exception as e:  # the benchmark notices missing events
            self.q.put((time.monotonic(), {"error": repr(e)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("src", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--stagesets", type=int, default=100)
    ap.add_argument("--changes", type=int, default=5)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    build, src = os.path.abspath(a.build), os.path.abspath(a.src)
    operator = os.path.join(build, "operator", "observatory-operator")
    if not os.access(operator, os.X_OK):
        sys.exit(f"bench_operator: no {operator} (ninja -C {build} observatory-operator)")
    tmp = tempfile.mkdtemp(prefix="obs-op-bench-")
    kc, record, port_file = (os.path.join(tmp, n) for n in ("kubeconfig", "writes.jsonl", "port"))
    procs = []
    try:
        argv = [sys.executable, os.path.join(src, "tests", "k8s", "apiserver.py"), "--port", "0",
                "--port-file", port_file, "--kubeconfig", kc, "--record", record,
                "--ready-delay", "0.05", "--history", "100000"]
        log("$ " + " ".join(argv))
        procs.append(subprocess.Popen(argv, stdout=open(os.path.join(tmp, "apiserver.log"), "w"),
                                      stderr=subprocess.STDOUT))
        for _ in range(300):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        srv = Server(f"http://127.0.0.1:{int(open(port_file).read())}")
        kubectl = ["kubectl", "--kubeconfig", kc, "--cache-dir", os.path.join(tmp, "kcache")]
        for cmd in (["apply", "-f", os.path.join(src, "config", "crd", "stagesets.observatory.dev.yaml")],
                    ["wait", "--for=condition=Established", "crd/stagesets.observatory.dev"],
                    ["create", "namespace", "observatory-system"]):
            log("$ kubectl " + " ".join(cmd))
            subprocess.run(kubectl + cmd, check=True, capture_output=True, timeout=30)

        metrics_port = free_port()
        argv = [operator, "--kubeconfig", kc, "--metrics-addr", f"127.0.0.1:{metrics_port}",
                "--lease-namespace", "observatory-system"]
        log("$ " + " ".join(argv))
        op = subprocess.Popen(argv, stdout=open(os.path.join(tmp, "operator.log"), "w"),
                              stderr=subprocess.STDOUT)
        procs.append(op)
        time.sleep(0.3)
        base = proc_status(op.pid)

        # -- N StageSets, all Ready ---------------------------------------------------
        proto = example_stageset(kubectl, src)
        n = a.stagesets
        log(f"# creating {n} StageSets (config/examples/stageset.yaml as ss-000..ss-{n - 1:03d}) "
            "with POST /apis/observatory.dev/v1alpha1/namespaces/default/stagesets")
        t0 = time.monotonic()
        ss_path = f"/apis/observatory.dev/v1alpha1/namespaces/{NS}/stagesets"
        for i in range(n):
            obj = json.loads(json.dumps(proto))
            obj["metadata"] = {"name": f"ss-{i:03d}", "namespace": NS}
            code, out = srv.req("POST", ss_path, obj)
            if code != 201:
                raise SystemExit(f"create ss-{i:03d}: {code} {out}")
        t_created = time.monotonic() - t0

        def n_ready():
            _, lst = srv.req("GET", ss_path)
            return sum(1 for s in lst["items"]
                       if (s.get("status") or {}).get("observedGeneration") == s["metadata"]["generation"]
                       and any(c["type"] == "Ready" and c["status"] == "True"
                               for c in s["status"].get("conditions") or []))
        deadline = time.monotonic() + 120
        while (ready := n_ready()) < n:
            if time.monotonic() > deadline or op.poll() is not None:
                raise SystemExit(f"only {ready}/{n} StageSets Ready after 120 s")
            time.sleep(0.2)
        t_ready = time.monotonic() - t0
        log(f"  {n} created in {t_created:.2f} s, all Ready after {t_ready:.2f} s")

        # -- RSS, idle -------------------------------------------------------------------
        time.sleep(1.0)
        with open(record) as f:
            line0 = sum(1 for _ in f)
        cpu0, w0 = cpu_seconds(op.pid), time.monotonic()
        samples = []
        for i in range(a.samples):
            if i:
                time.sleep(0.5)
            samples.append(proc_status(op.pid))
        idle_s = time.monotonic() - w0
        idle_cpu = cpu_seconds(op.pid) - cpu0
        with open(record) as f:
            writes = [json.loads(x) for i, x in enumerate(f) if i >= line0]
        idle_writes = [w for w in writes if OPERATOR_UA in (w.get("userAgent") or "")
                       and not w["path"].endswith(LEASE)]
        rss = statistics.median(s["VmRSS"] for s in samples)
        hwm = statistics.median(s["VmHWM"] for s in samples)
        log(f"# operator /proc/{op.pid}/status, {a.samples} samples 0.5 s apart, idle with {n} StageSets:")
        log(f"  VmRSS median {rss} KiB ({rss / 1024:.2f} MiB; samples "
            f"{[s['VmRSS'] for s in samples]}), VmHWM {hwm} KiB ({hwm / 1024:.2f} MiB), "
            f"threads {samples[-1]['Threads']}; at start (0 StageSets) VmRSS {base['VmRSS']} KiB")
        anon = statistics.median(s["RssAnon"] for s in samples)
        rfile = statistics.median(s["RssFile"] for s in samples)
        log(f"  of which RssAnon {anon} KiB (heap, stacks: the operator's own) and RssFile {rfile} KiB "
            f"(mapped shared libraries; at start RssAnon {base['RssAnon']}, RssFile {base['RssFile']})")
        log(f"  idle {idle_s:.1f} s: CPU {idle_cpu * 1000:.0f} ms, {len(idle_writes)} writes "
            "(Lease renewals apart)")
        log(f"  target VmRSS <= {RSS_TARGET_KIB} KiB: {'MET' if rss <= RSS_TARGET_KIB else 'MISSED'}")

        # -- change -> children applied -----------------------------------------------------
        _, st = srv.req("GET", "/_test/state")
        rv = st["resourceVersion"]
        wcm = Watch(srv.url, f"/api/v1/namespaces/{NS}/configmaps", rv)
        wdep = Watch(srv.url, f"/apis/apps/v1/namespaces/{NS}/deployments", rv)
        wcm.start()
        wdep.start()
        time.sleep(0.3)
        lat, parts = [], []
        log(f"# {a.changes} changes: PATCH (merge) {ss_path}/ss-NNN {{\"spec\":{{\"run\":{{\"seed\":S}}}}}}, "
            "timed to the watch events of the new ConfigMap and Deployment")
        for k in range(a.changes):
            name = f"ss-{(k * 37) % n:03d}"
            seed = 1000 + k
            want = f"seed: {seed}"
            _, dep = srv.req("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")
            old_hash = dep["spec"]["template"]["metadata"]["annotations"][HASH]
            t_send = time.monotonic()
            code, out = srv.req("PATCH", f"{ss_path}/{name}", {"spec": {"run": {"seed": seed}}},
                                "application/merge-patch+json")
            t_acked = time.monotonic()
            if code != 200:
                raise SystemExit(f"patch {name}: {code} {out}")
            t_cm = t_dep = None
            end = time.monotonic() + 10
            while (t_cm is None or t_dep is None) and time.monotonic() < end:
                for w in (wcm, wdep):
                    try:
                        t, obj = w.q.get(timeout=0.01)
                    except queue.Empty:
                        continue
                    if "error" in obj:
                        raise SystemExit(f"watch failed: {obj['error']}")
                    md = obj["metadata"]
                    if obj["kind"] == "ConfigMap" and md["name"] == f"{name}-pipeline" and \
                            want in obj["data"]["pipeline.yaml"]:
                        t_cm = t
                    if obj["kind"] == "Deployment" and md["name"] == name and \
                            obj["spec"]["template"]["metadata"]["annotations"][HASH] != old_hash:
                        t_dep = t
            if t_cm is None or t_dep is None:
                raise SystemExit(f"change {k}: children not applied within 10 s")
            ms = (max(t_cm, t_dep) - t_send) * 1000
            lat.append(ms)
            parts.append({"stageset": name, "patch_ms": (t_acked - t_send) * 1000,
                          "configmap_ms": (t_cm - t_send) * 1000, "deployment_ms": (t_dep - t_send) * 1000})
            log(f"  {name}: patch acknowledged {parts[-1]['patch_ms']:.1f} ms, ConfigMap "
                f"{parts[-1]['configmap_ms']:.1f} ms, Deployment {parts[-1]['deployment_ms']:.1f} ms")
            time.sleep(0.5)  # let the rollout and status settle before the next one
        med = statistics.median(lat)
        log(f"  change -> children applied: median {med:.1f} ms (min {min(lat):.1f}, max {max(lat):.1f}, "
            f"n={len(lat)})")
        log(f"  target median <= {LATENCY_TARGET_MS:.0f} ms: {'MET' if med <= LATENCY_TARGET_MS else 'MISSED'}")
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            m = {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1]) for l in r.read().decode().splitlines()
                 if l and not l.startswith("#")}
        rec_ok = m['observatory_operator_reconcile_total{result="success"}']
        log(f"# operator: {rec_ok:.0f} reconciles, {m['observatory_operator_reconcile_seconds_total']:.3f} s "
            f"reconciling in all ({m['observatory_operator_reconcile_seconds_total'] / rec_ok * 1000:.2f} ms "
            "each, API round trips included)")
        _, v = srv.req("GET", "/_test/violations")
        if v["violations"]:
            log(f"bench_operator: {len(v['violations'])} schema violations: {json.dumps(v['violations'])[:2000]}")
            return 1
        res = {"stagesets": n, "ready_s": t_ready, "vmrss_kib": rss, "vmhwm_kib": hwm,
               "vmrss_kib_start": base["VmRSS"],
               "rssanon_kib": anon, "rssfile_kib": rfile, "idle_cpu_ms": idle_cpu * 1000, "idle_s": idle_s,
               "idle_writes": len(idle_writes), "change_ms_median": med, "change_ms": lat,
               "changes": parts, "targets": {"vmrss_kib": RSS_TARGET_KIB, "change_ms": LATENCY_TARGET_MS}}
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if a.keep:
            log(f"(files kept in {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
