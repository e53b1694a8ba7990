"""The live path against a real cluster (kind, k3d, minikube), for anyone who has one.

    kind create cluster --name nis2kube-test
    NIS2KUBE_TEST_KUBECONFIG=~/.kube/config NIS2KUBE_TEST_CONTEXT=kind-nis2kube-test pytest tests/live -q

Without NIS2KUBE_TEST_KUBECONFIG these tests are skipped (no API server can be installed on CI machines); the
fake-server tests beside them cover the same behaviour on loopback.
"""

from __future__ import annotations

import os

import pytest

from nis2kube.checks.registry import ScanContext
from nis2kube.config import Config
from nis2kube.engine import run_checks
from nis2kube.inventory import from_paths
from nis2kube.inventory import live as live_module
from nis2kube.inventory.live import LiveOptions, from_cluster, restore_snapshot, snapshot_document
from nis2kube.inventory.live_http import ClusterTarget

KUBECONFIG = os.environ.get("NIS2KUBE_TEST_KUBECONFIG")
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="set NIS2KUBE_TEST_KUBECONFIG to a test cluster's kubeconfig")


def _target() -> ClusterTarget:
    return ClusterTarget(kubeconfig=os.path.expanduser(KUBECONFIG or ""),
                         context=os.environ.get("NIS2KUBE_TEST_CONTEXT"))


def test_real_cluster_read_only_and_secrets_as_metadata(monkeypatch):
    sent: list[tuple[str, str, str]] = []
    real_connect = live_module.connect

    def spying_connect(target):
        transport = real_connect(target)
        request = transport._pool.request

        def spy(method, url, **kw):
            sent.append((method, url, (kw.get("headers") or {}).get("Accept", "")))
            return request(method, url, **kw)

        transport._pool.request = spy
        return transport

    monkeypatch.setattr(live_module, "connect", spying_connect)
    inv = from_cluster(_target(), LiveOptions())
    assert inv.source.server_version and inv.kind_served("Deployment")
    assert {method for method, _, _ in sent} == {"GET"}
    for _, url, accept in sent:
        if "/secrets" in url:
            assert "as=PartialObjectMetadataList" in accept
    assert all(set(s) == {"apiVersion", "kind", "metadata"} for s in inv.objects("Secret"))


def test_real_cluster_snapshot_gives_the_same_findings(tmp_path):
    import orjson

    live = from_cluster(_target(), LiveOptions())
    dump = tmp_path / "dump.json"
    dump.write_bytes(orjson.dumps(snapshot_document(live)))
    offline = from_paths([str(dump)])
    restore_snapshot(offline, [str(dump)])

    def verdicts(inv):
        return [(f.check, f.status, f.resource.display if f.resource else None, f.container, f.message)
                for f in run_checks(ScanContext(inv, Config(), {})).findings]

    assert verdicts(live) == verdicts(offline)
