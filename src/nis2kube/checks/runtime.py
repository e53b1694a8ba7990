"""Runtime threat detection: Falco on every node, its alerts routed somewhere, custom rules that matter.

NIS2 Art. 21(2)(b) and IR 2024/2690 3.2/6.9 ask for detection of anomalous events; on Kubernetes that is a
syscall sensor on each node. A node the sensor's pods cannot be scheduled on (an untolerated taint, a node
selector that leaves it out) is a blind spot an attacker can pick, so coverage is computed with the
scheduler's own taint/toleration and node-affinity rules, not assumed from "a DaemonSet exists".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from nis2kube import gostrconv
from nis2kube.checks.registry import CheckContext, check
from nis2kube.findings import Finding, ResourceRef, Severity
from nis2kube.images import parse_image
from nis2kube.inventory import Inventory
from nis2kube.inventory.selectors import labels_of
from nis2kube.inventory.workloads import Workload, workloads
from nis2kube.inventory.yamlload import load_document

RUNTIME = ("art21.2.b", "ir2690.6.9", "ir2690.3.2")
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
# Tolerations the DaemonSet controller adds to every DaemonSet pod (pkg/controller/daemon/util).
_DAEMONSET_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
MAX_CONFIGMAP_VALUE = 1024 * 1024  # the API server refuses larger ConfigMaps; bigger input is not real
MAX_EXPANDED = 100_000  # characters of a Falco condition after macro expansion
_HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                            "effect": "NoSchedule"}


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []


def unlisted(inv: Inventory, *kinds: tuple[str, str]) -> str | None:
    """Live mode: which of these (kind, group) could not be listed; their absence is then no evidence."""
    missing = [f"{kind} ({reason})" for kind, group in kinds if (reason := inv.unlisted_reason(kind, group))]
    return "could not list " + "; ".join(missing) if missing else None


# ---- scheduling semantics (shared with logging.audit-log-shipped) ---------------------------------------
def tolerates(toleration: dict, taint: dict) -> bool:
    """k8s.io/api/core/v1 Toleration.ToleratesTaint: an empty key with Equal compares values only (validation
    forbids it, the function does not); Lt/Gt compare the values as int64, taint against toleration."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    mine, theirs = str(toleration.get("value") or ""), str(taint.get("value") or "")
    if operator == "Exists":
        return True
    if operator == "Equal":
        return mine == theirs
    if operator in ("Lt", "Gt"):
        want, have = gostrconv.parse_int(mine, 10), gostrconv.parse_int(theirs, 10)
        if want is None or have is None:
            return False
        return have < want if operator == "Lt" else have > want
    return False


def daemonset_tolerations(pod_spec: dict) -> list[dict]:
    own = [t for t in _l(pod_spec.get("tolerations")) if isinstance(t, dict)]
    extra = [*_DAEMONSET_TOLERATIONS, *([_HOST_NETWORK_TOLERATION] if pod_spec.get("hostNetwork") else [])]
    return own + extra


def untolerated(pod_spec: dict, taints: list, daemonset: bool = True) -> list[str]:
    """Taints that keep the pod off the node (NoSchedule/NoExecute; PreferNoSchedule never blocks)."""
    tols = daemonset_tolerations(pod_spec) if daemonset else _l(pod_spec.get("tolerations"))
    out = []
    for taint in _l(taints):
        if not isinstance(taint, dict) or taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tols if isinstance(t, dict)):
            value = f"={taint['value']}" if taint.get("value") else ""
            out.append(f"{taint.get('key')}{value}:{taint.get('effect')}")
    return out


def _requirement_valid(op: object, values: list) -> bool:
    """labels.NewRequirement: a term holding an invalid requirement matches no node."""
    if op in ("In", "NotIn"):
        return bool(values)
    if op in ("Exists", "DoesNotExist"):
        return not values
    if op in ("Gt", "Lt"):  # one int64 that is also a valid label value (so no sign)
        return len(values) == 1 and values[0].isdigit() and gostrconv.parse_int(values[0], 10) is not None
    return False


def _expression_matches(expr: dict, labels: dict[str, str]) -> bool:
    key, op = expr.get("key"), expr.get("operator")
    values = [str(v) for v in _l(expr.get("values"))]
    if not _requirement_valid(op, values):
        return False
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    have = gostrconv.parse_int(labels[key], 10) if key in labels else None
    if have is None:
        return False
    want = int(values[0])
    return have > want if op == "Gt" else have < want


