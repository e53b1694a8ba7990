"""Network segmentation: default-deny baselines, isolated workloads, allow-all rules, a CNI that enforces.

Kubernetes NetworkPolicy semantics (networking.k8s.io/v1), exactly:
- effective policyTypes: the listed ones; when the list is absent or empty, Ingress always, plus Egress only
  when the policy has at least one egress rule (so `egress: []` without policyTypes does NOT isolate egress);
- a pod is isolated in a direction once any policy selecting it has that type; policies are additive;
- in a rule, an absent or empty from/to list means every peer, inside and outside the cluster; a peer with
  namespaceSelector {} (and podSelector {} or none) means every pod of every namespace;
- pods with hostNetwork are not subject to NetworkPolicy at all.
The checks of this module evaluate only networking.k8s.io NetworkPolicies; Cilium, Calico, AdminNetworkPolicy
and BaselineAdminNetworkPolicy objects are named in the default-deny findings when present, never credited.
The reachability engine (nis2kube.netpol: `nis2kube netpol`, net.flows-match-declared) does evaluate
AdminNetworkPolicy and BaselineAdminNetworkPolicy; Cilium and Calico kinds are evaluated nowhere.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from nis2kube import gostrconv
from nis2kube.apiserver import parse_flag_values
from nis2kube.checks.registry import CheckContext, check
from nis2kube.findings import Finding, ResourceRef, Severity
from nis2kube.images import parse_image
from nis2kube.inventory import Inventory
from nis2kube.inventory.selectors import InvalidSelector, Selector, parse_selector
from nis2kube.inventory.workloads import Workload, workloads

NETWORK = ("art21.2.e", "ir2690.6.7", "ir2690.6.8")
NP_GROUP = "networking.k8s.io"
INGRESS, EGRESS = "Ingress", "Egress"
PEERS = {INGRESS: "from", EGRESS: "to"}
RULES = {INGRESS: "ingress", EGRESS: "egress"}
OTHER_POLICY_KINDS = (("cilium.io", "CiliumNetworkPolicy"), ("cilium.io", "CiliumClusterwideNetworkPolicy"),
                      ("crd.projectcalico.org", "GlobalNetworkPolicy"), ("crd.projectcalico.org", "NetworkPolicy"),
                      ("projectcalico.org", "GlobalNetworkPolicy"), ("projectcalico.org", "NetworkPolicy"),
                      ("policy.networking.k8s.io", "AdminNetworkPolicy"),
                      ("policy.networking.k8s.io", "BaselineAdminNetworkPolicy"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Policy:
    obj: dict
    namespace: str
    name: str
    selector: Selector | None  # None: invalid podSelector (the API server would reject the policy)
    error: str | None
    types: frozenset[str]  # effective policyTypes
    rules: Mapping[str, tuple]  # direction -> its rules (mappings; a null rule reads as {})

    def covers(self, direction: str) -> bool:
        return direction in self.types

    @property
    def selects_all(self) -> bool:
        return self.selector is not None and self.selector.is_empty


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def parse_policy(obj: dict) -> Policy:
    meta = obj["metadata"]
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    raw_selector = spec.get("podSelector")
    selector, error = None, None
    try:
        # podSelector is a required non-pointer field: absent decodes as {} (every pod), never as "nothing"
        selector = parse_selector({} if raw_selector is None else raw_selector)
    except InvalidSelector as exc:
        error = f"invalid podSelector: {exc}"
    # A YAML `- ` with nothing after it is a null rule, which the API server decodes as `{}`: allow all.
    rules = {d: tuple({} if r is None else r for r in _list(spec.get(RULES[d])) if r is None or isinstance(r, Mapping))
             for d in (INGRESS, EGRESS)}  # fmt: skip
    declared = {t for t in _list(spec.get("policyTypes")) if t in (INGRESS, EGRESS)}
    if not _list(spec.get("policyTypes")):
        declared = {INGRESS} | ({EGRESS} if _list(spec.get("egress")) else set())
    return Policy(obj, meta.get("namespace") or "default", str(meta.get("name", "")), selector, error,
                  frozenset(declared), rules)  # fmt: skip


def policies_by_namespace(inv: Inventory) -> dict[str, list[Policy]]:
    def build() -> dict[str, list[Policy]]:
        out: dict[str, list[Policy]] = defaultdict(list)
        for obj in inv.objects("NetworkPolicy", NP_GROUP):
            policy = parse_policy(obj)
            out[policy.namespace].append(policy)
        return dict(out)

    return inv.cached("net:policies", build)


def _is_everything(cidr: object) -> bool:
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False


def peer_reach(peer: object) -> str | None:
    """'everyone' (any address), 'all-pods' (every pod of every namespace) or None (narrower)."""
    if not isinstance(peer, Mapping):
        return None
    block = peer.get("ipBlock")
    if isinstance(block, Mapping):
        return "everyone" if _is_everything(block.get("cidr")) and not _list(block.get("except")) else None
    ns_selector, pod_selector = peer.get("namespaceSelector"), peer.get("podSelector")
    if ns_selector is None:
        return None  # podSelector alone: pods of the policy's own namespace
    try:
        if parse_selector(ns_selector).is_empty and (pod_selector is None or parse_selector(pod_selector).is_empty):
            return "all-pods"
    except InvalidSelector:
        return None
    return None


def rule_allows_all(rule: Mapping, direction: str) -> str | None:
    """Why a rule allows every peer on every port, or None. A port list narrows it: not allow-all."""
    if _list(rule.get("ports")):
        return None
    peers = rule.get(PEERS[direction])
    where = "source" if direction == INGRESS else "destination"
    if not _list(peers):
        return f"any {where}, inside or outside the cluster, on any port (no `{PEERS[direction]}`)"
    reaches = {peer_reach(p) for p in peers}
    if "everyone" in reaches:
        return f"any {where} address (ipBlock /0) on any port"
    if "all-pods" in reaches:
        return "every pod of every namespace (namespaceSelector {}) on any port"
    return None


def _namespace_subject(inv: Inventory, name: str) -> dict | ResourceRef:
    return inv.get("Namespace", None, name) or ResourceRef("v1", "Namespace", None, name)


def _on_namespace(ctx: CheckContext, finding: Finding, namespace: str) -> Finding:
    """Namespace objects have no metadata.namespace: mark system namespaces by name so they are reported apart."""
    return dataclasses.replace(finding, system=ctx.scan.is_system(namespace))


def _unreadable(ctx: CheckContext) -> Finding | None:
    reason = ctx.inv.unlisted_reason("NetworkPolicy", NP_GROUP)
    if reason:
        return ctx.not_assessed(None, f"NetworkPolicies could not be read ({reason})")
    return None


def _other_policies(inv: Inventory) -> list[str]:
    return [f"{kind} ({len(inv.objects(kind, group))})" for group, kind in OTHER_POLICY_KINDS
            if inv.objects(kind, group)]  # fmt: skip


def _default_deny(ctx: CheckContext, direction: str) -> Iterator[Finding]:
    blocked = _unreadable(ctx)
    if blocked:
        yield blocked
        return
    by_ns = policies_by_namespace(ctx.inv)
    others = _other_policies(ctx.inv)
    note = f" (not evaluated here: {', '.join(others)})" if others else ""
    lower = direction.lower()
    if not ctx.inv.namespaces():
        yield ctx.not_assessed(None, "the input holds no namespace and no namespaced object")
        return
    for ns in ctx.inv.namespaces():
        subject = _namespace_subject(ctx.inv, ns)
        pols = by_ns.get(ns, [])
        baseline = [p for p in pols if p.selects_all and p.covers(direction)]
        deny = [p for p in baseline if not p.rules[direction]]
        if deny:
            message = f"NetworkPolicy {deny[0].name} selects every pod and allows no {lower} by itself"
            finding = ctx.passed(subject, message, evidence={"policies": [p.name for p in deny]})
        elif baseline:
            allows = [f"{p.name}: {len(p.rules[direction])} {lower} rule(s)"
                      + "".join(f"; rule {i + 1} allows {why}" for i, r in enumerate(p.rules[direction])
                                if (why := rule_allows_all(r, direction)))
                      for p in baseline]  # fmt: skip
            finding = ctx.fail(subject, f"the policies that select every pod for {lower} also allow traffic, "
                                        f"so the baseline is not deny ({' | '.join(allows)}){note}",
                               evidence={"policies": [p.name for p in baseline]})  # fmt: skip
        else:
            finding = ctx.fail(subject, f"no NetworkPolicy selects every pod with policyTypes covering {direction}"
                                        f"{_why_not(pols, direction)}{note}",
                               evidence={"policies": [p.name for p in pols], "other_policy_kinds": others})  # fmt: skip
        yield _on_namespace(ctx, finding, ns)


def _egress_trap(obj: dict) -> bool:
    """`egress: []` written without policyTypes: the author meant deny-egress, the API defaults to [Ingress]."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    return spec.get("egress") == [] and not _list(spec.get("policyTypes"))


