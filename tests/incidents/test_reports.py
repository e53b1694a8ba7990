"""Report drafts: exactly the Art. 23(4) fields per kind, pre-filled, missing flagged; md/json/pdf; profiles."""

from __future__ import annotations

import shutil
from importlib import resources

import orjson
import pytest
import yaml
from incident_builders import Builder, significant

from nis2kube.incidents.model import ReportKind
from nis2kube.incidents.profile import EntityProfile
from nis2kube.incidents.reports import KIND_FIELDS, ReportError, available_profiles, draft, render

ENTITY = EntityProfile(entity_name="Stadtwerke Musterstadt GmbH")
SHA = "cd" * 32
EXPECTED = {
    "early-warning": ["suspected_malicious", "cross_border_impact"],
    "notification": ["early_warning_update", "initial_assessment", "severity", "impact", "indicators_of_compromise"],
    "intermediate": ["status_update"],
    "final": ["detailed_description", "severity", "impact", "threat_type_or_root_cause", "mitigation_applied",
              "mitigation_ongoing", "cross_border_impact"],
    "progress": ["status_update"],
}


@pytest.fixture
def filled():
    b = significant("2026-02-02T07:15:00+01:00")
    b.add("updated", {"suspected_malicious": "yes", "cross_border": "no", "severity": "high",
                      "assessment": "Attacker used a leaked kubeconfig to exec into the SCADA gateway.",
                      "impact": "Line 3 stopped for 40 minutes.", "iocs": ["fd.rip=203.0.113.7"],
                      "description": "Full timeline in annex.", "root_cause": "Leaked CI credentials",
                      "mitigations_applied": ["Rotated kubeconfigs"], "mitigations_ongoing": ["Network segmentation"],
                      "status_update": "Contained; forensic analysis running."})
    b.add("evidence", {"name": "falco-events.jsonl", "sha256": SHA, "size": 1200})
    return b.add("report-submitted", {"kind": "notification", "content_sha256": SHA}, at="2026-02-03T07:00:00+01:00")


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_kind_has_exactly_the_article_23_4_fields(kind, filled):
    d = draft(filled, ReportKind(kind), ENTITY)
    assert [f.key for f in d.fields] == EXPECTED[kind] == list(KIND_FIELDS[ReportKind(kind)])
    assert d.missing == []


def test_empty_record_flags_every_missing_field():
    inc = significant("2026-02-02T07:15:00+01:00").add("timeline", {"text": "Falco alert acknowledged"})
    d = draft(inc, ReportKind.NOTIFICATION, ENTITY)
    assert d.missing == ["early_warning_update", "initial_assessment", "severity", "impact",
                         "indicators_of_compromise"]
    assert draft(inc, ReportKind.EARLY_WARNING, ENTITY).missing == ["suspected_malicious", "cross_border_impact"]


def test_prefill_values_and_due_date(filled):
    d = draft(filled, ReportKind.NOTIFICATION, ENTITY)
    values = {f.key: f.value for f in d.fields}
    assert values["indicators_of_compromise"] == ["fd.rip=203.0.113.7"]
    assert values["severity"] == "High"
    assert "Suspected to be caused by unlawful or malicious acts: Yes" in values["early_warning_update"]
    assert d.due_at is not None and d.due_at.isoformat().startswith("2026-02-05T06:15")


def test_json_output_is_structured(filled):
    data = orjson.loads(render(draft(filled, ReportKind.FINAL, ENTITY), "json", ENTITY))
    assert data["kind"] == "final" and data["legal_basis"].startswith("Art. 23(4)(d)")
    assert list(data["fields"]) == EXPECTED["final"]
    assert data["fields"]["threat_type_or_root_cause"]["value"] == "Leaked CI credentials"
    assert data["context"]["evidence"][0]["sha256"] == SHA
    assert data["due_at"] == "2026-03-03T06:00:00Z"  # one calendar month after the notification


def test_markdown_escapes_record_text():
    builder = Builder()
    builder.add("opened", {"title": "<script>alert(1)</script> in pod"})
    inc = builder.add("triaged", {"decision": "significant"})
    md = render(draft(inc, ReportKind.EARLY_WARNING, ENTITY), "md", ENTITY).decode()
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "**MISSING**" in md and "Early warning" in md


def test_german_profile_uses_german_labels_and_national_field(filled):
    md = render(draft(filled, ReportKind.EARLY_WARNING, ENTITY, "de"), "md", ENTITY).decode()
    assert "Frühe Erstmeldung" in md and "Verdacht auf rechtswidrige oder böswillige Handlungen" in md
    d = draft(filled, ReportKind.EARLY_WARNING, ENTITY, "de")
    assert d.missing == ["registration_number"]  # the § 33 BSIG number is a national extra field
    filled.extra["registration_number"] = "BSI-2026-0042"
    assert draft(filled, ReportKind.EARLY_WARNING, ENTITY, "de").missing == []


def test_pdf_output(filled):
    pdf = render(draft(filled, ReportKind.FINAL, ENTITY, "de"), "pdf", ENTITY)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000


def test_a_new_country_is_only_data(tmp_path, filled):
    shipped = resources.files("nis2kube.incidents").joinpath("templates", "eu")
    target = tmp_path / "at"
    shutil.copytree(str(shipped), target)
    profile = yaml.safe_load((target / "profile.yaml").read_text())
    profile["recipient"] = "Bundesamt für Cybersicherheit"
    profile["kinds"]["early-warning"]["title"] = "Frühwarnung"
    (target / "profile.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True))
    entity = EntityProfile(templates_dir=str(tmp_path), report_profile="at")
    assert "at" in available_profiles(entity)
    md = render(draft(filled, ReportKind.EARLY_WARNING, entity), "md", entity).decode()
    assert "Frühwarnung" in md and "Bundesamt für Cybersicherheit" in md


def test_broken_profile_is_a_clear_error(tmp_path, filled):
    (tmp_path / "xx").mkdir()
    (tmp_path / "xx" / "profile.yaml").write_text("labels: {}\nkinds: {}\nfields: {}\nvalues: {}\n")
    entity = EntityProfile(templates_dir=str(tmp_path), report_profile="xx")
    with pytest.raises(ReportError, match=r"xx/profile.yaml: kinds.early-warning is missing"):
        draft(filled, ReportKind.EARLY_WARNING, entity)
    with pytest.raises(ReportError, match="unknown report profile 'nope'"):
        draft(filled, ReportKind.EARLY_WARNING, ENTITY, "nope")


def test_progress_report_draft_is_due_when_the_final_report_would_be(filled):
    d = draft(filled, ReportKind.PROGRESS, ENTITY)
    assert d.due_at == draft(filled, ReportKind.FINAL, ENTITY).due_at
    assert d.due_at.isoformat() == "2026-03-03T06:00:00+00:00"