def _field_matches(expr: dict, node_name: str) -> bool:
    """matchFields: only In/NotIn with exactly one value; anything else is a parse error (no match)."""
    op, values = expr.get("operator"), [str(v) for v in _l(expr.get("values"))]
    if op not in ("In", "NotIn") or len(values) != 1:
        return False
    have = node_name if expr.get("key") == "metadata.name" else ""
    return (have == values[0]) == (op == "In")


def node_selected(pod_spec: dict, node: dict) -> bool:
    """nodeSelector AND required node affinity (terms ORed, expressions ANDed; empty term selects nothing)."""
    labels = labels_of(node)
    for key, value in _d(pod_spec.get("nodeSelector")).items():
        if labels.get(key) != str(value):
            return False
    required = _d(_d(pod_spec.get("affinity")).get("nodeAffinity")).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, dict):
        return True
    name = str(_d(node.get("metadata")).get("name", ""))
    for term in _l(required.get("nodeSelectorTerms")):
        exprs = _l(_d(term).get("matchExpressions"))
        field_exprs = _l(_d(term).get("matchFields"))
        if not exprs and not field_exprs:
            continue
        if all(isinstance(e, dict) and _expression_matches(e, labels) for e in exprs) and all(
                isinstance(e, dict) and _field_matches(e, name) for e in field_exprs):
            return True
    return False


def is_control_plane(node: dict) -> bool:
    labels = labels_of(node)
    return any(label in labels for label in CONTROL_PLANE_LABELS)


def blocked_on(pod_spec: dict, node: dict) -> str | None:
    """Why a DaemonSet pod cannot run on this node, or None when it can (NodeShouldRunDaemonPod: nodeName,
    then node affinity, then NoSchedule/NoExecute taints)."""
    node_name = pod_spec.get("nodeName")
    if node_name and node_name != _d(node.get("metadata")).get("name"):
        return f"its nodeName pins it to {node_name}"
    if not node_selected(pod_spec, node):
        return "its nodeSelector/node affinity leaves the node out"
    taints = untolerated(pod_spec, _l(_d(node.get("spec")).get("taints")))
    return f"untolerated taint {', '.join(taints)}" if taints else None


def tolerates_control_plane(inv: Inventory, w: Workload) -> tuple[bool, str]:
    """Can this DaemonSet run on the control-plane nodes? Nodes in the input decide; without them, the
    kubeadm default taint node-role.kubernetes.io/control-plane:NoSchedule is assumed."""
    nodes = [n for n in inv.objects("Node") if is_control_plane(n)]
    if not nodes:
        blocked = untolerated(w.pod_spec, [CONTROL_PLANE_TAINT])
        if blocked:
            return False, f"no toleration for {blocked[0]} (the kubeadm control-plane taint)"
        return True, "tolerates the control-plane taint"
    for node in nodes:
        why = blocked_on(w.pod_spec, node)
        if why:
            return False, f"node {node['metadata'].get('name')}: {why}"
    return True, "schedulable on every control-plane node"


# ---- Falco -------------------------------------------------------------------------------------------------
def _repo_name(image: object, *wanted: str) -> bool:
    """Is the image's repository named one of `wanted` (cheap substring test first: this runs per container)?"""
    text = str(image or "")
    return any(w in text for w in wanted) and parse_image(text).repository.rsplit("/", 1)[-1] in wanted


# Falco's published images: falco, falco-no-driver (the chart README's driver-less variant), falco-distroless.
FALCO_IMAGES = ("falco", "falco-no-driver", "falco-distroless")


@dataclass(frozen=True)
class Sensor:
    workload: Workload
    container: dict


def falco_daemonsets(inv: Inventory) -> list[Sensor]:
    def build() -> list[Sensor]:
        out = []
        for w in workloads(inv):
            if w.kind != "DaemonSet":
                continue
            for _, container in w.containers():
                if _repo_name(container.get("image"), *FALCO_IMAGES):
                    out.append(Sensor(w, container))
                    break
        return out

    return inv.cached("falco-daemonsets", build)


