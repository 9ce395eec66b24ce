"""Background controllers that stand in for the rest of a cluster.

Kubelet: after `ready_delay` seconds of a Deployment's spec being unobserved,
writes its status as if every replica became ready (replicas, updated,
ready, available, observedGeneration, Available/Progressing conditions), so
the operator's own conditions can progress. `max_ready` caps readiness to
let tests drive a Degraded state; `paused` stops it. With `pods` on (off by
default), it also keeps one Pod per ready replica of each Deployment: named
<deployment>-<template hash>-<i>, the template's labels plus
pod-template-hash, owned by the Deployment, phase Running, Ready=True and
status.podIP = `pod_ip` (127.0.0.1 by default, so a test can put a real
process behind it). Pods of an older template are deleted (a rollout
replaces every pod; the real one is gradual).

Garbage collector: deletes objects all of whose owners (by uid) are gone,
finishes foreground deletion (deletes dependents, then drops the
foregroundDeletion finalizer) and empties terminating namespaces.
"""
import copy
import hashlib
import json
import threading
import time

from .store import now_rfc3339

NS_KEY = ("", "namespaces")
DEPLOY_KEY = ("apps", "deployments")
POD_KEY = ("", "pods")


class Controllers:
    def __init__(self, store, registry, api, interval=0.05, ready_delay=0.3):
        self.store, self.registry, self.api = store, registry, api
        self.interval, self.ready_delay = interval, ready_delay
        self.paused = False
        self.max_ready = None
        self.pods = False
        self.pod_ip = "127.0.0.1"
        self.first_seen = {}  # (ns, name, generation, replicas) -> monotonic time
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="controllers", daemon=True)

    def start(self):
        self.thread.start()

    def shutdown(self):
        self.stop.set()
        self.thread.join(timeout=2)

    def run(self):
        # A pass copies every object, so it runs only when something may have
        # changed: the store (resourceVersion), the kubelet's settings, or a
        # Deployment still waiting out its ready delay. (Polling every object
        # 20 times a second made the server CPU-bound with 100 StageSets.)
        last = None
        while not self.stop.wait(self.interval):
            state = (self.store.rv, self.paused, self.max_ready, self.pods, self.pod_ip, self.ready_delay)
            if state == last and not self.first_seen:
                continue
            last = state
            try:
                self.kubelet()
                self.collect_garbage()
            except Exception as e:  # keep the loop alive; a test will notice missing progress
                print(f"controllers: {type(e).__name__}: {e}", flush=True)
                last = None

    def rt_for(self, key):
        types = self.registry.storage_key_types(key)
        return types[0] if types else None

    # -- kubelet -------------------------------------------------------------
    def kubelet(self):
        if self.paused:
            return
        rt = self.rt_for(DEPLOY_KEY)
        now = time.monotonic()
        _, deps = self.store.list(DEPLOY_KEY)
        # Forget waits for states that no longer exist (a Deployment changed
        # again, or went away, before it became ready).
        live = set()
        for d in deps:
            md, spec = d["metadata"], d.get("spec") or {}
            want = spec.get("replicas", 1)
            live.add((md.get("namespace"), md["name"], md.get("generation"), want,
                      want if self.max_ready is None else min(want, self.max_ready)))
        for k in list(self.first_seen):
            if k not in live:
                del self.first_seen[k]
        for d in deps:
            md, spec = d["metadata"], d.get("spec") or {}
            if md.get("deletionTimestamp"):
                continue
            want = spec.get("replicas", 1)
            ready = want if self.max_ready is None else min(want, self.max_ready)
            status = copy.deepcopy(d.get("status") or {})
            k = (md.get("namespace"), md["name"], md.get("generation"), want, ready)
            target = self.target_status(d, want, ready, status)
            if target == status:
                if self.pods:
                    self.sync_pods(d, ready)
                continue
            since = self.first_seen.setdefault(k, now)
            if now - since < self.ready_delay:
                continue
            if self.pods:
                self.sync_pods(d, ready)
            with self.store.lock:
                latest = self.store.get(DEPLOY_KEY, md.get("namespace"), md["name"])
                if latest is None or latest["metadata"]["resourceVersion"] != md["resourceVersion"]:
                    continue
                latest["status"] = target
                self.store.update(DEPLOY_KEY, latest)
            self.first_seen.pop(k, None)
        del rt

    def sync_pods(self, d, ready):
        """Make the Deployment's pods match its template and ready count."""
        md, tmpl = d["metadata"], (d.get("spec") or {}).get("template") or {}
        h = hashlib.sha256(json.dumps(tmpl, sort_keys=True).encode()).hexdigest()[:10]
        want = {f"{md['name']}-{h}-{i}" for i in range(ready)}
        _, pods = self.store.list(POD_KEY, md.get("namespace"))
        mine = [p for p in pods if any(r.get("uid") == md["uid"]
                                       for r in p["metadata"].get("ownerReferences") or [])]
        have = {p["metadata"]["name"] for p in mine}
        for p in mine:
            if p["metadata"]["name"] not in want:
                self.store.remove(POD_KEY, md.get("namespace"), p["metadata"]["name"])
        ts = now_rfc3339()
        for name in sorted(want - have):
            tmd = tmpl.get("metadata") or {}
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": md.get("namespace"),
                                "labels": dict(tmd.get("labels") or {}, **{"pod-template-hash": h}),
                                "annotations": dict(tmd.get("annotations") or {}),
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                     "name": md["name"], "uid": md["uid"],
                                                     "controller": True, "blockOwnerDeletion": True}]},
                   "spec": copy.deepcopy(tmpl.get("spec") or {}),
                   "status": {"phase": "Running", "podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}],
                              "hostIP": "127.0.0.1", "startTime": ts,
                              "conditions": [{"type": t, "status": "True", "lastTransitionTime": ts}
                                             for t in ("PodScheduled", "Initialized", "ContainersReady",
                                                       "Ready")]}}
            if not pod["metadata"]["annotations"]:
                del pod["metadata"]["annotations"]
            self.store.create(POD_KEY, pod)

    @staticmethod
    def target_status(d, want, ready, status):
        md = d["metadata"]
        st = {"observedGeneration": md.get("generation", 1), "replicas": want, "updatedReplicas": want}
        if ready:
            st["readyReplicas"] = ready
            st["availableReplicas"] = ready
        if want - ready:
            st["unavailableReplicas"] = want - ready
        ts = now_rfc3339()
        old = {c.get("type"): c for c in status.get("conditions") or []}

        def cond(typ, ok, reason, msg):
            c = {"type": typ, "status": "True" if ok else "False", "reason": reason, "message": msg,
                 "lastUpdateTime": ts, "lastTransitionTime": ts}
            prev = old.get(typ)
            if prev and prev.get("status") == c["status"] and prev.get("reason") == reason:
                return prev
            return c
        avail = ready >= want
        st["conditions"] = [
            cond("Available", avail, "MinimumReplicasAvailable" if avail else "MinimumReplicasUnavailable",
                 "Deployment has minimum availability." if avail else
                 "Deployment does not have minimum availability."),
            cond("Progressing", True, "NewReplicaSetAvailable",
                 f'ReplicaSet "{md["name"]}-7d9f8c6b5" has successfully progressed.'),
        ]
        return st

    # -- garbage collection ----------------------------------------------------
    def collect_garbage(self):
        objs = self.store.all_objects()
        uids = {o["metadata"]["uid"] for _, o in objs}
        for key, o in objs:
            md = o["metadata"]
            rt = self.rt_for(key)
            if rt is None:
                continue
            refs = md.get("ownerReferences") or []
            if refs and not any(r.get("uid") in uids for r in refs):
                self._delete(rt, o, "Background")
            if md.get("deletionTimestamp") and "foregroundDeletion" in (md.get("finalizers") or []):
                deps = [(k, d) for k, d in objs
                        if any(r.get("uid") == md["uid"] for r in d["metadata"].get("ownerReferences") or [])]
                for k, d in deps:
                    drt = self.rt_for(k)
                    if drt is not None:
                        self._delete(drt, d, "Foreground")
                if not deps:
                    self._drop_finalizer(key, o, "foregroundDeletion")
            if key == NS_KEY and md.get("deletionTimestamp"):
                self._finish_namespace(o, objs)

    def _delete(self, rt, obj, policy):
        try:
            self.api.delete_object(rt, obj, policy)
        except Exception:
            pass  # already gone

    def _drop_finalizer(self, key, obj, name):
        md = obj["metadata"]
        with self.store.lock:
            latest = self.store.get(key, md.get("namespace"), md["name"])
            if latest is None:
                return
            fins = [f for f in latest["metadata"].get("finalizers") or [] if f != name]
            latest["metadata"]["finalizers"] = fins
            if not fins:
                latest["metadata"].pop("finalizers")
                self.store.remove(key, md.get("namespace"), md["name"])
            else:
                self.store.update(key, latest)

    def _finish_namespace(self, ns, objs):
        name = ns["metadata"]["name"]
        left = [(k, o) for k, o in objs if k != NS_KEY and o["metadata"].get("namespace") == name]
        for k, o in left:
            rt = self.rt_for(k)
            if rt is not None:
                self._delete(rt, o, "Background")
        if not left and not ns["metadata"].get("finalizers"):
            self.store.remove(NS_KEY, None, name)
