"""Incidents built the way the store builds them: by folding events.

A plain module, not a conftest.py: other test folders import their own `conftest` by name.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nis2kube.incidents.model import Event, Incident, fold


def t(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


class Builder:
    """Appends events to one incident and folds them, like Store.append without a database."""

    def __init__(self, incident_id: str = "INC-TEST-1") -> None:
        self.id = incident_id
        self.events: list[Event] = []

    def add(self, type_: str, data: dict, at: str = "2026-03-01T08:00:00+00:00", actor: str = "alice") -> Incident:
        self.events.append(Event(self.id, len(self.events) + 1, type_, actor, t(at), data))
        return fold(self.id, self.events)


def significant(aware: str) -> Builder:
    """A Builder holding a significant incident that became aware at `aware` (ISO with offset)."""
    builder = Builder()
    builder.add("opened", {"title": "Unauthorised PLC write from a compromised HMI pod", "namespaces": ["ot"]},
                at=aware)
    builder.add("triaged", {"decision": "significant", "aware_at": aware}, at=aware)
    return builder