@check(
    id="runtime.falco-deployed",
    title="Falco runs as a DaemonSet (runtime threat detection on every node)",
    severity=Severity.HIGH,
    measures=RUNTIME,
    remediation="helm install falco falcosecurity/falco -n falco --create-namespace "
    "--set falcosidekick.enabled=true",
)
def falco_deployed(ctx: CheckContext) -> Iterator[Finding]:
    """Without a node sensor, a compromised container (a shell, a crypto miner, a read of /etc/shadow) leaves
    no trace anyone looks at."""
    sensors = falco_daemonsets(ctx.inv)
    if sensors:
        for sensor in sensors:
            yield ctx.passed(sensor.workload, f"Falco ({sensor.container.get('image')}) runs as a DaemonSet",
                             container=sensor.container.get("name"))
        return
    reason = unlisted(ctx.inv, ("DaemonSet", "apps"))
    if reason or not ctx.inv.objects("DaemonSet"):
        yield ctx.not_assessed(None, reason or "the input has no DaemonSets, so a runtime sensor cannot be seen")
    else:
        yield ctx.fail(None, "no Falco DaemonSet found: nothing detects runtime attacks on the nodes")


@check(
    id="runtime.falco-coverage",
    title="Falco is scheduled and ready on every node",
    severity=Severity.HIGH,
    measures=RUNTIME,
    remediation="Add tolerations for the nodes' taints to the Falco DaemonSet (e.g. `tolerations: [{operator: "
    "Exists}]`), remove node selectors that leave nodes out, and fix pods that are not ready.",
)
def falco_coverage(ctx: CheckContext) -> Iterator[Finding]:
    """Taints/tolerations and node affinity decide where DaemonSet pods go; status says whether they run."""
    sensors = falco_daemonsets(ctx.inv)
    if not sensors:
        yield ctx.not_assessed(None, "no Falco DaemonSet (see runtime.falco-deployed)")
        return
    nodes = ctx.inv.objects("Node")
    for sensor in sensors:
        w = sensor.workload
        blind = {}
        for node in nodes:
            why = blocked_on(w.pod_spec, node)
            if why:
                blind[str(node["metadata"].get("name"))] = why
        status = w.obj.get("status") if w.kind == "DaemonSet" else None
        desired = status.get("desiredNumberScheduled") if isinstance(status, dict) else None
        ready = status.get("numberReady") if isinstance(status, dict) else None
        evidence = {"nodes": len(nodes), "blind_nodes": blind, "desired": desired, "ready": ready}
        problems = [f"cannot run on node {name}: {why}" for name, why in sorted(blind.items())]
        if isinstance(desired, int) and isinstance(ready, int) and ready < desired:
            problems.append(f"only {ready} of {desired} pods are ready")
        if isinstance(desired, int) and nodes and desired < len(nodes) - len(blind):
            problems.append(f"its status schedules {desired} pods for {len(nodes) - len(blind)} reachable nodes")
        if problems:
            yield ctx.fail(w, "Falco does not cover every node: " + "; ".join(problems), evidence=evidence)
        elif not nodes and desired is None:
            yield ctx.not_assessed(w, "neither Node objects nor DaemonSet status are in the input; coverage "
                                   "cannot be computed (include `kubectl get nodes -o yaml` in the dump)",
                                   evidence=evidence)
        else:
            basis = [f"tolerates the taints of all {len(nodes)} nodes"] if nodes else []
            if isinstance(desired, int) and isinstance(ready, int):
                basis.append(f"{ready}/{desired} pods ready")
            yield ctx.passed(w, "Falco covers every node (" + ", ".join(basis) + ")", evidence=evidence)


# ---- alert routing -----------------------------------------------------------------------------------------
# falcosidekick output settings whose presence means "an output is configured" (env var suffixes).
_SIDEKICK_TARGET = re.compile(r"_(HOSTPORT|WEBHOOKURL|ADDRESS|URL|ENDPOINT|ROUTINGKEY|APIKEY|TOPICARN|"
                              r"QUEUEURL|BROKERS|HOST|STREAMNAME|DSN|APIURL|CHANNEL|PROJECTID|TOKEN)$")
_SIDEKICK_IGNORED = ("LISTENADDRESS", "LISTENPORT", "DEBUG", "CUSTOMFIELDS", "TEMPLATEDFIELDS", "BRACKETREPLACER",
                     "OUTPUTFIELDFORMAT", "MUTUALTLSFILESPATH", "TLSSERVER_", "MUTUALTLSCLIENT_", "OTLP_METRICS")


