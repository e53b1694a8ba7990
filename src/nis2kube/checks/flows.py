"""Declared flows vs. what the NetworkPolicies allow (NIS2 Art. 21(2)(e), IR 2024/2690 annex 6.8 segmentation)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.findings import Finding, Severity
from nis2kube.netpol import build_model
from nis2kube.netpol.flows import FlowSpec, FlowSpecError, load_flows, verify


def _load(ctx: CheckContext) -> FlowSpec | None:
    raw = ctx.config.raw.get("flows")
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise InputError(f"{ctx.config.path or 'config'}: flows must be the path of a flows.yaml file")
    try:
        return load_flows(ctx.config.resolve_path(raw))
    except FlowSpecError as exc:
        raise InputError(str(exc)) from None


@check(
    id="net.flows-match-declared",
    title="NetworkPolicies allow exactly the declared flows (flows.yaml)",
    severity=Severity.HIGH,
    measures=("art21.2.e", "ir2690.6.8"),
    remediation="Run `nis2kube netpol verify <flows.yaml> <manifests>` for the exact flows; tighten the policies "
    "that allow undeclared flows (or declare them), and open the declared flows that are blocked.",
)
def flows_match_declared(ctx: CheckContext) -> Iterator[Finding]:
    """Every flow the policies allow must be declared (excess flows widen the blast radius of an intrusion),
    and every declared flow must be allowed (a blocked one breaks production). Not assessed without a
    `flows:` file in the config: intent cannot be guessed from the cluster."""
    spec = _load(ctx)
    if spec is None:
        yield ctx.not_assessed(None, "no `flows:` file set in nis2kube.yaml; declare the intended flows to verify "
                                     "segmentation (see docs/netpol.md)")
        return
    model = build_model(ctx.inv)
    result = verify(model, spec)
    excess: dict[str, list[str]] = defaultdict(list)
    blocked: dict[str, list[str]] = defaultdict(list)
    refs = {}
    for gap in result.excess:
        # Internal and egress gaps belong to the source; ingress from outside belongs to the destination.
        owners = gap.sources or gap.destinations
        for ep in owners:
            refs[ep.id] = ep
            excess[ep.id].append(gap.describe())
    for gap in result.blocked:
        owners = gap.destinations or gap.sources
        for ep in owners:
            refs[ep.id] = ep
            blocked[ep.id].append(gap.describe())
    for ep_id, lines in excess.items():
        yield ctx.fail(refs[ep_id].ref, f"allows {len(lines)} undeclared flow group(s): " + "; ".join(lines[:5])
                       + ("; ..." if len(lines) > 5 else ""), evidence={"excess": lines})
    for ep_id, lines in blocked.items():
        yield ctx.fail(refs[ep_id].ref, "declared flows are blocked: " + "; ".join(lines[:5]),
                       severity=Severity.MEDIUM, evidence={"blocked": lines})
    for ep in model.endpoints:
        if ep.host_network:
            yield ctx.not_assessed(ep.ref, "uses hostNetwork: NetworkPolicy does not govern its traffic, so its "
                                           "flows cannot be verified from policies")
        elif ep.id not in excess and ep.id not in blocked and not model.unmodelled_for(ep.namespace):
            yield ctx.passed(ep.ref, "no undeclared flow starts here (or reaches it from outside), and no "
                                     "declared flow of it is blocked")
    for note in result.unverifiable:
        if note.startswith("namespace "):
            yield ctx.not_assessed(None, note)
    for problem in model.problems:
        yield ctx.not_assessed(None, f"NetworkPolicy input: {problem}")
    for warning in result.warnings:
        yield ctx.not_assessed(None, f"{spec.path}: {warning}")