def _why_not(pols: list[Policy], direction: str) -> str:
    if not pols:
        return " (the namespace has no NetworkPolicy)"
    if direction == EGRESS:
        trap = [p.name for p in pols if p.selects_all and not p.covers(EGRESS) and _egress_trap(p.obj)]
        if trap:
            return (
                f"; {', '.join(trap)} has an empty egress list but no policyTypes, which defaults to [Ingress]"
                " only: add policyTypes [Ingress, Egress]"
            )
    return f" ({len(pols)} NetworkPolicy(ies) here select only some pods or other directions)"


@check(
    id="net.default-deny-ingress",
    title="Every namespace denies ingress by default",
    severity=Severity.HIGH,
    measures=NETWORK,
    remediation="`nis2kube harden --only netpol PATH -o OUT` writes it: a NetworkPolicy with podSelector {} "
    "and policyTypes [Ingress], no rules.",
)
def default_deny_ingress(ctx: CheckContext) -> Iterator[Finding]:
    """Without a deny baseline every new pod is reachable from everywhere until someone writes a policy for it.
    Other policies may add allowances on top: the baseline must still be a policy that allows nothing."""
    yield from _default_deny(ctx, INGRESS)


@check(
    id="net.default-deny-egress",
    title="Every namespace denies egress by default",
    severity=Severity.MEDIUM,
    measures=NETWORK,
    remediation="`nis2kube harden --only netpol PATH -o OUT` writes it: a NetworkPolicy with podSelector {} "
    "and policyTypes [Egress], no rules; allow DNS and other needed destinations in separate policies.",
)
def default_deny_egress(ctx: CheckContext) -> Iterator[Finding]:
    """Egress control limits exfiltration and lateral movement from a compromised pod. policyTypes must name
    Egress: a policy with `egress: []` and no policyTypes only isolates ingress."""
    yield from _default_deny(ctx, EGRESS)


