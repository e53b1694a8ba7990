"""The API server's audit Policy (audit.k8s.io/v1), evaluated exactly as kube-apiserver does.

Why an evaluator and not a pattern match on the YAML: the API server walks the rules in order and the FIRST
rule that matches a request decides its level; nothing after it is consulted, and a request no rule matches
is not logged at all (level None). A policy that has a perfect `secrets: Metadata` rule can still write
secret values into the log when an earlier, broader `RequestResponse` rule catches the same request. The
matching below follows k8s.io/apiserver/pkg/audit/policy/checker.go: users, userGroups (any group), verbs,
then either resources/namespaces or nonResourceURLs; `*`, `*/sub` and `res/*` resource wildcards;
resourceNames; `/prefix*` URL wildcards; rule omitStages are unioned with the policy's. omitManagedFields
is only type-checked (kube-apiserver refuses a non-bool): it changes what an event holds, not its level.

`probe()` asks "is there any request of this shape that gets a level outside [lo, hi]?" over the identities,
namespaces and names the policy itself mentions (plus unmentioned ones): each equivalence class of requests
is tried once, which makes the answer exact for the dimensions probed. The harden generators reuse this
module to prove a generated policy before writing it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum

from nis2kube.inventory.selectors import valid_dns1123_subdomain
from nis2kube.inventory.yamlload import load_document

MAX_POLICY_BYTES = 4 * 1024 * 1024
API_VERSION = "audit.k8s.io/v1"  # the only one the policy reader accepts since 1.24 (v1alpha1/v1beta1 removed)
STAGES = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"})
GENERIC = "nis2kube-probe"  # a name no rule mentions: stands for "any other" user, namespace, object
AUTHENTICATED = "system:authenticated"


class Level(IntEnum):
    """Audit levels, ordered by how much of the request they record."""

    NONE = 0
    METADATA = 1
    REQUEST = 2
    REQUEST_RESPONSE = 3

    @classmethod
    def parse(cls, text: object) -> Level:
        """A missing level is an error, never level None: the API server requires the field."""
        if text is None or text == "":
            raise ValueError("level is required (None, Metadata, Request or RequestResponse)")
        level = _LEVELS.get(text) if isinstance(text, str) else None
        if level is None:
            raise ValueError(f"unknown level {text!r} (None, Metadata, Request or RequestResponse)")
        return level

    @property
    def label(self) -> str:
        return _LABELS[self]


_LEVELS = {"None": Level.NONE, "Metadata": Level.METADATA, "Request": Level.REQUEST,
           "RequestResponse": Level.REQUEST_RESPONSE}
_LABELS = {v: k for k, v in _LEVELS.items()}


class PolicyError(ValueError):
    """The policy would be rejected by kube-apiserver's validation; the message names source and rule."""


@dataclass(frozen=True)
class GroupResources:
    group: str
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, group: str, resource: str, subresource: str, name: str) -> bool:
        if self.group != group:
            return False
        if not self.resources:
            return True
        if self.resource_names and name not in self.resource_names:
            return False
        combined = f"{resource}/{subresource}" if subresource else resource
        for res in self.resources:
            if res in (combined, "*"):
                return True
            if subresource and res.startswith("*/") and subresource == res[2:]:
                return True
            if res.endswith("/*") and resource == res[:-2]:
                return True
        return False


@dataclass(frozen=True)
class Rule:
    index: int  # 1-based position in the policy, for messages
    level: Level
    users: frozenset[str] = frozenset()
    user_groups: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    resources: tuple[GroupResources, ...] = ()
    namespaces: frozenset[str] = frozenset()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()

    @property
    def is_catch_all(self) -> bool:
        """Matches every request: no condition at all."""
        return not (self.users or self.user_groups or self.verbs or self.resources or self.namespaces
                    or self.non_resource_urls)

    def describe(self) -> str:
        parts = [f"rule {self.index} (level: {self.level.label}"]
        if self.is_catch_all:
            parts.append(", catch-all")
        return "".join(parts) + ")"

    def matches(self, req: Request) -> bool:
        if self.users and (req.user is None or req.user not in self.users):
            return False
        if self.user_groups and (req.user is None or not self.user_groups.intersection(req.groups)):
            return False
        if self.verbs and req.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            if not req.is_resource:
                return False
            if self.namespaces and req.namespace not in self.namespaces:
                return False
            if not self.resources:
                return True
            return any(gr.matches(req.group, req.resource, req.subresource, req.name) for gr in self.resources)
        if self.non_resource_urls:
            return not req.is_resource and any(_path_matches(req.path, spec) for spec in self.non_resource_urls)
        return True


def _path_matches(path: str, spec: str) -> bool:
    if spec in ("*", path):
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


