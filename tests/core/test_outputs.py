"""Every output format renders the same Result faithfully; the JSON report is a contract."""

import datetime as dt
import json
import xml.etree.ElementTree as ET

from conftest import inventory_from_yaml
from nis2kube.checks.registry import ScanContext
from nis2kube.config import config_from_dict
from nis2kube.engine import run_checks
from nis2kube.report import render

TEXT = """# Source: plant/templates/frontend.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: "mes-<frontend>", namespace: mes}
spec:
  template:
    spec: {containers: [{name: web, image: "nginx:latest"}]}
"""


def _result():
    cfg = config_from_dict({
        "approved_registries": ["registry.plant.example"],
        "waivers": [{"check": "images.digest-pinned", "justification": "pinned in Q1", "owner": "mes",
                     "expires": "2099-01-01"}],
    })  # fmt: skip
    return run_checks(ScanContext(inventory_from_yaml(TEXT, "manifests/frontend.yaml"), cfg), include=["images.*"],
                      today=dt.date(2026, 11, 22))  # fmt: skip


def test_json_contract_fields():
    report = json.loads(render(_result(), "json"))
    assert report["schema_version"] == 1
    assert report["tool"]["name"] == "nis2kube"
    assert set(report["summary"]["findings"]) == {"pass", "fail", "waived", "not-assessed"}
    finding = next(f for f in report["findings"] if f["check"] == "images.approved-registry")
    assert finding["status"] == "fail" and finding["severity"] == "high"
    assert finding["resource"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "mes",
                                   "name": "mes-<frontend>"}  # fmt: skip
    assert finding["container"] == "web" and "art21.2.d" in finding["measures"]
    assert finding["location"] == {"file": "manifests/frontend.yaml", "document": 1, "line": 2,
                                   "helm_source": "plant/templates/frontend.yaml"}  # fmt: skip
    waived = next(f for f in report["findings"] if f["check"] == "images.digest-pinned")
    assert waived["status"] == "waived" and waived["waiver"]["owner"] == "mes"
    measure = next(m for m in report["measures"] if m["id"] == "art21.2.d")
    assert measure["status"] == "fail" and "images.approved-registry" in measure["checks"]


