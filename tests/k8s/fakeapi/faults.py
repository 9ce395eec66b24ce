"""Injectable faults, configured through POST /_test/faults.

A rule matches requests by method and path regex and fires for its next
`count` matches (count -1: until cleared):
  {"action": "drop"}                          close the connection, no response
  {"action": "status", "code": 429, "retry_after": 1}   answer with a Status
  {"action": "delay", "seconds": 0.5}         then serve normally
Watch-stream faults:
  {"action": "split_watch_events", "count": N}   send each of the next N watch
      events in two chunks with a pause between them (a client must buffer)
  {"action": "drop_watch", "after_events": K}   cut open/new watches after K
      more events without the terminating chunk
One-shot actions (not stored): {"action": "expire_history", "notify_watchers":
  bool}, {"action": "close_watches"}.
"""
import re
import threading


class Rule:
    def __init__(self, spec):
        self.action = spec["action"]
        self.path = re.compile(spec.get("path", ".*"))
        self.method = re.compile(spec.get("method", ".*"), re.I)
        self.count = int(spec.get("count", 1))
        self.code = int(spec.get("code", 500))
        self.retry_after = spec.get("retry_after")
        self.seconds = float(spec.get("seconds", 0))
        self.after_events = int(spec.get("after_events", 0))
        self.message = spec.get("message")
        self.spec = spec
        self.fired = 0

    def to_json(self):
        return dict(self.spec, remaining=self.count, fired=self.fired)


class Faults:
    ACTIONS = {"drop", "status", "delay", "split_watch_events", "drop_watch"}

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, spec):
        if spec.get("action") not in self.ACTIONS:
            raise ValueError(f"unknown fault action {spec.get('action')!r}")
        r = Rule(spec)
        with self.lock:
            self.rules.append(r)
        return r

    def clear(self):
        with self.lock:
            self.rules = []

    def take(self, actions, method, path):
        """Consume and return the first live rule of one of `actions` matching."""
        with self.lock:
            for r in self.rules:
                if r.action in actions and r.count != 0 and r.method.fullmatch(method) and r.path.search(path):
                    if r.count > 0:
                        r.count -= 1
                    r.fired += 1
                    return r
            return None

    def snapshot(self):
        with self.lock:
            return [r.to_json() for r in self.rules]