@dataclass(frozen=True)
class Request:
    """The authorizer attributes the policy sees. `user` None = failed authentication (no user known)."""

    verb: str
    user: str | None = None
    groups: frozenset[str] = frozenset()
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource requests only

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)

    def describe(self) -> str:
        if self.user is None:
            who = "an unauthenticated caller"
        else:
            who = "any user" if self.user == f"{GENERIC}-user" else f"user {self.user}"
        extra = sorted(self.groups - {AUTHENTICATED})
        if extra:
            who += f" (groups {', '.join(extra)})"
        if not self.is_resource:
            return f"{self.verb} {self.path} by {who}"
        what = f"{self.group}/{self.resource}" if self.group else self.resource
        if self.subresource:
            what += f"/{self.subresource}"
        where = f" in namespace {self.namespace}" if self.namespace not in ("", GENERIC) else \
            (" in any namespace" if self.namespace else "")
        named = f" named {self.name}" if self.name not in ("", GENERIC) else ""
        return f"{self.verb} {what}{named}{where} by {who}"


@dataclass(frozen=True)
class Decision:
    level: Level
    rule: Rule | None  # None: no rule matched, the API server's default (None) applies
    omit_stages: frozenset[str]

    def describe(self) -> str:
        if self.rule is None:
            return "no rule matches, so the default level None applies"
        return f"{self.rule.describe()} matches first"


@dataclass
class AuditPolicy:
    rules: list[Rule]
    omit_stages: frozenset[str] = frozenset()
    source: str = "<policy>"

    def evaluate(self, req: Request) -> Decision:
        """First match wins; no match means level None (k8s DefaultAuditLevel) with the policy's own settings."""
        for rule in self.rules:
            if rule.matches(req):
                return Decision(rule.level, rule, rule.omit_stages)
        return Decision(Level.NONE, None, self.omit_stages)

    # ---- probing -------------------------------------------------------------------------------------
    def identities(self) -> list[tuple[str | None, frozenset[str]]]:
        """One identity per equivalence class: each named user or an unnamed one, authenticated, with no
        or exactly one extra group the policy names (a rule matches when ANY group is listed, so single
        groups decide every first match a larger set of groups could reach)."""
        users = [f"{GENERIC}-user", *sorted({u for r in self.rules for u in r.users})]
        groups = sorted({g for r in self.rules for g in r.user_groups} - {AUTHENTICATED})
        out: list[tuple[str | None, frozenset[str]]] = []
        for user in users:
            out.append((user, frozenset({AUTHENTICATED})))
            out.extend((user, frozenset({AUTHENTICATED, g})) for g in groups)
        return out

    def namespaces(self) -> list[str]:
        return [*sorted({n for r in self.rules for n in r.namespaces if n}), GENERIC]

    def names(self) -> list[str]:
        return [*sorted({n for r in self.rules for gr in r.resources for n in gr.resource_names}), GENERIC]

    def requests(self, shape: Shape, identities: Iterable[tuple[str | None, frozenset[str]]] | None = None
                 ) -> Iterator[Request]:
        """Every equivalence class of requests of one shape."""
        idents = list(identities) if identities is not None else self.identities()
        for verb in shape.verbs:
            if shape.cluster_scoped:
                spaces = [""]
            elif verb in ("list", "watch"):
                spaces = [*self.namespaces(), ""]  # `-A` lists across namespaces with namespace ""
            else:
                spaces = self.namespaces()
            collection = verb in ("create", "list", "watch", "deletecollection") and not shape.subresource
            names = [""] if collection else self.names()  # collection requests carry no name
            for user, groups in idents:
                for ns in spaces:
                    for name in names:
                        yield Request(verb, user, groups, shape.group, shape.resource, shape.subresource, ns, name)

    def probe(self, shape: Shape, lo: Level = Level.NONE, hi: Level = Level.REQUEST_RESPONSE,
              identities: Iterable[tuple[str | None, frozenset[str]]] | None = None
              ) -> tuple[int, tuple[Request, Decision] | None]:
        """(number of request classes probed, the first one whose level falls outside [lo, hi] or None)."""
        count = 0
        for req in self.requests(shape, identities):
            count += 1
            decision = self.evaluate(req)
            if not lo <= decision.level <= hi:
                return count, (req, decision)
        return count, None


@dataclass(frozen=True)
class Shape:
    """A kind of request to probe: verbs on one group/resource[/subresource]."""

    verbs: tuple[str, ...]
    group: str
    resource: str
    subresource: str = ""
    cluster_scoped: bool = False

    @property
    def display(self) -> str:
        what = f"{self.group}/{self.resource}" if self.group else self.resource
        return f"{what}/{self.subresource}" if self.subresource else what


# ---- parsing -------------------------------------------------------------------------------------------
def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    return tuple(value)


def _flag(value: object, where: str) -> None:
    """An optional boolean; anything else fails decoding in the API server (the value itself decides no level)."""
    if value is not None and not isinstance(value, bool):
        raise PolicyError(f"{where} must be true or false")


