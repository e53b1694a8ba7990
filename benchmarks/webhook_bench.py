"""Sustained webhook intake: `nis2kube serve` in one process, bounded load from this one, loopback only.

    python benchmarks/webhook_bench.py [--rate 600] [--seconds 10] [--workers 8] [--db URL]

Starts the real command (`nis2kube serve`) on 127.0.0.1 with a fresh SQLite database (or --db), then sends
a fixed schedule of rate*seconds requests (open loop: request i is due at start + i/rate) from a pool of
keep-alive HTTP clients. The mix is realistic for a noisy cluster: 80 % Falco events (a fifth of them at
Critical, which open or update deduplicated incidents; the rest stored as events only) and 20 %
Alertmanager messages. Prints achieved events/s and latency percentiles (send -> response), and whether
the targets (>= 500 events/s, p99 <= 50 ms) were met. Exit code 1 when they were not.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import orjson

TARGET_RATE, TARGET_P99_MS = 500.0, 50.0
TOKEN = "bench-" + os.urandom(8).hex()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _payloads(n: int) -> list[tuple[str, bytes]]:
    rng = random.Random(42)
    out = []
    for i in range(n):
        if rng.random() < 0.8:
            priority = "Critical" if rng.random() < 0.2 else rng.choice(["Warning", "Notice", "Informational"])
            deploy = f"line{rng.randrange(10)}-plc-gw"
            body = {"output": f"A shell was spawned in a container (k8s.pod={deploy}-7d9c5b6f8d-x2k4q)",
                    "priority": priority, "rule": rng.choice(["Terminal shell in container", "Write below etc",
                                                              "Read sensitive file untrusted"]),
                    "source": "syscall", "time": "2026-11-22T14:12:03.123456789Z", "hostname": "worker-ot-2",
                    "tags": ["container", "shell"],
                    "output_fields": {"k8s.ns.name": "ot", "k8s.pod.name": f"{deploy}-7d9c5b6f8d-x2k4q",
                                      "proc.cmdline": "bash -i", "user.name": "root", "seq": i}}
            out.append(("/webhooks/falco", orjson.dumps(body)))
        else:
            body = {"version": "4", "status": "firing", "receiver": "nis2kube", "groupKey": "{}:{}",
                    "commonLabels": {}, "alerts": [{
                        "status": "firing", "startsAt": "2026-11-22T14:00:00Z",
                        "labels": {"alertname": "KubePodCrashLooping", "namespace": "ot",
                                   "severity": rng.choice(["warning", "critical"]), "pod": f"historian-{i % 3}"},
                        "annotations": {"summary": "Pod is crash looping"}}]}
            out.append(("/webhooks/alertmanager", orjson.dumps(body)))
    return out


def _start_server(port: int, db: str) -> subprocess.Popen:
    env = dict(os.environ, NIS2KUBE_WEBHOOK_TOKEN=TOKEN)
    cmd = [sys.executable, "-c", "from nis2kube.cli.main import run; run()", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--db", db]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
    proc.kill()
    raise SystemExit("server did not start within 30 s")


def run(rate: float, seconds: float, workers: int, db: str) -> bool:
    port = _free_port()
    server = _start_server(port, db)
    total = int(rate * seconds)
    payloads = _payloads(total)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(total))
    start = time.perf_counter() + 0.2

    def worker() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                path, body = payloads[i]
                t0 = time.perf_counter()
                try:
                    resp = client.post(path, content=body)
                    ok = resp.status_code == 200
                except httpx.HTTPError as exc:
                    ok, resp = False, exc
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    if not ok:
                        errors.append(str(getattr(resp, "status_code", resp)))

    try:
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - start
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    finally:
        server.terminate()
        server.wait(timeout=10)
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    achieved = len(lat) / wall
    open_line = next((ln for ln in metrics.splitlines() if ln.startswith("nis2kube_incidents_open ")), "")
    print(f"requests: {len(lat)} in {wall:.2f} s (target rate {rate:.0f}/s, {workers} clients), errors: {len(errors)}")
    print(f"events/s: {achieved:.0f}")
    print(f"latency ms: p50 {p50:.2f}  p99 {p99:.2f}  max {lat[-1] * 1000:.2f}")
    print(f"server: {open_line or 'no metrics'}; store {db.split('://')[0]}")
    ok = achieved >= TARGET_RATE and p99 <= TARGET_P99_MS and not errors
    print(f"targets (>= {TARGET_RATE:.0f} events/s, p99 <= {TARGET_P99_MS:.0f} ms, no errors): "
          f"{'met' if ok else 'NOT met'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=600.0, help="requests per second to offer (bounded)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--workers", type=int, default=8, help="concurrent keep-alive clients")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file in a temp dir)")
    args = parser.parse_args()
    if args.rate * args.seconds > 100_000 or args.workers > 64:
        raise SystemExit("bounded benchmark: at most 100000 requests and 64 clients")
    with tempfile.TemporaryDirectory(prefix="nis2kube-bench-") as tmp:
        ok = run(args.rate, args.seconds, args.workers, args.db or f"sqlite:///{tmp}/bench.db")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
