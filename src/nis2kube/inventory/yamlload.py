"""YAML read exactly as Kubernetes reads it, on the libyaml C parser.

Kubernetes decodes manifests with sigs.k8s.io/yaml, a fork of go-yaml v2, then converts to JSON. That
is YAML 1.1 with Go's number rules: `y/yes/on` are true, `n/no/off` false, `0755` is octal, `1_000`
is 1000, `08` and `3.0` are 8 and 3 (floats to go-yaml, but JSON writes integral floats as integers),
base-60 (`1:20`) stays a string, timestamps stay strings, merge keys (`<<`) work, and mapping keys become
strings. PyYAML's own SafeLoader differs on each of these, so the resolver and the number constructor below
replace its rules. Alias expansion is bounded because an "alias bomb" is tiny as text and exponential once
walked.
"""

from __future__ import annotations

import math
import re

import yaml

from nis2kube import gostrconv

try:  # the C parser is ~10x faster; fall back to the pure-Python one where libyaml is missing
    from yaml.cyaml import CParser as _Parser

    HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]

    HAVE_LIBYAML = False

MAX_ALIAS_EXPANSION = 100_000  # nodes a document may reach through aliases before it is refused

_TRUE = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
_FALSE = ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_NULL = ("", "~", "null", "Null", "NULL")
_SPECIAL_FLOATS = {
    ".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan"),
    ".inf": float("inf"), ".Inf": float("inf"), ".INF": float("inf"),
    "+.inf": float("inf"), "+.Inf": float("inf"), "+.INF": float("inf"),
    "-.inf": float("-inf"), "-.Inf": float("-inf"), "-.INF": float("-inf"),
}  # fmt: skip
_NUMBER_TAG = "tag:nis2kube,2026:number"

_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INT64 = 1 << 63


class AliasBombError(ValueError):
    """A document expands through aliases beyond MAX_ALIAS_EXPANSION nodes."""


def go_yaml_number(text: str) -> int | float | str:
    """What a plain scalar starting with a digit, a sign or a dot is once Kubernetes has read it."""
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text[0] == ".":
        return _json_number(float(text)) if _YAML_STYLE_FLOAT.match(text) else text
    plain = text.replace("_", "")
    if not plain:
        return text
    # go-yaml tries ParseInt, then ParseUint (64-bit), then a float; Kubernetes' JSON step (sigs.k8s.io/json)
    # then reads an int64 where the JSON text is one and a float64 otherwise
    as_int = gostrconv.parse_int(plain)
    if as_int is not None:
        return as_int
    if (as_uint := gostrconv.parse_uint(plain)) is not None:
        return float(as_uint)
    if _YAML_STYLE_FLOAT.match(plain) and abs(as_float := float(plain)) != math.inf:
        return _json_number(as_float)  # out of float64's range ParseFloat errs, and the scalar stays a string
    return text


def _json_number(value: float) -> int | float:
    """A float64 after encoding/json and sigs.k8s.io/json: Go writes an integral float below 1e21 without a
    fraction (`3.0` becomes `3`), which then decodes as an int64 when it fits one."""
    if value.is_integer() and -_INT64 <= value < _INT64:
        return int(value)
    return value


class _K8sResolver(yaml.resolver.BaseResolver):
    """Implicit tags for plain scalars as go-yaml v2 resolves them (no timestamps, no base 60)."""


_K8sResolver.yaml_implicit_resolvers = {}
_K8sResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile("(?:" + "|".join(re.escape(w) for w in _TRUE + _FALSE) + r")\Z"),
    list("yYnNtTfFoO"),
)
_K8sResolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"(~|null|Null|NULL|)\Z"), ["~", "n", "N", ""]
)
_K8sResolver.add_implicit_resolver(
    _NUMBER_TAG, re.compile(r"[-+.0-9]"), list("-+.0123456789")
)
_K8sResolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"<<\Z"), ["<"])


class _K8sConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor with go-yaml's booleans and numbers, and mapping keys turned into strings."""

    def construct_k8s_bool(self, node: yaml.ScalarNode) -> bool:
        return node.value in _TRUE

    def construct_k8s_number(self, node: yaml.ScalarNode) -> int | float | str:
        return go_yaml_number(node.value)

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        for key in list(mapping):
            if type(key) is not str:
                mapping[_json_key(key)] = mapping.pop(key)
        return mapping


def _json_key(key: object) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


_K8sConstructor.add_constructor("tag:yaml.org,2002:bool", _K8sConstructor.construct_k8s_bool)
_K8sConstructor.add_constructor(_NUMBER_TAG, _K8sConstructor.construct_k8s_number)
# Explicit !!timestamp stays the text Kubernetes would have kept.
_K8sConstructor.add_constructor("tag:yaml.org,2002:timestamp", yaml.constructor.SafeConstructor.construct_yaml_str)


class K8sLoader(_Parser, _K8sConstructor, _K8sResolver):
    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _K8sConstructor.__init__(self)
        _K8sResolver.__init__(self)


if not HAVE_LIBYAML:  # pragma: no cover - the pure-Python parser needs Reader/Scanner/Composer too

    class K8sLoader(  # type: ignore[no-redef]
        yaml.reader.Reader, yaml.scanner.Scanner, _Parser, yaml.composer.Composer, _K8sConstructor, _K8sResolver
    ):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            _Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _K8sConstructor.__init__(self)
            _K8sResolver.__init__(self)


def load_document(text: str) -> object:
    """Parse one YAML document (no `---` separators inside) the way Kubernetes would."""
    loader = K8sLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if "*" in text and "&" in text:
        check_alias_expansion(data)
    return data


def check_alias_expansion(data: object, limit: int = MAX_ALIAS_EXPANSION) -> None:
    """Refuse a document whose fully expanded tree would exceed `limit` nodes (shared subtrees count each time)."""
    sizes: dict[int, int] = {}

    def size(node: object) -> int:
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = limit + 1  # a cycle counts as unbounded
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[key] = total
        return total

    if size(data) > limit:
        raise AliasBombError(f"aliases expand this document beyond {limit:,} nodes (possible alias bomb)")