def _sidekick_outputs(w: Workload) -> tuple[list[str], list[str]]:
    """(outputs visibly configured, env sources that hide them: envFrom Secrets/ConfigMaps)."""
    outputs, hidden = [], []
    for _, container in w.containers():
        for env in _l(container.get("env")):
            if not isinstance(env, dict):
                continue
            name = str(env.get("name", ""))
            if any(name.startswith(p) for p in _SIDEKICK_IGNORED) or not _SIDEKICK_TARGET.search(name):
                continue
            value_from = _d(env.get("valueFrom"))
            if str(env.get("value") or "").strip() or "secretKeyRef" in value_from or "configMapKeyRef" in value_from:
                outputs.append(name.split("_", 1)[0].lower())
        for source in _l(container.get("envFrom")):
            if isinstance(source, dict):
                for kind in ("secretRef", "configMapRef"):
                    if isinstance(source.get(kind), dict):
                        hidden.append(f"{kind} {source[kind].get('name')}")
    return sorted(set(outputs)), hidden


@dataclass(frozen=True)
class HttpOutput:
    enabled: bool | None  # None: Falco's config is not in the input
    url: str | None
    json: bool | None  # json_output; falcosidekick rejects anything but a JSON body


_YAML_TRUE = ("true", "yes", "on", "y")  # yaml-cpp's spellings of true, which Falco's -o values go through


def _falco_http_output(ctx: CheckContext, sensor: Sensor) -> HttpOutput:
    """falco.yaml from a mounted ConfigMap (Falco's defaults: http_output and json_output off), then the
    `-o key=value` arguments, which override it, the last one winning."""
    settings: dict[str, object] = {}
    for config in _mounted_configmap_docs(ctx, sensor.workload, ("falco.yaml", "falco.yml")):
        http = _d(config.get("http_output"))
        settings = {"http_output.enabled": http.get("enabled") is True, "http_output.url": str(http.get("url") or ""),
                    "json_output": config.get("json_output") is True}
        break
    argv = [str(a) for a in [*_l(sensor.container.get("command")), *_l(sensor.container.get("args"))]]
    for i, arg in enumerate(argv):
        if arg in ("-o", "--option") and i + 1 < len(argv):
            key, _, value = argv[i + 1].partition("=")
            value = value.strip()
            settings[key] = value if key == "http_output.url" else value.lower() in _YAML_TRUE
    enabled, url, json = (settings.get(k) for k in ("http_output.enabled", "http_output.url", "json_output"))
    return HttpOutput(enabled if isinstance(enabled, bool) else None, str(url) if url else None,
                      json if isinstance(json, bool) else None)


def _mounted_configmaps(ctx: CheckContext, w: Workload) -> list[dict]:
    names = set()
    for volume in _l(w.pod_spec.get("volumes")):
        if not isinstance(volume, dict):
            continue
        if isinstance(volume.get("configMap"), dict):
            names.add(volume["configMap"].get("name"))
        for source in _l(_d(volume.get("projected")).get("sources")):
            if isinstance(source, dict) and isinstance(source.get("configMap"), dict):
                names.add(source["configMap"].get("name"))
    found = [ctx.inv.get("ConfigMap", w.namespace, str(n)) for n in sorted(n for n in names if n)]
    return [cm for cm in found if cm is not None]


def _mounted_configmap_docs(ctx: CheckContext, w: Workload, keys: tuple[str, ...]) -> Iterator[dict]:
    for cm in _mounted_configmaps(ctx, w):
        data = _d(cm.get("data"))
        for key in keys:
            text = data.get(key)
            if isinstance(text, str) and len(text) <= MAX_CONFIGMAP_VALUE:
                try:
                    doc = load_document(text)
                except Exception:
                    continue
                if isinstance(doc, dict):
                    yield doc


