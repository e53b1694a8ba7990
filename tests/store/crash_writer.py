"""Writer process for the kill test: writes as fast as it can and prints an ACK after every commit.

Usage: python crash_writer.py DB_URL. Runs until killed. An ACK line is printed (and flushed) only after
the store call returned, i.e. after the commit: those are the writes that must survive a SIGKILL.
"""

from __future__ import annotations

import sys
import threading

from nis2kube.incidents.intake import parse_falco
from nis2kube.store import Store

store = Store(sys.argv[1])
out_lock = threading.Lock()


def ack(line: str) -> None:
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def timeline_writer(n: int) -> None:
    inc = store.create(f"writer-{n}", {"title": f"burst {n}"})
    ack(f"E {inc.id} 1")
    i = 0
    while True:
        i += 1
        state = store.append(inc.id, "timeline", f"writer-{n}", {"text": f"entry {i}"})
        ack(f"E {inc.id} {state.version}")


def alert_writer() -> None:
    i = 0
    while True:
        i += 1
        alert = parse_falco({"rule": f"rule-{i % 5}", "priority": "Critical" if i % 3 else "Notice",
                             "output": "burst", "time": "2026-11-22T10:00:00Z",
                             "output_fields": {"k8s.ns.name": "ot", "k8s.pod.name": f"plc-{i % 4}"}})[0]
        result = store.ingest(alert, "error", 60)
        ack(f"A {result.alert_id} {result.incident_id or '-'}")


threads = [threading.Thread(target=timeline_writer, args=(n,), daemon=True) for n in range(2)]
threads.append(threading.Thread(target=alert_writer, daemon=True))
for th in threads:
    th.start()
for th in threads:
    th.join()
