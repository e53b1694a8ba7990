"""Admission control: the baseline is ENFORCED, per namespace, by Kyverno, Gatekeeper, ValidatingAdmissionPolicy,
Sigstore policy-controller or Pod Security Admission labels.

A policy in Audit mode, a Gatekeeper constraint in dryrun, a VAP bound with `validationActions: [Audit]` only
reports; a webhook with `failurePolicy: Ignore` lets everything through whenever the engine is down; an
exclusion of an application namespace leaves that namespace open. Each of these is read with the engine's
own precedence rules (Kyverno: rule-level failureAction and per-namespace overrides over the policy-level
validationFailureAction; Gatekeeper: enforcementAction incl. scoped actions; VAP: the binding's actions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from nis2kube.apiserver import apiservers
from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.checks.runtime import unlisted
from nis2kube.findings import Finding, ResourceRef, Severity
from nis2kube.inventory import Inventory
from nis2kube.inventory.live_kinds import LIVE_KINDS
from nis2kube.inventory.selectors import InvalidSelector, labels_of, parse_selector
from nis2kube.inventory.workloads import workloads
from nis2kube.podsecurity_config import PodSecurityDefaults, load_admission_config
from nis2kube.wildcards import gatekeeper_match, kyverno_match

ADMISSION = ("art21.2.e", "ir2690.6.2", "ir2690.6.3")
SUPPLY = ("art21.2.d",)
ENFORCE, AUDIT, WARN = "Enforce", "Audit", "Warn"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
# policy-controller's ClusterImagePolicy spec.mode: exactly "enforce" (the default) or "warn"; its webhook
# refuses any other value, so such an object never takes effect.
SIGSTORE_MODES = {"enforce": ENFORCE, "warn": WARN}
CONTROLS = {
    "non-root": "containers run as non-root",
    "registry": "images come from approved registries",
    "limits": "containers declare resource limits",
    "signature": "image signatures are verified",
}
NsPredicate = Callable[[str, dict], bool]
LISTED = frozenset((k.group, k.kind) for k in LIVE_KINDS)  # what a live scan lists (and so can miss)


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class Enforcement:
    """One policy (rule) enforcing some controls somewhere. `action(ns, labels)` is the effective action in
    that namespace (Enforce/Audit/Warn) or None when the policy does not apply there."""

    engine: str
    ref: ResourceRef
    label: str
    controls: frozenset[str]
    action: Callable[[str, dict], str | None]
    excluded: tuple[str, ...] = ()  # namespace patterns excluded while otherwise enforcing
    glob: Callable[[str, str], bool] = kyverno_match  # the engine's pattern dialect, for `excluded`


@dataclass(frozen=True)
class WebhookReach:
    """Where the API server calls an engine's validating webhooks for Pod CREATE: only namespaces some pod
    webhook's namespaceSelector matches (objectSelector or matchConditions narrow a webhook to some pods)."""

    names: tuple[str, ...]
    selectors: tuple[NsPredicate, ...]

    def reaches(self, ns: str, labels: dict) -> bool:
        return any(selector(ns, labels) for selector in self.selectors)


def _selector(raw: object) -> NsPredicate:
    """A namespaceSelector; an invalid one matches nothing (the API server would have rejected it)."""
    if raw is None:
        return lambda ns, labels: True
    try:
        selector = parse_selector(raw)
    except InvalidSelector:
        return lambda ns, labels: False
    return lambda ns, labels: selector.matches(labels)


def _names(patterns: object, glob: Callable[[str, str], bool] = kyverno_match) -> NsPredicate:
    values = [str(p) for p in _l(patterns)]
    return lambda ns, labels: any(glob(p, ns) for p in values)


