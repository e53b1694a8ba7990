"""Label selectors with the exact rules of k8s.io/apimachinery (metav1.LabelSelectorAsSelector).

- matchLabels and matchExpressions are ANDed; an empty selector `{}` matches everything.
- A null/absent selector matches nothing (LabelSelectorAsSelector(nil) is labels.Nothing()); callers whose
  API defines absence differently (NetworkPolicy peers) handle that before calling.
- In/NotIn need a non-empty `values`; Exists/DoesNotExist must have none; anything else is an invalid
  selector, which the API server would have rejected: `InvalidSelector` says why.
- NotIn and DoesNotExist match objects that do not have the key at all.
- Keys must be qualified names and values valid label values (labels.NewRequirement validates both).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# k8s.io/apimachinery/pkg/util/validation: IsQualifiedName, IsValidLabelValue, IsDNS1123Subdomain
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class InvalidSelector(ValueError):
    """The selector would be rejected by the API server's validation."""


def _text(value: object) -> str:
    """Label values as the JSON text Kubernetes would see (YAML `true` becomes "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op == "In":
            return self.key in labels and labels[self.key] in self.values
        if op == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if op == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist


@dataclass(frozen=True, slots=True)
class Selector:
    requirements: tuple[Requirement, ...]
    matches_nothing: bool = False

    @property
    def is_empty(self) -> bool:
        """Selects everything."""
        return not self.requirements and not self.matches_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.matches_nothing:
            return False
        labels = labels or {}
        for r in self.requirements:  # noqa: SIM110 - a loop, not all(genexpr): runs per (pod, selector) pair
            if not r.matches(labels):
                return False
        return True


NOTHING = Selector((), matches_nothing=True)
EVERYTHING = Selector(())


class SelectorIndex(Generic[T]):
    """Which of many selectors match a label set, without testing every one (a namespace with a PDB per
    workload would otherwise cost workloads x PDBs). Each selector is filed under the pairs of one of its
    `In` requirements and tested only when the labels carry such a pair; a selector without one is tested
    every time. Matches come in the order the items were given."""

    def __init__(self, entries: Iterable[tuple[Selector, T]]) -> None:
        self._by_pair: dict[tuple[str, str], list[tuple[int, Selector, T]]] = {}
        self._always: list[tuple[int, Selector, T]] = []
        for position, (selector, item) in enumerate(entries):
            if selector.matches_nothing:
                continue
            entry = (position, selector, item)
            first_in = next((r for r in selector.requirements if r.operator == "In"), None)
            if first_in is None:
                self._always.append(entry)
                continue
            for value in first_in.values:  # labels hold one value per key: at most one of these is hit
                self._by_pair.setdefault((first_in.key, value), []).append(entry)

    def matching(self, labels: Mapping[str, str] | None) -> list[T]:
        labels = labels or {}
        found = [e for e in self._always if e[1].matches(labels)]
        if self._by_pair:
            for pair in labels.items():
                found += [e for e in self._by_pair.get(pair, ()) if e[1].matches(labels)]
        if len(found) > 1:
            found.sort(key=lambda e: e[0])
        return [e[2] for e in found]


def valid_dns1123_subdomain(text: str) -> bool:
    """IsDNS1123Subdomain: object names, API groups, label key prefixes (one copy for every module)."""
    return len(text) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(text) is not None


def valid_label_key(key: str) -> bool:
    """A qualified name: an optional DNS subdomain prefix and '/', then a name of at most 63 characters."""
    prefix, slash, name = key.rpartition("/")
    if slash and not valid_dns1123_subdomain(prefix):
        return False
    return len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def valid_label_value(value: str) -> bool:
    """IsValidLabelValue: empty, or a qualified name's name part."""
    return value == "" or (len(value) <= 63 and _QUALIFIED_NAME.fullmatch(value) is not None)


def _requirement(key: str, op: str, values: frozenset[str]) -> Requirement:
    """labels.NewRequirement's validation: a bad key or value makes the whole selector invalid."""
    if not valid_label_key(key):
        raise InvalidSelector(f"label key {key!r} is not a qualified name")
    bad = sorted(v for v in values if not valid_label_value(v))
    if bad:
        raise InvalidSelector(f"value {bad[0]!r} of {key!r} is not a valid label value")
    return Requirement(key, op, values)


def parse_selector(selector: object) -> Selector:
    """Compile a metav1.LabelSelector (a dict, or None for "nothing")."""
    if selector is None:
        return NOTHING
    if not isinstance(selector, Mapping):
        raise InvalidSelector(f"a label selector must be a mapping, not {type(selector).__name__}")
    requirements: list[Requirement] = []
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise InvalidSelector("matchLabels must be a mapping")
    for key, value in match_labels.items():
        requirements.append(_requirement(str(key), "In", frozenset({_text(value)})))
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise InvalidSelector("matchExpressions must be a list")
    for expr in expressions:
        if not isinstance(expr, Mapping) or not expr.get("key"):
            raise InvalidSelector(f"matchExpressions entry without a key: {expr!r}")
        key, op = str(expr["key"]), expr.get("operator")
        values = expr.get("values") or []
        if not isinstance(values, list):
            raise InvalidSelector(f"values of {key!r} must be a list")
        if op in ("In", "NotIn"):
            if not values:
                raise InvalidSelector(f"operator {op} on {key!r} needs at least one value")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise InvalidSelector(f"operator {op} on {key!r} must not have values")
        else:
            raise InvalidSelector(f"unknown operator {op!r} on {key!r}")
        requirements.append(_requirement(key, op, frozenset(_text(v) for v in values)))
    return Selector(tuple(requirements))


def selector_matches(selector: object, labels: Mapping[str, str] | None) -> bool:
    """One-off match; an invalid selector matches nothing (the object could not exist in a cluster)."""
    try:
        return parse_selector(selector).matches(labels)
    except InvalidSelector:
        return False


# For isinstance on parsed input: dict first, as the Mapping ABC's check alone costs 7x as much (once per object)
MAPPING_TYPES = (dict, Mapping)


def labels_of(obj: Mapping) -> dict[str, str]:
    """metadata.labels as strings (never None)."""
    meta = obj.get("metadata")
    raw = (meta.get("labels") if isinstance(meta, MAPPING_TYPES) else None) or {}
    if not isinstance(raw, MAPPING_TYPES):
        return {}
    return {str(k): _text(v) for k, v in raw.items()}
