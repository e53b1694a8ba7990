"""Significance triage: Art. 23(3) and IR 2024/2690 Art. 3(1) / Art. 4 rules."""

from __future__ import annotations

from incident_builders import Builder

from nis2kube.incidents.triage import TriageAnswers, loss_threshold, recommend

ALL_NO = dict(severe_disruption=False, damage_to_others=False, financial_loss_eur=0, trade_secrets=False,
              death=False, health_damage=False, malicious_access=False, recurrence_count=1)


def test_everything_answered_no_is_not_significant():
    rec = recommend(TriageAnswers(**ALL_NO), annual_turnover_eur=50_000_000)
    assert rec.significant is False and rec.label == "not-significant" and not rec.unanswered


def test_unanswered_questions_leave_it_undetermined():
    rec = recommend(TriageAnswers(severe_disruption=False))
    assert rec.significant is None
    assert "malicious_access" in rec.unanswered and "financial_loss_eur" in rec.unanswered


def test_any_single_criterion_is_enough_and_is_cited():
    for name, cite in [("severe_disruption", "Art. 23(3)(a)"), ("damage_to_others", "Art. 23(3)(b)"),
                       ("trade_secrets", "Art. 3(1)(b)"), ("death", "Art. 3(1)(c)"),
                       ("health_damage", "Art. 3(1)(d)"), ("malicious_access", "Art. 3(1)(e)")]:
        rec = recommend(TriageAnswers(**{**ALL_NO, name: True}))
        assert rec.significant is True, name
        assert any(cite in r for r in rec.reasons), (name, rec.reasons)


def test_loss_threshold_is_the_lower_of_500k_and_5_percent_of_turnover():
    assert loss_threshold(None) == 500_000
    assert loss_threshold(4_000_000) == 200_000
    assert loss_threshold(100_000_000) == 500_000
    assert recommend(TriageAnswers(**{**ALL_NO, "financial_loss_eur": 250_000}), 4_000_000).significant is True
    assert recommend(TriageAnswers(**{**ALL_NO, "financial_loss_eur": 250_000}), 100_000_000).significant is False
    # exactly at the threshold is not "above" it
    assert recommend(TriageAnswers(**{**ALL_NO, "financial_loss_eur": 200_000}), 4_000_000).significant is False


def test_without_turnover_the_cap_is_used_and_said():
    rec = recommend(TriageAnswers(**{**ALL_NO, "financial_loss_eur": 600_000}))
    assert rec.significant is True
    assert any("turnover not configured" in r for r in rec.reasons)


def test_recurrence_needs_two_occurrences_and_joint_loss_above_threshold():
    base = {**ALL_NO, "recurrence_count": 3, "recurrence_loss_eur": 300_000}
    assert recommend(TriageAnswers(**base), 4_000_000).significant is True
    assert any("Art. 4" in r for r in recommend(TriageAnswers(**base), 4_000_000).reasons)
    assert recommend(TriageAnswers(**{**base, "recurrence_count": 1}), 4_000_000).significant is False
    assert recommend(TriageAnswers(**{**base, "recurrence_loss_eur": 100_000}), 4_000_000).significant is False
    rec = recommend(TriageAnswers(**{**base, "recurrence_loss_eur": None}), 4_000_000)
    assert rec.significant is None and rec.unanswered == ["recurrence_loss_eur"]


def test_decision_and_decider_are_recorded():
    builder = Builder()
    builder.add("opened", {"title": "Cryptominer in batch namespace"})
    rec = recommend(TriageAnswers(**ALL_NO))
    inc = builder.add("triaged", {"answers": TriageAnswers(**ALL_NO).to_dict(), "recommendation": rec.to_dict(),
                                  "decision": "not-significant", "rationale": "lab cluster, no production data"},
                      actor="ciso@example.eu")
    assert inc.status == "not-significant" and inc.aware_at is None
    assert inc.triage["by"] == "ciso@example.eu" and inc.triage["rationale"].startswith("lab cluster")
    assert inc.triage["recommendation"]["recommendation"] == "not-significant"
