"""Label selectors follow k8s.io/apimachinery exactly."""

import pytest

from nis2kube.inventory.selectors import (
    InvalidSelector,
    parse_selector,
    selector_matches,
    valid_dns1123_subdomain,
    valid_label_key,
    valid_label_value,
)

LABELS = {"app": "historian-db", "tier": "data", "zone": "control"}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, LABELS, True),
        ({}, {}, True),
        (None, LABELS, False),  # LabelSelectorAsSelector(nil) selects nothing
        ({"matchLabels": {"app": "historian-db"}}, LABELS, True),
        ({"matchLabels": {"app": "historian-db", "tier": "web"}}, LABELS, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["data", "web"]}]}, LABELS, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["data"]}]}, LABELS, False),
        ({"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["x"]}]}, LABELS, True),
        ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, LABELS, True),
        ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, LABELS, False),
        ({"matchExpressions": [{"key": "other", "operator": "DoesNotExist"}]}, LABELS, True),
        ({"matchLabels": {"app": "historian-db"},
          "matchExpressions": [{"key": "zone", "operator": "In", "values": ["field"]}]}, LABELS, False),
        ({"matchLabels": {"enabled": True}}, {"enabled": "true"}, True),  # YAML bool label value, as JSON text
    ],
)  # fmt: skip
def test_selector_semantics(selector, labels, expected):
    assert selector_matches(selector, labels) is expected


@pytest.mark.parametrize(
    "expr",
    [
        {"key": "a", "operator": "In", "values": []},
        {"key": "a", "operator": "NotIn"},
        {"key": "a", "operator": "Exists", "values": ["x"]},
        {"key": "a", "operator": "Gt", "values": ["1"]},
        {"operator": "Exists"},
        # labels.NewRequirement validates keys (qualified names) and values (label values)
        {"key": "app kubernetes", "operator": "Exists"},
        {"key": "plant.example/line/cell", "operator": "Exists"},
        {"key": "Plant.Example/line", "operator": "Exists"},
        {"key": "a", "operator": "In", "values": ["line 1"]},
        {"key": "a", "operator": "NotIn", "values": ["-x"]},
        {"key": "a", "operator": "In", "values": ["x" * 64]},
    ],
)
def test_invalid_selectors_are_rejected_like_the_api_server(expr):
    with pytest.raises(InvalidSelector):
        parse_selector({"matchExpressions": [expr]})
    assert selector_matches({"matchExpressions": [expr]}, {"a": "x"}) is False


def test_match_labels_are_validated_like_match_expressions():
    with pytest.raises(InvalidSelector):
        parse_selector({"matchLabels": {"app": "historian db"}})
    with pytest.raises(InvalidSelector):
        parse_selector({"matchLabels": {"/app": "historian-db"}})
    assert selector_matches({"matchLabels": {"app.kubernetes.io/name": "historian-db", "tier": ""}},
                            {"app.kubernetes.io/name": "historian-db", "tier": ""}) is True


def test_selector_index_finds_exactly_the_matching_selectors_in_their_order():
    """The index must agree with testing every selector, for every operator, the empty selector (matches all),
    the null one (matches nothing) and In with several values, and give matches in the order given."""
    from itertools import product

    from nis2kube.inventory.selectors import SelectorIndex

    raw = [
        {"matchLabels": {"app": "historian-db"}},
        {},
        None,
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["data", "web"]}]},
        {"matchLabels": {"zone": "control"}, "matchExpressions": [{"key": "app", "operator": "Exists"}]},
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]},
        {"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]},
        {"matchLabels": {"app": "historian-db", "tier": "web"}},
        {"matchLabels": {"app": "opc-gateway"}},
    ]
    selectors = [parse_selector(s) for s in raw]
    index = SelectorIndex((s, n) for n, s in enumerate(selectors))
    for app, tier, zone, legacy in product(("historian-db", "opc-gateway", None), ("data", "web", None),
                                           ("control", None), ("yes", None)):
        labels = {k: v for k, v in (("app", app), ("tier", tier), ("zone", zone), ("legacy", legacy)) if v}
        assert index.matching(labels) == [n for n, s in enumerate(selectors) if s.matches(labels)], labels
    assert index.matching({"app": "historian-db", "tier": "data", "zone": "control"}) == [0, 1, 3, 4, 5, 6]


@pytest.mark.parametrize(("check", "text", "valid"), [
    (valid_dns1123_subdomain, "rbac.authorization.k8s.io", True),
    (valid_dns1123_subdomain, "historian\n", False),  # Go's `$` is the end of the text, Python's is not
    (valid_dns1123_subdomain, "", False),
    (valid_dns1123_subdomain, "a." * 126 + "bc", False),  # 254 characters
    (valid_label_key, "app.kubernetes.io/name", True),
    (valid_label_key, "App.kubernetes.io/name", False),
    (valid_label_value, "", True),
    (valid_label_value, "Line_3.cell-2", True),
    (valid_label_value, "line3\n", False),
    (valid_label_value, "x" * 64, False),
])  # fmt: skip
def test_shared_name_validators_follow_apimachinery(check, text, valid):
    """The one copy of the apimachinery name rules, used by selectors, harden validation and audit policies."""
    assert check(text) is valid