@check(
    id="runtime.falco-alert-routing",
    title="Falco alerts are routed to at least one receiver (falcosidekick output or Falco http_output)",
    severity=Severity.MEDIUM,
    measures=RUNTIME,
    remediation="Enable falcosidekick (`--set falcosidekick.enabled=true`) with at least one output (Alertmanager, "
    "Slack/Teams, a SIEM webhook), or set Falco's http_output.url to your receiver.",
)
def falco_alert_routing(ctx: CheckContext) -> Iterator[Finding]:
    """A detection printed to a container's stdout that nobody reads is not detection."""
    sensors = falco_daemonsets(ctx.inv)
    if not sensors:
        yield ctx.not_assessed(None, "no Falco DaemonSet (see runtime.falco-deployed)")
        return
    sidekicks = [w for w in workloads(ctx.inv) if any(_repo_name(c.get("image"), "falcosidekick")
                                                       for _, c in w.containers())]
    for sensor in sensors:
        http = _falco_http_output(ctx, sensor)
        enabled, url = http.enabled, http.url
        if enabled and url and "falcosidekick" not in url:
            yield ctx.passed(sensor.workload, f"Falco's http_output sends alerts to {url}")
            continue
        fed = enabled is True
        candidates = [w for w in sidekicks if url is None or w.name in url]
        for sidekick in candidates or sidekicks:
            outputs, hidden = _sidekick_outputs(sidekick)
            where = f"falcosidekick {sidekick.ref.display}"
            if enabled is False:
                yield ctx.fail(sensor.workload, f"{where} exists but Falco's http_output is disabled, so it "
                               "receives nothing")
            elif fed and http.json is False:
                yield ctx.fail(sensor.workload, f"Falco posts plain-text alerts (json_output is off) and {where} "
                               "rejects every body that is not JSON, so it forwards nothing")
            elif outputs:
                via = "Falco's http_output feeds it" if fed else "Falco's http_output is not visible (set by a " \
                    "config that is not in the input)"
                finding = ctx.passed if fed else ctx.not_assessed
                yield finding(sensor.workload, f"{where} routes alerts to {', '.join(outputs)}; {via}",
                              evidence={"outputs": outputs})
            elif hidden:
                yield ctx.not_assessed(sensor.workload, f"{where} takes its outputs from {', '.join(hidden)}, "
                                       "whose values are not read; check that at least one output is set")
            else:
                yield ctx.fail(sensor.workload, f"{where} has no output configured: alerts are dropped")
            break
        else:
            hidden = unlisted(ctx.inv, ("Deployment", "apps"), ("ConfigMap", ""))
            if enabled is None or hidden:
                yield ctx.not_assessed(sensor.workload, hidden or "no falcosidekick, and Falco's own config "
                                       "(falco.yaml) is not in the input: its http_output cannot be judged")
            else:
                yield ctx.fail(sensor.workload, "Falco alerts go nowhere but the pod's stdout: no falcosidekick "
                               "and no http_output receiver")


# ---- custom rules ------------------------------------------------------------------------------------------
@dataclass
class FalcoRule:
    name: str
    condition: str
    enabled: bool
    ref: ResourceRef


def _rule_entries(ctx: CheckContext) -> tuple[list[FalcoRule], dict[str, str], list[str]]:
    """Rules and macros of the rules files in ConfigMaps mounted into a Falco pod, with enabled/append/override
    applied in load order (ConfigMaps by name, keys sorted: Falco loads rules.d alphabetically), and the
    ConfigMaps that hold rules but are mounted nowhere (Falco never loads those)."""
    mounted = {id(cm) for s in falco_daemonsets(ctx.inv) for cm in _mounted_configmaps(ctx, s.workload)}
    rules: dict[str, FalcoRule] = {}
    macros: dict[str, str] = {}
    unmounted: list[str] = []
    for cm in sorted(ctx.inv.objects("ConfigMap"), key=lambda o: (str(o["metadata"].get("namespace", "")),
                                                                     str(o["metadata"].get("name", "")))):
        data = cm.get("data")
        if not isinstance(data, dict):
            continue
        for key in sorted(data, key=str):
            text = data[key]
            if not isinstance(text, str) or len(text) > MAX_CONFIGMAP_VALUE or (
                    "- rule:" not in text and "- macro:" not in text):
                continue
            try:
                doc = load_document(text)
            except Exception:
                continue
            if not isinstance(doc, list):
                continue
            if id(cm) in mounted:
                _apply_entries(doc, ctx.inv.ref(cm), rules, macros)
            else:
                unmounted.append(ctx.inv.ref(cm).display)
    return list(rules.values()), macros, sorted(set(unmounted))