@check(
    id="net.workload-not-isolated",
    title="Every workload is selected by a NetworkPolicy for ingress and egress",
    severity=Severity.HIGH,
    measures=NETWORK,
    remediation="`nis2kube harden --only netpol PATH -o OUT` with declared flows, or a NetworkPolicy whose "
    "podSelector matches the pod template labels.",
)
def workload_not_isolated(ctx: CheckContext) -> Iterator[Finding]:
    """A pod no policy selects accepts and opens any connection. Matching uses the pod template labels with
    exact label-selector semantics; hostNetwork pods are never isolated, whatever selects them."""
    blocked = _unreadable(ctx)
    if blocked:
        yield blocked
        return
    by_ns = policies_by_namespace(ctx.inv)
    for pols in by_ns.values():
        for p in pols:
            if p.error:
                yield ctx.not_assessed(p.obj, f"NetworkPolicy {p.name}: {p.error}; the API server would reject it, "
                                              "so it is ignored")  # fmt: skip
    for w in workloads(ctx.inv):
        if w.pod_spec.get("hostNetwork") is True:
            yield ctx.fail(
                w,
                "uses hostNetwork: NetworkPolicies do not apply to it in either direction",
                evidence={"hostNetwork": True},
            )
            continue
        selecting = [p for p in by_ns.get(w.namespace, [])
                     if p.selector is not None and p.selector.matches(w.pod_labels)]  # fmt: skip
        covered = {d: [p.name for p in selecting if p.covers(d)] for d in (INGRESS, EGRESS)}
        missing = [d for d in (INGRESS, EGRESS) if not covered[d]]
        evidence = {"ingress_policies": covered[INGRESS], "egress_policies": covered[EGRESS]}
        if not missing:
            yield ctx.passed(w, f"isolated for ingress ({', '.join(covered[INGRESS])}) and egress "
                                f"({', '.join(covered[EGRESS])})", evidence=evidence)  # fmt: skip
            continue
        severity = None if INGRESS in missing else Severity.MEDIUM
        what = " and ".join(d.lower() for d in missing)
        yield ctx.fail(w, f"not isolated for {what}: no NetworkPolicy in {w.namespace} selects its pod labels "
                          f"with policyTypes {' or '.join(missing)}", severity=severity, evidence=evidence)  # fmt: skip


