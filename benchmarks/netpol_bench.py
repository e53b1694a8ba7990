"""Benchmark: the grouped reachability engine against the naive pairwise evaluator, measured in one run.

    python benchmarks/netpol_bench.py [--workloads 5000] [--namespaces 200] [--policies 1000] [--naive-scale 10]
                                      [--admin]

Builds a synthetic but realistic cluster (Deployments with app/tier labels and named ports; per namespace a
default deny, tier-to-tier allows, scraping from a monitoring namespace on the named `metrics` port,
DNS egress, some ipBlock egress), computes the full workload x workload matrix with the grouped engine, and
runs the naive evaluator (every ordered pair, rule by rule) on a cluster `--naive-scale` times smaller
(the full size would take hours), checking both agree there. Prints times, peak memory and ratios.
`--admin` adds a platform AdminNetworkPolicy (Allow, Deny and Pass rules, a named port) and a baseline
default-deny BaselineAdminNetworkPolicy, so the admin tiers are measured too.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from nis2kube.inventory import Inventory
from nis2kube.netpol import Model, build_model
from nis2kube.netpol.explain import pair_ports
from nis2kube.netpol.flows import parse_flows, verify

TIERS = ("web", "api", "db", "worker")


def synthetic_inventory(workloads: int, namespaces: int, policies: int, admin: bool = False) -> Inventory:
    inv = Inventory()
    for obj in _admin_policies() if admin else ():
        inv.add(obj)
    per_ns = max(1, workloads // namespaces)
    per_ns_policies = max(1, policies // namespaces)
    for n in range(namespaces):
        ns = "monitoring" if n == 0 else f"team-{n:03d}"
        inv.add({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": ns, "labels": {"team": f"t{n % 20}", "zone": f"z{n % 5}"}}})
        for w in range(per_ns):
            tier = TIERS[w % len(TIERS)]
            ports = [{"name": "http", "containerPort": 8080 + w % 3}, {"name": "metrics", "containerPort": 9090}]
            if tier == "db":
                ports = [{"name": "postgres", "containerPort": 5432}, {"name": "metrics", "containerPort": 9187}]
            labels = {"app": f"app-{w}", "tier": tier}
            inv.add({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"app-{w}", "namespace": ns},
                     "spec": {"selector": {"matchLabels": {"app": f"app-{w}"}},
                              "template": {"metadata": {"labels": labels},
                                           "spec": {"containers": [{"name": "main", "image": "r/app:1",
                                                                    "ports": ports}]}}}})
        for p, spec in enumerate(_policies(n)[:per_ns_policies]):
            inv.add({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": f"np-{p}", "namespace": ns}, "spec": spec})
    inv.add({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system"},
             "spec": {"template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                                   "spec": {"containers": [{"name": "coredns", "image": "r/coredns:1"}]}}}})
    return inv


def _policies(n: int) -> list[dict]:
    tier = lambda *t: {"matchExpressions": [{"key": "tier", "operator": "In", "values": list(t)}]}  # noqa: E731
    out = [
        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} if n % 10 else
        {"podSelector": {}, "policyTypes": ["Ingress"]},
        {"podSelector": tier("api"),
         "ingress": [{"from": [{"podSelector": tier("web")}], "ports": [{"port": "http"}]}]},
        {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}], "ports": [{"port": "metrics"}]}]},
        # the monitoring namespace scrapes everything: open egress there
        {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]} if n == 0 else
        {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
             "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            {"to": [{"podSelector": {}}]},
            {"to": [{"namespaceSelector": {"matchLabels": {"zone": f"z{n % 5}"}}, "podSelector": tier("api")}],
             "ports": [{"port": 8080, "endPort": 8082}]},
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "169.254.169.254/32"]}}],
             "ports": [{"port": 443}]}]},
        {"podSelector": tier("db"), "ingress": [{"from": [{"podSelector": tier("api", "worker")},
                                                          {"namespaceSelector": {"matchLabels": {"team": f"t{n % 20}"}},
                                                           "podSelector": {"matchLabels": {"tier": "worker"}}}],
                                                 "ports": [{"port": "postgres"}]}]},
    ]
    return out


def _admin_policies() -> list[dict]:
    ns = lambda **labels: {"matchLabels": labels}  # noqa: E731
    anp = {"priority": 10, "subject": {"namespaces": {}},
           "ingress": [
               {"name": "scrape", "action": "Allow", "from": [{"namespaces": ns(**{
                   "kubernetes.io/metadata.name": "monitoring"})}], "ports": [{"namedPort": "metrics"}]},
               {"name": "no-db-from-z0", "action": "Deny", "from": [{"namespaces": ns(zone="z0")}],
                "ports": [{"portNumber": {"protocol": "TCP", "port": 5432}}]},
               {"name": "rest", "action": "Pass", "from": [{"namespaces": {}}]}],
           "egress": [
               {"name": "no-t1-db", "action": "Deny", "to": [{"pods": {"namespaceSelector": ns(team="t1"),
                                                                       "podSelector": ns(tier="db")}}],
                "ports": [{"portRange": {"protocol": "TCP", "start": 5000, "end": 6000}}]}]}
    banp = {"subject": {"namespaces": {}},
            "ingress": [{"name": "default-deny", "action": "Deny", "from": [{"namespaces": {}}]}],
            "egress": [{"name": "dns", "action": "Allow",
                        "to": [{"pods": {"namespaceSelector": {}, "podSelector": ns(**{"k8s-app": "kube-dns"})}}],
                        "ports": [{"portNumber": {"protocol": "UDP", "port": 53}}]}]}
    specs = (("AdminNetworkPolicy", "platform", anp), ("BaselineAdminNetworkPolicy", "default", banp))
    return [{"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": kind, "metadata": {"name": name},
             "spec": spec} for kind, name, spec in specs]


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def grouped(inv: Inventory) -> tuple[float, object]:
    start = time.perf_counter()
    model = build_model(inv)
    matrix = model.matrix()
    return time.perf_counter() - start, (model, matrix)


def naive(model: Model) -> tuple[float, int]:
    start = time.perf_counter()
    allowed = 0
    for s in model.endpoints:
        for d in model.endpoints:
            if pair_ports(model, s, d):
                allowed += 1
    return time.perf_counter() - start, allowed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=5000)
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--admin", action="store_true", help="add an ANP and a BANP (admin tiers)")
    parser.add_argument("--naive-scale", type=int, default=10, help="naive run on a cluster this many times smaller")
    args = parser.parse_args()

    inv = synthetic_inventory(args.workloads, args.namespaces, args.policies, args.admin)
    seconds, (model, matrix) = grouped(inv)
    pairs = len(model.endpoints) ** 2
    print(f"full size: {len(model.endpoints)} workloads, {len(model.namespace_labels)} namespaces, "
          f"{len(model.policies)} policies, {len(model.admin)} admin policies, {len(model.classes)} classes, "
          f"{pairs:,} ordered pairs")
    print(f"  grouped engine: full matrix in {seconds:.2f} s, peak RSS {peak_rss_mb():.0f} MB, "
          f"{matrix.allowed_class_pairs():,} allowed class pairs")

    spec = parse_flows({
        "zones": {"web": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"tier": "web"}}},
                  "api": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"tier": "api"}}},
                  "monitoring": {"namespace": "monitoring"}, "all": {"namespaceSelector": {}},
                  "internet": {"external": "0.0.0.0/0"}},
        "flows": [{"from": "web", "to": "api", "ports": ["http"]},
                  {"from": "monitoring", "to": "all", "ports": ["metrics"]},
                  {"from": "all", "to": "internet", "ports": ["443/TCP"]}]}, "bench-flows")
    start = time.perf_counter()
    result = verify(model, spec)
    print(f"  flows verification (3 declared flows over all workloads): {time.perf_counter() - start:.2f} s, "
          f"{len(result.excess):,} excess and {len(result.blocked):,} blocked flow groups")

    k = args.naive_scale
    small = synthetic_inventory(args.workloads // k, max(1, args.namespaces // k), args.policies // k, args.admin)
    g_small, (m_small, mx_small) = grouped(small)
    n_small, _ = naive(m_small)
    for i, s in enumerate(m_small.endpoints):
        for j, d in enumerate(m_small.endpoints):
            assert mx_small.ports(m_small.class_of[i], m_small.class_of[j]) == pair_ports(m_small, s, d)
    small_pairs = len(m_small.endpoints) ** 2
    print(f"1/{k} size: {len(m_small.endpoints)} workloads, {len(m_small.policies)} policies, {small_pairs:,} pairs "
          "(both engines agree on every pair)")
    print(f"  grouped {g_small:.3f} s, naive {n_small:.2f} s -> grouped is {n_small / g_small:.0f}x faster")
    # Per-pair cost depends on the policies of the pair's two namespaces, the same (5) at both sizes.
    extrapolated = n_small / small_pairs * pairs
    print(f"  naive extrapolated to full size (per-pair cost x {pairs:,} pairs): "
          f"{extrapolated:.0f} s -> grouped is {extrapolated / seconds:.0f}x faster")
    budget_ok = seconds <= 5.0 and peak_rss_mb() <= 1024
    print(f"target (<= 5 s, <= 1 GB): {'met' if budget_ok else 'NOT met'}")


if __name__ == "__main__":
    main()