def _stages(value: object, where: str) -> frozenset[str]:
    stages = _strings(value, where)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise PolicyError(f"{where}: unknown stage {bad[0]!r} (one of {', '.join(sorted(STAGES))})")
    return frozenset(stages)


def parse_policy(doc: object, source: str) -> AuditPolicy:
    """An AuditPolicy from a decoded document, validated as kube-apiserver validates it."""
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: not an audit Policy (the document is not a mapping)")
    if doc.get("kind") == "Policy" and str(doc.get("apiVersion")).startswith("audit.k8s.io/") and \
            doc.get("apiVersion") != API_VERSION:
        raise PolicyError(f"{source}: apiVersion {doc.get('apiVersion')} is refused by kube-apiserver since 1.24; "
                          f"use {API_VERSION} (same fields)")
    if doc.get("kind") != "Policy" or doc.get("apiVersion") != API_VERSION:
        raise PolicyError(f"{source}: not an audit Policy (kind {doc.get('kind')!r}, apiVersion "
                          f"{doc.get('apiVersion')!r}; expected kind Policy, apiVersion {API_VERSION})")
    omit = _stages(doc.get("omitStages"), f"{source}: omitStages")
    _flag(doc.get("omitManagedFields"), f"{source}: omitManagedFields")
    raw_rules = doc.get("rules")
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        raise PolicyError(f"{source}: rules must be a list")
    rules = [_parse_rule(raw, i, omit, source) for i, raw in enumerate(raw_rules, start=1)]
    if not rules:
        raise PolicyError(f"{source}: the policy has no rules (kube-apiserver refuses to start with it)")
    return AuditPolicy(rules, omit, source)


def _parse_rule(raw: object, index: int, policy_omit: frozenset[str], source: str) -> Rule:
    where = f"{source}: rules[{index - 1}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a mapping")
    try:
        level = Level.parse(raw.get("level"))
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    resources = []
    raw_resources = raw.get("resources") or []
    if not isinstance(raw_resources, list):
        raise PolicyError(f"{where}: resources must be a list")
    for j, gr in enumerate(raw_resources):
        if not isinstance(gr, dict):
            raise PolicyError(f"{where}.resources[{j}] must be a mapping")
        group = "" if gr.get("group") is None else gr["group"]  # null decodes to "", the core group
        if not isinstance(group, str):
            raise PolicyError(f"{where}.resources[{j}].group must be a string")
        res = _strings(gr.get("resources"), f"{where}.resources[{j}].resources")
        names = _strings(gr.get("resourceNames"), f"{where}.resources[{j}].resourceNames")
        if group and not valid_dns1123_subdomain(group):
            raise PolicyError(f"{where}.resources[{j}].group {group!r} is not a DNS subdomain (an API group "
                              "without version, e.g. rbac.authorization.k8s.io)")
        if names and not res:
            raise PolicyError(f"{where}.resources[{j}]: using resourceNames requires at least one resource")
        resources.append(GroupResources(group, res, names))
    _flag(raw.get("omitManagedFields"), f"{where}.omitManagedFields")
    urls = _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs")
    namespaces = _strings(raw.get("namespaces"), f"{where}.namespaces")
    if urls and (resources or namespaces):
        raise PolicyError(f"{where}: rules can specify either resources or nonResourceURLs, not both")
    for url in urls:
        if url != "*" and (not url.startswith("/") or "*" in url[:-1]):
            raise PolicyError(f"{where}.nonResourceURLs: {url!r} must start with / and may end with * only")
    return Rule(
        index=index,
        level=level,
        users=frozenset(_strings(raw.get("users"), f"{where}.users")),
        user_groups=frozenset(_strings(raw.get("userGroups"), f"{where}.userGroups")),
        verbs=frozenset(_strings(raw.get("verbs"), f"{where}.verbs")),
        resources=tuple(resources),
        namespaces=frozenset(namespaces),
        non_resource_urls=urls,
        omit_stages=policy_omit | _stages(raw.get("omitStages"), f"{where}.omitStages"),
    )


def parse_policy_text(text: str, source: str) -> AuditPolicy:
    """Parse YAML or JSON text (one document) into a policy; every failure is a PolicyError naming `source`."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyError(f"{source}: larger than {MAX_POLICY_BYTES // (1024 * 1024)} MiB; refused")
    try:
        doc = load_document(text)
    except RecursionError:
        raise PolicyError(f"{source}: nested too deeply") from None
    except Exception as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise PolicyError(f"{source}: invalid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
    return parse_policy(doc, source)


def load_policy_file(path: str) -> AuditPolicy:
    """Read a policy file from disk (bounded size, UTF-8)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_POLICY_BYTES:
            raise PolicyError(f"{path}: larger than {MAX_POLICY_BYTES // (1024 * 1024)} MiB; refused")
        with open(path, "rb") as fh:
            data = fh.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: not UTF-8 text") from None
    return parse_policy_text(text, path)
