"""Significance triage: the Art. 23(3) test and the IR 2024/2690 Art. 3-4 thresholds as questions.

The helper recommends; a person decides. Both the answers, the recommendation with its reasons and the
decision (with who made it) are recorded in the `triaged` event. IR 2024/2690 binds only the entity types
it lists; for others (e.g. manufacturers) its thresholds are a yardstick, which the reasons say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FINANCIAL_LOSS_CAP_EUR = 500_000  # IR 2024/2690 Art. 3(1)(a): EUR 500 000 or 5 % of turnover, lower one
TURNOVER_SHARE = 0.05
RECURRENCE_MIN = 2  # Art. 4: at least twice within six months, same apparent root cause


@dataclass
class TriageAnswers:
    """None means 'not answered yet' (which is different from 'no')."""

    severe_disruption: bool | None = None
    damage_to_others: bool | None = None
    financial_loss_eur: float | None = None
    trade_secrets: bool | None = None
    death: bool | None = None
    health_damage: bool | None = None
    malicious_access: bool | None = None
    recurrence_count: int | None = None
    recurrence_loss_eur: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


QUESTIONS: dict[str, tuple[str, str]] = {
    "severe_disruption": ("art23.3.a", "Has it caused, or can it cause, severe operational disruption of the "
                                       "services?"),
    "damage_to_others": ("art23.3.b", "Has it affected, or can it affect, other natural or legal persons by "
                                      "causing considerable material or non-material damage?"),
    "financial_loss_eur": ("ir2690.a3.1.a", "Direct financial loss caused or possibly caused (EUR estimate)?"),
    "trade_secrets": ("ir2690.a3.1.b", "Has it caused, or can it cause, exfiltration of trade secrets?"),
    "death": ("ir2690.a3.1.c", "Has it caused, or can it cause, the death of a natural person?"),
    "health_damage": ("ir2690.a3.1.d", "Has it caused, or can it cause, considerable damage to a natural "
                                       "person's health?"),
    "malicious_access": ("ir2690.a3.1.e", "Was there a successful, suspectedly malicious and unauthorised "
                                          "access capable of causing severe operational disruption?"),
    "recurrence_count": ("ir2690.a4", "How many incidents with the same apparent root cause in the last six "
                                      "months (this one included)?"),
    "recurrence_loss_eur": ("ir2690.a4", "Their combined direct financial loss (EUR)?"),
}


@dataclass
class Recommendation:
    significant: bool | None  # None: nothing triggers yet, but questions are unanswered
    reasons: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    loss_threshold_eur: float = FINANCIAL_LOSS_CAP_EUR

    @property
    def label(self) -> str:
        return {True: "significant", False: "not-significant", None: "undetermined"}[self.significant]

    def to_dict(self) -> dict[str, Any]:
        return {"recommendation": self.label, "reasons": self.reasons, "unanswered": self.unanswered,
                "loss_threshold_eur": self.loss_threshold_eur}


def loss_threshold(annual_turnover_eur: float | None) -> float:
    if annual_turnover_eur is None:
        return FINANCIAL_LOSS_CAP_EUR
    return min(FINANCIAL_LOSS_CAP_EUR, TURNOVER_SHARE * annual_turnover_eur)


def recommend(answers: TriageAnswers, annual_turnover_eur: float | None = None) -> Recommendation:
    """Significant when any criterion is met; reasons cite the provision for each one."""
    threshold = loss_threshold(annual_turnover_eur)
    rec = Recommendation(significant=False, loss_threshold_eur=threshold)
    flags = {
        "severe_disruption": "Art. 23(3)(a): severe operational disruption of the services",
        "damage_to_others": "Art. 23(3)(b): considerable material or non-material damage to other persons",
        "trade_secrets": "IR 2024/2690 Art. 3(1)(b): exfiltration of trade secrets",
        "death": "IR 2024/2690 Art. 3(1)(c): death of a natural person",
        "health_damage": "IR 2024/2690 Art. 3(1)(d): considerable damage to a person's health",
        "malicious_access": "IR 2024/2690 Art. 3(1)(e): successful, suspectedly malicious unauthorised access "
                            "capable of severe operational disruption",
    }
    for name, reason in flags.items():
        value = getattr(answers, name)
        if value is None:
            rec.unanswered.append(name)
        elif value:
            rec.reasons.append(reason)
    basis = ("5 % of annual turnover" if annual_turnover_eur is not None and threshold < FINANCIAL_LOSS_CAP_EUR
             else "EUR 500 000")
    if answers.financial_loss_eur is None:
        rec.unanswered.append("financial_loss_eur")
    elif answers.financial_loss_eur > threshold:
        rec.reasons.append(f"IR 2024/2690 Art. 3(1)(a): direct financial loss EUR {answers.financial_loss_eur:,.0f} "
                           f"exceeds EUR {threshold:,.0f} ({basis}); also financial loss under Art. 23(3)(a)")
    if answers.recurrence_count is None:
        rec.unanswered.append("recurrence_count")
    elif answers.recurrence_count >= RECURRENCE_MIN:
        if answers.recurrence_loss_eur is None:
            rec.unanswered.append("recurrence_loss_eur")
        elif answers.recurrence_loss_eur > threshold:
            rec.reasons.append(
                f"IR 2024/2690 Art. 4: {answers.recurrence_count} incidents in six months with the same apparent "
                f"root cause, jointly EUR {answers.recurrence_loss_eur:,.0f} > EUR {threshold:,.0f}")
    if rec.reasons:
        rec.significant = True
    elif rec.unanswered:
        rec.significant = None
    if annual_turnover_eur is None and answers.financial_loss_eur is not None:
        rec.reasons.append("note: annual turnover not configured (incidents.annual_turnover_eur); "
                           "the EUR 500 000 cap was used as the loss threshold")
    return rec
