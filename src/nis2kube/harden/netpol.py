"""NetworkPolicies: default deny, the allowances a cluster needs, and least-privilege policies per declared flow.

Covered namespaces are the application namespaces the flow spec talks about (all non-system namespaces with
workloads when there is no spec), minus `netpol.exclude_namespaces` and namespaces that serve admission
webhooks (the API server calls them from addresses no policy can name). Each covered namespace gets the
default-deny it lacks, DNS egress to the cluster's own kube-dns pods, API-server egress for workloads whose
service account is bound to permissions, and, from flows.yaml, an ingress policy on each destination and an
egress policy on each source, ports included. Existing policies are kept; ones that allow everything are
listed for removal, because kustomize can add objects but never delete them. The result is proven with the
reachability engine (`prove`): after hardening, reachability in covered namespaces equals the declared flows
plus DNS plus API-server egress.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from nis2kube.apiserver import parse_flags
from nis2kube.harden.bundle import Area, Artifact, dump_yaml
from nis2kube.harden.context import HardenContext, meta
from nis2kube.inventory import Inventory
from nis2kube.inventory.inventory import NAMESPACE_NAME_LABEL
from nis2kube.inventory.workloads import workloads
from nis2kube.inventory.yamlload import load_document
from nis2kube.netpol.flows import Flow, FlowSpec, Zone, load_flows
from nis2kube.netpol.ipsets import IPSet
from nis2kube.netpol.ports import PortRef, parse_port_ref

API = "networking.k8s.io/v1"
DEFAULT_APISERVER_PORT = 6443


@dataclass
class Plan:
    """What the netpol area decided, kept for the proof."""

    covered: list[str] = field(default_factory=list)
    remove: list[dict] = field(default_factory=list)  # existing allow-all policies
    api_egress: list[tuple[str, dict, list[str], int]] = field(default_factory=list)  # ns, podSelector, cidrs, port
    spec: FlowSpec | None = None


def _ns_sel(namespace: str) -> dict:
    return {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40] or "x"


def _policy(name: str, namespace: str, pod_selector: dict, types: list[str], ingress: list | None = None,
            egress: list | None = None, description: str = "") -> dict:
    spec: dict = {"podSelector": pod_selector, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    annotations = {"nis2kube.io/description": description} if description else None
    return {"apiVersion": API, "kind": "NetworkPolicy", "metadata": meta(name, namespace, annotations), "spec": spec}


# ---- what exists today --------------------------------------------------------------------------------
def _denies(policy: dict, direction: str) -> bool:
    """A namespace-wide default deny for direction: podSelector {} with the type and no rules."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
    key = direction.lower()
    return spec.get("podSelector") == {} and direction in types and not spec.get(key)


def _allows_all(policy: dict) -> bool:
    """A rule with no peers, or a peer that is an empty selector: traffic from/to everywhere in the cluster."""
    spec = policy.get("spec") or {}
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for rule in spec.get(direction) or []:
            if not isinstance(rule, dict):
                continue
            peers = rule.get(peers_key)
            if not peers:
                return True
            for peer in peers:
                if isinstance(peer, dict) and peer.get("namespaceSelector") == {} and not peer.get("podSelector"):
                    return True
    return False


def _webhook_namespaces(inv: Inventory) -> set[str]:
    out = set()
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for cfg in inv.objects(kind):
            for hook in cfg.get("webhooks") or []:
                service = ((hook or {}).get("clientConfig") or {}).get("service") or {}
                if service.get("namespace"):
                    out.add(str(service["namespace"]))
    return out


def _covered(ctx: HardenContext, spec: FlowSpec | None) -> list[str]:
    settings = ctx.config.section("netpol")
    if isinstance(settings.get("namespaces"), list):
        return sorted(str(n) for n in settings["namespaces"])
    excluded = {str(n) for n in settings.get("exclude_namespaces") or []} | _webhook_namespaces(ctx.inv)
    with_workloads = {w.namespace for w in workloads(ctx.inv)}
    candidates = {n for n in with_workloads if not ctx.is_system(n) and n not in excluded}
    if spec is None:
        return sorted(candidates)
    mentioned = set()
    for zone in spec.zones.values():
        if zone.external is not None:
            continue
        for ns in candidates:
            if zone.namespace == ns or (zone.namespace is None and zone.namespace_selector is not None
                                        and zone.namespace_selector.matches(ctx.inv.namespace_labels(ns))):
                mentioned.add(ns)
    return sorted(mentioned)


