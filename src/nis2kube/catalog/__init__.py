"""NIS2 measures as data (catalog/measures.yaml); checks name the measures they evidence."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from nis2kube.bundled import load_yaml


@dataclass(frozen=True, slots=True)
class Measure:
    id: str
    source: str
    title: str
    kind: str  # technical | partial | organisational
    text: str


@cache
def measures() -> dict[str, Measure]:
    """All measures by id, in catalog order."""
    raw = load_yaml(__package__, "measures.yaml")
    return {m["id"]: Measure(m["id"], m["source"], m["title"], m["kind"], m["text"]) for m in raw["measures"]}
