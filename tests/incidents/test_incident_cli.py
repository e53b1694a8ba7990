"""`nis2kube incident ...` end to end against a SQLite file."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from typer.testing import CliRunner

from nis2kube.cli.main import app


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("NIS2KUBE_DB", f"sqlite:///{tmp_path / 'incidents.db'}")
    monkeypatch.setenv("NIS2KUBE_ACTOR", "oncall@plant.example")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nis2kube.yaml").write_text(
        "incidents:\n  timezone: Europe/Berlin\n  annual_turnover_eur: 4000000\n  profile: eu\n")
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, ["incident", *args])
        assert result.exit_code == code, result.output + str(result.exception)
        return result

    return run


def test_workflow(cli, tmp_path):
    inc_id = cli("open", "Unauthorised exec into SCADA gateway", "-n", "ot-line3", "--severity", "high",
                 "--detected-at", "2026-03-28T10:00:00+01:00").output.strip()
    assert inc_id.startswith("INC-")
    out = cli("triage", inc_id, "--financial-loss", "250000", "--decide", "significant",
              "--aware-at", "2026-03-28T12:00:00+01:00", "--rationale", "loss above 5 % of turnover").output
    assert "recommendation: significant" in out and "EUR 200,000" in out
    cli("update", inc_id, "--malicious", "yes", "--cross-border", "no", "--ioc", "fd.rip=203.0.113.7",
        "--assessment", "Leaked kubeconfig used", "--impact", "Line 3 stopped 40 min")
    cli("timeline", "add", inc_id, "Node cordoned", "--at", "2026-03-28T12:30:00+01:00")
    evidence = tmp_path / "falco.jsonl"
    evidence.write_bytes(b'{"rule":"Terminal shell in container"}\n')
    assert hashlib.sha256(evidence.read_bytes()).hexdigest() in cli("evidence", "add", inc_id, str(evidence)).output
    listed = orjson.loads(cli("list", "-o", "json").output)
    assert [i["id"] for i in listed] == [inc_id]
    assert {d["report"]: d["due_at"] for d in listed[0]["deadlines"]} == {
        "early-warning": "2026-03-29T11:00:00Z", "notification": "2026-03-31T11:00:00Z"}
    assert "overdue" in cli("list").output  # those dates are in the past
    draft = orjson.loads(cli("report", inc_id, "--kind", "notification", "-o", "json").output)
    assert draft["missing"] == [] and draft["fields"]["severity"]["value"] == "High"
    pdf = tmp_path / "ew.pdf"
    cli("report", inc_id, "--kind", "early-warning", "-o", "pdf", "--out", str(pdf), "--profile", "de")
    assert pdf.read_bytes().startswith(b"%PDF-")
    sent = tmp_path / "sent.pdf"
    sent.write_bytes(b"%PDF-1.4 as uploaded")
    out = cli("submit", inc_id, "--kind", "early-warning", "--channel", "CSIRT portal", "--reference", "EW-17",
              "--file", str(sent), "--submitted-at", "2026-03-29T09:00:00+02:00").output
    assert hashlib.sha256(sent.read_bytes()).hexdigest() in out and "early-warning-sent" in out
    cli("submit", inc_id, "--kind", "notification", "--channel", "CSIRT portal",
        "--submitted-at", "2026-03-30T09:00:00+02:00")
    shown = orjson.loads(cli("show", inc_id, "-o", "json", "--events").output)
    assert shown["status"] == "notification-sent" and shown["reports"][0]["reference"] == "EW-17"
    assert [e["type"] for e in shown["events"]] == ["opened", "triaged", "updated", "timeline", "evidence",
                                                    "report-submitted", "report-submitted"]
    assert all(e["actor"] == "oncall@plant.example" for e in shown["events"])
    assert {d["report"]: d["state"] for d in shown["deadlines"]}["early-warning"] == "met"
    assert "final: 2026-04-30 09:00 CEST" in cli("show", inc_id).output.replace("deadline ", "")
    cli("close", inc_id, "--reason", "eradicated")
    # closed but the final report is still due, so it is still listed
    assert [i["id"] for i in orjson.loads(cli("list", "-o", "json").output)] == [inc_id]
    cli("update", inc_id, "--impact", "x", code=2)


def test_errors_are_exit_2(cli):
    cli("show", "INC-NOPE", code=2)
    inc_id = cli("open", "x").output.strip()
    cli("report", inc_id, "--kind", "weekly", code=2)
    cli("submit", inc_id, "--kind", "early-warning", "--channel", "portal", code=2)  # not significant yet
    cli("update", inc_id, code=2)
    cli("update", inc_id, "--aware-at", "tomorrow", code=2)
    cli("evidence", "add", inc_id, "/nonexistent/file", code=2)


def test_evidence_is_stored_and_given_back_byte_for_byte(cli, tmp_path):
    inc_id = cli("open", "Exfiltration from the historian").output.strip()
    capture = tmp_path / "historian.pcap"
    capture.write_bytes(bytes(range(256)) * 1000)  # binary: no newline may be added on the way out
    digest = hashlib.sha256(capture.read_bytes()).hexdigest()
    assert "stored" in cli("evidence", "add", inc_id, str(capture), "--description", "tcpdump 11:50").output
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 4096)
    assert "hash only" in cli("evidence", "add", inc_id, str(image), "--hash-only").output
    for ref in ("historian.pcap", digest[:12], digest.upper()):
        back = tmp_path / f"back-{ref[:8]}.pcap"
        cli("evidence", "get", inc_id, ref, "-o", str(back))
        assert back.read_bytes() == capture.read_bytes()
    assert "recorded by hash only" in cli("evidence", "get", inc_id, "disk.img", "-o", str(tmp_path / "x"),
                                          code=2).output  # fmt: skip
    assert "names no evidence" in cli("evidence", "get", inc_id, "nope.pcap", "-o", str(tmp_path / "y"),
                                      code=2).output  # fmt: skip
    other = cli("open", "another incident").output.strip()
    cli("evidence", "get", other, digest, "-o", str(tmp_path / "z"), code=2)  # evidence is per incident