# ---- DNS and the API server ----------------------------------------------------------------------------
def dns_peer(inv: Inventory) -> tuple[dict, list[dict]] | None:
    """The kube-dns pods (peer) and their ports, from the kube-dns Service (or CoreDNS labels)."""
    service = inv.get("Service", "kube-system", "kube-dns")
    selector = (service or {}).get("spec", {}).get("selector")
    if isinstance(selector, dict) and selector:
        ports = []
        for p in (service.get("spec") or {}).get("ports") or []:
            target = p.get("targetPort", p.get("port"))
            ports.append({"protocol": p.get("protocol", "TCP"), "port": target})
        labels = {str(k): str(v) for k, v in sorted(selector.items())}
        return {"namespaceSelector": _ns_sel("kube-system"), "podSelector": {"matchLabels": labels}}, ports or _dns53()
    for w in workloads(inv):
        if w.namespace == "kube-system" and w.pod_labels.get("k8s-app") == "kube-dns":
            return ({"namespaceSelector": _ns_sel("kube-system"),
                     "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}, _dns53())
    return None


def _dns53() -> list[dict]:
    return [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def apiserver_endpoints(inv: Inventory) -> tuple[list[str], int] | None:
    """Addresses and port the API server is reached at after Service DNAT (what egress policy must allow)."""
    addresses, port = set(), DEFAULT_APISERVER_PORT
    for slice_ in inv.in_namespace("EndpointSlice", "default", "discovery.k8s.io"):
        if (slice_["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == "kubernetes":
            for ep in slice_.get("endpoints") or []:
                addresses.update(str(a) for a in ep.get("addresses") or [])
            for p in slice_.get("ports") or []:
                port = int(p.get("port") or port)
    endpoints = inv.get("Endpoints", "default", "kubernetes")
    for subset in (endpoints or {}).get("subsets") or []:
        addresses.update(str(a.get("ip")) for a in subset.get("addresses") or [] if a.get("ip"))
        for p in subset.get("ports") or []:
            port = int(p.get("port") or port)
    if not addresses:
        for pod in inv.in_namespace("Pod", "kube-system"):
            if (pod["metadata"].get("labels") or {}).get("component") != "kube-apiserver":
                continue
            for c in (pod.get("spec") or {}).get("containers") or []:
                flags = parse_flags([str(a) for a in (c.get("command") or [])[1:] + (c.get("args") or [])])
                if flags.get("advertise-address"):
                    addresses.add(flags["advertise-address"])
                    port = int(flags.get("secure-port", port))
    if not addresses:
        return None
    return [f"{a}/128" if ":" in a else f"{a}/32" for a in sorted(addresses)], port


def _bound_service_accounts(inv: Inventory) -> set[tuple[str, str]]:
    out = set()
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for binding in inv.objects(kind):
            for subject in binding.get("subjects") or []:
                if isinstance(subject, dict) and subject.get("kind") == "ServiceAccount":
                    ns = subject.get("namespace") or binding["metadata"].get("namespace")
                    out.add((str(ns), str(subject.get("name"))))
    return out


def _workload_selector(w) -> dict:
    selector = (w.obj.get("spec") or {}).get("selector")
    if isinstance(selector, dict) and selector.get("matchLabels") and not selector.get("matchExpressions"):
        return {"matchLabels": {str(k): str(v) for k, v in sorted(selector["matchLabels"].items())}}
    return {"matchLabels": dict(sorted(w.pod_labels.items()))}


# ---- flows -----------------------------------------------------------------------------------------------
def _raw_zones(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        data = load_document(fh.read())
    return (data or {}).get("zones") or {}


def _zone_peer(raw: dict) -> list[dict]:
    """NetworkPolicy peers for a zone: pods (namespace + pod selector) or ipBlocks."""
    if "external" in raw:
        cidrs = raw["external"] if isinstance(raw["external"], list) else [raw["external"]]
        return [{"ipBlock": {"cidr": str(c)}} for c in cidrs]
    peer: dict = {"namespaceSelector": _ns_sel(raw["namespace"]) if "namespace" in raw
                  else copy.deepcopy(raw.get("namespaceSelector") or {})}
    if raw.get("podSelector") is not None:
        peer["podSelector"] = copy.deepcopy(raw["podSelector"])
    return [peer]


def _zone_namespaces(ctx: HardenContext, zone: Zone, covered: list[str]) -> list[str]:
    if zone.external is not None:
        return []
    if zone.namespace is not None:
        return [zone.namespace] if zone.namespace in covered else []
    return [n for n in covered if zone.namespace_selector is not None
            and zone.namespace_selector.matches(ctx.inv.namespace_labels(n))]


def _ports(refs: tuple[PortRef, ...]) -> list[dict] | None:
    if not refs:
        return None
    out = []
    for ref in refs:
        if ref.name is not None:
            out.append({"protocol": ref.protocol, "port": ref.name})
        elif ref.lo == ref.hi:
            out.append({"protocol": ref.protocol, "port": ref.lo})
        else:
            out.append({"protocol": ref.protocol, "port": ref.lo, "endPort": ref.hi})
    return out


def _rule(peers: list[dict], ports: list[dict] | None, key: str) -> dict:
    rule: dict = {key: peers}
    if ports:
        rule["ports"] = ports
    return rule


def _flow_name(flow: Flow) -> str:
    return f"nis2kube-flow-{flow.index}-{_slug(flow.src.name)}-to-{_slug(flow.dst.name)}"


# ---- the generator -----------------------------------------------------------------------------------------
def generate(ctx: HardenContext) -> Area:
    area = Area("netpol", "Network segmentation (NetworkPolicies)",
                targets=("net.default-deny*", "net.flows-match-declared"))
    spec = load_flows(ctx.options.flows) if ctx.options.flows else None
    raw_zones = _raw_zones(ctx.options.flows) if ctx.options.flows else {}
    plan = Plan(covered=_covered(ctx, spec), spec=spec)
    ctx.inv.cached("harden:netpol-plan", lambda: plan)
    per_ns: dict[str, list[dict]] = {ns: [] for ns in plan.covered}
    dns = dns_peer(ctx.inv)
    api = apiserver_endpoints(ctx.inv)
    bound = _bound_service_accounts(ctx.inv)
    if spec is None:
        area.skipped.append("per-flow allow policies: no flows.yaml (give --flows or `flows:` in nis2kube.yaml); "
                            "only default deny, DNS and API-server egress were generated")
    for ns in plan.covered:
        existing = ctx.inv.in_namespace("NetworkPolicy", ns)
        missing = [d for d in ("Ingress", "Egress") if not any(_denies(p, d) for p in existing)]
        if missing:
            per_ns[ns].append(_policy(
                "nis2kube-default-deny" if len(missing) == 2 else f"nis2kube-default-deny-{missing[0].lower()}",
                ns, {}, missing, description=f"Deny all {' and '.join(m.lower() for m in missing)} traffic that "
                "no other policy allows."))
        for policy in existing:
            if _allows_all(policy):
                plan.remove.append(policy)
        if dns is not None:
            peer, ports = dns
            per_ns[ns].append(_policy("nis2kube-allow-dns-egress", ns, {}, ["Egress"],
                                      egress=[_rule([peer], ports, "to")],
                                      description="Name resolution through the cluster DNS (kube-dns)."))
        sas = sorted({w.service_account for w in workloads(ctx.inv)
                      if w.namespace == ns and (ns, w.service_account) in bound})
        if sas and api is not None:
            cidrs, port = api
            for w in [w for w in workloads(ctx.inv) if w.namespace == ns and w.service_account in sas]:
                selector = _workload_selector(w)
                plan.api_egress.append((ns, selector, cidrs, port))
                per_ns[ns].append(_policy(
                    f"nis2kube-allow-apiserver-{_slug(w.name)}", ns, selector, ["Egress"],
                    egress=[_rule([{"ipBlock": {"cidr": c}} for c in cidrs], [{"protocol": "TCP", "port": port}],
                                  "to")],
                    description=f"{w.kind} {w.name} uses service account {w.service_account}, which holds API "
                                "permissions: it must reach the API server."))
        elif sas:
            area.skipped.append(f"API-server egress for {ns} (service accounts {', '.join(sas)}): the API "
                                "server's address is not in the input (no kubernetes Endpoints/EndpointSlice "
                                "or kube-apiserver Pod)")
    if dns is None:
        area.skipped.append("DNS egress: no kube-dns Service or CoreDNS pods in kube-system in the input")
    for flow in spec.flows if spec else []:
        _flow_policies(ctx, flow, raw_zones, plan.covered, per_ns)
    for ns in plan.covered:
        if per_ns[ns]:
            area.artifacts.append(Artifact(f"netpol/{ns}.yaml", f"NetworkPolicies for namespace `{ns}`.",
                                           per_ns[ns]))
    if spec is not None and plan.api_egress:
        area.artifacts.append(Artifact(
            "netpol/flows.yaml", "Your flows.yaml plus the API-server egress this bundle allows; adopt it as the "
            "declared flows so `nis2kube scan` and `netpol verify` agree with the bundle.",
            text=dump_yaml(_declared_with_api(ctx.options.flows, plan)), apply=False))
    area.notes.append("Covered namespaces: " + (", ".join(f"`{n}`" for n in plan.covered) or "none") + ".")
    if plan.remove:
        names = ", ".join(f"`{p['metadata'].get('namespace')}/{p['metadata'].get('name')}`" for p in plan.remove)
        area.notes.append(f"Delete these existing policies by hand: they allow traffic from or to everywhere and "
                          f"keep the namespace open whatever else is applied: {names}. kustomize cannot delete.")
    area.notes.append("Rollout: apply the allow policies and default deny of one namespace at a time, watching "
                      "for dropped connections (e.g. `nis2kube netpol verify`, CNI flow logs).")
    return area


def _flow_policies(ctx: HardenContext, flow: Flow, raw_zones: dict, covered: list[str],
                   per_ns: dict[str, list[dict]]) -> None:
    src_raw, dst_raw = raw_zones.get(flow.src.name) or {}, raw_zones.get(flow.dst.name) or {}
    ports = _ports(flow.ports)
    name = _flow_name(flow)
    what = f"Declared flow {flow.describe()}" + (f": {flow.description}" if flow.description else "")
    for ns in _zone_namespaces(ctx, flow.dst, covered):
        per_ns[ns].append(_policy(f"{name}-ingress", ns, copy.deepcopy(dst_raw.get("podSelector") or {}),
                                  ["Ingress"], ingress=[_rule(_zone_peer(src_raw), ports, "from")],
                                  description=what))
    for ns in _zone_namespaces(ctx, flow.src, covered):
        per_ns[ns].append(_policy(f"{name}-egress", ns, copy.deepcopy(src_raw.get("podSelector") or {}),
                                  ["Egress"], egress=[_rule(_zone_peer(dst_raw), ports, "to")], description=what))


def _declared_with_api(path: str, plan: Plan) -> dict:
    with open(path, encoding="utf-8") as fh:
        data = copy.deepcopy(load_document(fh.read()))
    zones, flows = data.setdefault("zones", {}), data.setdefault("flows", [])
    cidrs = sorted({c for _, _, cs, _ in plan.api_egress for c in cs})
    zones["nis2kube-apiserver"] = {"external": cidrs}
    for i, (ns, selector, _cidrs, port) in enumerate(plan.api_egress):
        name = f"nis2kube-api-client-{i}"
        zones[name] = {"namespace": ns, "podSelector": selector}
        flows.append({"from": name, "to": "nis2kube-apiserver", "ports": [f"{port}/TCP"],
                      "description": "API-server egress (the service account holds API permissions)"})
    return data


# ---- the proof -----------------------------------------------------------------------------------------
@dataclass
class Proof:
    covered: list[str]
    excess: list[str]
    blocked: list[str]
    unverifiable: list[str]
    removed: list[str]

    @property
    def ok(self) -> bool:
        return not self.excess and not self.blocked

    def lines(self) -> list[str]:
        out = [f"covered namespaces: {', '.join(self.covered) or 'none'}"]
        if self.removed:
            out.append(f"assuming removal of: {', '.join(self.removed)}")
        out += [f"EXCESS {g}" for g in self.excess] + [f"BLOCKED {g}" for g in self.blocked]
        out += [f"unverifiable: {u}" for u in self.unverifiable]
        if self.ok:
            out.append("reachability equals the declared flows plus DNS and API-server egress")
        return out


def prove(input_objects: list[dict], bundle_objects: list[dict], ctx: HardenContext) -> Proof:
    """Reachability of input (minus the allow-all policies to delete) plus bundle vs. declared flows."""
    from nis2kube.netpol.flows import verify as verify_flows
    from nis2kube.netpol.model import build_model

    plan: Plan = ctx.inv.cached("harden:netpol-plan", Plan)
    removed = {(p["metadata"].get("namespace"), p["metadata"].get("name")) for p in plan.remove}
    inv = Inventory()
    for obj in input_objects + bundle_objects:
        m = obj.get("metadata") or {}
        if obj.get("kind") == "NetworkPolicy" and (m.get("namespace"), m.get("name")) in removed:
            continue
        inv.add(copy.deepcopy(obj))
    spec = _with_api_flows(plan)
    result = verify_flows(build_model(inv), spec)
    covered = set(plan.covered)

    def touches(gap) -> bool:
        return any(e.namespace in covered for e in gap.sources + gap.destinations)

    return Proof(plan.covered, [g.describe() for g in result.excess if touches(g)],
                 [g.describe() for g in result.blocked], list(result.unverifiable),
                 sorted(f"{ns}/{name}" for ns, name in removed))


def _with_api_flows(plan: Plan) -> FlowSpec:
    """The declared spec plus one external flow per API-server egress allowance (it is declared by design)."""
    from nis2kube.inventory.selectors import parse_selector

    base = plan.spec or FlowSpec("(no flows.yaml)", {}, [])
    zones, flows = dict(base.zones), list(base.flows)
    for i, (ns, selector, cidrs, port) in enumerate(plan.api_egress):
        src = Zone(f"nis2kube-api-client-{i}", namespace=ns, pod_selector=parse_selector(selector))
        dst = Zone(f"nis2kube-apiserver-{i}", external=IPSet.of(cidrs))
        zones[src.name], zones[dst.name] = src, dst
        flows.append(Flow(len(flows), src, dst, (parse_port_ref(f"{port}/TCP"),), "API-server egress"))
    return FlowSpec(base.path, zones, flows, base.dns)
