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
from collections.abc import Iterator
from dataclasses import dataclass

from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.checks.runtime import MAX_CONFIGMAP_VALUE, unlisted
from nis2kube.findings import Finding, Location, ResourceRef, Severity
from nis2kube.images import parse_image
from nis2kube.inventory import Inventory
from nis2kube.inventory.workloads import workloads
from nis2kube.inventory.yamlload import load_document

ALERTING = ("art21.2.b", "ir2690.3.3")
RULE_SOURCES = (("PrometheusRule", "monitoring.coreos.com"), ("ConfigMap", ""))
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


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


def _rules_from_groups(groups: object, ref: ResourceRef) -> Iterator[AlertRule]:
    for group in groups if isinstance(groups, list) else []:
        for rule in _l(group.get("rules")) if isinstance(group, dict) else []:
            if isinstance(rule, dict) and rule.get("alert") and rule.get("expr"):
                yield AlertRule(str(rule["alert"]), str(rule["expr"]), ref)


def alert_rules(inv: Inventory) -> list[AlertRule]:
    """Alerting rules (not recording rules) from PrometheusRules and rule files in ConfigMaps."""

    def build() -> list[AlertRule]:
        out = []
        for pr in inv.objects("PrometheusRule"):
            out.extend(_rules_from_groups(_d(pr.get("spec")).get("groups"), inv.ref(pr)))
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


def selectors(expr: str, metric: str) -> list[list[tuple[str, str, str]]]:
    """Label matchers of every use of `metric` in a PromQL expression ([] inside = no matcher: all series)."""
    out = []
    for m in re.finditer(rf"(?<![A-Za-z0-9_:]){re.escape(metric)}(?![A-Za-z0-9_:])\s*(\{{[^}}]*\}})?", expr):
        out.append(_MATCHER.findall(m.group(1) or ""))
    return out


def _matches(matchers: list[tuple[str, str, str]], label: str, value: str) -> bool:
    """Do these matchers select a series with `label`=`value`? Regexes are fully anchored, as in Prometheus."""
    for name, op, want in matchers:
        if name != label:
            continue
        want = re.sub(r"\\(.)", r"\1", want)  # PromQL string escapes: \\ and \"
        if op == "=":
            ok = value == want
        elif op == "!=":
            ok = value != want
        else:
            try:
                hit = re.fullmatch(want, value) is not None
            except re.error:
                return False
            ok = hit if op == "=~" else not hit
        if not ok:
            return False
    return True


def _any_selects(expr: str, metric: str, label: str, values: tuple[str, ...], require_label: bool) -> bool:
    for matchers in selectors(expr, metric):
        if require_label and not any(name == label for name, _, _ in matchers):
            continue
        if any(_matches(matchers, label, v) for v in values):
            return True
    return False


# metric -> (label, values that mean "denied/unauthenticated", the matcher must name the label)
DENIED = (
    ("apiserver_request_total", "code", ("401", "403"), True),
    ("apiserver_authorization_decisions_total", "decision", ("denied",), True),
    ("authentication_attempts", "result", ("failure", "error"), True),
)
FALCO_METRICS = ("falcosecurity_falcosidekick_falco_events_total", "falco_events",
                 "falcosecurity_falco_rules_matches_total")
# falcosidekick labels the priority by name; falco-exporter and Falco's own metrics by number (2 = critical)
CRITICAL = ("Critical", "2")
_PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "info", "debug")


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
    for rule in rules:
        for metric, label, values, required in DENIED:
            if _any_selects(rule.expr, metric, label, values, required):
                yield ctx.passed(rule.ref, f"alert {rule.name} fires on {metric} with {label} "
                                 f"{'/'.join(values)}", evidence={"alert": rule.name, "expr": rule.expr})
                return
    if reason := unlisted(ctx.inv, *RULE_SOURCES):
        yield ctx.not_assessed(None, f"no alert rule on denied API requests found, but {reason}")
        return
    yield ctx.fail(None, "no alert rule selects denied or unauthenticated API requests "
                   f"(apiserver_request_total code 401/403; {len(rules)} alert rules read)")


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
    for rule in alert_rules(ctx.inv):
        for metric in FALCO_METRICS:
            if _any_selects(rule.expr, metric, "priority", CRITICAL, False):
                yield ctx.passed(rule.ref, f"alert {rule.name} fires on critical Falco events ({metric})",
                                 evidence={"alert": rule.name, "expr": rule.expr})
                return
    for ref, minimum in _sidekick_alertmanager(ctx.inv):
        if minimum not in _PRIORITIES or _PRIORITIES.index(minimum) >= _PRIORITIES.index("critical"):
            yield ctx.passed(ref, f"falcosidekick sends Falco events from priority {minimum} up to Alertmanager")
            return
    if reason := unlisted(ctx.inv, *RULE_SOURCES, ("Deployment", "apps")):
        yield ctx.not_assessed(None, f"no alert on critical Falco events found, but {reason}")
        return
    yield ctx.fail(None, "no alert rule selects critical Falco events and falcosidekick does not push them to "
                   "Alertmanager")


# ---- Alertmanager ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Routing:
    ref: ResourceRef
    root: str | None  # the root route's receiver
    reachable: list[str]  # receivers named anywhere in the route tree
    configured: set[str]  # receivers with at least one integration
    scope: str = ""  # what reaches this route tree at all, when not every alert does


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
    ref = ResourceRef("v1", "AlertmanagerConfigFile", None, os.path.basename(path), None, Location(path))
    return Routing(ref, _root(route), _tree(route), configured)


def _root(route: object) -> str | None:
    return str(route["receiver"]) if isinstance(route, dict) and route.get("receiver") else None


def _tree(route: object, depth: int = 0) -> list[str]:
    if not isinstance(route, dict) or depth > 64:
        return []
    out = [str(route["receiver"])] if route.get("receiver") else []
    for child in _l(route.get("routes")):
        out.extend(_tree(child, depth + 1))
    return out


def _crd_routings(inv: Inventory) -> list[Routing]:
    """AlertmanagerConfig resources. prometheus-operator puts a `namespace="<ns>"` matcher on each one's
    routes (matcher strategy OnNamespace, the default) unless an Alertmanager names it as its global
    configuration (spec.alertmanagerConfiguration) or uses the None strategy."""
    global_configs, unscoped = set(), set()
    for am in inv.objects("Alertmanager"):
        spec = _d(am.get("spec"))
        ns = am["metadata"].get("namespace")
        name = _d(spec.get("alertmanagerConfiguration")).get("name")
        if name:
            global_configs.add((ns, str(name)))
        if _d(spec.get("alertmanagerConfigMatcherStrategy")).get("type") == "None":
            unscoped.add(ns)
    out = []
    for amc in inv.objects("AlertmanagerConfig"):
        spec = amc.get("spec") if isinstance(amc.get("spec"), dict) else {}
        configured = {str(r.get("name")) for r in _l(spec.get("receivers")) if isinstance(r, dict)
                      and any(k.endswith("Configs") and v for k, v in r.items())}
        route = spec.get("route")
        ns, name = amc["metadata"].get("namespace"), amc["metadata"].get("name")
        scoped = (ns, name) not in global_configs and not unscoped
        scope = f'only alerts labelled namespace="{ns}" reach it (prometheus-operator\'s OnNamespace matcher)' \
            if scoped else ""
        out.append(Routing(inv.ref(amc), _root(route), _tree(route), configured, scope))
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
        if r.root is None:
            yield ctx.fail(r.ref, "the route has no receiver: Alertmanager rejects this config or drops alerts",
                           evidence=evidence)
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
