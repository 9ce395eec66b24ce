#!/usr/bin/env python3
"""Run the test API server (see tests/k8s/README.md).

    python3 tests/k8s/apiserver.py --port 0 --port-file /tmp/port \
        --kubeconfig /tmp/kubeconfig --record /tmp/writes.jsonl

Prints "listening on http://127.0.0.1:PORT" once ready; SIGTERM/SIGINT stop it.
"""
import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeapi.server import TestApiServer  # noqa: E402
from kubeconfig import write_kubeconfig  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one)")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--kubeconfig", help="write a kubeconfig pointing at this server here")
    ap.add_argument("--record", help="append every write (method, path, body, status) as JSON lines")
    ap.add_argument("--history", type=int, default=1000, help="watch history window, in events")
    ap.add_argument("--bookmark-interval", type=float, default=1.0, help="seconds between BOOKMARKs")
    ap.add_argument("--ready-delay", type=float, default=0.3, help="simulated kubelet delay, seconds")
    ap.add_argument("--field-validation", default="Strict", choices=["Strict", "Warn", "Ignore"],
                    help="default when a request has no fieldValidation (a real server defaults to Warn)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = ap.parse_args()

    srv = TestApiServer(args.port, args.history, args.bookmark_interval, args.ready_delay, args.record,
                        args.field_validation, args.verbose).start()
    if args.kubeconfig:
        write_kubeconfig(args.kubeconfig, srv.url)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{srv.port}\n")
        os.replace(tmp, args.port_file)
    print(f"listening on {srv.url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    srv.stop()


if __name__ == "__main__":
    main()
