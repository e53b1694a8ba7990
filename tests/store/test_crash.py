"""Crash safety: SIGKILL a writer in the middle of a burst; every acknowledged write must be there after."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pg_fixtures
from sqlalchemy import select, text

from nis2kube.store import Store
from nis2kube.store.schema import alerts, incident_events

pg_server, pg_url, db_url = pg_fixtures.pg_server, pg_fixtures.pg_url, pg_fixtures.db_url
WRITER = pathlib.Path(__file__).with_name("crash_writer.py")
ACKS_BEFORE_KILL = 300


def test_sigkill_mid_burst_loses_no_acknowledged_write(db_url):
    Store(db_url).close()  # schema in place before the writer starts
    proc = subprocess.Popen([sys.executable, str(WRITER), db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    acked: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no atexit, no flush of anything not yet committed
    finally:
        rest, err = proc.communicate(timeout=30)
    acked += [line for line in rest.splitlines() if line.strip()]  # ACKs written before the kill landed
    assert proc.returncode == -signal.SIGKILL
    events = {tuple(a.split()[1:]) for a in acked if a.startswith("E ")}
    alert_ids = {int(a.split()[1]) for a in acked if a.startswith("A ")}
    assert len(events) + len(alert_ids) >= ACKS_BEFORE_KILL, err[-2000:]

    store = Store(db_url)
    with store.engine.connect() as conn:
        stored_events = {(r.incident_id, str(r.seq)) for r in conn.execute(
            select(incident_events.c.incident_id, incident_events.c.seq))}
        stored_alerts = {r.id for r in conn.execute(select(alerts.c.id))}
        if store.is_sqlite:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    assert events <= stored_events, f"lost acknowledged events: {sorted(events - stored_events)[:5]}"
    assert alert_ids <= stored_alerts, f"lost acknowledged alerts: {sorted(alert_ids - stored_alerts)[:5]}"
    # consistent: hash chains intact, seqs gapless, every projection equals the replay of its events
    assert store.verify() == []
    store.close()
