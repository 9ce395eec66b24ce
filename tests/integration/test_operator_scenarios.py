#!/usr/bin/env python3
"""observatory-operator against the test API server (tests/k8s/) with the real
kubectl: one scenario per run, each a few seconds and bounded.

    python3 tests/integration/test_operator_scenarios.py BUILD_DIR SOURCE_DIR SCENARIO [-v] [--keep]
        [--operator PATH]

Every scenario starts a fresh server (record mode, Strict field validation,
schema audit of every operator write), `kubectl apply`s the CRD and
config/examples/stageset.yaml, starts the operator out of cluster (no leader
election) and waits until `kubectl wait --for=condition=Ready` succeeds. Then:

  relist        the API server restarts on empty storage (resourceVersions
                start again at 1): the operator's watch resume is answered 504
                "Too large resource version"; it must list again, so a
                StageSet created afterwards is reconciled within 10 s.
  apply-failed  every ConfigMap write fails (422) after a spec change:
                Progressing=False/ApplyFailed and Ready=False with the API's
                message, Degraded=True, status.observedGeneration stays behind
                while the conditions carry the new generation, one Warning
                event; once writes succeed again, Ready for the new generation.
  too-large     a ConfigMap over 1 MiB is refused by the server (kubectl
                create); a StageSet whose params would render one is reported
                InvalidSpec (naming the 1048576-byte limit) with a Warning
                event, and the operator never sends that ConfigMap.
  conflicts     a spec change under three 409s, two 429s (Retry-After: 1),
                two dropped connections and two 410s on the StageSet watch
                converges within 8 s (a 409 is retried at once, a 429 after
                Retry-After, neither counts towards the exponential backoff).
  drift         a hand-edited and then a deleted ConfigMap are repaired within
                5 s (the operator watches its ConfigMaps).
  hardening     the pod template is hardened (runAsNonRoot,
                readOnlyRootFilesystem, no privilege escalation, capabilities
                drop ALL, seccomp RuntimeDefault, default resources); a
                PodDisruptionBudget and a NetworkPolicy exist; realtimePriority
                adds SYS_NICE and says so (condition and Warning event).
  exclusive     exclusive cores roll out without a surge pod (maxSurge 0,
                maxUnavailable 1).
  small         nested params are refused by the CRD (kubectl apply fails);
                workqueue_depth is 0 once idle; every field of the CRD has a
                description (kubectl explain); install-k3s.sh updates the
                package lists before installing.
  memory        100 StageSets, listed again after an expired history: the
                operator's private memory (/metrics, from smaps_rollup) stays
                at or under 5 MiB, reported apart from shared libraries.
GET /_test/violations must be empty at the end of every scenario.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_operator_e2e import (CM_PATH, DEP_PATH, NAME, NS, SS_PATH, Env, Failure,  # noqa: E402
                               check, cond, free_port, log, settled, wait_for)

EVENTS_PATH = f"/api/v1/namespaces/{NS}/events"


def events(env, reason):
    return [e for e in env.get(EVENTS_PATH)["items"] if e["reason"] == reason]


def setup(env, operator, ready_delay="0.1"):
    src = env.src
    port_file = os.path.join(env.tmp, "port")
    env.start("apiserver", [sys.executable, os.path.join(src, "tests", "k8s", "apiserver.py"),
                            "--port", "0", "--port-file", port_file, "--kubeconfig", env.kubeconfig,
                            "--record", env.record, "--bookmark-interval", "0.3",
                            "--ready-delay", ready_delay])
    wait_for("the API server's port file", lambda: os.path.exists(port_file), 15)
    with open(port_file) as f:
        env.url = f"http://127.0.0.1:{int(f.read())}"
    env.kubectl("apply", "-f", os.path.join(src, "config", "crd", "stagesets.observatory.dev.yaml"))
    env.kubectl("wait", "--for=condition=Established", "crd/stagesets.observatory.dev", "--timeout=10s")
    env.kubectl("apply", "-f", os.path.join(src, "config", "examples", "stageset.yaml"))
    env.metrics_port = free_port()
    env.start("operator", [operator, "--kubeconfig", env.kubeconfig, "--leader-elect", "false",
                           "--metrics-addr", f"127.0.0.1:{env.metrics_port}"])
    env.kubectl("wait", "--for=condition=Ready", f"stageset/{NAME}", "--timeout=20s", timeout=30)
    log("setup: operator running, StageSet Ready")


def patch_spec(env, spec):
    env.kubectl("patch", "stageset", NAME, "--type=merge", "-p", json.dumps({"spec": spec}))


# -- 1. resourceVersion going backwards ---------------------------------------------
def t_relist(env):
    code, _ = env.http("POST", "/_test/reset")
    check(code == 200, "the API server lost its storage")
    check(env.get(SS_PATH) is None, "the StageSet is gone with it")
    # Let the operator's watches hit the server at their old resourceVersion.
    time.sleep(1.0)
    env.kubectl("apply", "-f", os.path.join(env.src, "config", "examples", "stageset.yaml"))
    t = time.monotonic()
    wait_for("the re-created StageSet reconciled", lambda: env.get(CM_PATH), 10)
    env.kubectl("wait", "--for=condition=Ready", f"stageset/{NAME}", "--timeout=10s", timeout=20)
    log(f"   re-created StageSet reconciled in {time.monotonic() - t:.2f} s")


# -- 2. write failures reach the user -------------------------------------------------
def t_apply_failed(env):
    gen0 = env.get(SS_PATH)["metadata"]["generation"]
    msg = 'ConfigMap "demo-pipeline" is invalid: data: injected by the test'
    env.http("POST", "/_test/faults", {"action": "status", "code": 422, "method": "PATCH",
                                       "path": "/configmaps/", "count": -1, "message": msg})
    patch_spec(env, {"run": {"seed": 7}})

    def failed():
        ss = env.get(SS_PATH)
        p = cond(ss, "Progressing")
        return ss if p.get("reason") == "ApplyFailed" else None
    ss = wait_for("Progressing=ApplyFailed", failed, 10)
    st = ss["status"]
    p, r, d = cond(ss, "Progressing"), cond(ss, "Ready"), cond(ss, "Degraded")
    check(p["status"] == "False" and msg in p["message"], f"Progressing False, API message: {p}")
    check(r["status"] == "False" and r["reason"] == "ApplyFailed", f"Ready False: {r}")
    check(d["status"] == "True" and d["reason"] == "ApplyFailed", f"Degraded True: {d}")
    check(st["observedGeneration"] == gen0, "status.observedGeneration stays at the applied generation")
    check(p["observedGeneration"] == gen0 + 1, "the conditions are about the new generation")
    wait_for("the ApplyFailed event", lambda: events(env, "ApplyFailed"), 5)
    time.sleep(2.0)  # several retries
    ev = events(env, "ApplyFailed")
    check(len(ev) == 1 and ev[0]["type"] == "Warning" and msg in ev[0]["message"],
          f"one ApplyFailed Warning event quoting the API: {[e['message'] for e in ev]}")
    r = env.kubectl("get", "stagesets", "--no-headers")
    check(r.stdout.split()[1] == "False" and "ApplyFailed" in r.stdout, f"kubectl get: {r.stdout}")
    env.http("DELETE", "/_test/faults")
    wait_for("Ready for the new generation", lambda: settled(env, gen0 + 1), 10)
    check("seed: 7" in env.get(CM_PATH)["data"]["pipeline.yaml"], "the ConfigMap has the change")


# -- 3. oversized specs ------------------------------------------------------------------
def t_too_large(env):
    big = os.path.join(env.tmp, "big.txt")
    with open(big, "w") as f:
        f.write("x" * (1 << 20) + "x")
    r = env.kubectl("create", "configmap", "big", f"--from-file=big={big}", ok=False)
    check(r.returncode != 0 and "1048576" in r.stderr, f"a 1 MiB + 1 byte ConfigMap is refused: {r.stderr}")
    ss = env.get(SS_PATH)
    gen0, hash0 = ss["metadata"]["generation"], ss["status"]["configHash"]
    lines0 = env.record_lines()
    param = json.dumps([{"op": "add", "path": "/spec/stages/2/params/blob", "value": "y" * 1300000}])
    pf = os.path.join(env.tmp, "patch.json")
    with open(pf, "w") as f:
        f.write(param)
    env.kubectl("patch", "stageset", NAME, "--type=json", "--patch-file", pf)

    def invalid():
        ss = env.get(SS_PATH)
        d = cond(ss, "Degraded")
        return ss if d.get("reason") == "InvalidSpec" and d.get("observedGeneration") == gen0 + 1 else None
    ss = wait_for("Degraded=InvalidSpec", invalid, 10)
    d = cond(ss, "Degraded")
    check("1048576" in d["message"] and "ConfigMap" in d["message"], f"the message names the limit: {d['message']}")
    check(ss["status"]["configHash"] == hash0, "configHash unchanged")
    ev = wait_for("the InvalidSpec event", lambda: events(env, "InvalidSpec"), 5)
    time.sleep(1.0)  # retries must not repeat it
    ev = events(env, "InvalidSpec")
    check(len(ev) == 1 and ev[0]["type"] == "Warning" and "1048576" in ev[0]["message"],
          "one InvalidSpec Warning event")
    cm_writes = [w for w in env.operator_writes(lines0) if "/configmaps/" in w["path"]]
    check(not cm_writes, f"no ConfigMap write was attempted: {[w['status'] for w in cm_writes]}")


# -- 7. conflicts and 429s ------------------------------------------------------------
def t_conflicts(env):
    gen0 = env.get(SS_PATH)["metadata"]["generation"]
    faults = [
        {"action": "status", "code": 409, "method": "PATCH", "path": "/stagesets/demo/status$", "count": 3,
         "message": "Operation cannot be fulfilled: the object has been modified"},
        {"action": "status", "code": 429, "retry_after": 1, "method": "PATCH", "path": "/configmaps/",
         "count": 2},
        {"action": "drop", "method": "GET", "path": "/deployments/demo$", "count": 2},
        {"action": "status", "code": 410, "method": "GET", "path": "/stagesets$", "count": 1},
    ]
    env.http("POST", "/_test/faults", faults)
    patch_spec(env, {"run": {"seed": 8}})
    env.http("POST", "/_test/faults", {"action": "expire_history", "notify_watchers": True})
    t = time.monotonic()
    wait_for("convergence", lambda: settled(env, gen0 + 1), 30)
    took = time.monotonic() - t
    fired = env.http("GET", "/_test/faults")[1]["faults"]
    check(all(f["fired"] == f.get("count", 1) for f in fired), f"every fault fired: {fired}")
    log(f"   converged in {took:.2f} s")
    check(took <= 8.0, f"converged within 8 s ({took:.2f} s)")


# -- 4. drift of the ConfigMap ------------------------------------------------------------
def t_drift(env):
    good = env.get(CM_PATH)["data"]["pipeline.yaml"]
    env.kubectl("patch", "configmap", f"{NAME}-pipeline", "--type=merge",
                "-p", json.dumps({"data": {"pipeline.yaml": "pipeline: edited\n"}}))
    t = time.monotonic()
    wait_for("the edited ConfigMap repaired",
             lambda: env.get(CM_PATH)["data"]["pipeline.yaml"] == good, 5)
    log(f"   edit repaired in {time.monotonic() - t:.2f} s")
    env.kubectl("delete", "configmap", f"{NAME}-pipeline")
    t = time.monotonic()
    wait_for("the deleted ConfigMap re-created",
             lambda: (env.get(CM_PATH) or {}).get("data", {}).get("pipeline.yaml") == good, 5)
    log(f"   deletion repaired in {time.monotonic() - t:.2f} s")


# -- 5. hardened pods ------------------------------------------------------------------------
PDB_PATH = f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{NAME}"
NETPOL_PATH = f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/{NAME}"


def t_hardening(env):
    ss, dep = env.get(SS_PATH), env.get(DEP_PATH)
    pod = dep["spec"]["template"]["spec"]
    psc = pod.get("securityContext") or {}
    check(psc.get("runAsNonRoot") is True and psc.get("seccompProfile") == {"type": "RuntimeDefault"},
          f"pod securityContext: {psc}")
    c = pod["containers"][0]
    sc = c.get("securityContext") or {}
    check(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
          and sc.get("capabilities", {}).get("drop") == ["ALL"] and "add" not in sc["capabilities"],
          f"container securityContext: {sc}")
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    check({"/var/lib/observatory", "/tmp"} <= mounts and "emptyDir" in vols["store"]
          and "emptyDir" in vols["tmp"], f"writable paths are emptyDirs: {mounts}")
    check(not cond(ss, "CapabilitiesAdded"), "no CapabilitiesAdded condition without realtimePriority")
    pdb, np = env.get(PDB_PATH), env.get(NETPOL_PATH)
    check(pdb and pdb["spec"]["maxUnavailable"] == 1
          and pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"],
          f"PodDisruptionBudget: {pdb and pdb['spec']}")
    check(np and np["spec"]["policyTypes"] == ["Ingress"]
          and np["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"],
          f"NetworkPolicy: {np and np['spec']}")
    allowed = [f["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for f in np["spec"]["ingress"][0]["from"]]
    check(sorted(allowed) == ["observatory-operator", "prometheus"], f"ingress only from {allowed}")
    for o in (pdb, np):
        check(any(r["kind"] == "StageSet" and r["controller"] for r in o["metadata"]["ownerReferences"]),
              f"{o['kind']} is controlled by the StageSet")
    # No resources in the spec: defaults rather than {}.
    patch_spec(env, {"resources": None})
    wait_for("default resources", lambda: env.get(DEP_PATH)["spec"]["template"]["spec"]["containers"][0]
             ["resources"].get("requests", {}).get("cpu") == "500m", 10)
    # realtimePriority: SYS_NICE, said in status and with a Warning event.
    patch_spec(env, {"run": {"realtimePriority": 10}})
    ss = wait_for("CapabilitiesAdded", lambda: (lambda s: s if cond(s, "CapabilitiesAdded") else None)(
        env.get(SS_PATH)), 10)
    ca = cond(ss, "CapabilitiesAdded")
    check(ca["status"] == "True" and "SYS_NICE" in ca["message"] and "baseline" in ca["message"],
          f"condition: {ca}")
    sc = env.get(DEP_PATH)["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    check(sc["capabilities"].get("add") == ["SYS_NICE"] and sc["capabilities"]["drop"] == ["ALL"],
          f"SYS_NICE added: {sc}")
    ev = wait_for("the CapabilitiesAdded event", lambda: events(env, "CapabilitiesAdded"), 5)
    check(ev[0]["type"] == "Warning", "a Warning event")


# -- 6. exclusive cores roll out without a surge ---------------------------------------------
def t_exclusive(env):
    dep = env.get(DEP_PATH)
    st = dep["spec"]["strategy"]
    check(st.get("type") == "RollingUpdate" and st["rollingUpdate"].get("maxSurge") == 0
          and st["rollingUpdate"].get("maxUnavailable") == 1, f"no surge pod with exclusive cores: {st}")
    patch_spec(env, {"resources": {"exclusiveCores": None, "memory": None,
                                   "requests": {"cpu": "1"}}})
    wait_for("the default strategy without exclusive cores",
             lambda: env.get(DEP_PATH)["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%", 10)


# -- 8. smaller ones -------------------------------------------------------------------------
def t_small(env):
    # Nested params: refused by the CRD schema, with the field named.
    nested = json.dumps({"spec": {"stages": [
        {"name": "ticks", "kind": "generator", "plugin": "gen_market"},
        {"name": "w", "kind": "transform", "plugin": "xf_window", "params": {"window": {"ms": 1000}}},
        {"name": "l", "kind": "transform", "plugin": "xf_window", "params": {"ids": [1, 2]}},
        {"name": "e", "kind": "transform", "plugin": "xf_window", "params": {"empty": {}}},
        {"name": "store", "kind": "sink", "plugin": "sink_null", "params": {"ok": 1.5, "b": True, "s": "x"}}]}})
    r = env.kubectl("patch", "stageset", NAME, "--type=merge", "-p", nested, ok=False)
    check(r.returncode != 0 and "spec.stages[1].params.window" in r.stderr
          and "spec.stages[2].params.ids" in r.stderr and "spec.stages[3].params.empty" in r.stderr
          and "spec.stages[4]" not in r.stderr, f"nested params refused: {r.stderr}")
    # The work queue's depth counts work to do, not keys waiting for their resync.
    time.sleep(1.5)  # the gauges are sampled every second
    m = env.metrics()
    check(m.get("observatory_operator_workqueue_depth") == 0
          and m.get("observatory_operator_workqueue_waiting") == 1,
          "idle: depth 0, one key waiting for its resync: "
          f"{m.get('observatory_operator_workqueue_depth')}, {m.get('observatory_operator_workqueue_waiting')}")
    # kubectl explain: every field has a description.
    crd = json.loads(env.kubectl("get", "crd", "stagesets.observatory.dev", "-o", "json").stdout)
    missing = []

    def walk(node, path):
        for k, v in (node.get("properties") or {}).items():
            if not v.get("description"):
                missing.append(path + k)
            walk(v, path + k + ".")
        if isinstance(node.get("items"), dict):
            walk(node["items"], path)
    walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    check(not missing, f"fields without a description: {missing}")
    r = env.kubectl("explain", "stagesets.spec.stages.params")
    check("flat mapping of scalars" in r.stdout, f"kubectl explain shows it: {r.stdout[:400]}")
    # install-k3s.sh updates the package lists before it installs a package.
    r = subprocess.run(["bash", os.path.join(env.src, "packaging", "k3s", "install-k3s.sh"), "--dry-run"],
                       capture_output=True, text=True, timeout=30)
    cmds = [ln for ln in r.stdout.splitlines() if ln.startswith("+ ") and "apt-get" in ln]
    check(cmds and "apt-get update" in cmds[0], f"apt-get update before install: {cmds}")


# -- 9. memory ---------------------------------------------------------------------------------
def smaps(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def t_memory(env):
    pid = env.procs["operator"].pid
    base = smaps(pid)
    with open(os.path.join(env.src, "config", "examples", "stageset.yaml")) as f:
        example = f.read()
    docs = [example.replace("name: demo", f"name: load-{i:03d}", 1) for i in range(100)]
    path = os.path.join(env.tmp, "many.yaml")
    with open(path, "w") as f:
        f.write("\n---\n".join(docs))
    env.kubectl("apply", "-f", path, timeout=120)

    def all_reconciled():
        items = env.get(f"/apis/observatory.dev/v1alpha1/namespaces/{NS}/stagesets")["items"]
        return sum(1 for o in items if (o.get("status") or {}).get("configHash")) == 101
    wait_for("101 StageSets reconciled", all_reconciled, 120, interval=1.0)
    # Everything listed again: the history expires under the open watches.
    env.http("POST", "/_test/faults", {"action": "expire_history", "notify_watchers": True})
    time.sleep(3.0)
    m = env.metrics()
    now = smaps(pid)
    anon = now["Anonymous"]
    with open(f"/proc/{pid}/status") as f:
        hwm = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 1024
    log(f"   start: Rss {base['Rss'] / 2**20:.1f} MiB, anonymous {base['Anonymous'] / 2**20:.2f} MiB; "
        f"after 100 StageSets and a relist: Rss {now['Rss'] / 2**20:.1f} MiB "
        f"(shared {(now['Shared_Clean'] + now['Shared_Dirty']) / 2**20:.1f}, "
        f"private {(now['Private_Clean'] + now['Private_Dirty']) / 2**20:.1f}, "
        f"anonymous {anon / 2**20:.2f} MiB); peak Rss {hwm:.1f} MiB")
    key = 'observatory_operator_memory_bytes{kind="anonymous"}'
    check(key in m, "the operator reports its anonymous memory on /metrics")
    check(abs(m[key] - anon) <= 512 * 1024, f"/metrics agrees with smaps_rollup ({m[key]:.0f} vs {anon})")
    check('observatory_operator_memory_bytes{kind="shared_clean"}' in m, "and the shared part apart")
    check(anon <= 5 * 2**20, f"anonymous memory with 100 StageSets <= 5 MiB ({anon / 2**20:.2f} MiB)")


SCENARIOS = {"relist": t_relist, "apply-failed": t_apply_failed, "too-large": t_too_large,
             "conflicts": t_conflicts, "drift": t_drift, "hardening": t_hardening,
             "exclusive": t_exclusive, "small": t_small, "memory": t_memory}


def main():
    argv = sys.argv[1:]
    operator = None
    if "--operator" in argv:
        i = argv.index("--operator")
        operator = argv[i + 1]
        del argv[i:i + 2]
    args = [a for a in argv if not a.startswith("-")]
    if len(args) != 3 or args[2] not in SCENARIOS:
        sys.exit(__doc__ + "\nscenarios: " + ", ".join(SCENARIOS))
    build, src = (os.path.abspath(a) for a in args[:2])
    operator = operator or os.path.join(build, "operator", "observatory-operator")
    if not os.access(operator, os.X_OK):
        print(f"missing {operator}", file=sys.stderr)
        return 1
    if not shutil.which("kubectl"):
        print("kubectl not installed: skipping", file=sys.stderr)
        return 77
    tmp = tempfile.mkdtemp(prefix=f"obs-op-{args[2]}-")
    env = Env(build, src, tmp)
    rc = 1
    try:
        setup(env, operator)
        log(f"scenario {args[2]}")
        SCENARIOS[args[2]](env)
        env.assert_no_violations(args[2])
        rc = 0
        log("PASS")
    except Failure as e:
        log(f"FAIL: {e}")
        for name in ("operator", "apiserver"):
            print(f"--- {name}.log (tail) ---\n{env.logtail(name)}", file=sys.stderr)
    finally:
        for name in list(env.procs):
            env.stop(name)
        if "--keep" in sys.argv or rc:
            print(f"(files kept in {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
