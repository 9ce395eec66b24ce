"""Object storage with the consistency rules clients depend on.

One global resourceVersion counter (like etcd's revision) stamps every write;
every write is appended to a bounded history that watches replay from. A
watch or continue token older than the history window gets 410 Gone, exactly
what a client's reflector must recover from by relisting. `expire()` compacts
the window on demand (fault injection).

All state is guarded by one lock; watchers receive events through their own
queues so a slow client never blocks a writer.
"""
import collections
import copy
import queue
import threading
import time
import uuid

import datetime


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Event:
    __slots__ = ("rv", "key", "type", "obj", "old")

    def __init__(self, rv, key, typ, obj, old):
        self.rv, self.key, self.type, self.obj, self.old = rv, key, typ, obj, old


class Watcher:
    """An open watch: a resource key, a namespace filter and a queue.

    Items put on the queue are Event objects, or ("error", code, reason,
    message) tuples asking the stream to send an ERROR event and end, or
    ("close",) to end the stream cleanly.
    """

    def __init__(self, key, namespace):
        self.key = key
        self.namespace = namespace
        self.q = queue.Queue()

    def wants(self, ev):
        if ev.key != self.key:
            return False
        ns = ev.obj.get("metadata", {}).get("namespace")
        return self.namespace is None or ns == self.namespace


class Store:
    def __init__(self, history_size=1000):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 1
        self.objects = collections.defaultdict(dict)  # key -> {(ns, name): obj}
        self.by_uid = {}  # uid -> (key, ns, name)
        self.history = collections.deque()
        self.history_size = history_size
        self.compacted_rv = 1
        self.watchers = set()

    # -- reads -------------------------------------------------------------
    def get(self, key, ns, name):
        with self.lock:
            o = self.objects[key].get((ns, name))
            return copy.deepcopy(o) if o is not None else None

    def list(self, key, ns=None):
        """Return (resourceVersion, objects sorted by namespace/name)."""
        with self.lock:
            items = [copy.deepcopy(o) for (ons, _), o in sorted(self.objects[key].items())
                     if ns is None or ons == ns]
            return self.rv, items

    def lookup_uid(self, uid):
        with self.lock:
            loc = self.by_uid.get(uid)
            if loc is None:
                return None
            return self.get(*loc)

    def all_objects(self):
        with self.lock:
            return [(key, copy.deepcopy(o)) for key, objs in self.objects.items() for o in objs.values()]

    # -- writes ------------------------------------------------------------
    def _commit(self, key, typ, obj, old):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        ev = Event(self.rv, key, typ, copy.deepcopy(obj), copy.deepcopy(old) if old else None)
        self.history.append(ev)
        while len(self.history) > self.history_size:
            self.compacted_rv = self.history.popleft().rv
        for w in list(self.watchers):
            if w.wants(ev):
                w.q.put(ev)
        self.changed.notify_all()
        return copy.deepcopy(obj)

    def create(self, key, obj):
        """Store a new object; the caller checked it does not exist."""
        with self.lock:
            md = obj["metadata"]
            md.setdefault("uid", str(uuid.uuid4()))
            md.setdefault("creationTimestamp", now_rfc3339())
            ns, name = md.get("namespace"), md["name"]
            self.objects[key][(ns, name)] = obj
            self.by_uid[md["uid"]] = (key, ns, name)
            return self._commit(key, "ADDED", obj, None)

    def update(self, key, obj):
        with self.lock:
            md = obj["metadata"]
            k = (md.get("namespace"), md["name"])
            old = self.objects[key][k]
            self.objects[key][k] = obj
            return self._commit(key, "MODIFIED", obj, old)

    def remove(self, key, ns, name):
        with self.lock:
            obj = self.objects[key].pop((ns, name), None)
            if obj is None:
                return None
            self.by_uid.pop(obj["metadata"].get("uid"), None)
            # A DELETED event carries the object at a new resourceVersion.
            return self._commit(key, "DELETED", copy.deepcopy(obj), obj)

    # -- watch -------------------------------------------------------------
    def watch(self, key, ns, since_rv):
        """Register a watcher replaying events after since_rv.

        Returns the Watcher, or None if since_rv is older than the history
        window (the caller answers 410 Gone).
        """
        with self.lock:
            if since_rv < self.compacted_rv:
                return None
            w = Watcher(key, ns)
            for ev in self.history:
                if ev.rv > since_rv and w.wants(ev):
                    w.q.put(ev)
            self.watchers.add(w)
            return w

    def unwatch(self, w):
        with self.lock:
            self.watchers.discard(w)

    def expire(self, notify_watchers=False):
        """Drop the whole history window now. With notify_watchers, open
        watches get an ERROR 410 event and end, as when a real server's watch
        cache falls too far behind."""
        with self.lock:
            self.history.clear()
            self.compacted_rv = self.rv
            if notify_watchers:
                for w in list(self.watchers):
                    w.q.put(("error", 410, "Expired", "too old resource version: history compacted"))

    def reset(self, keep):
        """Forget every object but those of the storage keys in `keep`, and
        start resourceVersions again from 1, as an API server that lost its
        storage does after a restart. Open watches end; a client resuming
        from a resourceVersion it saw before is now ahead of the server
        (504 "Too large resource version") and has to list again. Kept
        objects are stored again under new resourceVersions."""
        with self.lock:
            kept = [(key, o) for key in keep for o in self.objects.get(key, {}).values()]
            for w in list(self.watchers):
                w.q.put(("close",))
            self.objects.clear()
            self.by_uid.clear()
            self.history.clear()
            self.rv = self.compacted_rv = 1
            for key, o in kept:
                self.create(key, o)

    def close_watches(self):
        with self.lock:
            for w in list(self.watchers):
                w.q.put(("close",))

    def wait_changed(self, timeout):
        with self.lock:
            self.changed.wait(timeout)


def sleep_until(deadline):
    d = deadline - time.monotonic()
    if d > 0:
        time.sleep(d)