def _walk_strings(node: object, key: str = "") -> Iterator[tuple[str, str]]:
    """(key stripped of Kyverno anchors, string value) for every string leaf."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_strings(v, str(k).strip("=()^<>+X!"))
    elif isinstance(node, list):
        for item in node:
            yield from _walk_strings(item, key)
    elif isinstance(node, str):
        yield key, node


def _restricts_registry(value: str) -> bool:
    """`registry.example/*` or `a.io/* | b.io/*` restrict the registry; `!*:latest` or `*` do not."""
    return all(alt.strip()[:1].isalnum() for alt in value.split("|")) and "/" in value


def _classify_text(text: str, patterns: list[tuple[str, str]]) -> set[str]:
    found = set()
    if "runAsNonRoot" in text:
        found.add("non-root")
    if "limits" in text and ("memory" in text or "cpu" in text):
        found.add("limits")
    if any(k == "image" and _restricts_registry(v) for k, v in patterns):
        found.add("registry")
    if "image" in text and ("startsWith(" in text or ".matches(" in text):
        found.add("registry")  # CEL on image references
    if "images." in text and ".registry" in text:
        found.add("registry")  # Kyverno deny conditions on {{ images.*.*.registry }}
    return found


# ---- Kyverno -----------------------------------------------------------------------------------------------
def _action_name(value: object) -> str:
    """Upstream `Enforce()` is true for `Enforce` and the legacy `enforce` only; any other value reports."""
    return ENFORCE if value in ("Enforce", "enforce") else AUDIT


@dataclass(frozen=True)
class _Override:
    """A failureActionOverrides entry; `namespaces`/`selector` are None when the field is absent, which
    the resolvers read differently from an empty list or an empty selector."""

    action: str
    namespaces: tuple[str, ...] | None
    selector: NsPredicate | None


def _overrides(raw: object) -> tuple[_Override, ...]:
    """Entries with an invalid action are skipped (the engine's `IsValid()`; the CRD enum rejects them)."""
    out = []
    for item in _l(raw):
        if isinstance(item, dict) and item.get("action") in ("Enforce", "enforce", "Audit", "audit"):
            names, selector = item.get("namespaces"), item.get("namespaceSelector")
            out.append(_Override(_action_name(item["action"]),
                                 None if names is None else tuple(str(n) for n in _l(names)),
                                 None if selector is None else _selector(selector)))
    return tuple(out)


def _named(patterns: tuple[str, ...], ns: str) -> bool:
    return any(kyverno_match(p, ns) for p in patterns)


def _engine_override(overrides: tuple[_Override, ...], ns: str, labels: dict) -> str | None:
    """pkg/engine/api matchOverride: without `namespaces` the selector decides (no selector: every
    namespace); with `namespaces` a matching name AND, if set, the selector."""
    for o in overrides:
        if o.namespaces is None:
            if o.selector is None or o.selector(ns, labels):
                return o.action
        elif _named(o.namespaces, ns) and (o.selector is None or o.selector(ns, labels)):
            return o.action
    return None


def _cache_override(overrides: tuple[_Override, ...], ns: str, labels: dict) -> str | None:
    """pkg/policycache: no names and no selector is every namespace; otherwise a matching name OR selector."""
    for o in overrides:
        if (not o.namespaces and o.selector is None) or _named(o.namespaces or (), ns) or (
                o.selector is not None and o.selector(ns, labels)):
            return o.action
    return None


@dataclass(frozen=True)
class KyvernoActions:
    """The failure-action fields of one Kyverno rule and its policy (rule fields None when unset)."""

    spec_action: str
    spec_overrides: tuple[_Override, ...]
    rule_action: str | None = None
    rule_overrides: tuple[_Override, ...] = ()
    validate: bool = True

    def effective(self, ns: str, labels: dict) -> str:
        """A validate rule blocks only when both upstream resolvers say Enforce: the policy cache routes it to
        the enforcing webhook path (rule overrides, else policy overrides; then the rule's, else the policy's
        action) and the engine's HasEnforcedFailure blocks (rule overrides, rule action, policy overrides,
        policy action). verifyImages rules go to the image webhook whatever their action: the engine decides."""
        engine = (_engine_override(self.rule_overrides, ns, labels) or self.rule_action
                  or _engine_override(self.spec_overrides, ns, labels) or self.spec_action)
        if not self.validate:
            return engine
        cache = _cache_override(self.rule_overrides or self.spec_overrides, ns, labels) \
            or self.rule_action or self.spec_action
        return ENFORCE if engine == cache == ENFORCE else AUDIT


def kind_selector(text: str) -> tuple[str, str]:
    """(kind, subresource) of a Kyverno kind selector, as its ParseKindSelector splits `Kind`, `Kind/sub`,
    `Version/Kind`, `Group/Version/Kind`, `Version/Kind/sub` or `Group/Version/Kind/sub`: a kind starts with
    an upper-case letter, so `Node/*` is Node with any subresource and `*/*` any version of any kind."""
    parts = text.split("/")
    if len(parts) == 2:
        return (parts[0], parts[1]) if parts[0][:1].isupper() else (parts[1], "")
    if len(parts) == 3:
        return (parts[1], parts[2]) if parts[1][:1].isupper() else (parts[2], "")
    if len(parts) >= 4:
        return parts[2], parts[3]
    return text, ""


def _selects_kind(selector: str, kind: str) -> bool:
    """A kind selector takes in the CREATE of the resource `kind` itself (not only a subresource of it)."""
    name, sub = kind_selector(selector)
    return kyverno_match(name, kind) and kyverno_match(sub, "")


def _filter_scope(f: dict, *, excluding: bool, kind: str = "Pod") -> tuple[NsPredicate, list[str]] | None:
    """A Kyverno ResourceFilter as the namespaces where it takes in EVERY `kind` (a Pod, or a controller for
    supply's image checks) created, with what names them; None when it takes only some (by user, role, object
    name, labels or annotations, other operations) or none. A match filter must name the kind (or `*`) among
    its kinds; an exclude filter without kinds takes any."""
    if any(f.get(k) for k in ("subjects", "roles", "clusterRoles")):
        return None
    res = f.get("resources") if isinstance(f.get("resources"), dict) else {}
    if res.get("names") or res.get("name") or res.get("selector") or res.get("annotations"):
        return None
    if not any(v or v == {} for v in res.values()):
        return None  # an empty filter is skipped, not taken as matching everything
    kinds = [str(k) for k in _l(res.get("kinds"))]
    if (kinds or not excluding) and not any(_selects_kind(k, kind) for k in kinds):
        return None
    ops = _l(res.get("operations"))
    if ops and "CREATE" not in ops:
        return None
    names = _names(res.get("namespaces")) if res.get("namespaces") else None
    has_selector = res.get("namespaceSelector") is not None  # an empty selector {} matches every namespace
    selector = _selector(res.get("namespaceSelector")) if has_selector else None
    listed = [str(n) for n in _l(res.get("namespaces"))]
    if has_selector:
        listed.append(f"namespaceSelector {json.dumps(res['namespaceSelector'], sort_keys=True)}")
    return (lambda ns, labels: (names is None or names(ns, labels)) and (selector is None or selector(ns, labels)),
            listed or ["*"])


def _block(raw: object, *, excluding: bool, kind: str = "Pod") -> tuple[NsPredicate, list[str]] | None:
    """A match or exclude block (`any`: one filter suffices, `all`: every one must, else the legacy single
    filter) as the namespaces where it takes in every pod; None when it is not sure to anywhere."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("any"), list) and raw["any"]:  # Kyverno falls back to `all` when `any` is empty
        filters, mode = raw["any"], any
    elif isinstance(raw.get("all"), list) and raw["all"]:
        filters, mode = raw["all"], all
    else:
        filters, mode = [raw], any
    parsed = [_filter_scope(f, excluding=excluding, kind=kind) for f in filters if isinstance(f, dict)]
    found = [p for p in parsed if p is not None]
    if not found or (mode is all and len(found) != len(parsed)):
        return None
    return (lambda ns, labels: mode(p(ns, labels) for p, _ in found)), [n for _, names in found for n in names]


def kyverno_scope(rule: dict, kind: str = "Pod") -> tuple[NsPredicate, tuple[str, ...]] | None:
    """Where a Kyverno rule applies to every `kind` created (match takes them all in, exclude drops none of
    them), with the namespace patterns its exclude names; None when its match is partial. An exclude that drops
    only some (by name, user, role) is not read as dropping the namespace."""
    covers = _block(rule.get("match"), excluding=False, kind=kind)
    if covers is None:
        return None
    match, _ = covers
    excludes = _block(rule.get("exclude"), excluding=True, kind=kind)
    if excludes is None:
        return match, ()
    exclude, listed = excludes
    return (lambda ns, labels: match(ns, labels) and not exclude(ns, labels)), tuple(listed)


_RESOURCE_FILTER = re.compile(r"\[([^\[\]]*)\]")


def kyverno_config(inv: Inventory) -> tuple[dict, list[str]] | None:
    """Kyverno's ConfigMap (named by its admission controller's INIT_CONFIG, else kyverno/kyverno) and the
    namespace patterns its `resourceFilters` skip every Pod in: `[kind,namespace,name]` entries as Kyverno's
    parseKinds reads them (a missing field is "", nothing trimmed), Kyverno wildcards; an entry whose name is
    not `*` skips only some pods, one with namespace "" only cluster-scoped objects."""

    def build() -> tuple[dict, list[str]] | None:
        named = sorted({(w.namespace, env["value"]) for w in workloads(inv) for _, container in w.containers()
                        for env in _l(container.get("env")) if isinstance(env, dict)
                        and env.get("name") == "INIT_CONFIG" and isinstance(env.get("value"), str)})
        for ns, name in named or [("kyverno", "kyverno")]:
            cm = inv.get("ConfigMap", ns, name)
            data = cm.get("data") if cm else None
            if isinstance(data, dict) and isinstance(data.get("resourceFilters"), str):
                skipped = []
                for entry in _RESOURCE_FILTER.findall(data["resourceFilters"]):
                    kind, namespace, obj = ([*entry.split(","), "", ""])[:3]
                    if _selects_kind(kind, "Pod") and obj == "*" and namespace:
                        skipped.append(namespace)
                return cm, skipped
        return None

    return inv.cached("admission-kyverno-config", build)


def kyverno_sees(inv: Inventory, ns: str, labels: dict) -> bool:
    """Kyverno is asked about pods in this namespace at all: its webhooks in the input reach it and its
    resourceFilters do not skip it (checked before any policy)."""
    reach = webhook_reach(inv, "kyverno")
    if reach is not None and not reach.reaches(ns, labels):
        return False
    config = kyverno_config(inv)
    return config is None or not any(kyverno_match(pattern, ns) for pattern in config[1])


def _kyverno(inv: Inventory) -> Iterator[Enforcement]:
    """The rules, then, when there is any, the namespaces the ConfigMap's resourceFilters skip as one
    Enforcement that applies nowhere (admission.namespace-exclusions reports them once, like Gatekeeper's)."""
    config = kyverno_config(inv)
    found = False
    for kind in ("ClusterPolicy", "Policy"):
        for policy in inv.objects(kind, "kyverno.io"):
            spec = policy.get("spec") if isinstance(policy.get("spec"), dict) else {}
            own_ns = policy["metadata"].get("namespace") if kind == "Policy" else None
            actions = kyverno_policy_actions(spec)
            admission = spec.get("admission") is not False
            for rule in _l(spec.get("rules")):
                if not isinstance(rule, dict):
                    continue
                for e in _kyverno_rule(inv, policy, kind, rule, own_ns, actions, admission):
                    found = True
                    yield e
    # Kyverno's own namespace is skipped by design (its pods must start for any policy to be checked)
    skipped = [p for p in config[1] if p != config[0]["metadata"].get("namespace")] if config else []
    if found and skipped:
        cm = config[0]
        yield Enforcement("Kyverno", inv.ref(cm), f"Kyverno ConfigMap {cm['metadata'].get('name')} resourceFilters "
                          "(every policy)", frozenset(), _never, tuple(skipped))


_SIGNATURE_KEYS = ("attestors", "attestations", "key", "keyless", "subject", "issuer", "roots")


def kyverno_policy_actions(spec: dict) -> KyvernoActions:
    """A Kyverno policy's own failure action (unset: the CRD default Audit) and overrides."""
    return KyvernoActions(_action_name(spec.get("validationFailureAction")),
                          _overrides(spec.get("validationFailureActionOverrides")))


def _validate_part(validate: dict, actions: KyvernoActions) -> tuple[set[str], KyvernoActions]:
    body = {k: v for k, v in validate.items() if k not in ("message", "failureAction", "failureActionOverrides")}
    controls = _classify_text(json.dumps(body, sort_keys=True, default=str), list(_walk_strings(body)))
    pod_security = validate.get("podSecurity")
    if isinstance(pod_security, dict) and pod_security.get("level") == "restricted" and not any(
            isinstance(e, dict) and e.get("controlName") == "Running as Non-root"
            for e in _l(pod_security.get("exclude"))):
        controls.add("non-root")
    action = validate.get("failureAction")  # set, even to "", it replaces the policy's action
    return controls, replace(actions, rule_action=None if action is None else _action_name(action),
                             rule_overrides=_overrides(validate.get("failureActionOverrides")))


def verify_images_actions(entries: list, actions: KyvernoActions) -> KyvernoActions:
    """A verifyImages rule's action is Enforce when any entry enforces, else the first entry's that is set
    (the action belongs to the rule, not to the entry); supply.signature-policy judges by it too."""
    set_actions = [_action_name(e["failureAction"]) for e in entries
                   if isinstance(e, dict) and e.get("failureAction") is not None]
    rule_action = ENFORCE if ENFORCE in set_actions else set_actions[0] if set_actions else None
    return replace(actions, rule_action=rule_action, validate=False)


def _verify_images_part(entries: list, actions: KyvernoActions) -> tuple[set[str], KyvernoActions]:
    entries = [e for e in entries if isinstance(e, dict)]
    controls = {"signature"} if any(e.get(k) for e in entries for k in _SIGNATURE_KEYS) else set()
    return controls, verify_images_actions(entries, actions)


def _kyverno_rule(inv: Inventory, policy: dict, kind: str, rule: dict, own_ns: str | None, actions: KyvernoActions,
                  admission: bool) -> Iterator[Enforcement]:
    scope = kyverno_scope(rule)
    if scope is None:
        return
    applies, excluded = scope
    label = f"{kind} {policy['metadata'].get('name')} rule {rule.get('name')}"
    if isinstance(rule.get("validate"), dict):
        controls, rule_actions = _validate_part(rule["validate"], actions)
    elif isinstance(rule.get("verifyImages"), list):
        controls, rule_actions = _verify_images_part(rule["verifyImages"], actions)
    else:
        return

    def effective(ns: str, labels: dict) -> str | None:
        if own_ns is not None and ns != own_ns:
            return None
        if not applies(ns, labels) or not kyverno_sees(inv, ns, labels):
            return None
        if not admission:
            return AUDIT  # background scans only: reports, never blocks
        return rule_actions.effective(ns, labels)

    yield Enforcement("Kyverno", inv.ref(policy), label, frozenset(controls), effective, excluded)


# ---- Gatekeeper --------------------------------------------------------------------------------------------
def _gatekeeper_controls(kind: str, params: dict) -> set[str]:
    name = kind.lower()
    found = set()
    if "allowedrepos" in name or "allowedregistr" in name:
        found.add("registry")
    if "containerlimits" in name or "requiredresources" in name:
        found.add("limits")
    if "runasnonroot" in name or ("allowedusers" in name and _d(params.get("runAsUser")).get("rule")
                                  == "MustRunAsNonRoot"):
        found.add("non-root")
    if any(word in name for word in ("ratify", "cosign", "signature", "verifyimage")):
        found.add("signature")
    return found


_GK_WEBHOOK_POINTS = ("validation.gatekeeper.sh", "*")
GK_IGNORE = "admission.gatekeeper.sh/ignore"


def _gatekeeper_action(spec: dict) -> str:
    """Gatekeeper's GetEnforcementAction: unset or "" is deny, values are case-sensitive, an unknown one is
    `unrecognized` (not enforced); `scoped` takes the actions listed for the admission webhook point."""
    action = spec.get("enforcementAction")
    action = "deny" if action is None or action == "" else action
    if action == "scoped":
        actions = {scoped.get("action") for scoped in _l(spec.get("scopedEnforcementActions"))
                   if isinstance(scoped, dict) and any(isinstance(p, dict) and p.get("name") in _GK_WEBHOOK_POINTS
                                                       for p in _l(scoped.get("enforcementPoints")))}
        action = "deny" if "deny" in actions else "warn" if "warn" in actions else "dryrun"
    return {"deny": ENFORCE, "warn": WARN}.get(action, AUDIT)  # dryrun and unrecognized actions only report


def _gatekeeper_matches_pods(match: dict) -> bool:
    """match.kinds: empty matches every kind; an entry needs the kind (empty list, `*` or Pod) AND the core
    group (empty list, `*` or "")."""
    kinds = [k for k in _l(match.get("kinds")) if isinstance(k, dict)]
    return not _l(match.get("kinds")) or any(
        (not _l(k.get("kinds")) or {"*", "Pod"} & set(_l(k.get("kinds"))))
        and (not _l(k.get("apiGroups")) or {"*", ""} & set(_l(k.get("apiGroups")))) for k in kinds)


def _gatekeeper_configs(inv: Inventory) -> list[tuple[dict, list[str]]]:
    """The Config resource (Gatekeeper reads only the one named `config`) with the namespaces it exempts from
    the admission webhook: they escape every constraint at once."""
    return [(cfg, [str(n) for entry in _l(_d(cfg.get("spec")).get("match"))
                   if isinstance(entry, dict) and {"*", "webhook"} & set(_l(entry.get("processes")))
                   for n in _l(entry.get("excludedNamespaces"))])
            for cfg in inv.objects("Config", "config.gatekeeper.sh") if cfg["metadata"].get("name") == "config"]


def _never(ns: str, labels: dict) -> None:
    return None


def _gatekeeper(inv: Inventory) -> Iterator[Enforcement]:
    """The constraints, then, when there is any, the Config's exemptions as one Enforcement that applies
    nowhere (they escape every constraint; admission.namespace-exclusions reports them once)."""
    configs = _gatekeeper_configs(inv)
    exempt = [n for _, names in configs for n in names]
    webhook = webhook_reach(inv, "gatekeeper")
    found = False
    for group, kind in inv.kinds():
        if group != "constraints.gatekeeper.sh":
            continue
        for constraint in inv.objects(kind, group):
            spec = constraint.get("spec") if isinstance(constraint.get("spec"), dict) else {}
            controls = _gatekeeper_controls(kind, _d(spec.get("parameters")))
            match = spec.get("match") if isinstance(spec.get("match"), dict) else {}
            if not _gatekeeper_matches_pods(match):
                continue
            if match.get("labelSelector") or match.get("scope") == "Cluster" or match.get("name"):
                continue
            names = _names(match["namespaces"], gatekeeper_match) if match.get("namespaces") else None
            excluded = [str(n) for n in _l(match.get("excludedNamespaces"))]  # the Config's are reported once
            excl = _names(excluded + exempt, gatekeeper_match)
            selector = _selector(match.get("namespaceSelector"))
            action = _gatekeeper_action(spec)

            def effective(ns: str, labels: dict, names: NsPredicate | None = names, excl: NsPredicate = excl,
                          selector: NsPredicate = selector, action: str = action) -> str | None:
                if (names is not None and not names(ns, labels)) or excl(ns, labels) or not selector(ns, labels):
                    return None
                if webhook is not None:
                    return action if webhook.reaches(ns, labels) else None
                if GK_IGNORE in labels:
                    return None  # the webhook's default namespaceSelector skips namespaces with this label
                return action

            found = True
            yield Enforcement("Gatekeeper", inv.ref(constraint), f"{kind} {constraint['metadata'].get('name')}",
                              frozenset(controls), effective, tuple(excluded), gatekeeper_match)
    if found:
        yield from (Enforcement("Gatekeeper", inv.ref(cfg), f"Gatekeeper Config {cfg['metadata'].get('name')} "
                                "(every constraint)", frozenset(), _never, tuple(names), gatekeeper_match)
                    for cfg, names in configs if names)


# ---- ValidatingAdmissionPolicy -----------------------------------------------------------------------------
def _rule_hits_pod_create(rule: object) -> bool:
    """A (Named)RuleWithOperations that sees every Pod CREATE (`*` is all resources, `*/*` adds subresources;
    resourceNames narrows it to some objects; scope Cluster leaves namespaced Pods out)."""
    if not isinstance(rule, dict) or _l(rule.get("resourceNames")) or rule.get("scope") not in (None, "*",
                                                                                                  "Namespaced"):
        return False
    return bool({"", "*"} & set(_l(rule.get("apiGroups"))) and {"v1", "*"} & set(_l(rule.get("apiVersions")))
                and {"pods", "*", "*/*"} & set(_l(rule.get("resources")))
                and {"CREATE", "*"} & set(_l(rule.get("operations"))))


def match_resources_scope(resources: dict, required: bool) -> NsPredicate | None:
    """A policy's matchConstraints or a binding's matchResources as a namespace predicate, None when it does
    not cover all Pods: no resourceRule on Pod CREATE (a binding without rules keeps the policy's), an
    excludeResourceRule on all Pods, or an objectSelector that picks some Pods only."""
    rules = _l(resources.get("resourceRules"))
    if (required or rules) and not any(_rule_hits_pod_create(r) for r in rules):
        return None
    if any(_rule_hits_pod_create(r) for r in _l(resources.get("excludeResourceRules"))):
        return None
    if resources.get("objectSelector") is not None and not _selects_all(resources["objectSelector"]):
        return None
    return _selector(resources.get("namespaceSelector"))


def _selects_all(raw: object) -> bool:
    try:
        return parse_selector(raw).is_empty
    except InvalidSelector:
        return False


def _vap_params(inv: Inventory, param_kind: dict, ref: object) -> Callable[[str], bool]:
    """Whether the binding's parameters let the policy act on a request in a namespace. With a paramRef and no
    parameter object found, `parameterNotFoundAction: Allow` admits the request unchecked (Deny, the other
    value, refuses it: enforcement of a kind). A namespaced parameter without paramRef.namespace is looked up
    in the request's namespace."""
    if not isinstance(ref, dict) or not param_kind.get("kind") or ref.get("parameterNotFoundAction") != "Allow":
        return lambda ns: True
    group, kind = str(param_kind.get("apiVersion", "v1")).rpartition("/")[0], str(param_kind["kind"])
    if inv.served_kinds is not None and ((group, kind) not in LISTED or inv.unlisted_reason(kind, group)):
        return lambda ns: True  # a live scan that did not list the parameter kind cannot tell it is missing
    name, namespace = ref.get("name"), ref.get("namespace")
    try:
        selector = parse_selector(ref["selector"]) if ref.get("selector") is not None else None
    except InvalidSelector:
        return lambda ns: False
    found = [o for o in inv.objects(kind, group)
             if (name is None or o["metadata"].get("name") == name)
             and (selector is None or selector.matches(labels_of(o)))]
    if namespace:
        return lambda ns: any(o["metadata"].get("namespace") == namespace for o in found)
    if any(o["metadata"].get("namespace") is None for o in found):
        return lambda ns: True  # a cluster-scoped parameter object exists
    here = {o["metadata"].get("namespace") for o in found}
    return lambda ns: ns in here


def _vap(inv: Inventory) -> Iterator[Enforcement]:
    policies = {str(p["metadata"].get("name")): p for p in inv.objects("ValidatingAdmissionPolicy")}
    for binding in inv.objects("ValidatingAdmissionPolicyBinding"):
        spec = binding.get("spec") if isinstance(binding.get("spec"), dict) else {}
        policy = policies.get(str(spec.get("policyName")))
        if policy is None:
            continue
        pspec = policy.get("spec") if isinstance(policy.get("spec"), dict) else {}
        policy_sel = match_resources_scope(_d(pspec.get("matchConstraints")), True)
        binding_sel = match_resources_scope(_d(spec.get("matchResources")), False)
        if policy_sel is None or binding_sel is None or _l(pspec.get("matchConditions")):
            continue  # matchConditions (CEL, often "not a system: user") leave some Pod CREATEs unchecked
        texts = [str(v.get("expression", "")) for v in _l(pspec.get("validations")) if isinstance(v, dict)]
        texts += [str(v.get("expression", "")) for v in _l(pspec.get("variables")) if isinstance(v, dict)]
        controls = _classify_text(" ".join(texts), [])
        if not controls:
            continue
        actions = {str(a) for a in _l(spec.get("validationActions"))}
        action = ENFORCE if "Deny" in actions else WARN if "Warn" in actions else AUDIT
        params = _vap_params(inv, _d(pspec.get("paramKind")), spec.get("paramRef"))

        def effective(ns: str, labels: dict, a: NsPredicate = policy_sel, b: NsPredicate = binding_sel,
                      action: str = action, params: Callable[[str], bool] = params) -> str | None:
            return action if a(ns, labels) and b(ns, labels) and params(ns) else None

        yield Enforcement("ValidatingAdmissionPolicy", inv.ref(binding),
                          f"ValidatingAdmissionPolicy {policy['metadata'].get('name')} via binding "
                          f"{binding['metadata'].get('name')}", frozenset(controls), effective)


# ---- Sigstore policy-controller and Pod Security Admission -------------------------------------------------
def _sigstore(inv: Inventory) -> Iterator[Enforcement]:
    for cip in inv.objects("ClusterImagePolicy", "policy.sigstore.dev"):
        spec = cip.get("spec") if isinstance(cip.get("spec"), dict) else {}
        if not spec.get("authorities"):
            continue
        action = SIGSTORE_MODES.get(spec.get("mode") or "enforce", AUDIT)

        def effective(ns: str, labels: dict, action: str = action) -> str | None:
            return action if labels.get("policy.sigstore.dev/include") == "true" else None

        yield Enforcement("Sigstore policy-controller", inv.ref(cip),
                          f"ClusterImagePolicy {cip['metadata'].get('name')}", frozenset({"signature"}), effective)


def _psa(ns: str, labels: dict, defaults: PodSecurityDefaults | None = None) -> tuple[str, str] | None:
    """The strongest PSA mode that applies `restricted` in a namespace, and what sets it. PolicyToEvaluate: a
    mode's label wins, else the plugin's default for that mode (privileged without an AdmissionConfiguration);
    an enforce label that is not a valid level evaluates as restricted, invalid warn/audit levels fail open to
    privileged; an exempt namespace gets none of them."""
    if defaults is not None and ns in defaults.namespaces:
        return None
    for mode, action in (("enforce", ENFORCE), ("warn", WARN), ("audit", AUDIT)):
        key = f"pod-security.kubernetes.io/{mode}"
        if key in labels:
            value = labels[key]
            if value == "restricted" or (mode == "enforce" and value not in ("privileged", "baseline")):
                return action, f"label {key}={value}"
        elif defaults is not None and defaults.levels[mode] == "restricted":
            return action, f"PodSecurity default {mode}=restricted ({defaults.source})"
    return None


def enforcements(inv: Inventory) -> list[Enforcement]:
    def build() -> list[Enforcement]:
        return [*_kyverno(inv), *_gatekeeper(inv), *_vap(inv), *_sigstore(inv)]

    return inv.cached("admission-enforcements", build)


# ---- the checks --------------------------------------------------------------------------------------------
def _policy_kinds_unlisted(inv: Inventory) -> str | None:
    """Live mode: policy kinds that could not be listed (a missing permission is not a missing policy)."""
    kinds = [("ClusterPolicy", "kyverno.io"), ("Policy", "kyverno.io"), ("Namespace", ""),
             ("ValidatingAdmissionPolicy", "admissionregistration.k8s.io"),
             ("ValidatingAdmissionPolicyBinding", "admissionregistration.k8s.io"),
             ("ClusterImagePolicy", "policy.sigstore.dev"),
             *((kind, group) for group, kind in inv.unlisted if group == "constraints.gatekeeper.sh")]
    return unlisted(inv, *kinds)


def _namespaces(ctx: CheckContext) -> list[str]:
    return [ns for ns in ctx.inv.namespaces() if not ctx.scan.is_system(ns)]


def _ns_subject(ctx: CheckContext, ns: str) -> dict | ResourceRef:
    return ctx.inv.get("Namespace", None, ns) or ResourceRef("v1", "Namespace", None, ns)


def _unseen_admission_config(ctx: CheckContext) -> str | None:
    """Why unlabelled namespaces cannot be judged for PSA: the API server reads an admission configuration, whose
    Pod Security defaults may enforce restricted, and it was not given."""
    try:
        paths = sorted({path for s in apiservers(ctx) if (path := s.get("admission-control-config-file"))})
    except InputError:
        return None  # an unusable --apiserver-manifest is reported by the checks that judge its flags
    if not paths:
        return None
    return (f"kube-apiserver reads --admission-control-config-file={paths[0]}, whose Pod Security defaults may "
            "enforce restricted here; give that file with --admission-config")


def _judge_control(ctx: CheckContext, control: str) -> Iterator[Finding]:
    namespaces = _namespaces(ctx)
    if not namespaces:
        yield ctx.not_assessed(None, "the input has no application namespaces")
        return
    policies = [e for e in enforcements(ctx.inv) if control in e.controls]
    hidden = _policy_kinds_unlisted(ctx.inv)
    defaults = ctx.input("admission_config", load_admission_config) if control == "non-root" else None
    unseen = _unseen_admission_config(ctx) if control == "non-root" and defaults is None else None
    # the engines' webhooks in the input, to say which one leaves a namespace out
    reaches = [(engine, webhook_reach(ctx.inv, engine.lower())) for engine in sorted({e.engine for e in policies})]
    for ns in namespaces:
        labels = ctx.inv.namespace_labels(ns)
        applied = [(e, e.action(ns, labels)) for e in policies]
        applied = [(e, a) for e, a in applied if a is not None]
        psa = _psa(ns, labels, defaults) if control == "non-root" else None
        if psa is not None:
            ref = ResourceRef("v1", "Namespace", None, ns)
            applied.append((Enforcement("Pod Security Admission", ref, psa[1], frozenset({control}),
                                        lambda n, lb: (_psa(n, lb, defaults) or (None,))[0]), psa[0]))
        enforced = [e for e, a in applied if a == ENFORCE]
        evidence = {"policies": [f"{e.label} ({a})" for e, a in applied]}
        if psa is not None and defaults is not None and (defaults.usernames or defaults.runtime_classes):
            evidence["psa_exemptions"] = {"usernames": list(defaults.usernames),
                                          "runtimeClasses": list(defaults.runtime_classes)}
        what = CONTROLS[control]
        if enforced:
            yield ctx.passed(_ns_subject(ctx, ns), f"enforced that {what}: {enforced[0].label} "
                             f"({enforced[0].engine})", evidence=evidence)
        elif unseen and PSA_ENFORCE not in labels:  # its enforce level is the unseen file's default
            yield ctx.not_assessed(_ns_subject(ctx, ns), f"no enforcing policy or PSA enforce label seen, but "
                                   f"{unseen}", evidence=evidence)
        elif applied:
            e, a = applied[0]
            yield ctx.fail(_ns_subject(ctx, ns), f"nothing enforces that {what}: {e.label} ({e.engine}) only "
                           f"reports in {a} mode", evidence=evidence)
        elif hidden:
            yield ctx.not_assessed(_ns_subject(ctx, ns), f"no enforcing policy seen, but {hidden}",
                                   evidence=evidence)
        else:
            baseline = labels.get(PSA_ENFORCE)
            extra = f" (pod-security.kubernetes.io/enforce={baseline} does not require non-root)" \
                if control == "non-root" and baseline in ("baseline", "privileged") else ""
            if defaults is not None and ns in defaults.namespaces:
                extra += f" (exempt from Pod Security Admission by {defaults.source})"
            skipped = sorted(f"{engine} webhook {', '.join(reach.names)}" for engine, reach in reaches
                             if reach is not None and not reach.reaches(ns, labels))
            if skipped:
                extra += f" (the namespaceSelector of {'; '.join(skipped)} leaves it out)"
            yield ctx.fail(_ns_subject(ctx, ns), f"no admission policy makes sure {what} in this namespace{extra}",
                           evidence=evidence)


@check(
    id="admission.non-root-enforced",
    title="Admission enforces non-root containers (PSA restricted, or a Kyverno/Gatekeeper/VAP policy) in every "
    "application namespace",
    severity=Severity.HIGH,
    measures=ADMISSION,
    remediation="kubectl label ns <ns> pod-security.kubernetes.io/enforce=restricted, or set the non-root "
    "policy to Enforce (Kyverno failureAction: Enforce; Gatekeeper enforcementAction: deny; VAP "
    "validationActions: [Deny]).",
)
def non_root_enforced(ctx: CheckContext) -> Iterator[Finding]:
    """A manifest check shows today's state; only admission keeps tomorrow's Deployment from running as root."""
    yield from _judge_control(ctx, "non-root")


@check(
    id="admission.registry-enforced",
    title="Admission enforces approved image registries in every application namespace",
    severity=Severity.HIGH,
    measures=(*ADMISSION, *SUPPLY),
    remediation="Enforce an allowed-registries policy (Kyverno restrict-image-registries with failureAction: "
    "Enforce, Gatekeeper K8sAllowedRepos with enforcementAction: deny, or a VAP bound with Deny).",
)
def registry_enforced(ctx: CheckContext) -> Iterator[Finding]:
    """Supply-chain control at the door: an image from an unreviewed registry never starts."""
    yield from _judge_control(ctx, "registry")


@check(
    id="admission.limits-enforced",
    title="Admission enforces container resource limits in every application namespace",
    severity=Severity.MEDIUM,
    measures=ADMISSION,
    remediation="Enforce a require-limits policy (Kyverno require-requests-limits, Gatekeeper K8sContainerLimits, "
    "or a VAP on resources.limits) - or a LimitRange default per namespace.",
)
def limits_enforced(ctx: CheckContext) -> Iterator[Finding]:
    """Unlimited containers let one compromised or runaway workload starve a production line's controllers."""
    yield from _judge_control(ctx, "limits")


@check(
    id="admission.signature-enforced",
    title="Admission verifies image signatures in every application namespace",
    severity=Severity.MEDIUM,
    measures=(*ADMISSION, *SUPPLY),
    remediation="Add a Kyverno verifyImages rule (failureAction: Enforce) or a Sigstore policy-controller "
    "ClusterImagePolicy (namespaces labelled policy.sigstore.dev/include=true) for your registries.",
)
def signature_enforced(ctx: CheckContext) -> Iterator[Finding]:
    """Only a verified signature ties the running bytes to your build pipeline."""
    yield from _judge_control(ctx, "signature")


def _engines(ctx: CheckContext) -> dict[str, list[str]]:
    inv = ctx.inv
    found: dict[str, list[str]] = {}
    for e in enforcements(inv):
        if e.engine == "Sigstore policy-controller":
            found.setdefault(e.engine, []).append(e.label)
    kyverno = inv.objects("ClusterPolicy", "kyverno.io") + inv.objects("Policy", "kyverno.io")
    if kyverno:
        found.setdefault("Kyverno", []).extend(f"{p['kind']} {p['metadata'].get('name')}" for p in kyverno)
    constraints = [f"{k} {c['metadata'].get('name')}" for g, k in inv.kinds() if g == "constraints.gatekeeper.sh"
                   for c in inv.objects(k, g)]
    if constraints:
        found["Gatekeeper"] = constraints
    if inv.objects("ValidatingAdmissionPolicyBinding"):
        found.setdefault("ValidatingAdmissionPolicy", []).extend(
            b["metadata"].get("name") for b in inv.objects("ValidatingAdmissionPolicyBinding"))
    psa = [ns for ns in inv.namespaces() if inv.namespace_labels(ns).get(PSA_ENFORCE) not in (None, "privileged")]
    if psa:
        found["Pod Security Admission"] = [f"namespace {ns}" for ns in psa]
    defaults = ctx.input("admission_config", load_admission_config)
    if defaults is not None and defaults.levels["enforce"] != "privileged":
        found.setdefault("Pod Security Admission", []).append(
            f"default enforce={defaults.levels['enforce']} ({defaults.source})")
    return found


@check(
    id="admission.controller-present",
    title="A policy admission controller is in place (Kyverno, Gatekeeper, ValidatingAdmissionPolicy or Pod "
    "Security Admission labels)",
    severity=Severity.HIGH,
    measures=ADMISSION,
    remediation="Install Kyverno (helm install kyverno kyverno/kyverno -n kyverno --create-namespace) or label "
    "namespaces with pod-security.kubernetes.io/enforce; `nis2kube harden --only admission` writes policies.",
)
def controller_present(ctx: CheckContext) -> Iterator[Finding]:
    """Without any admission policy, every control this report checks can be undone by the next deploy."""
    found = _engines(ctx)
    if not found and (reason := _policy_kinds_unlisted(ctx.inv)):
        yield ctx.not_assessed(None, f"no admission policy seen, but {reason}")
        return
    if not found:
        yield ctx.fail(None, "no admission policy of any engine found (no Kyverno policies, Gatekeeper "
                       "constraints, bound ValidatingAdmissionPolicies or Pod Security Admission enforce labels)")
        return
    for engine, items in sorted(found.items()):
        unique = sorted({str(i) for i in items})
        shown = ", ".join(unique[:5]) + (f" and {len(unique) - 5} more" if len(unique) > 5 else "")
        yield ctx.passed(None, f"{engine}: {shown}", evidence={"engine": engine, "items": unique})


_ENGINE_WEBHOOKS = ("kyverno", "gatekeeper", "policy.sigstore.dev", "policy-controller")


def _engine_hooks(inv: Inventory) -> Iterator[tuple[dict, dict, str]]:
    """(configuration, webhook, who) for every validating webhook of a policy engine in the input."""
    for cfg in inv.objects("ValidatingWebhookConfiguration"):
        name = str(cfg["metadata"].get("name", ""))
        for hook in _l(cfg.get("webhooks")):
            if not isinstance(hook, dict):
                continue
            service = _d(_d(hook.get("clientConfig")).get("service"))
            who = f"{name} {hook.get('name', '')} {service.get('namespace', '')} {service.get('name', '')}".lower()
            if any(e in who for e in _ENGINE_WEBHOOKS):
                yield cfg, hook, who


def webhook_reach(inv: Inventory, engine: str) -> WebhookReach | None:
    """The namespaces `engine`'s webhooks see Pod CREATEs in; None when none of its webhooks for pods is in the
    input (offline manifests rarely hold them: the engines register them at run time)."""

    def build() -> WebhookReach | None:
        names, selectors = [], []
        for _, hook, who in _engine_hooks(inv):
            if engine not in who or not any(_rule_hits_pod_create(r) for r in _l(hook.get("rules"))):
                continue
            names.append(str(hook.get("name", "")))
            narrowed = _l(hook.get("matchConditions")) or (
                hook.get("objectSelector") is not None and not _selects_all(hook.get("objectSelector")))
            if not narrowed:
                selectors.append(_selector(hook.get("namespaceSelector")))
        return WebhookReach(tuple(names), tuple(selectors)) if names else None

    return inv.cached(f"admission-webhook-reach:{engine}", build)


def _webhook_default_failure_policy(cfg: dict) -> str:
    """An unset failurePolicy defaults to Fail in admissionregistration.k8s.io/v1 but to Ignore in v1beta1."""
    return "Ignore" if str(cfg.get("apiVersion", "")).endswith("/v1beta1") else "Fail"


@check(
    id="admission.webhook-failure-policy",
    title="Policy engine webhooks and policies fail closed (failurePolicy: Fail)",
    severity=Severity.HIGH,
    measures=ADMISSION,
    remediation="Set failurePolicy: Fail on the engine's validating webhook (Gatekeeper: "
    "--set validatingWebhookFailurePolicy=Fail; Kyverno: spec.webhookConfiguration.failurePolicy: Fail) and "
    "run the engine highly available so Fail does not block the cluster.",
)
def webhook_failure_policy(ctx: CheckContext) -> Iterator[Finding]:
    """With Ignore, the API server admits everything unchecked whenever the engine is down or slow - an
    attacker who can crash or starve it switches enforcement off."""
    seen = False
    for cfg, hook, _ in _engine_hooks(ctx.inv):
        seen = True
        policy = hook.get("failurePolicy") or _webhook_default_failure_policy(cfg)
        label = f"webhook {hook.get('name')}"
        if policy == "Ignore":
            if str(cfg["metadata"].get("name", "")).startswith("kyverno") \
                    and str(hook.get("name", "")).endswith("-ignore"):
                continue  # Kyverno's separate webhook for policies that chose Ignore; judged on the policy
            yield ctx.fail(cfg, f"{label} has failurePolicy: Ignore: requests are admitted unchecked when "
                           "the engine does not answer", evidence={"webhook": hook.get("name")})
        else:
            yield ctx.passed(cfg, f"{label} fails closed (failurePolicy: {policy})")
    spaces = [(ns, ctx.inv.namespace_labels(ns)) for ns in ctx.inv.namespaces()]
    enforcing = {e.ref for e in enforcements(ctx.inv) if e.engine == "Kyverno"
                 and any(e.action(ns, labels) == ENFORCE for ns, labels in spaces)}  # Audit-only never blocks
    for kind in ("ClusterPolicy", "Policy"):
        for policy in ctx.inv.objects(kind, "kyverno.io"):
            if ctx.inv.ref(policy) not in enforcing:
                continue
            seen = True
            spec = _d(policy.get("spec"))
            fp = _d(spec.get("webhookConfiguration")).get("failurePolicy") or spec.get("failurePolicy") or "Fail"
            if fp == "Ignore":
                yield ctx.fail(policy, f"{kind} {policy['metadata'].get('name')} has failurePolicy: Ignore: it is "
                               "skipped whenever Kyverno (or a registry it calls) does not answer")
            else:
                yield ctx.passed(policy, f"{kind} {policy['metadata'].get('name')} fails closed")
    for vap in ctx.inv.objects("ValidatingAdmissionPolicy"):
        seen = True
        fp = _d(vap.get("spec")).get("failurePolicy") or "Fail"
        if fp == "Ignore":
            yield ctx.fail(vap, "failurePolicy: Ignore: a CEL error or a missing parameter admits the request")
        else:
            yield ctx.passed(vap, f"fails closed (failurePolicy: {fp})")
    if not seen:
        reason = unlisted(ctx.inv, ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io"))
        yield ctx.not_assessed(None, reason or "no policy engine webhook, Kyverno policy or "
                               "ValidatingAdmissionPolicy in the input (see admission.controller-present)")


@check(
    id="admission.namespace-exclusions",
    title="Enforcing policies do not exclude application namespaces",
    severity=Severity.MEDIUM,
    measures=ADMISSION,
    remediation="Narrow exclusions to system namespaces; for a workload that truly needs an exception use a "
    "Kyverno PolicyException or a Gatekeeper exemption scoped to that workload, with an owner and an end date.",
)
def namespace_exclusions(ctx: CheckContext) -> Iterator[Finding]:
    """An excluded namespace is where an attacker deploys. Wildcard exclusions (`*`, `prod-*`) and exclusions
    of existing application namespaces are findings; system namespaces are fine."""
    policies = [e for e in enforcements(ctx.inv) if e.excluded]
    app = _namespaces(ctx)
    system = set(ctx.config.system_namespaces)
    seen_refs = set()
    for e in policies:
        selector = [p for p in e.excluded if p.startswith("namespaceSelector ")]
        names = [p for p in e.excluded if p not in selector]
        hit = sorted({ns for ns in app for pattern in names if e.glob(pattern, ns)})
        wild = [p for p in names if ("*" in p or "?" in p) and p not in system]
        key = (e.ref, e.label)
        if key in seen_refs:
            continue
        seen_refs.add(key)
        if hit or wild or selector:
            parts = []
            if hit:
                parts.append(f"application namespace(s) {', '.join(hit)}")
            if wild:
                parts.append(f"wildcard pattern(s) {', '.join(wild)}")
            if selector:
                parts.append("every namespace matching a " + "; ".join(selector))
            yield ctx.fail(e.ref, f"{e.label} excludes {' and '.join(parts)}", evidence={"excluded": list(e.excluded)})
        else:
            yield ctx.passed(e.ref, f"{e.label} excludes only system namespaces ({', '.join(e.excluded)})")
    if not policies:
        if enforcements(ctx.inv):
            yield ctx.passed(None, "no baseline policy excludes any namespace")
        else:
            yield ctx.not_assessed(None, "no baseline admission policy in the input (see admission.controller-present)")

