"""API audit logging: enabled, rotated, the policy's content, shipped off the node, retained (Art. 21(2)(b), 23).

Logs are the evidence an Art. 23 incident report is written from; NIS2 expects them complete for security
events, free of secrets, copied off the control plane, and kept long enough (national implementations ask
12-18 months). The policy's content is judged with the API server's own first-match-wins semantics
(nis2kube.auditpolicy), never by looking for a rule that "seems right".
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from nis2kube import apiserver, gostrconv
from nis2kube.auditpolicy import AuditPolicy, Level, PolicyError, Shape, load_policy_file, parse_policy
from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.checks.runtime import MAX_CONFIGMAP_VALUE, tolerates_control_plane, unlisted
from nis2kube.evidence_file import evidence as evidence_file
from nis2kube.findings import Finding, Location, ResourceRef, Severity
from nis2kube.images import parse_image
from nis2kube.inventory import Inventory
from nis2kube.inventory.workloads import Workload, workloads
from nis2kube.inventory.yamlload import load_document

LOGGING = ("art21.2.b", "ir2690.3.2")
DEFAULTS = {"min_maxage": 30, "min_maxbackup": 10, "min_maxsize": 100, "retention_days": 365}
WRITE = ("create", "update", "patch", "delete", "deletecollection")  # the API server's verbs that change objects
READ = ("get", "list", "watch")


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []


def setting(ctx: CheckContext, key: str) -> int:
    """A logging.* threshold from nis2kube.yaml; a bad value is an input error naming the key."""
    value = ctx.config.section("logging").get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{ctx.config.path or 'config'}: logging.{key} must be a non-negative integer, "
                         f"not {value!r}")
    return value


# ---- API server flags -------------------------------------------------------------------------------------
@check(
    id="logging.audit-log-enabled",
    title="The API server writes an audit log (policy file and a log or webhook backend)",
    severity=Severity.HIGH,
    measures=LOGGING,
    remediation="Start kube-apiserver with --audit-policy-file and --audit-log-path (or "
    "--audit-webhook-config-file); `nis2kube harden --only audit` writes a policy.",
)
def audit_log_enabled(ctx: CheckContext) -> Iterator[Finding]:
    """Without --audit-policy-file the API server records nothing; without a backend the events go nowhere."""
    servers = apiserver.apiservers(ctx)
    if not servers:
        yield ctx.not_assessed(None, apiserver.MISSING_EVIDENCE)
        return
    for server in servers:
        policy = server.get("audit-policy-file")
        backends = [f"--audit-log-path={server.get('audit-log-path')}"] if server.get("audit-log-path") else []
        if server.get("audit-webhook-config-file"):
            backends.append(f"--audit-webhook-config-file={server.get('audit-webhook-config-file')}")
        evidence = {"audit-policy-file": policy, "backends": backends}
        if not policy:
            yield ctx.fail(server.ref, "--audit-policy-file is not set: the API server records no audit events",
                           evidence=evidence)
        elif not backends:
            yield ctx.fail(server.ref, "an audit policy is set but no backend (--audit-log-path or "
                           "--audit-webhook-config-file): the events are discarded", evidence=evidence)
        else:
            yield ctx.passed(server.ref, f"audit policy {policy} with backend {', '.join(backends)}",
                             evidence=evidence)


@check(
    id="logging.audit-log-rotation",
    title="Audit log files are kept long enough before rotation deletes them (maxage, maxbackup, maxsize)",
    severity=Severity.MEDIUM,
    measures=(*LOGGING, "art23"),
    remediation="Set --audit-log-maxage (days), --audit-log-maxbackup and --audit-log-maxsize (MB) at or above "
    "the minimums (logging.min_maxage/min_maxbackup/min_maxsize in nis2kube.yaml; CIS 1.2.17-1.2.19).",
)
def audit_log_rotation(ctx: CheckContext) -> Iterator[Finding]:
    """Local rotation deletes audit evidence; until it is shipped, the files on the node are all there is.

    Unset maxage/maxbackup mean "never delete" to the API server, which is not a finding; unset maxsize means
    the 100 MB default of lumberjack. The flags only matter for a file backend."""
    servers = apiserver.apiservers(ctx)
    if not servers:
        yield ctx.not_assessed(None, apiserver.MISSING_EVIDENCE)
        return
    minimums = {name: setting(ctx, f"min_{name}") for name in ("maxage", "maxbackup", "maxsize")}
    for server in servers:
        path = server.get("audit-log-path")
        if not path:
            yield ctx.not_assessed(server.ref, "no --audit-log-path: there is no audit log file to rotate "
                                   "(see logging.audit-log-enabled)")
            continue
        if path == "-":
            yield ctx.not_assessed(server.ref, "--audit-log-path=- writes to stdout; the kubelet's container "
                                   "log rotation and the log collector decide how long it is kept")
            continue
        for name, minimum in minimums.items():
            flag = f"audit-log-{name}"
            raw = server.get(flag)
            evidence = {"flag": f"--{flag}", "value": raw, "minimum": minimum}
            value = gostrconv.parse_int(raw) if raw is not None else 0
            if value is None:
                yield ctx.fail(server.ref, f"--{flag}={raw} is not a number", evidence=evidence)
                continue
            if value < 0:
                yield ctx.fail(server.ref, f"--{flag}={raw} is negative: kube-apiserver refuses to start with it",
                               evidence=evidence)
                continue
            if name == "maxsize" and value == 0:
                value = 100  # unset or 0: lumberjack's default file size
            if name != "maxsize" and value == 0:
                shown = f"--{flag}={raw}" if raw is not None else f"--{flag} is not set"
                yield ctx.passed(server.ref, f"{shown}: old audit files are never deleted (mind the disk: "
                                 "a full disk stops the audit log)", evidence=evidence)
            elif value < minimum:
                yield ctx.fail(server.ref, f"--{flag}={value} is below the minimum {minimum}", evidence=evidence)
            else:
                yield ctx.passed(server.ref, f"--{flag}={value} (minimum {minimum})", evidence=evidence)


# ---- the policy's content ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoundPolicy:
    ref: ResourceRef
    policy: AuditPolicy | None
    error: str | None = None


def _from_file(path: object) -> FoundPolicy:
    try:
        policy = load_policy_file(str(path))
    except PolicyError as exc:
        raise InputError(f"--audit-policy: {exc}") from None
    ref = ResourceRef("audit.k8s.io/v1", "Policy", None, os.path.basename(str(path)), None, Location(str(path)))
    return FoundPolicy(ref, policy)


def audit_policies(ctx: CheckContext) -> list[FoundPolicy]:
    """The policy to judge: --audit-policy, else Policy documents in the input (a file beside the manifests),
    else ConfigMap keys holding one (charts and some distributions ship the policy that way)."""
    given = ctx.input("audit_policy", _from_file)
    if given is not None:
        return [given]

    def scan() -> list[FoundPolicy]:
        found = []
        for obj in ctx.inv.objects("Policy", "audit.k8s.io"):
            ref = ctx.inv.ref(obj)
            try:
                found.append(FoundPolicy(ref, parse_policy(obj, ref.display)))
            except PolicyError as exc:
                found.append(FoundPolicy(ref, None, str(exc)))
        for cm in ctx.inv.objects("ConfigMap"):
            data = cm.get("data")
            if not isinstance(data, dict):
                continue
            for key, text in sorted(data.items(), key=lambda kv: str(kv[0])):
                if not isinstance(text, str) or len(text) > MAX_CONFIGMAP_VALUE or "audit.k8s.io/" not in text:
                    continue
                try:
                    doc = load_document(text)
                except Exception:
                    continue  # not YAML: not a policy either
                if not isinstance(doc, dict) or doc.get("kind") != "Policy" or \
                        not str(doc.get("apiVersion", "")).startswith("audit.k8s.io/"):
                    continue
                ref = ctx.inv.ref(cm)
                try:
                    found.append(FoundPolicy(ref, parse_policy(doc, f"{ref.display} key {key}")))
                except PolicyError as exc:
                    found.append(FoundPolicy(ref, None, str(exc)))
        return found

    return ctx.inv.cached("audit-policies", scan)


def _policies_or_reason(ctx: CheckContext) -> Iterator[FoundPolicy | Finding]:
    found = audit_policies(ctx)
    if not found:
        paths = sorted({s.get("audit-policy-file") for s in apiserver.apiservers(ctx) if s.get("audit-policy-file")})
        hint = f" (the API server reads {', '.join(paths)})" if paths else ""
        reason = unlisted(ctx.inv, ("ConfigMap", ""))
        hint += f"; {reason}" if reason else ""
        yield ctx.not_assessed(None, f"the audit policy is not in the input{hint}; give --audit-policy FILE")
        return
    for item in found:
        if item.policy is None:
            yield ctx.not_assessed(item.ref, f"the audit policy cannot be used: {item.error}")
        else:
            yield item


@dataclass(frozen=True)
class Expectation:
    """Requests of `shapes` must get a level within [lo, hi] for every identity probed."""

    topic: str
    shapes: tuple[Shape, ...]
    lo: Level = Level.NONE
    hi: Level = Level.REQUEST_RESPONSE


def _shapes(verbs: tuple[str, ...], group: str, resources: tuple[str, ...], cluster: bool = False
            ) -> tuple[Shape, ...]:
    out = []
    for res in resources:
        resource, _, sub = res.partition("/")
        out.append(Shape(verbs, group, resource, sub, cluster))
    return tuple(out)


RBAC = "rbac.authorization.k8s.io"
COVERAGE = (
    Expectation("RBAC changes", (
        *_shapes(WRITE, RBAC, ("roles", "rolebindings")),
        *_shapes(WRITE, RBAC, ("clusterroles", "clusterrolebindings"), cluster=True),
    ), lo=Level.METADATA),
    Expectation("workload changes", (
        *_shapes(WRITE, "", ("pods",)),
        *_shapes(WRITE, "apps", ("deployments", "daemonsets", "statefulsets", "replicasets")),
        *_shapes(WRITE, "batch", ("jobs", "cronjobs")),
    ), lo=Level.METADATA),
    Expectation("exec, attach and port-forward into pods",
                _shapes(("create", "get"), "", ("pods/exec", "pods/attach", "pods/portforward")), lo=Level.METADATA),
    Expectation("credential issuance requests (service account tokens, certificate signing and approval)", (
        *_shapes(("create",), "", ("serviceaccounts/token",)),
        *_shapes(("create",), "certificates.k8s.io", ("certificatesigningrequests",), cluster=True),
        *_shapes(("update",), "certificates.k8s.io", ("certificatesigningrequests/approval",), cluster=True),
    ), lo=Level.METADATA),
    Expectation("reads and changes of Secrets", _shapes((*READ, *WRITE), "", ("secrets",)), lo=Level.METADATA),
)
# Values land in the log at Request level for writes (the body carries them) and at RequestResponse for
# reads (the response does); anything above is a leak of what the policy is meant to protect.
SENSITIVE = (
    Expectation("writes of Secrets and ConfigMaps", _shapes(("create", "update", "patch"), "",
                                                            ("secrets", "configmaps")), hi=Level.METADATA),
    Expectation("reads of Secrets and ConfigMaps", _shapes((*READ, "delete", "deletecollection"), "",
                                                           ("secrets", "configmaps")), hi=Level.REQUEST),
    Expectation("TokenReviews (the body carries the bearer token)",
                _shapes(("create",), "authentication.k8s.io", ("tokenreviews",), cluster=True), hi=Level.METADATA),
    Expectation("TokenRequests (the response carries the new token)",
                _shapes(("create",), "", ("serviceaccounts/token",)), hi=Level.REQUEST),
)


def _actors(policy: AuditPolicy) -> list[tuple[str | None, frozenset[str]]]:
    """Humans and workloads: control-plane components (system:* users other than service accounts, the
    system:nodes group) are left out on purpose; silencing their noise is legitimate tuning."""
    return [(u, g) for u, g in policy.identities()
            if u is not None and not (u.startswith("system:") and not u.startswith("system:serviceaccount:"))
            and "system:nodes" not in g]


def _judge(ctx: CheckContext, found: FoundPolicy, exp: Expectation,
           identities: list[tuple[str | None, frozenset[str]]] | None) -> Finding:
    policy = found.policy
    assert policy is not None
    probed = 0
    for shape in exp.shapes:
        count, bad = policy.probe(shape, exp.lo, exp.hi, identities)
        probed += count
        if bad is not None:
            req, decision = bad
            if decision.level < exp.lo:
                msg = f"{exp.topic} are not logged: {req.describe()} gets level {decision.level.label} " \
                      f"({decision.describe()})"
            else:
                msg = f"{exp.topic} are logged at {decision.level.label}, which writes their content into " \
                      f"the audit log: {req.describe()} ({decision.describe()}); log them at Metadata"
            evidence = {"request": req.describe(), "level": decision.level.label,
                        "rule": decision.rule.index if decision.rule else None}
            return ctx.fail(found.ref, msg, evidence=evidence)
    bound = f"at least {exp.lo.label}" if exp.lo > Level.NONE else f"at most {exp.hi.label}"
    return ctx.passed(found.ref, f"{exp.topic}: logged {bound} for every one of {probed} request classes probed",
                      evidence={"probed": probed})


@check(
    id="logging.audit-policy-coverage",
    title="The audit policy logs RBAC changes, workload changes, exec/attach/port-forward, credential "
    "issuance and Secret access",
    severity=Severity.HIGH,
    measures=LOGGING,
    remediation="Add Metadata (or higher) rules for these requests BEFORE any rule that drops them "
    "(first match wins); `nis2kube harden --only audit` writes a policy that passes.",
)
def audit_policy_coverage(ctx: CheckContext) -> Iterator[Finding]:
    """Probes every request class the policy distinguishes (its users, groups, namespaces, names) for humans
    and workloads, plus requests that failed authentication and anonymous ones."""
    for item in _policies_or_reason(ctx):
        if isinstance(item, Finding):
            yield item
            continue
        actors = _actors(item.policy)
        for exp in COVERAGE:
            yield _judge(ctx, item, exp, actors)
        yield _judge(ctx, item, Expectation(
            "failed and anonymous authentication attempts",
            (Shape(READ, "", "secrets"), Shape(("get",), "", "nodes", cluster_scoped=True)), lo=Level.METADATA),
            [(None, frozenset()), ("system:anonymous", frozenset({"system:unauthenticated"}))])


@check(
    id="logging.audit-policy-secrets",
    title="The audit policy logs Secrets, ConfigMaps and TokenReviews at Metadata only (no values in the log)",
    severity=Severity.HIGH,
    measures=LOGGING,
    remediation="Put `- level: Metadata` rules for secrets, configmaps and tokenreviews FIRST in the policy, "
    "before any Request/RequestResponse rule that would also match them.",
)
def audit_policy_secrets(ctx: CheckContext) -> Iterator[Finding]:
    """Logging these at Request/RequestResponse copies secret values into every log store the audit log
    reaches - a widely copied NIS2 example policy does exactly that. Every identity is probed, system
    components too: a leak is a leak whoever causes it."""
    for item in _policies_or_reason(ctx):
        if isinstance(item, Finding):
            yield item
            continue
        for exp in SENSITIVE:
            yield _judge(ctx, item, exp, None)


@check(
    id="logging.audit-policy-default",
    title="Changes no specific rule names are still logged (no catch-all `level: None`, no silent default)",
    severity=Severity.MEDIUM,
    measures=LOGGING,
    remediation="End the policy with a catch-all `- level: Metadata` rule (and keep `level: None` rules narrow).",
)
def audit_policy_default(ctx: CheckContext) -> Iterator[Finding]:
    """A request no rule matches is NOT logged; new CRDs (policy engines, operators) land exactly there.
    Changes are probed (dropping reads of unnamed resources is legitimate noise reduction)."""
    probe = Shape(WRITE, "nis2kube.probe.example", "widgets")
    for item in _policies_or_reason(ctx):
        if isinstance(item, Finding):
            yield item
            continue
        policy = item.policy
        assert policy is not None
        catch_all_none = next((r for r in policy.rules if r.is_catch_all and r.level is Level.NONE), None)
        _, bad = policy.probe(probe, Level.METADATA, Level.REQUEST_RESPONSE, _actors(policy))
        if bad is None:
            yield ctx.passed(item.ref, "changes to resources no rule names are logged")
            continue
        req, decision = bad
        if decision.rule is not None and decision.rule is catch_all_none:
            msg = f"{decision.rule.describe()} is a catch-all `level: None`: every request not named before " \
                  f"it, e.g. {req.describe()}, goes unlogged"
        elif decision.rule is None:
            msg = f"the policy has no catch-all rule, so changes no rule names are not logged " \
                  f"(e.g. {req.describe()}); add `- level: Metadata` at the end"
        else:
            msg = f"changes no specific rule names are not logged: {req.describe()} ({decision.describe()})"
        yield ctx.fail(item.ref, msg, evidence={"request": req.describe(),
                                                "rule": decision.rule.index if decision.rule else None})


# ---- shipping and retention -------------------------------------------------------------------------------
# Log collector images by the last path component of their repository.
COLLECTOR_IMAGES = {
    "fluent-bit": "Fluent Bit", "fluentd": "Fluentd", "fluentd-kubernetes-daemonset": "Fluentd",
    "vector": "Vector", "promtail": "Promtail", "alloy": "Grafana Alloy", "filebeat": "Filebeat",
    "opentelemetry-collector": "OpenTelemetry collector", "opentelemetry-collector-contrib": "OpenTelemetry collector",
    "opentelemetry-collector-k8s": "OpenTelemetry collector", "splunk-otel-collector": "OpenTelemetry collector",
}
# Where `--audit-log-path=-` ends up: the kube-apiserver container's log, as the kubelet writes it.
STDOUT_AUDIT_FILES = ("/var/log/pods/kube-system_kube-apiserver-cp1_0a1b2c3d/kube-apiserver/0.log",
                      "/var/log/containers/kube-apiserver-cp1_kube-system_kube-apiserver-0a1b2c3d.log")
_PATH_TOKEN = re.compile(r"/[A-Za-z0-9_.\-*?\[\]{},/$]+")


@dataclass(frozen=True)
class Collector:
    workload: Workload
    product: str
    container: dict


def collectors(inv: Inventory) -> list[Collector]:
    def build() -> list[Collector]:
        out = []
        for w in workloads(inv):
            if w.kind != "DaemonSet":
                continue
            for _, container in w.containers():
                repo = parse_image(str(container.get("image") or "")).repository
                product = COLLECTOR_IMAGES.get(repo.rsplit("/", 1)[-1]) or (
                    "Grafana Agent" if repo == "grafana/agent" else None)
                if product:
                    out.append(Collector(w, product, container))
                    break
        return out

    return inv.cached("log-collectors", build)


@functools.lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Collector path globs (Fluent Bit, Vector, Promtail/doublestar, OTel filelog): `**` crosses
    directories, `*` and `?` do not, `[...]` classes and `{a,b}` alternatives."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end].replace("\\", "\\\\")
            out.append(f"[^{body[1:]}]" if body.startswith(("!", "^")) else f"[{body}]")
            i = end + 1
            continue
        elif ch == "{" and "}" in pattern[i + 1:]:
            end = pattern.index("}", i + 1)
            out.append("(?:" + "|".join(re.escape(alt) for alt in pattern[i + 1:end].split(",")) + ")")
            i = end + 1
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _container_paths(inv: Inventory, collector: Collector, host_path: str) -> list[str]:
    """Where a host file appears inside the collector container, through its hostPath mounts."""
    volumes = {v.get("name"): v for v in _l(collector.workload.pod_spec.get("volumes")) if isinstance(v, dict)}
    out = []
    for mount in _l(collector.container.get("volumeMounts")):
        if not isinstance(mount, dict) or mount.get("subPath") or mount.get("subPathExpr"):
            continue
        host = _d(volumes.get(mount.get("name"))).get("hostPath")
        if not isinstance(host, dict) or not host.get("path"):
            continue
        base = str(host["path"]).rstrip("/") or "/"
        if host_path == base or host_path.startswith(base.rstrip("/") + "/"):
            out.append(str(mount.get("mountPath", "")).rstrip("/") + host_path[len(base.rstrip("/")):])
    return out


def _config_texts(inv: Inventory, collector: Collector) -> Iterator[tuple[str, str]]:
    """(where, text) of everything that configures the collector: args, env values, mounted ConfigMaps.
    Secrets are never read."""
    c = collector.container
    yield "its arguments", " ".join(str(a) for a in [*_l(c.get("command")), *_l(c.get("args"))])
    yield "its environment", " ".join(str(e.get("value") or "") for e in _l(c.get("env")) if isinstance(e, dict))
    w = collector.workload
    for volume in _l(w.pod_spec.get("volumes")):
        if isinstance(volume, dict) and isinstance(volume.get("configMap"), dict):
            cm = inv.get("ConfigMap", w.namespace, str(volume["configMap"].get("name")))
            if cm is not None and isinstance(cm.get("data"), dict):
                for key, text in sorted(cm["data"].items()):
                    if isinstance(text, str):
                        yield f"ConfigMap {cm['metadata'].get('name')} key {key}", text


def reads_path(inv: Inventory, collector: Collector, host_path: str) -> str | None:
    """How the collector reads the host file (mount + matching input path), or None when it does not."""
    targets = list(STDOUT_AUDIT_FILES) if host_path == "-" else [host_path]
    inside = [p for t in targets for p in _container_paths(inv, collector, t)]
    if not inside:
        return None
    for where, text in _config_texts(inv, collector):
        if collector.product == "Vector" and "kubernetes_logs" in text and host_path == "-":
            return f"Vector's kubernetes_logs source in {where}"
        for token in _PATH_TOKEN.findall(text):
            token = token.rstrip(",")
            regex = glob_regex(token)
            hit = next((p for p in inside if regex.match(p)), None)
            if hit:
                return f"input {token} in {where}"
    return None


@dataclass(frozen=True)
class RetentionSource:
    ref: ResourceRef | None
    what: str
    days: float | None  # math.inf: never deleted by this system; None: cannot be told
    note: str = ""


_PROM_PART = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")  # ASCII digits, as model.ParseDuration's regexp
_PROM_UNITS = ("y", "w", "d", "h", "m", "s", "ms")  # the order model.ParseDuration insists on
_UNIT_DAYS = {"y": 365.0, "w": 7.0, "d": 1.0, "h": 1 / 24, "m": 1 / 1440, "s": 1 / 86400, "ms": 1 / 86_400_000,
              "micros": 1 / 86_400_000_000, "nanos": 1 / 86_400_000_000_000}
_MAX_GO_DURATION_DAYS = (2**63 - 1) / 86_400e9  # time.Duration's range, ~292 years


def duration_days(text: object) -> float | None:
    """A Loki duration (Prometheus model.ParseDuration: `8760h`, `1y2w`, integers, units y w d h m s ms
    biggest first, each once, bare `0`) in days; None where Loki refuses it."""
    raw = str(text)
    if raw == "0":
        return 0.0
    parts = _PROM_PART.findall(raw)
    order = [_PROM_UNITS.index(u) for _, u in parts]
    if not parts or "".join(n + u for n, u in parts) != raw or order != sorted(set(order)):
        return None
    days = sum(int(n) * _UNIT_DAYS[u] for n, u in parts)
    return days if days <= _MAX_GO_DURATION_DAYS else None


# `\d`, not [0-9]: Java's Long.parseLong takes any Unicode decimal digit (Character.digit), and so does int()
_ES_TIME = re.compile(r"([+-]?\d+)\s*(nanos|micros|ms|s|m|h|d)")


def es_time_days(text: object) -> float | None:
    """An Elasticsearch/OpenSearch time value (TimeValue.parseTimeValue: one integer and one unit of
    nanos micros ms s m h d, case-insensitive except `m`, or a bare 0) in days; None where it is refused."""
    raw = str(text).strip()
    normalized = raw.lower()
    if normalized.endswith("m") and not normalized.endswith("ms") and not raw.endswith("m"):
        return None  # `M` is months to Elasticsearch, not minutes: not a time value
    if re.fullmatch(r"0+", normalized):
        return 0.0
    match = _ES_TIME.fullmatch(normalized)
    if match is None or int(match.group(1)) < 0:
        return None
    return int(match.group(1)) * _UNIT_DAYS[match.group(2)]


def _loki(doc: dict) -> tuple[float | None, str]:
    compactor = doc.get("compactor") if isinstance(doc.get("compactor"), dict) else {}
    limits = doc.get("limits_config") if isinstance(doc.get("limits_config"), dict) else {}
    if compactor.get("retention_enabled") is not True:
        table = doc.get("table_manager") if isinstance(doc.get("table_manager"), dict) else {}
        if table.get("retention_deletes_enabled") is True:
            days = duration_days(table.get("retention_period", "0s"))
            return (math.inf if days == 0 else days), "table_manager retention"
        return None, "Loki's compactor retention is disabled, so Loki deletes nothing and the object store's " \
            "lifecycle rules decide; attest the effective retention in --evidence log_retention"
    days = duration_days(limits.get("retention_period", "0s"))
    if days is None:
        return None, f"limits_config.retention_period {limits.get('retention_period')!r} is not a duration"
    days = math.inf if days == 0 else days  # 0 disables deletion
    note = "limits_config.retention_period"
    for stream in _l(limits.get("retention_stream")):
        period = duration_days(stream.get("period", "")) if isinstance(stream, dict) else None
        if period is not None and 0 < period < days:
            days, note = period, f"retention_stream {stream.get('selector')}"
    return days, note


def _ilm(phases: dict) -> tuple[float | None, str]:
    delete = phases.get("delete")
    if not isinstance(delete, dict):
        return math.inf, "no delete phase"
    days = es_time_days(delete.get("min_age", "0ms"))
    return days, "ILM delete phase min_age" if days is not None else "ILM delete min_age is not a duration"


def _ism(states: list) -> tuple[float | None, str]:
    deleting = {s.get("name") for s in states if isinstance(s, dict)
                and any(isinstance(a, dict) and "delete" in a for a in _l(s.get("actions")))}
    if not deleting:
        return math.inf, "no state deletes indices"
    ages = []
    for state in states:
        for tr in _l(state.get("transitions")) if isinstance(state, dict) else []:
            if isinstance(tr, dict) and tr.get("state_name") in deleting:
                age = es_time_days(_d(tr.get("conditions")).get("min_index_age", ""))
                if age is not None:
                    ages.append(age)
    if not ages:
        return None, "ISM deletes indices but no transition into the delete state has min_index_age"
    return min(ages), "ISM transition min_index_age"


def _configmap_retention(inv: Inventory) -> list[RetentionSource]:
    out = []
    for cm in inv.objects("ConfigMap"):
        data = cm.get("data")
        if not isinstance(data, dict):
            continue
        for key, text in sorted(data.items()):
            if not isinstance(text, str) or len(text) > MAX_CONFIGMAP_VALUE or not any(
                    w in text for w in ("limits_config", "compactor", "phases", "states")):
                continue
            try:
                doc = load_document(text)
            except Exception:
                continue
            if not isinstance(doc, dict):
                continue
            policy = doc.get("policy") if isinstance(doc.get("policy"), dict) else doc
            what = f"ConfigMap {cm['metadata'].get('namespace')}/{cm['metadata'].get('name')} key {key}"
            if "limits_config" in doc or ("compactor" in doc and "schema_config" in doc):
                days, note = _loki(doc)
                out.append(RetentionSource(inv.ref(cm), f"Loki ({what}, {note.split(';')[0]})"
                                           if days is not None else f"Loki ({what})", days, note))
            elif isinstance(policy.get("phases"), dict):
                days, note = _ilm(policy["phases"])
                out.append(RetentionSource(inv.ref(cm), f"Elasticsearch ILM policy ({what}, {note})", days, note))
            elif isinstance(policy.get("states"), list):
                days, note = _ism(policy["states"])
                out.append(RetentionSource(inv.ref(cm), f"OpenSearch ISM policy ({what}, {note})", days, note))
    return out


def retention_sources(ctx: CheckContext) -> list[RetentionSource]:
    out = list(ctx.inv.cached("log-retention", lambda: _configmap_retention(ctx.inv)))
    attested = (evidence_file(ctx) or {}).get("log_retention")
    if attested:
        details = ", ".join(str(attested[k]) for k in ("system", "attested_by", "date") if attested.get(k))
        out.append(RetentionSource(None, f"attested log retention ({details or 'evidence file'})",
                                   float(attested["days"])))
    return out


def _days(days: float) -> str:
    return "indefinitely" if math.isinf(days) else f"{days:g} days"


@check(
    id="logging.audit-log-shipped",
    title="A log collector on the control-plane nodes ships the audit log off the node",
    severity=Severity.MEDIUM,
    measures=LOGGING,
    remediation="Run the log collector DaemonSet (Fluent Bit, Fluentd, Vector, Promtail/Alloy, OpenTelemetry "
    "collector) with a toleration for node-role.kubernetes.io/control-plane, a hostPath mount of the audit "
    "log directory and an input that tails the audit log file.",
)
def audit_log_shipped(ctx: CheckContext) -> Iterator[Finding]:
    """Files on a control-plane node die with the node and can be edited by whoever owns it; an incident
    investigation needs a copy elsewhere. A webhook backend ships by itself, but only with a policy file: without
    one the API server builds no webhook backend."""
    servers = apiserver.apiservers(ctx)
    webhook = next((s for s in servers if s.get("audit-webhook-config-file") and s.get("audit-policy-file")), None)
    if webhook is not None:
        yield ctx.passed(webhook.ref, "the API server sends audit events to a webhook backend "
                         f"({webhook.get('audit-webhook-config-file')}) off the node")
        return
    found = collectors(ctx.inv)
    if not found:
        reason = unlisted(ctx.inv, ("DaemonSet", "apps"))
        if reason or not ctx.inv.objects("DaemonSet"):
            yield ctx.not_assessed(None, reason or "the input has no DaemonSets, so no log collector can be seen")
        else:
            yield ctx.fail(None, "no log collector DaemonSet (Fluent Bit, Fluentd, Vector, Promtail, Alloy, "
                           "OpenTelemetry collector, Filebeat) found")
        return
    paths = sorted({s.get("audit-log-path") for s in servers if s.get("audit-log-path")})
    problems = []
    for collector in found:
        tolerated, why = tolerates_control_plane(ctx.inv, collector.workload)
        if not tolerated:
            problems.append(f"{collector.workload.ref.display} does not run on control-plane nodes ({why})")
            continue
        if not paths:
            yield ctx.not_assessed(collector.workload, f"{collector.product} runs on control-plane nodes, but the "
                                   "audit log path is unknown (no --audit-log-path visible; "
                                   "give --apiserver-manifest)")
            return
        for path in paths:
            how = reads_path(ctx.inv, collector, path)
            if how:
                yield ctx.passed(collector.workload, f"{collector.product} runs on control-plane nodes and "
                                 f"reads the audit log {path} ({how})", evidence={"audit-log-path": path})
                return
        wanted = " or ".join("the kube-apiserver container log (--audit-log-path=-)" if p == "-" else p for p in paths)
        problems.append(f"{collector.workload.ref.display} runs on control-plane nodes but no input of it reads "
                        f"{wanted}")
    yield ctx.fail(None, "the audit log is not shipped: " + "; ".join(problems))


@check(
    id="logging.retention",
    title="Logs are retained for at least logging.retention_days (default 365)",
    severity=Severity.MEDIUM,
    measures=(*LOGGING, "art23"),
    remediation="Set the log store's retention (Loki limits_config.retention_period with compactor retention "
    "enabled, an Elasticsearch/OpenSearch ILM/ISM delete phase) to at least the minimum, or attest it in "
    "--evidence under log_retention.",
)
def retention(ctx: CheckContext) -> Iterator[Finding]:
    """Art. 23 reports are due up to a month after an incident, and incidents surface months late: the
    logs must still exist then. Reads Loki and ILM/ISM settings from ConfigMaps and the evidence file."""
    minimum = setting(ctx, "retention_days")
    sources = retention_sources(ctx)
    if not sources:
        yield ctx.not_assessed(None, "no retention evidence: no Loki config or Elasticsearch/OpenSearch "
                               "lifecycle policy in a ConfigMap, and no log_retention in --evidence")
        return
    for source in sources:
        evidence = {"source": source.what, "days": None if source.days is None else _days(source.days),
                    "minimum": minimum}
        if source.days is None:
            yield ctx.not_assessed(source.ref, f"{source.what}: {source.note}", evidence=evidence)
        elif source.days < minimum:
            yield ctx.fail(source.ref, f"{source.what} keeps logs {_days(source.days)}, below the minimum "
                           f"{minimum}", evidence=evidence)
        else:
            yield ctx.passed(source.ref, f"{source.what} keeps logs {_days(source.days)} (minimum {minimum})",
                             evidence=evidence)

