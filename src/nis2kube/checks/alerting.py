"""Alerting: someone is told about denied API requests and critical Falco events (Art. 21(2)(b), IR 3.3).

Detection that nobody is paged for is a log entry. These checks read PrometheusRules (and Prometheus rule
files in ConfigMaps) with real PromQL label-matcher semantics - `code=~"40[13]"` matches, `code=~"5.."` does
not - and the Alertmanager route tree, where a receiver without any integration (the "null" receiver many
charts ship) silently drops every alert routed to it. Secret values are never read: an Alertmanager config
kept in a Secret is judged only when given with --alertmanager-config.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.checks.runtime import MAX_CONFIGMAP_VALUE, unlisted
from nis2kube.findings import Finding, Location, ResourceRef, Severity
from nis2kube.images import parse_image
from nis2kube.inventory import Inventory
from nis2kube.inventory.selectors import NOTHING, InvalidSelector, Selector, labels_of, parse_selector
from nis2kube.inventory.workloads import workloads
from nis2kube.inventory.yamlload import load_document

ALERTING = ("art21.2.b", "ir2690.3.3")
MONITORING = "monitoring.coreos.com"
RULE_SOURCES = (("PrometheusRule", MONITORING), ("ConfigMap", ""))
MAX_CONFIG_BYTES = 4 * 1024 * 1024
T = TypeVar("T")


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    ref: ResourceRef
    # the label matchers of expr's vector selectors, parsed once: every check asks them about several series
    selectors: list[list[Matcher]] = field(compare=False, repr=False)
    unloaded: str = ""  # why no Prometheus evaluates it, when none does


def _rules_from_groups(groups: object, ref: ResourceRef, unloaded: str = "") -> Iterator[AlertRule]:
    for group in groups if isinstance(groups, list) else []:
        for rule in _l(group.get("rules")) if isinstance(group, dict) else []:
            if isinstance(rule, dict) and rule.get("alert") and rule.get("expr"):
                expr = str(rule["expr"])
                yield AlertRule(str(rule["alert"]), expr, ref, selectors(expr), unloaded)


def _compiled(selector: object) -> Selector:
    """A label selector as metav1.LabelSelectorAsSelector (null selects nothing, {} everything); an invalid one
    selects nothing, as the API server would have refused the object."""
    try:
        return parse_selector(selector)
    except InvalidSelector:
        return NOTHING


@dataclass(frozen=True)
class _Owner:
    """A prometheus-operator object that discovers others by label (a Prometheus its rules, an Alertmanager its
    AlertmanagerConfigs), its selectors compiled once rather than per object it is asked about."""

    obj: dict
    namespace: str | None
    selector: Selector
    namespace_selector: Selector | None  # None (the field is null): the owner's own namespace only

    def selects(self, inv: Inventory, obj: dict) -> bool:
        if not self.selector.matches(labels_of(obj)):
            return False
        ns = obj["metadata"].get("namespace")
        if self.namespace_selector is None:
            return ns == self.namespace
        return self.namespace_selector.matches(inv.namespace_labels(str(ns)))


def _owners(inv: Inventory, kinds: tuple[str, ...], selector: str, namespace_selector: str) -> list[_Owner]:
    """The objects of `kinds` with their discovery selectors, read from spec once per build."""
    out = []
    for kind in kinds:
        for obj in inv.objects(kind, MONITORING):
            spec = _d(obj.get("spec"))
            ns_selector = spec.get(namespace_selector)
            out.append(_Owner(obj, obj["metadata"].get("namespace"), _compiled(spec.get(selector)),
                              None if ns_selector is None else _compiled(ns_selector)))
    return out


def _prometheus_rule_unloaded(inv: Inventory, pr: dict, owners: list[_Owner]) -> str:
    """Why none of the Prometheus or ThanosRuler `owners` loads this PrometheusRule ("" when one does, or when
    none is in the input to tell)."""
    if not owners or any(o.selects(inv, pr) for o in owners):
        return ""
    return "no Prometheus/ThanosRuler ruleSelector and ruleNamespaceSelector select it"


def alert_rules(inv: Inventory) -> list[AlertRule]:
    """Alerting rules (not recording rules) from PrometheusRules and rule files in ConfigMaps."""

    def build() -> list[AlertRule]:
        out = []
        owners = _owners(inv, ("Prometheus", "ThanosRuler"), "ruleSelector", "ruleNamespaceSelector")
        for pr in inv.objects("PrometheusRule"):
            out.extend(_rules_from_groups(_d(pr.get("spec")).get("groups"), inv.ref(pr),
                                          _prometheus_rule_unloaded(inv, pr, owners)))
        for cm in inv.objects("ConfigMap"):
            data = cm.get("data")
            for _, text in sorted(data.items()) if isinstance(data, dict) else []:
                if isinstance(text, str) and len(text) <= MAX_CONFIGMAP_VALUE and "groups" in text \
                        and "alert" in text and "expr" in text:
                    try:
                        doc = load_document(text)
                    except Exception:  # not a rule file after all
                        continue
                    if isinstance(doc, dict):
                        out.extend(_rules_from_groups(doc.get("groups"), inv.ref(cm)))
        return out

    return inv.cached("alert-rules", build)


# ---- PromQL vector selectors -------------------------------------------------------------------------------
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OP = re.compile(r"=~|!~|!=|=")
_ESCAPE = re.compile(r"\\(?:([abfnrtv\\'\"])|x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|([0-7]{3})|(.?))",
                     re.DOTALL)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`')
Matcher = tuple[str, str, str]
_OPERATORS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "sum", "avg", "count", "min", "max",
              "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "limitk", "limit_ratio"}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}  # followed by (label, ...)


def _unquote(token: str) -> str | None:
    """A PromQL string literal (strutil.Unquote: Go escapes in "..." and '...', none in `...`); None when
    Prometheus would refuse it (an unknown escape, the other quote escaped, a code point Go rejects)."""
    quote, body = token[0], token[1:-1]
    if quote == "`":
        return body
    bad = False

    def one(m: re.Match[str]) -> str:
        nonlocal bad
        simple, *codes, octal, other = m.groups()
        if simple is not None:
            bad |= simple in "'\"" and simple != quote
            return _SIMPLE.get(simple, simple)
        code = next((int(c, 16) for c in codes if c), None)
        if code is None and octal is not None:
            code = int(octal, 8)
        bad |= other is not None or code is None or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF \
            or (octal is not None and code > 255)
        return "" if bad else chr(code)

    text = _ESCAPE.sub(one, body)
    return None if bad else text


def _parse_matchers(body: str) -> list[Matcher] | None:
    """The inside of `{...}`: `name op "value"` items, a quoted name allowed, a lone string meaning
    __name__ (Prometheus 3); None when it does not parse."""
    out: list[Matcher] = []
    pos, n = 0, len(body)
    while True:
        while pos < n and body[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return out
        if (q := _QUOTED.match(body, pos)) is not None:
            name, pos = _unquote(q.group(0)), q.end()
        elif (m := _LABEL.match(body, pos)) is not None:
            name, pos = m.group(0), m.end()
        else:
            return None
        while pos < n and body[pos] in " \t\r\n":
            pos += 1
        op = _OP.match(body, pos)
        if name is None:
            return None
        if op is None and q is not None:  # {"metric_name", ...}
            out.append(("__name__", "=", name))
        elif op is None:
            return None
        else:
            pos = op.end()
            while pos < n and body[pos] in " \t\r\n":
                pos += 1
            value = _QUOTED.match(body, pos)
            text = _unquote(value.group(0)) if value else None
            if text is None:
                return None
            out.append((name, op.group(0), text))
            pos = value.end()
        while pos < n and body[pos] in " \t\r\n":
            pos += 1
        if pos < n and body[pos] != ",":
            return None
        pos += 1


def selectors(expr: str) -> list[list[Matcher]]:
    """The label matchers of every vector selector in a PromQL expression, `metric{...}` given as a
    __name__ matcher. Strings and `#` comments are skipped, so a `}` or a metric name inside them is no
    selector; a selector that does not parse is left out (Prometheus would refuse the rule)."""
    out, pos, n = [], 0, len(expr)
    while pos < n:
        c = expr[pos]
        if c == "#":
            end = expr.find("\n", pos)
            pos = n if end < 0 else end
        elif c in "\"'`":
            q = _QUOTED.match(expr, pos)
            pos = q.end() if q else n
        elif c == "{":
            pos = _selector_at(expr, pos, None, out)
        elif (m := _IDENT.match(expr, pos)) is not None and not (pos and (expr[pos - 1].isalnum() or expr[pos - 1]
                                                                          in "_.")):
            after = m.end()
            while after < n and expr[after] in " \t\r\n":
                after += 1
            word = m.group(0).lower()
            if word in _GROUPING and after < n and expr[after] == "(":
                end = expr.find(")", after)
                pos = n if end < 0 else end + 1
            elif word in _OPERATORS:
                pos = m.end()
            elif after < n and expr[after] == "{":
                pos = _selector_at(expr, after, m.group(0), out)
            else:
                if after >= n or expr[after] != "(":  # a function call or a grouping keyword is no metric
                    out.append([("__name__", "=", m.group(0))])
                pos = m.end()
        else:
            pos += 1
    return out


def _selector_at(expr: str, brace: int, metric: str | None, out: list[list[Matcher]]) -> int:
    """Parse `{...}` at `brace` (strings may hold `}`); returns the position after it."""
    pos = brace + 1
    while pos < len(expr) and expr[pos] != "}":
        q = _QUOTED.match(expr, pos) if expr[pos] in "\"'`" else None
        pos = q.end() if q else pos + 1
    matchers = _parse_matchers(expr[brace + 1:pos])
    if matchers is not None:
        out.append(([("__name__", "=", metric)] if metric else []) + matchers)
    return pos + 1


def _matches(matcher: Matcher, value: str) -> bool:
    """One matcher against one label value; regexes are fully anchored RE2 with `.` matching newlines
    (Prometheus compiles `^(?s:re)$`) and ASCII classes; a regex Python cannot compile matches nothing."""
    _, op, want = matcher
    if op == "=":
        return value == want
    if op == "!=":
        return value != want
    try:
        hit = re.fullmatch(want, value, re.DOTALL | re.ASCII) is not None
    except re.error:
        return False
    return hit if op == "=~" else not hit


def _valid(matchers: list[Matcher]) -> bool:
    """Prometheus refuses a selector whose matchers all match the empty string (`{code=~".*"}`)."""
    return any(not _matches(m, "") for m in matchers)


def selects(matchers: list[Matcher], series: dict[str, str]) -> bool:
    """Does the selector pick this series? A label the series is known to lack is given as "" (what PromQL
    compares a missing label with); labels not in `series` (job, instance, ...) are not known and assumed to
    fit."""
    return _valid(matchers) and all(_matches(m, series[m[0]]) for m in matchers if m[0] in series)


def _any_selects(parsed: list[list[Matcher]], series: tuple[dict[str, str], ...], require: str | None = None,
                 unless: dict[str, str] | None = None) -> bool:
    """Some of the `parsed` selectors picks one of `series`, names the `require` label, and does not also pick
    `unless`."""
    for matchers in parsed:
        if require and not any(name == require for name, _, _ in matchers):
            continue
        if unless is not None and selects(matchers, unless):
            continue
        if any(selects(matchers, s) for s in series):
            return True
    return False


# A denied request as each metric records it: (series, the label a matcher must name). The selector must not
# also pick a successful request (`code=~".+"` is all traffic, not denied traffic).
DENIED = (
    ({"__name__": "apiserver_request_total", "code": "401"}, "code"),
    ({"__name__": "apiserver_request_total", "code": "403"}, "code"),
    ({"__name__": "apiserver_authorization_decisions_total", "decision": "denied"}, "decision"),
    ({"__name__": "authentication_attempts", "result": "failure"}, "result"),
    ({"__name__": "authentication_attempts", "result": "error"}, "result"),
)
ALLOWED = {"apiserver_request_total": ("code", "200"), "authentication_attempts": ("result", "success"),
           "apiserver_authorization_decisions_total": ("decision", "allowed")}
# A critical Falco event as each exporter labels it ("" = the exporter has no such label):
# falcosidekick >= 2.29: priority is its own number (Debug=1 ... Critical=6), priority_raw the lower-case name;
# falcosidekick before: falco_events{priority="Critical"}; falco-exporter: falco_events{priority="2"} (Falco's
# gRPC enum, Emergency=0); Falco's own /metrics: falcosecurity_falco_rules_matches_total{priority="2"}.
CRITICAL_FALCO = (
    {"__name__": "falcosecurity_falcosidekick_falco_events_total", "priority": "6", "priority_raw": "critical"},
    {"__name__": "falco_events", "priority": "Critical", "priority_raw": ""},
    {"__name__": "falco_events", "priority": "2", "priority_raw": ""},
    {"__name__": "falcosecurity_falco_rules_matches_total", "priority": "2", "priority_raw": ""},
)
_PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "info", "debug")


def _denied_selected(parsed: list[list[Matcher]]) -> str | None:
    """The metric of one of the `parsed` selectors that picks denied requests and not successful ones."""
    for series, label in DENIED:
        metric = series["__name__"]
        ok_label, ok_value = ALLOWED[metric]
        if _any_selects(parsed, (series,), require=label, unless={**series, ok_label: ok_value}):
            return metric
    return None


@check(
    id="alerting.api-denied-alert",
    title="An alert fires on denied or unauthenticated API requests",
    severity=Severity.MEDIUM,
    measures=ALERTING,
    remediation="Add a PrometheusRule alert such as `sum(rate(apiserver_request_total{code=~\"401|403\"}[5m])) > 1` "
    "routed to the on-call receiver.",
)
def api_denied_alert(ctx: CheckContext) -> Iterator[Finding]:
    """A burst of 401/403 answers is how credential stuffing and RBAC probing look from the API server."""
    rules = alert_rules(ctx.inv)
    rule, metric, unloaded = _first_loaded(rules, _denied_selected)
    if rule is not None:
        yield ctx.passed(rule.ref, f"alert {rule.name} fires on denied requests ({metric})",
                         evidence={"alert": rule.name, "expr": rule.expr})
        return
    if unloaded:
        yield ctx.fail(None, "alerts on denied API requests exist but Prometheus never loads them: "
                       + "; ".join(unloaded))
        return
    if reason := unlisted(ctx.inv, *RULE_SOURCES):
        yield ctx.not_assessed(None, f"no alert rule on denied API requests found, but {reason}")
        return
    yield ctx.fail(None, "no alert rule selects denied or unauthenticated API requests "
                   f"(apiserver_request_total code 401/403; {len(rules)} alert rules read)")


def _first_loaded(rules: list[AlertRule], fires: Callable[[list[list[Matcher]]], T | None]) \
        -> tuple[AlertRule | None, T | None, list[str]]:
    """The first rule that fires on what we look for and that a Prometheus loads, with what `fires` found in it
    (so the message need not ask again), and the rules that would fire but none loads."""
    unloaded = []
    for rule in rules:
        if hit := fires(rule.selectors):
            if not rule.unloaded:
                return rule, hit, unloaded
            unloaded.append(f"{rule.name} ({rule.unloaded})")
    return None, None, unloaded


def _sidekick_alertmanager(inv: Inventory) -> Iterator[tuple[ResourceRef, str]]:
    """falcosidekick workloads that push Falco events to Alertmanager themselves, with their minimum priority."""
    for w in workloads(inv):
        for _, c in w.containers():
            image = str(c.get("image") or "")
            if "falcosidekick" not in image or parse_image(image).repository.rsplit("/", 1)[-1] != "falcosidekick":
                continue
            env = {str(e.get("name")): e for e in _l(c.get("env")) if isinstance(e, dict)}
            target = env.get("ALERTMANAGER_HOSTPORT")
            if target and (str(target.get("value") or "").strip() or target.get("valueFrom")):
                yield w.ref, str(_d(env.get("ALERTMANAGER_MINIMUMPRIORITY")).get("value") or "debug").lower()


@check(
    id="alerting.falco-critical-alert",
    title="Critical Falco events raise an alert",
    severity=Severity.MEDIUM,
    measures=ALERTING,
    remediation="Add a PrometheusRule alert on falcosecurity_falcosidekick_falco_events_total (or falco-exporter's "
    "falco_events) for priority Critical and above, or set falcosidekick's ALERTMANAGER_HOSTPORT.",
)
def falco_critical_alert(ctx: CheckContext) -> Iterator[Finding]:
    """Falco's Critical rules (a shell in a container, a write below /etc) need a human within minutes."""
    rule, _, unloaded = _first_loaded(alert_rules(ctx.inv), lambda parsed: _any_selects(parsed, CRITICAL_FALCO))
    if rule is not None:
        yield ctx.passed(rule.ref, f"alert {rule.name} fires on critical Falco events",
                         evidence={"alert": rule.name, "expr": rule.expr})
        return
    for ref, minimum in _sidekick_alertmanager(ctx.inv):
        if minimum not in _PRIORITIES or _PRIORITIES.index(minimum) >= _PRIORITIES.index("critical"):
            yield ctx.passed(ref, f"falcosidekick sends Falco events from priority {minimum} up to Alertmanager")
            return
    if reason := unlisted(ctx.inv, *RULE_SOURCES, ("Deployment", "apps")):
        yield ctx.not_assessed(None, f"no alert on critical Falco events found, but {reason}")
        return
    never = f" ({'; '.join(unloaded)} would, but Prometheus never loads them)" if unloaded else ""
    yield ctx.fail(None, f"no alert rule selects critical Falco events{never} and falcosidekick does not push "
                   "them to Alertmanager")


