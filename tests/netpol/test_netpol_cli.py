"""`nis2kube netpol` end to end on the factory-hall example: answers, formats, exit codes."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import shutil

import pytest
from typer.testing import CliRunner

from nis2kube.cli.main import app
from nis2kube.netpol.render import _q

EXAMPLE = str(pathlib.Path(__file__).resolve().parents[2] / "examples" / "factory-hall")
FLOWS = str(pathlib.Path(EXAMPLE) / "flows.yaml")
runner = CliRunner()


def test_can_reach_allowed_exits_0_and_names_the_rules():
    result = runner.invoke(app, ["netpol", "can-reach", "ot-sensors/vibration-sensor-ingest", "ot-sensors/mqtt-broker",
                                 "-p", "1883", "--explain", EXAMPLE])
    assert result.exit_code == 0, result.output
    assert "ALLOWED" in result.stdout
    assert "ot-sensors/sensor-egress egress[0] allows 1883/TCP" in result.stdout
    assert "ot-sensors/broker-ingress ingress[0] allows 1883/TCP" in result.stdout


def test_can_reach_denied_exits_1_and_says_why():
    result = runner.invoke(app, ["netpol", "can-reach", "mes/mes-frontend", "historian/historian-db", "-p", "postgres",
                                 EXAMPLE])
    assert result.exit_code == 1
    assert "DENIED" in result.stdout and "no ingress rule of these policies matches" in result.stdout


def test_can_reach_wildcard_json_and_host_network():
    result = runner.invoke(app, ["netpol", "can-reach", "scada/*", "ot-sensors/*", "-p", "1883/TCP", "-o", "json",
                                 EXAMPLE])
    answers = json.loads(result.stdout)
    assert result.exit_code == 1
    assert {a["to"] for a in answers} == {"ot-sensors/mqtt-broker", "ot-sensors/vibration-sensor-ingest"}
    assert {a["verdict"] for a in answers} == {"host-network"}


def test_can_reach_external():
    ok = runner.invoke(app, ["netpol", "can-reach", "external:203.0.113.7", "mes/mes-frontend", "-p", "8080", EXAMPLE])
    assert ok.exit_code == 0 and "ALLOWED" in ok.stdout
    no = runner.invoke(app, ["netpol", "can-reach", "ot-sensors/mqtt-broker", "external", "-p", "443", EXAMPLE])
    assert no.exit_code == 1 and "DENIED" in no.stdout


@pytest.mark.parametrize("args", [
    ["nowhere/thing", "mes/mes-api"],
    ["mes", "mes/mes-api"],
    ["mes/mes-api", "mes/mes-frontend", "-p", "99999"],
    ["external", "external:10.0.0.0/8"],
    ["mes/mes-api", "mes/mes-frontend", "-o", "yaml"],
])
def test_can_reach_usage_errors_exit_2(args):
    assert runner.invoke(app, ["netpol", "can-reach", *args, EXAMPLE]).exit_code == 2


def test_matrix_table_groups_by_namespace_and_zone():
    result = runner.invoke(app, ["netpol", "matrix", "-n", "ot-sensors", "-n", "historian", EXAMPLE])
    assert result.exit_code == 0, result.output
    assert "ot-sensors (zone: field)" in result.stdout and "historian (zone: data)" in result.stdout
    assert "ot-sensors/vibration-sensor-ingest -> ot-sensors/mqtt-broker: 1883/TCP" in result.stdout
    assert "mes/" not in result.stdout


def test_matrix_json_and_csv():
    data = json.loads(runner.invoke(app, ["netpol", "matrix", "-o", "json", EXAMPLE]).stdout)
    assert len(data["endpoints"]) == 18  # the static kube-apiserver Pod (hostNetwork) is one
    cell = next(c for c in data["cells"] if c["from"] == "ot-sensors/vibration-sensor-ingest"
                and c["to"] == "ot-sensors/mqtt-broker")
    assert cell == {"from": "ot-sensors/vibration-sensor-ingest", "to": "ot-sensors/mqtt-broker",
                    "status": "allowed", "ports": ["1883/TCP"]}
    assert all(c["status"] == "host-network" for c in data["cells"] if c["from"] == "scada/opcua-gateway")
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["netpol", "matrix", "-o", "csv", EXAMPLE]).stdout)))
    assert len([r for r in rows if r["to"] != "external" and r["from"] != "external"]) == 18 * 17
    denied = next(r for r in rows if r["from"] == "ot-sensors/mqtt-broker" and r["to"] == "historian/historian-db")
    assert denied["status"] == "denied"


def test_matrix_dot_and_images(tmp_path):
    dot = runner.invoke(app, ["netpol", "matrix", "-o", "dot", EXAMPLE]).stdout
    assert dot.startswith("digraph reachability {")
    assert '"ot-sensors/vibration-sensor-ingest" -> "ot-sensors/mqtt-broker" [label="1883/TCP"];' in dot
    assert 'label="ot-sensors (zone: field)"' in dot
    assert _q('a "quoted" \\ name') == '"a \\"quoted\\" \\\\ name"'
    assert runner.invoke(app, ["netpol", "matrix", "-o", "svg", EXAMPLE]).exit_code == 2  # needs --out
    out = tmp_path / "m.svg"
    result = runner.invoke(app, ["netpol", "matrix", "-o", "svg", "--out", str(out), EXAMPLE])
    if shutil.which("dot"):
        assert result.exit_code == 0 and b"<svg" in out.read_bytes()
    else:
        assert result.exit_code == 2 and "Graphviz" in result.output


def test_verify_example_reports_excess_and_exits_1():
    result = runner.invoke(app, ["netpol", "verify", FLOWS, EXAMPLE, "-o", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["excess"] and report["blocked"] == []
    table = runner.invoke(app, ["netpol", "verify", FLOWS, EXAMPLE])
    assert "EXCESS (allowed but not declared)" in table.stdout and "BLOCKED (declared but denied): 0" in table.stdout


def test_verify_bad_flows_file_exits_2(tmp_path):
    bad = tmp_path / "flows.yaml"
    bad.write_text("zones: {a: {namespace: x}}\nflows: [{from: a, to: b}]\n")
    result = runner.invoke(app, ["netpol", "verify", str(bad), EXAMPLE])
    assert result.exit_code == 2
    assert "flows[0].to" in result.output