@check(
    id="net.allow-all-rule",
    title="No NetworkPolicy rule allows every peer on every port",
    severity=Severity.HIGH,
    measures=NETWORK,
    remediation="Name the peers (podSelector / namespaceSelector with labels, narrow ipBlock) and the ports.",
)
def allow_all_rule(ctx: CheckContext) -> Iterator[Finding]:
    """`ingress: [{}]`, a rule without from/to, namespaceSelector {} (every pod in the cluster) or ipBlock
    0.0.0.0/0 or ::/0 without except undo the segmentation for the pods the policy selects. A rule narrowed
    by ports is not allow-all. Rules of a direction outside the effective policyTypes have no effect and are
    not judged."""
    blocked = _unreadable(ctx)
    if blocked:
        yield blocked
        return
    for pols in policies_by_namespace(ctx.inv).values():
        for p in pols:
            found = [(d, i, why) for d in (INGRESS, EGRESS) if p.covers(d)
                     for i, r in enumerate(p.rules[d]) if (why := rule_allows_all(r, d))]  # fmt: skip
            if not found:
                yield ctx.passed(p.obj, f"NetworkPolicy {p.name} has no allow-all rule")
                continue
            external = any("inside or outside" in why or "/0" in why for _, _, why in found)
            yield ctx.fail(p.obj, f"NetworkPolicy {p.name}: " + "; ".join(
                f"{d.lower()} rule {i + 1} allows {why}" for d, i, why in found),
                severity=None if external else Severity.MEDIUM,
                evidence={"rules": [{"direction": d, "index": i, "allows": why} for d, i, why in found]})  # fmt: skip


@check(
    id="net.host-network",
    title="Workloads do not use the host network",
    severity=Severity.HIGH,
    measures=NETWORK,
    remediation="Remove hostNetwork: true; expose the workload through a Service (NodePort/LoadBalancer) instead.",
)
def host_network(ctx: CheckContext) -> Iterator[Finding]:
    """A hostNetwork pod shares the node's network stack: no NetworkPolicy applies to it and it can reach
    node-local services (kubelet, metadata endpoints)."""
    for w in workloads(ctx.inv):
        if w.pod_spec.get("hostNetwork") is True:
            yield ctx.fail(w, "uses hostNetwork: NetworkPolicies cannot isolate it and it sees the node's interfaces")
        else:
            yield ctx.passed(w, "uses the pod network")