# ---- Alertmanager ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Routing:
    ref: ResourceRef
    root: str | None  # the root route's receiver
    reachable: list[str]  # receivers named anywhere in the route tree
    configured: set[str]  # receivers with at least one integration
    scope: str | None = ""  # what reaches this route tree when not every alert does; None: nothing (unloaded)
    defined: set[str] | None = None  # every receiver name the config defines


def _file_routing(path: object) -> Routing:
    path = str(path)
    try:
        if os.path.getsize(path) > MAX_CONFIG_BYTES:
            raise InputError(f"--alertmanager-config {path}: larger than 4 MiB; refused")
        with open(path, encoding="utf-8") as fh:
            doc = load_document(fh.read())
    except OSError as exc:
        raise InputError(f"--alertmanager-config {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"--alertmanager-config {path}: not UTF-8 text") from None
    except InputError:
        raise
    except Exception as exc:  # any YAML failure is an input error naming the file
        raise InputError(f"--alertmanager-config {path}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict):
        raise InputError(f"--alertmanager-config {path}: the top level must be a mapping")
    route = doc.get("route")
    receivers = doc.get("receivers") or []
    if not isinstance(receivers, list):
        raise InputError(f"--alertmanager-config {path}: receivers must be a list")
    configured = {str(r.get("name")) for r in receivers if isinstance(r, dict)
                  and any(k.endswith("_configs") and v for k, v in r.items())}
    defined = {str(r.get("name")) for r in receivers if isinstance(r, dict)}
    ref = ResourceRef("v1", "AlertmanagerConfigFile", None, os.path.basename(path), None, Location(path))
    return Routing(ref, _root(route), _tree(route), configured, defined=defined)


def _root(route: object) -> str | None:
    return str(route["receiver"]) if isinstance(route, dict) and route.get("receiver") else None


def _tree(route: object, depth: int = 0) -> list[str]:
    if not isinstance(route, dict) or depth > 64:
        return []
    out = [str(route["receiver"])] if route.get("receiver") else []
    for child in _l(route.get("routes")):
        out.extend(_tree(child, depth + 1))
    return out


def _amc_scope(inv: Inventory, amc: dict, alertmanagers: list[_Owner]) -> str | None:
    """What reaches an AlertmanagerConfig's routes: "" all alerts, a namespace note, or None when the
    Alertmanagers in the input never merge it. prometheus-operator merges the one named in
    spec.alertmanagerConfiguration as the root; others only when alertmanagerConfigSelector (null selects
    nothing) and alertmanagerConfigNamespaceSelector (null: the Alertmanager's namespace) pick them, and
    puts a namespace matcher on their routes unless the matcher strategy is None, or is
    OnNamespaceExceptForAlertmanagerNamespace and the object lives beside the Alertmanager."""
    ns, name = amc["metadata"].get("namespace"), amc["metadata"].get("name")
    if not alertmanagers:  # no Alertmanager object to ask: the default strategy
        return f'only alerts labelled namespace="{ns}" reach it (prometheus-operator\'s OnNamespace matcher)'
    scopes = []
    for owner in alertmanagers:
        am, am_ns = owner.obj, owner.namespace
        spec = _d(am.get("spec"))
        strategy = _d(spec.get("alertmanagerConfigMatcherStrategy")).get("type") or "OnNamespace"
        if am_ns == ns and _d(spec.get("alertmanagerConfiguration")).get("name") == name:
            scopes.append("")
        elif owner.selects(inv, amc):
            unscoped = strategy == "None" or (strategy == "OnNamespaceExceptForAlertmanagerNamespace" and am_ns == ns)
            scopes.append("" if unscoped else f'only alerts labelled namespace="{ns}" reach it '
                          f"(the {strategy} matcher strategy of Alertmanager {am_ns}/{am['metadata'].get('name')})")
    return min(scopes, key=len) if scopes else None


def _crd_routings(inv: Inventory) -> list[Routing]:
    """AlertmanagerConfig resources, with what reaches them (see _amc_scope)."""
    out = []
    alertmanagers = _owners(inv, ("Alertmanager",), "alertmanagerConfigSelector", "alertmanagerConfigNamespaceSelector")
    for amc in inv.objects("AlertmanagerConfig"):
        spec = amc.get("spec") if isinstance(amc.get("spec"), dict) else {}
        receivers = [r for r in _l(spec.get("receivers")) if isinstance(r, dict)]
        configured = {str(r.get("name")) for r in receivers if any(k.endswith("Configs") and v for k, v in r.items())}
        route = spec.get("route")
        out.append(Routing(inv.ref(amc), _root(route), _tree(route), configured, _amc_scope(inv, amc, alertmanagers),
                           {str(r.get("name")) for r in receivers}))
    return out


def _alertmanager_seen(inv: Inventory) -> list[str]:
    seen = [f"Alertmanager {a['metadata'].get('namespace')}/{a['metadata'].get('name')}"
            for a in inv.objects("Alertmanager")]
    seen += [w.ref.display for w in workloads(inv) if any(
        "alertmanager" in str(c.get("image") or "")
        and parse_image(str(c.get("image") or "")).repository.rsplit("/", 1)[-1] == "alertmanager"
        for _, c in w.containers())]
    return seen


@check(
    id="alerting.alertmanager-route",
    title="Alertmanager routes alerts to a receiver that notifies someone (not a null receiver)",
    severity=Severity.HIGH,
    measures=ALERTING,
    remediation="Give the root route (or the routes for security alerts) a receiver with at least one "
    "integration (pagerduty_configs, email_configs, webhook_configs, msteams_configs, ...).",
)
def alertmanager_route(ctx: CheckContext) -> Iterator[Finding]:
    """kube-prometheus-stack's default routes everything to a receiver named "null" with no integration."""
    given = ctx.input("alertmanager_config", _file_routing)
    routings = [given] if given is not None else _crd_routings(ctx.inv)
    for r in routings:
        evidence = {"root": r.root, "receivers_in_routes": sorted(set(r.reachable)),
                    "receivers_with_integrations": sorted(r.configured)}
        if r.scope is None:
            yield ctx.fail(r.ref, "no Alertmanager selects this AlertmanagerConfig (alertmanagerConfigSelector, "
                           "null by default, and alertmanagerConfigNamespaceSelector): its routes are never loaded",
                           evidence=evidence)
            continue
        if r.root is None:
            yield ctx.fail(r.ref, "the route has no receiver: Alertmanager rejects this config or drops alerts",
                           evidence=evidence)
            continue
        if r.defined is not None and (undefined := sorted(set(r.reachable) - r.defined)):
            yield ctx.fail(r.ref, f"routes name undefined receiver(s) {', '.join(undefined)}: the whole config is "
                           "refused (Alertmanager: undefined receiver used in route; prometheus-operator skips the "
                           "AlertmanagerConfig)", evidence=evidence)
            continue
        live = [name for name in dict.fromkeys(r.reachable) if name in r.configured]
        if not live:
            yield ctx.fail(r.ref, f"no route leads to a receiver with an integration (root receiver {r.root!r} and "
                           "every other routed receiver notify nobody)", evidence=evidence)
        else:
            note = f"; {r.scope}" if r.scope else ""
            if r.root not in r.configured:
                yield ctx.passed(r.ref, f"alerts reach {', '.join(live)}; the root receiver {r.root!r} drops "
                                 f"whatever no child route matches{note}", evidence=evidence)
            else:
                yield ctx.passed(r.ref, f"the root route notifies {r.root!r}{note}", evidence=evidence)
    if routings:
        return
    seen = _alertmanager_seen(ctx.inv)
    reason = unlisted(ctx.inv, ("AlertmanagerConfig", "monitoring.coreos.com"))
    if reason:
        yield ctx.not_assessed(None, f"the Alertmanager routing cannot be judged: {reason}")
    elif seen:
        yield ctx.not_assessed(None, f"{', '.join(seen)} found, but its routing is not in the input (it lives in a "
                               "Secret or a file, and Secret values are never read); give --alertmanager-config "
                               "alertmanager.yml or use AlertmanagerConfig resources")
    elif not ctx.inv.objects("Deployment") and not ctx.inv.objects("StatefulSet"):
        yield ctx.not_assessed(None, "the input has no Deployments or StatefulSets, so Alertmanager cannot be seen")
    else:
        yield ctx.fail(None, "no Alertmanager found: alerts have nowhere to go")
