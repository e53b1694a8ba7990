"""Live and offline scans of the same objects give identical findings; the CLI's live path end to end."""

from __future__ import annotations

import copy
import pathlib

import orjson
import pytest
from typer.testing import CliRunner

from nis2kube.checks.registry import ScanContext
from nis2kube.cli.main import app
from nis2kube.config import Config, load_config
from nis2kube.engine import run_checks
from nis2kube.findings import Status
from nis2kube.inventory import Inventory, from_paths
from nis2kube.inventory.files import load_paths
from nis2kube.inventory.live import LiveOptions, from_cluster, mounted_configmaps
from nis2kube.inventory.live_http import ClusterTarget
from nis2kube.inventory.live_kinds import CONFIGMAPS_WITH_DATA

from .fakeapi import FakeApiServer, Faults

HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[1]
SOURCES = {
    "fixture": (HERE / "fixtures" / "cluster.yaml", None),
    "factory-hall": (REPO / "examples" / "factory-hall", REPO / "examples" / "factory-hall" / "nis2kube.yaml"),
}


def verdicts(inv: Inventory, config: Config) -> list[tuple]:
    result = run_checks(ScanContext(inv, config, {}))
    return [(f.check, f.status.value, f.severity.value, f.resource.display if f.resource else None, f.container,
             f.message) for f in result.findings]


def as_live_sees_it(objects: list[dict]) -> list[dict]:
    """What the live scan is designed to read: Secrets, and ConfigMaps no Pod mounts, as metadata only."""
    readable = mounted_configmaps(objects) | set(CONFIGMAPS_WITH_DATA)
    out = []
    for obj in objects:
        meta = obj["metadata"]
        key = (meta.get("namespace"), meta.get("name"))
        if obj["kind"] == "Secret" or (obj["kind"] == "ConfigMap" and key not in readable):
            meta = {k: v for k, v in meta.items() if k != "annotations"} | {
                "annotations": {k: v for k, v in (meta.get("annotations") or {}).items()
                                if k != "kubectl.kubernetes.io/last-applied-configuration"}}
            if not meta["annotations"]:
                del meta["annotations"]
            obj = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta}
        out.append(obj)
    return out


def apiserver_version(objects: list[dict]) -> str:
    """The version a real API server would report: its own image tag when the kube-apiserver Pod is there."""
    for obj in objects:
        if obj["kind"] == "Pod" and obj["metadata"]["name"].startswith("kube-apiserver"):
            return obj["spec"]["containers"][0]["image"].rsplit(":", 1)[-1]
    return "v1.31.2"


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_live_and_offline_findings_are_identical(source, tmp_path):
    path, config_path = SOURCES[source]
    config = load_config(str(config_path)) if config_path else Config()
    loaded = load_paths([str(path)])
    assert not [p for p in loaded.problems if p.level == "error"]
    objects = as_live_sees_it([copy.deepcopy(o) for o, _ in loaded.objects])

    offline = Inventory()
    offline.extend((o, None) for o in copy.deepcopy(objects))
    faults = Faults(throttle={"pods": 1}, expire_once={"deployments"})
    with FakeApiServer(copy.deepcopy(objects), faults, git_version=apiserver_version(objects)) as api:
        target = ClusterTarget(kubeconfig=api.kubeconfig(str(tmp_path / "kc")), backoff_base=0.001)
        live = from_cluster(target, LiveOptions(page_size=3))
    # The live scan knows which kinds the server serves and its version; give the offline inventory the same
    # knowledge (a snapshot carries it) so the comparison is about the objects read.
    offline.served_kinds = live.served_kinds
    offline.source.server_version = live.source.server_version

    live_verdicts = verdicts(live, config)
    assert live_verdicts == verdicts(offline, config)
    assert any(v[1] == Status.FAIL.value for v in live_verdicts)
    assert any(v[1] == Status.PASS.value for v in live_verdicts)


@pytest.fixture
def cluster(tmp_path):
    loaded = load_paths([str(SOURCES["fixture"][0])])
    with FakeApiServer([o for o, _ in loaded.objects], Faults(forbidden={"roles"})) as api:
        yield api, api.kubeconfig(str(tmp_path / "kubeconfig"))


