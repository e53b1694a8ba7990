"""The --evidence file contract and the evidence.* checks (presence and age of attestations)."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import inventory_from_yaml, run_check
from nis2kube.checks.registry import InputError, ScanContext
from nis2kube.engine import run_checks
from nis2kube.evidence_file import MAX_BYTES, load_evidence, parse_evidence
from nis2kube.findings import Status

AS_OF = dt.date(2026, 11, 22)
CONTRACT = """apiVersion: nis2kube.io/v1alpha1
kind: Evidence
penetration_test: {date: 2026-05-10, report: "https://wiki.plant.example/pentest-2026", by: "Example GmbH"}
incident_runbook: {location: "https://wiki.plant.example/runbooks/incident", reviewed: 2026-09-01}
on_call: {rotation: "pagerduty:ot-oncall", reviewed: 2026-10-01}
csirt_contact: {name: "CERT-Bund / BSI", portal: "https://...", email: "...", reviewed: 2026-10-01}
log_retention: {days: 400, system: "OpenSearch ILM policy audit-400d", attested_by: "j.doe", date: 2026-11-01}
etcd_backup: {schedule: "0 */6 * * *", retention_days: 35, offsite: true, last_restore_test: 2026-08-01}
"""
HEAD = "apiVersion: nis2kube.io/v1alpha1\nkind: Evidence\n"
CHECKS = ("evidence.penetration-test", "evidence.incident-runbook", "evidence.on-call", "evidence.csirt-contact")


def write(tmp_path, text: str) -> str:
    path = tmp_path / "evidence.yaml"
    path.write_text(text)
    return str(path)


def run(check_id: str, path: str | None, config: dict | None = None, as_of: dt.date = AS_OF):
    inputs = {"as_of": as_of}
    if path:
        inputs["evidence"] = path
    return run_check(check_id, inventory_from_yaml(""), config, inputs)


def test_the_contract_example_parses_with_dates_as_dates(tmp_path):
    data = load_evidence(write(tmp_path, CONTRACT))
    assert data["penetration_test"]["date"] == dt.date(2026, 5, 10)
    assert data["log_retention"]["days"] == 400
    assert data["etcd_backup"]["offsite"] is True
    assert data["csirt_contact"]["name"] == "CERT-Bund / BSI"
    assert set(data) == {"penetration_test", "incident_runbook", "on_call", "csirt_contact", "log_retention",
                         "etcd_backup"}


def test_every_section_is_optional():
    assert parse_evidence(HEAD) == {}
    assert parse_evidence(HEAD + "on_call:\n") == {}


@pytest.mark.parametrize("body, message", [
    ("penetration_tests: {date: 2026-01-01}\n", "unknown section 'penetration_tests'"),
    ("penetration_test: {date: 2026-13-01}\n", "penetration_test.date: '2026-13-01' is not a calendar date"),
    ("penetration_test: {date: 10.05.2026}\n", "penetration_test.date: must be a date YYYY-MM-DD"),
    ("penetration_test: {by: someone}\n", "penetration_test: missing required field 'date'"),
    ("on_call: {rotation: x, owner: y}\n", "on_call.owner: unknown field"),
    ("log_retention: {days: -1}\n", "log_retention.days: must be a whole number of days"),
    ("log_retention: {days: yes}\n", "log_retention.days"),  # YAML 1.1: yes is a boolean
    ("etcd_backup: {schedule: daily, offsite: maybe}\n", "etcd_backup.offsite: must be true or false"),
    ("csirt_contact: {name: ''}\n", "csirt_contact.name: must be a non-empty text"),
    ("on_call: [a, b]\n", "on_call must be a mapping"),
    ("on_call: {rotation: x}\n---\nkind: Evidence\n", "more than one YAML document"),
    ("on_call: {rotation: [\n", "invalid YAML"),
])
def test_bad_files_name_the_field(tmp_path, body, message):
    path = write(tmp_path, HEAD + body)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")) as err:
        load_evidence(path)
    assert path in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("kind: Evidence\n", "expected apiVersion"),
    ("apiVersion: v1\nkind: ConfigMap\n", "expected apiVersion"),
    ("- a\n", "top level must be a mapping"),
])
def test_wrong_kinds_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        parse_evidence(text, "e.yaml")


def test_size_encoding_and_missing_file_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(HEAD.encode() + b"#" * (MAX_BYTES + 10))
    with pytest.raises(InputError, match="larger than"):
        load_evidence(str(big))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(HEAD.encode() + "on_call: {rotation: M\xfcller}\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_evidence(str(latin))
    with pytest.raises(InputError, match="cannot read"):
        load_evidence(str(tmp_path / "nope.yaml"))


def test_contract_example_passes_every_evidence_check(tmp_path):
    path = write(tmp_path, CONTRACT)
    for check_id in CHECKS:
        [finding] = run(check_id, path)
        assert finding.status is Status.PASS, (check_id, finding.message)


def test_no_file_is_not_assessed_and_missing_sections_fail(tmp_path):
    for check_id in CHECKS:
        [finding] = run(check_id, None)
        assert finding.status is Status.NOT_ASSESSED
    empty = write(tmp_path, HEAD)
    for check_id in CHECKS:
        [finding] = run(check_id, empty)
        assert finding.status is Status.FAIL and "missing from the evidence file" in finding.message


def test_pentest_age_limit_and_future_dates(tmp_path):
    path = write(tmp_path, CONTRACT)
    [stale] = run("evidence.penetration-test", path, as_of=dt.date(2027, 6, 1))
    assert stale.status is Status.FAIL and "387 days ago (limit 365)" in stale.message
    [custom] = run("evidence.penetration-test", path, {"evidence": {"pentest_max_age_days": 400}},
                   as_of=dt.date(2027, 6, 1))
    assert custom.status is Status.PASS
    [future] = run("evidence.penetration-test", path, as_of=dt.date(2026, 1, 1))
    assert future.status is Status.FAIL and "in the future" in future.message
    with pytest.raises(InputError, match="pentest_max_age_days"):
        run("evidence.penetration-test", path, {"evidence": {"pentest_max_age_days": 0}})


def test_review_dates(tmp_path):
    undated = write(tmp_path, HEAD + "incident_runbook: {location: https://wiki/runbook}\n")
    [finding] = run("evidence.incident-runbook", undated)
    assert finding.status is Status.FAIL and "without a date" in finding.message
    old = write(tmp_path, HEAD + "on_call: {rotation: pagerduty:ot, reviewed: 2024-01-01}\n")
    [finding] = run("evidence.on-call", old)
    assert finding.status is Status.FAIL and "2024-01-01" in finding.message


def test_csirt_contact_needs_a_channel(tmp_path):
    path = write(tmp_path, HEAD + "csirt_contact: {name: CERT-Bund, reviewed: 2026-10-01}\n")
    [finding] = run("evidence.csirt-contact", path)
    assert finding.status is Status.FAIL and "no reporting channel" in finding.message


def test_a_bad_file_is_not_assessed_for_every_check_in_the_engine(tmp_path):
    path = write(tmp_path, HEAD + "penetration_test: {date: soon}\n")
    result = run_checks(ScanContext(inventory_from_yaml(""), inputs={"evidence": path}), include=["evidence.*"])
    assert len(result.findings) == 4
    assert all(f.status is Status.NOT_ASSESSED and "penetration_test.date" in f.message for f in result.findings)