# ---- CNI -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CniEvidence:
    engine: str
    enforces: bool
    where: str  # DaemonSet display
    why: str


def _args(container: Mapping) -> list[str]:
    return [str(a) for key in ("command", "args") for a in _list(container.get(key))]


def _bool_flag(container: Mapping, name: str) -> bool | None:
    """A boolean pflag in command+args as spf13/pflag parses it (the agents use pflag too, so `--name false` is
    true plus a stray word); None when absent, or when ParseBool rejects the value, which stops the program."""
    given = parse_flag_values(_args(container), bool_flags={name}).get(name)
    return gostrconv.parse_bool(given[-1]) if given else None


# cilium-agent reads its settings as viper does: a flag given on the command line, else the CILIUM_ variable,
# else a key of the ConfigMap mounted as its --config-dir (Helm's cilium-config).
CILIUM_MODES = ("default", "always", "never")


def _cilium_setting(inv: Inventory, w: Workload, container: Mapping, key: str, is_bool: bool) -> tuple[str, str] | None:
    """(value, where it was set) of one cilium-agent setting, or None when it is left at its default."""
    given = parse_flag_values(_args(container), bool_flags={key} if is_bool else ()).get(key)
    if given:
        return given[-1], f"--{key}"
    env_name = "CILIUM_" + key.upper().replace("-", "_")
    for env in _list(container.get("env")):
        if isinstance(env, Mapping) and env.get("name") == env_name and isinstance(env.get("value"), str):
            return env["value"], env_name
    names = [str(v["configMap"].get("name")) for v in _list(w.pod_spec.get("volumes"))
             if isinstance(v, Mapping) and isinstance(v.get("configMap"), Mapping)] or ["cilium-config"]
    for name in names:
        cm = inv.get("ConfigMap", w.namespace, name)
        data = cm.get("data") if cm else None
        if isinstance(data, Mapping) and isinstance(data.get(key), str):
            return data[key], f"ConfigMap {w.namespace}/{name} {key}"
    return None


def _cilium(inv: Inventory, w: Workload, container: Mapping, raw: str) -> tuple[str, bool, str]:
    """Cilium enforces unless its policy enforcement mode is `never`, or policy audit mode only logs drops."""
    mode = _cilium_setting(inv, w, container, "enable-policy", False)
    if mode is not None and mode[0].lower() not in CILIUM_MODES:
        return "cilium", False, f"cilium agent ({raw}) refuses to start with {mode[1]}={mode[0]!r}"
    if mode is not None and mode[0].lower() == "never":
        return "cilium", False, f"cilium agent ({raw}) runs with {mode[1]}=never: no policy is enforced"
    audit = _cilium_setting(inv, w, container, "policy-audit-mode", True)
    if audit is not None and gostrconv.parse_bool(audit[0]):
        return "cilium", False, f"cilium agent ({raw}) runs with {audit[1]}={audit[0]}: policy drops are only logged"
    how = f", enforcement mode {mode[0].lower()} ({mode[1]})" if mode else ""
    return "cilium", True, f"cilium agent ({raw}{how})"