def test_sarif_has_rules_results_locations_and_suppressions():
    sarif = json.loads(render(_result(), "sarif"))
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    result = next(r for r in run["results"] if r["ruleId"] == "images.approved-registry")
    assert rule_ids[result["ruleIndex"]] == "images.approved-registry"
    assert result["level"] == "error"
    physical = result["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "manifests/frontend.yaml"}, "region": {"startLine": 2}}
    suppressed = next(r for r in run["results"] if r["ruleId"] == "images.digest-pinned")
    assert suppressed["suppressions"][0]["justification"].startswith("pinned in Q1")


def test_junit_is_well_formed_xml_with_failures_and_skips():
    root = ET.fromstring(render(_result(), "junit").split("\n", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["images.approved-registry"].get("failures") == "1"
    case = suites["images.approved-registry"].find("testcase")
    assert case.get("name") == "Deployment/mes/mes-<frontend> [web]"
    assert case.find("failure") is not None
    assert suites["images.digest-pinned"].find("testcase/skipped").get("message").startswith("waived")


def test_table_text_mentions_measures_and_fixes():
    text = render(_result(), "table")
    assert "NIS2 measures" in text and "art21.2.d" in text and "images.approved-registry" in text


def _parse_metrics(text: str) -> dict[str, list]:
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_metrics_agree_with_the_json_report(tmp_path):
    """`scan --metrics` on the example: the Prometheus reference parser reads it, and every number matches -o json."""
    from typer.testing import CliRunner

    from conftest import EXAMPLE
    from nis2kube.cli.main import app

    prom = tmp_path / "nis2kube.prom"
    run = CliRunner().invoke(app, ["scan", str(EXAMPLE), "-o", "json", "--metrics", str(prom)])
    assert run.exit_code == 1, run.output
    report = json.loads(run.stdout)
    families = _parse_metrics(prom.read_text())
    [score] = families["nis2kube_scan_score"]
    assert score.value == report["summary"]["score"]
    [blocking] = families["nis2kube_scan_blocking_findings"]
    assert blocking.value == report["summary"]["blocking"]
    per_status: dict[str, float] = {}
    for sample in families["nis2kube_scan_findings"]:
        per_status[sample.labels["status"]] = per_status.get(sample.labels["status"], 0) + sample.value
    assert per_status == report["summary"]["findings"]
    failing = sum(s.value for s in families["nis2kube_check_failures"])
    assert failing == report["summary"]["findings"]["fail"]
    assert {s.labels["measure"]: s.labels["status"] for s in families["nis2kube_measure_status"]} == \
        {m["id"]: m["status"] for m in report["measures"]}
    assert len(families["nis2kube_check_failures"]) == report["summary"]["checks"]


def test_metrics_label_values_are_escaped():
    from nis2kube.report.metrics import render_metrics

    result = _result()
    result.inventory.source.cluster = 'plant "A"\\hall\n2'
    [info] = _parse_metrics(render_metrics(result))["nis2kube_scan_info"]
    assert info.labels["cluster"] == 'plant "A"\\hall\n2'


HOSTILE = """apiVersion: v1
kind: Namespace
metadata: {name: plant-a}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "x\\",\\n  \\"findings\\": \\"nis2kube:findings"
  namespace: plant-a
spec:
  replicas: 3
  template:
    metadata: {annotations: {note: "Zähler ✓ \\u2028"}}
    spec:
      hostNetwork: true
      containers:
      - {name: "scada-ä", image: "registry.plant.example/scada@sha256:""" + "a" * 64 + """",
         securityContext: {privileged: true, capabilities: {add: [NET_ADMIN, SYS_TIME]}}}
      - {name: historian, image: "docker.io/library/influxdb:1.8"}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-proxy, namespace: kube-system}
spec:
  template:
    spec: {hostNetwork: true, containers: [{name: kube-proxy, image: "registry.k8s.io/kube-proxy:v1.34.1"}]}
"""


def test_json_is_written_in_batches_exactly_as_one_orjson_dump_of_the_whole(monkeypatch):
    """The streamed report must be byte for byte orjson's indented form of the same document: every finding shape
    (evidence, waiver, location with helm_source, null resource, unicode) across batch boundaries, and a name
    that spells the splice point must not move it."""
    import orjson

    from nis2kube.report import json as report_json

    monkeypatch.setattr(report_json, "BATCH", 7)
    cfg = config_from_dict({"waivers": [{"check": "pss.baseline.privileged", "justification": "OPC driver",
                                         "owner": "ot", "expires": "2099-01-01"}]})  # fmt: skip
    inv = inventory_from_yaml(TEXT + "---\n" + HOSTILE, "manifests/plant.yaml")
    for result in (_result(), run_checks(ScanContext(inv, cfg), today=dt.date(2026, 11, 22))):
        data = report_json.render_json(result)
        report = orjson.loads(data)
        assert data == orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        assert len(report["findings"]) == len(result.findings)
    assert len(result.findings) > 10 * report_json.BATCH
    kinds = {(bool(f.get("evidence")), bool(f.get("waiver")), f["resource"] is None) for f in report["findings"]}
    assert {(True, False, False), (False, False, False), (False, False, True), (True, True, False)} <= kinds
    system = {f["resource"]["namespace"] or f["resource"]["name"] for f in report["findings"] if f["system"]}
    assert system == {"kube-system"}
    assert 'x",\n  "findings": "nis2kube:findings' in {f["resource"]["name"] for f in report["findings"]
                                                      if f["resource"]}  # fmt: skip
    result.findings = []
    empty = report_json.render_json(result)
    assert orjson.loads(empty)["findings"] == [] and empty == orjson.dumps(
        orjson.loads(empty), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def test_findings_are_ordered_by_check_then_resource():
    """Each check sorts its own findings; the concatenation in check-id order is the report's global order."""
    result = run_checks(ScanContext(inventory_from_yaml(TEXT + "---\n" + HOSTILE)), today=dt.date(2026, 11, 22))

    def key(f):
        ref = f.resource
        return (f.check, ref.namespace or "" if ref else "", ref.kind if ref else "", ref.name if ref else "",
                f.container or "")

    assert [key(f) for f in result.findings] == sorted(key(f) for f in result.findings)
    assert len({f.check for f in result.findings}) > 50