def _apply_entries(doc: list, ref: ResourceRef, rules: dict[str, FalcoRule], macros: dict[str, str]) -> None:
    for entry in doc:
        if not isinstance(entry, dict):
            continue
        override = entry.get("override") if isinstance(entry.get("override"), dict) else {}
        appending = entry.get("append") is True or override.get("condition") == "append"
        if "macro" in entry:
            name, cond = str(entry["macro"]), str(entry.get("condition") or "")
            macros[name] = f"{macros.get(name, '')} {cond}" if appending else cond
            continue
        if "rule" not in entry:
            continue
        name = str(entry["rule"])
        existing = rules.get(name)
        cond = entry.get("condition")
        if existing is not None and (appending or override or cond is None):
            if cond is not None:
                existing.condition = f"{existing.condition} {cond}" if appending else str(cond)
            if "enabled" in entry:
                existing.enabled = entry["enabled"] is not False
        elif cond is not None:
            rules[name] = FalcoRule(name, str(cond), entry.get("enabled") is not False, ref)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _expand(condition: str, macros: dict[str, str]) -> str:
    """Inline macros so a rule written as `open_read and sensitive_files` is understood; nesting and the
    expanded length are bounded (macros referring to each other could otherwise grow without limit)."""
    for _ in range(8):
        budget = [MAX_EXPANDED - len(condition)]

        def inline(m: re.Match[str], budget: list[int] = budget) -> str:
            body = macros.get(m.group(0))
            if body is None or len(body) + 2 > budget[0]:
                return m.group(0)
            budget[0] -= len(body) + 2
            return f"({body})"

        expanded = _WORD.sub(inline, condition)
        if expanded == condition:
            break
        condition = expanded
    return condition


_OPEN_READ = re.compile(r"\bopen_read\b|\bopen_file\b|evt\.is_open_read|evt\.type\s*(=|in)\s*\(?\s*(open|openat)")
_SENSITIVE_PATH = re.compile(r"sensitive_files|/etc/shadow|/etc/sudoers|/root/\.ssh|\.kube/config|"
                             r"/var/run/secrets|serviceaccount/token|/etc/kubernetes/pki|id_rsa")
_CONNECT = re.compile(r"\boutbound\b|evt\.type\s*(=|in)\s*\(?\s*connect")
_REMOTE = re.compile(r"\bfd\.(sip|rip|snet|rnet|net|sport|rport|sip\.name|rip\.name|cip)\b|\boutbound\b")
TOPICS = (
    ("sensitive-file reads", lambda c: bool(_OPEN_READ.search(c) and _SENSITIVE_PATH.search(c))),
    ("unexpected outbound connections", lambda c: bool(_CONNECT.search(c) and _REMOTE.search(c))),
)


@check(
    id="runtime.falco-custom-rules",
    title="Falco rules cover sensitive-file reads and unexpected outbound connections",
    severity=Severity.MEDIUM,
    measures=RUNTIME,
    remediation="Ship custom rules (Helm `customRules`, a ConfigMap mounted at /etc/falco/rules.d) for reads of "
    "credentials (/etc/shadow, service account tokens, kubeconfigs) and for outbound connections outside an "
    "allow-list of destinations (for OT: anything leaving the plant network).",
)
def falco_custom_rules(ctx: CheckContext) -> Iterator[Finding]:
    """Falco's default rules ship inside the image and are generic; what a plant expects to see (which files
    are secrets, which destinations are normal) only a custom rule knows. Rules are read from the ConfigMaps
    mounted into Falco, with macros expanded and enabled/append/override applied."""
    if not falco_daemonsets(ctx.inv):
        yield ctx.not_assessed(None, "no Falco DaemonSet (see runtime.falco-deployed)")
        return
    rules, macros, unmounted = _rule_entries(ctx)
    for topic, covers in TOPICS:
        hits = [r for r in rules if r.enabled and covers(_expand(r.condition, macros))]
        disabled = [r for r in rules if not r.enabled and covers(_expand(r.condition, macros))]
        if hits:
            rule = hits[0]
            yield ctx.passed(rule.ref, f"{topic}: covered by Falco rule {rule.name!r}",
                             evidence={"rules": [r.name for r in hits]})
        elif disabled:
            yield ctx.fail(disabled[0].ref, f"{topic}: Falco rule {disabled[0].name!r} would cover it but is "
                           "disabled (enabled: false)")
        elif reason := unlisted(ctx.inv, ("ConfigMap", "")):
            yield ctx.not_assessed(None, f"{topic}: {reason}")
        else:
            where = f"{len(rules)} Falco rules loaded from mounted ConfigMaps" if rules else \
                "no Falco rules in any ConfigMap mounted into Falco"
            if unmounted:
                where += f"; {', '.join(unmounted)} hold rules but are not mounted into Falco, so they never load"
            yield ctx.fail(None, f"{topic}: no enabled custom Falco rule covers them ({where})")