def test_cli_snapshot_then_offline_scan_matches_the_live_scan(cluster, tmp_path):
    api, kubeconfig = cluster
    runner = CliRunner()
    dump = tmp_path / "dump.json"
    snap = runner.invoke(app, ["snapshot", "--kubeconfig", kubeconfig, "-o", str(dump)])
    assert snap.exit_code == 0, snap.output
    doc = orjson.loads(dump.read_bytes())
    header = doc["nis2kube.io/snapshot"]
    assert doc["kind"] == "List" and header["cluster"] == "plant-1" and header["serverVersion"] == "v1.31.2"
    assert header["unlisted"][0]["kind"] == "Role" and "403" in header["unlisted"][0]["reason"]
    assert "data" not in next(i for i in doc["items"] if i["kind"] == "Secret")

    live = runner.invoke(app, ["scan", "--kubeconfig", kubeconfig, "-o", "json", "--fail-on", "critical"])
    offline = runner.invoke(app, ["scan", str(dump), "-o", "json", "--fail-on", "critical"])
    assert live.exit_code in (0, 1) and offline.exit_code == live.exit_code, live.output + offline.output
    live_report, offline_report = orjson.loads(live.stdout), orjson.loads(offline.stdout)
    # Identical apart from where the offline objects were read (the dump file and item number).
    assert [f | {"location": None} for f in live_report["findings"]] == \
        [f | {"location": None} for f in offline_report["findings"]]
    assert any((f.get("location") or {}).get("file") == str(dump) for f in offline_report["findings"])
    assert live_report["source"]["type"] == "live" and live_report["source"]["cluster"] == "plant-1"
    assert offline_report["source"]["cluster"] == "plant-1"
    assert offline_report["source"]["captured_at"] == header["capturedAt"]
    assert {r.method for r in api.requests} == {"GET"}


def test_cli_live_scan_reports_unlisted_kinds_and_namespace_scope(cluster):
    api, kubeconfig = cluster
    result = CliRunner().invoke(app, ["scan", "--kubeconfig", kubeconfig, "-n", "mes", "-o", "json",
                                      "--request-timeout", "5s", "--concurrency", "2"])
    assert result.exit_code in (0, 1), result.output
    assert "not listed: Role.rbac.authorization.k8s.io: missing permission" in result.stderr
    report = orjson.loads(result.stdout)
    namespaces = {f["resource"]["namespace"] for f in report["findings"] if f["resource"]}
    assert "ot-sensors" not in namespaces
    assert all("/namespaces/ot-sensors" not in r.path for r in api.requests)


@pytest.mark.parametrize("args, message", [
    (["scan", "examples/factory-hall", "--context", "plant-1"], "either PATHs"),
    (["scan", "--kubeconfig", "KC", "-n", "a", "-A"], "exclude each other"),
    (["scan", "--kubeconfig", "KC", "--request-timeout", "soon"], "invalid --request-timeout"),
    (["scan", "--kubeconfig", "KC", "--concurrency", "0"], "--concurrency"),
    (["snapshot", "--kubeconfig", "/nonexistent/kubeconfig", "-o", "x.json"], "cannot load cluster credentials"),
])
def test_cli_usage_errors_exit_2(args, message, cluster, tmp_path):
    _, kubeconfig = cluster
    args = [kubeconfig if a == "KC" else a for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_offline_scan_of_plain_files_is_unchanged():
    inv = from_paths([str(SOURCES["fixture"][0])])
    assert inv.source.type == "files" and inv.served_kinds is None


def test_cli_harden_from_a_live_cluster_writes_the_offline_bundle(tmp_path):
    """`harden --kubeconfig` reads the cluster with GETs only and writes the same bundle as `harden` on the same
    objects as files; --verify proves it on the captured objects."""
    source, config = SOURCES["factory-hall"]
    loaded = load_paths([str(source)])
    runner = CliRunner()
    with FakeApiServer([o for o, _ in loaded.objects]) as api:
        kubeconfig = api.kubeconfig(str(tmp_path / "kubeconfig"))
        live = runner.invoke(app, ["harden", "--kubeconfig", kubeconfig, "--config", str(config),
                                   "-o", str(tmp_path / "live"), "--verify"])  # fmt: skip
        assert {r.method for r in api.requests} == {"GET"}
    assert live.exit_code == 0, live.output
    assert "verify:" in live.output and " 0 new failures" in live.output
    offline = runner.invoke(app, ["harden", str(source), "--config", str(config), "-o", str(tmp_path / "offline")])
    assert offline.exit_code == 0, offline.output
    files = sorted(p.relative_to(tmp_path / "offline") for p in (tmp_path / "offline").rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(tmp_path / "live") for p in (tmp_path / "live").rglob("*")
                                     if p.is_file())  # fmt: skip
    for rel in files:
        assert (tmp_path / "live" / rel).read_bytes() == (tmp_path / "offline" / rel).read_bytes(), rel
    both = runner.invoke(app, ["harden", str(source), "--kubeconfig", kubeconfig, "-o", str(tmp_path / "x")])
    assert both.exit_code == 2 and "either PATHs" in both.output