def classify_container(inv: Inventory, w: Workload, container: Mapping) -> tuple[str, bool, str] | None:
    """(engine, enforces NetworkPolicy, why) for a container of a known CNI / policy agent in workload `w`, else
    None; where an agent's own settings can switch enforcement off, they are read too."""
    image = parse_image(str(container.get("image", "")))
    repo = image.repository.lower()
    last = repo.rsplit("/", 1)[-1]
    # the agent image is .../cilium (or its -dev/-ci builds; mirrors: mirrored-cilium-cilium); tetragon, hubble
    # and envoy images of the cilium project enforce nothing themselves, and tetragon runs without Cilium as CNI
    if last.endswith("cilium") or last in ("cilium-dev", "cilium-ci"):
        return _cilium(inv, w, container, image.raw)
    if "calico" in repo and "node" in last and "driver" not in last:  # not csi-node-driver's node-driver-registrar
        return "calico", True, f"calico/node runs Felix, which enforces policies ({image.raw})"
    if "antrea" in last:
        return "antrea", True, f"antrea agent ({image.raw})"
    if "weave-npc" in last:
        return "weave", True, f"weave-npc enforces policies ({image.raw})"
    if "weave-kube" in last:
        return "weave", False, f"weave-kube without the weave-npc container does not enforce ({image.raw})"
    if "kube-router" in last:
        if _bool_flag(container, "run-firewall") is False:  # defaults to true
            return "kube-router", False, f"kube-router runs with --run-firewall=false ({image.raw})"
        return "kube-router", True, f"kube-router network policy controller ({image.raw})"
    if "aws-network-policy-agent" in last:
        enabled = _bool_flag(container, "enable-network-policy") is True  # defaults to false
        return "aws-vpc-cni", enabled, f"aws-network-policy-agent with --enable-network-policy={str(enabled).lower()}"
    if "amazon-k8s-cni" in last:
        return "aws-vpc-cni", False, f"amazon VPC CNI alone does not enforce ({image.raw})"
    if "azure-npm" in last:
        return "azure-npm", True, f"Azure Network Policy Manager ({image.raw})"
    if "flannel" in last:
        return "flannel", False, f"flannel provides connectivity only, it does not enforce NetworkPolicy ({image.raw})"
    return None


def cni_evidence(inv: Inventory) -> list[CniEvidence]:
    out = []
    for w in workloads(inv):
        if w.kind != "DaemonSet":
            continue
        for field, container in w.containers():
            if field != "containers":
                continue  # an agent runs for the pod's life; init containers (Cilium's: the agent image) set up
            found = classify_container(inv, w, container)
            if found:
                out.append(CniEvidence(found[0], found[1], w.ref.display, found[2]))
    return out


@check(
    id="net.cni-enforces-policies",
    title="The cluster network plugin enforces NetworkPolicies",
    severity=Severity.CRITICAL,
    measures=NETWORK,
    remediation="Run a policy-enforcing CNI (Calico, Cilium, Antrea, ...) or add one beside flannel (canal); "
    "until then every NetworkPolicy is ignored.",
)
def cni_enforces_policies(ctx: CheckContext) -> Iterator[Finding]:
    """NetworkPolicy objects are only data: without an enforcing plugin they change nothing. Judged from the
    CNI DaemonSets' images anywhere in the input; canal (flannel + calico/node) enforces."""
    reason = ctx.inv.unlisted_reason("DaemonSet", "apps")
    if reason:
        yield ctx.not_assessed(None, f"DaemonSets could not be read ({reason}); the CNI is unknown")
        return
    evidence = cni_evidence(ctx.inv)
    details = {"cni": [{"engine": e.engine, "enforces": e.enforces, "daemonset": e.where, "why": e.why}
                       for e in evidence]}  # fmt: skip
    enforcing = [e for e in evidence if e.enforces]
    if enforcing:
        engines = sorted({e.engine for e in enforcing})
        if {"flannel", "calico"} <= {e.engine for e in evidence}:
            engines = [*engines, "(canal: flannel + calico)"]
        where = sorted({e.where for e in enforcing})
        yield ctx.passed(
            None, f"NetworkPolicies are enforced by {', '.join(engines)} ({', '.join(where)})", evidence=details
        )
    elif evidence:
        yield ctx.fail(
            None,
            "no policy-enforcing network plugin found, so NetworkPolicies have no effect: "
            + "; ".join(f"{e.where} ({e.engine}): {e.why}" for e in evidence),
            evidence=details,
        )
    else:
        yield ctx.not_assessed(
            None,
            "no CNI DaemonSet in the input (include kube-system, or the plugin's namespace, "
            "in the scan); cannot tell whether NetworkPolicies are enforced",
        )
