"""Live scan vs offline scan of the same 20k objects, measured in the same run.

The loopback fake API server (tests/live/fakeapi.py) runs in a child process, so its work does not compete
with the scanner for the GIL; it reports its own serving time. The live scan's overhead is
(live wall time - server serving time) / offline wall time, and must stay <= 2.

    python benchmarks/live_bench.py [--objects 20000] [--page-size 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import orjson

REPO = pathlib.Path(__file__).resolve().parents[1]
LIMIT = 2.0


def generate(total: int) -> list[dict]:
    """A plant-like cluster: namespaces of Deployments -> ReplicaSets -> Pods, Services, policies, config."""
    objects: list[dict] = []
    ns_index = 0
    while len(objects) < total:
        ns = f"line-{ns_index:03d}"
        ns_index += 1
        objects.append({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": ns, "labels": {"zone": "field" if ns_index % 2 else "analytics"}}})
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "default-deny", "namespace": ns},
                        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
        for i in range(30):
            app = f"svc-{i:02d}"
            dep_uid, rs_uid = f"{ns}-{app}-d", f"{ns}-{app}-rs"
            spec = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "app", "image": f"registry.plant.example/ot/{app}:1.{i}.0",
                                    "ports": [{"name": "http", "containerPort": 8080}],
                                    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                                    "securityContext": {"allowPrivilegeEscalation": False,
                                                        "readOnlyRootFilesystem": True,
                                                        "capabilities": {"drop": ["ALL"]}}}]}
            labels = {"app": app}
            objects.append({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": app, "namespace": ns, "uid": dep_uid, "labels": labels},
                            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                                     "template": {"metadata": {"labels": labels}, "spec": spec}}})
            objects.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                            "metadata": {"name": f"{app}-5d8c7", "namespace": ns, "uid": rs_uid, "labels": labels,
                                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                              "name": app, "uid": dep_uid, "controller": True}]},
                            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                                     "template": {"metadata": {"labels": labels}, "spec": spec}}})
            for p in range(2):
                objects.append({"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": f"{app}-5d8c7-{p}", "namespace": ns, "uid": f"{rs_uid}-{p}",
                                             "labels": labels,
                                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                                  "name": f"{app}-5d8c7", "uid": rs_uid,
                                                                  "controller": True}]},
                                "spec": spec, "status": {"phase": "Running"}})
            objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns},
                            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]}})
            objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config",
                                                                               "namespace": ns},
                            "data": {"settings.yaml": "interval: 5s\n" * 20}})
            objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{app}-credentials",
                                                                            "namespace": ns},
                            "type": "Opaque", "data": {"password": "c2VjcmV0"}})
    return objects[:total]


def metadata_only(objects: list[dict]) -> list[dict]:
    """The dump a snapshot would write: Secrets and ConfigMaps as metadata only, so both sides read the same."""
    return [{"apiVersion": o["apiVersion"], "kind": o["kind"], "metadata": o["metadata"]}
            if o["kind"] in ("Secret", "ConfigMap") else o for o in objects]


def serve(dump: str) -> None:
    """Child process: serve the dump; answer 'stats' on stdin with the serving time so far, then reset it."""
    sys.path.insert(0, str(REPO / "tests"))
    from live.fakeapi import FakeApiServer

    objects = orjson.loads(pathlib.Path(dump).read_bytes())["items"]
    with FakeApiServer(objects) as api:
        print(api.kubeconfig(dump + ".kubeconfig"), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                print(f"{api.serving_s:.6f} {len(api.requests)}", flush=True)
                api.serving_s = 0.0
                api.requests.clear()


def _stats(child: subprocess.Popen) -> tuple[float, str]:
    """The child server's serving time and request count since the last call."""
    child.stdin.write("stats\n")
    child.stdin.flush()
    served, requests = child.stdout.readline().split()
    return float(served), requests


def _verdicts(findings: list) -> list[tuple]:
    return [(f.check, f.status, f.resource.display if f.resource else None, f.container, f.message)
            for f in findings]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    from nis2kube.checks.registry import ScanContext, all_checks
    from nis2kube.config import Config
    from nis2kube.engine import run_checks
    from nis2kube.inventory import from_paths
    from nis2kube.inventory.live import LiveOptions, from_cluster, restore_snapshot, snapshot_document
    from nis2kube.inventory.live_http import ClusterTarget

    all_checks()  # import every family once, outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        dump = str(pathlib.Path(tmp) / "dump.json")
        objects = metadata_only(generate(args.objects))
        pathlib.Path(dump).write_bytes(orjson.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        child = subprocess.Popen([sys.executable, __file__, "--serve", dump], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        try:
            kubeconfig = child.stdout.readline().strip()
            target = ClusterTarget(kubeconfig=kubeconfig)
            # The offline side reads what `nis2kube snapshot` writes from this very server (served kinds included).
            snapshot = str(pathlib.Path(tmp) / "snapshot.json")
            pathlib.Path(snapshot).write_bytes(orjson.dumps(snapshot_document(
                from_cluster(target, LiveOptions(page_size=args.page_size)))))
            _stats(child)
            offline_s, live_s, serving_s, requests = [], [], [], "0"
            for _ in range(args.repeat):
                started = time.perf_counter()
                inv = from_paths([snapshot])
                restore_snapshot(inv, [snapshot])
                offline = run_checks(ScanContext(inv, Config(), {})).findings
                offline_s.append(time.perf_counter() - started)

                started = time.perf_counter()
                live = from_cluster(target, LiveOptions(page_size=args.page_size))
                online = run_checks(ScanContext(live, Config(), {})).findings
                live_s.append(time.perf_counter() - started)
                served, requests = _stats(child)
                serving_s.append(served)
                if len(live) != len(inv) or _verdicts(online) != _verdicts(offline):
                    print(f"MISMATCH: live {len(live)} objects / {len(online)} findings, offline {len(inv)} / "
                          f"{len(offline)}")
                    return 1
        finally:
            child.stdin.close()
            child.wait(timeout=30)
    off, liv, srv = statistics.median(offline_s), statistics.median(live_s), statistics.median(serving_s)
    ratio = (liv - srv) / off
    print(f"objects {len(inv):,}  findings {len(offline):,} (identical)  page size {args.page_size}  "
          f"requests {requests}")
    print(f"offline scan (read dump + checks)   {off:7.3f} s")
    print(f"live scan (list + checks)           {liv:7.3f} s")
    print(f"  of which API server serving       {srv:7.3f} s")
    print(f"live overhead beyond serving / offline = {ratio:.2f}x (limit {LIMIT:.1f}x) -> "
          f"{'OK' if ratio <= LIMIT else 'TOO SLOW'}")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
