"""Access control: who holds cluster-admin, wildcards, exec, secrets, escalation paths, service-account tokens.

Every verdict comes from the offline RBAC model (nis2kube.rbac): aggregated ClusterRoles are resolved first,
a RoleBinding to a ClusterRole counts only in its namespace, resourceNames narrow a grant. Grant findings are
reported on the binding and name the subjects, the role and the binding; a role that matches but is bound
nowhere is reported on the role at low severity ("not bound"). A grant is a system finding (reported apart)
only when every subject is a control-plane identity; a RoleBinding in kube-system to a person is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from nis2kube.checks.registry import CheckContext, check
from nis2kube.findings import Finding, Severity
from nis2kube.inventory.workloads import Workload, workloads
from nis2kube.rbac import CLUSTER_ADMIN, RBAC_GROUP, RBAC_KINDS, Grant, RbacModel, Role, Rule, rbac_model

ACCESS = ("art21.2.i", "ir2690.11.2", "ir2690.11.3")
CONTROL_PLANE_NAMESPACE = "kube-system"


@dataclass(frozen=True, slots=True)
class Capability:
    """A permission worth reporting: any of `verbs` on group/resource."""

    label: str
    verbs: tuple[str, ...]
    group: str
    resource: str
    cluster_scoped: bool = False  # only a ClusterRoleBinding can grant it
    only_namespace: str | None = None  # only dangerous when it reaches this namespace


@dataclass(frozen=True, slots=True)
class Hit:
    label: str
    verbs: tuple[str, ...]
    rules: tuple[Rule, ...]
    names: frozenset[str]  # non-empty: every matching rule is narrowed to these resourceNames

    def describe(self) -> str:
        text = f"{'/'.join(self.verbs)} {self.label}" if self.verbs else self.label
        return text + (f" (only resourceNames {', '.join(sorted(self.names))})" if self.names else "")


HitsFn = Callable[[Role, "str | None"], list[Hit]]


def hits(role: Role, scope: str | None, capabilities: tuple[Capability, ...]) -> list[Hit]:
    """Which capabilities the role's rules grant within scope (a namespace, or None = cluster-wide)."""
    out = []
    for cap in capabilities:
        if scope is not None and (cap.cluster_scoped or (cap.only_namespace and scope != cap.only_namespace)):
            continue
        if not role.may_cover(cap.resource):
            continue
        verbs: list[str] = []
        rules: dict[Rule, None] = {}
        for verb in cap.verbs:
            matching = [r for r in role.rules if r.may_grant(verb, cap.group, cap.resource)]
            if matching:
                verbs.append(verb)
                rules.update(dict.fromkeys(matching))
        if verbs:
            unnarrowed = any(not r.resource_names for r in rules)
            names = frozenset() if unnarrowed else frozenset().union(*(r.resource_names for r in rules))
            out.append(Hit(cap.label, tuple(verbs), tuple(rules), names))
    return out


def _model(ctx: CheckContext) -> tuple[RbacModel | None, Finding | None]:
    """The model, or a not-assessed verdict when the input cannot show who may do what."""
    for kind in RBAC_KINDS:
        reason = ctx.inv.unlisted_reason(kind, RBAC_GROUP)
        if reason:
            return None, ctx.not_assessed(None, f"{kind}s could not be read ({reason}); RBAC cannot be judged")
    model = rbac_model(ctx.inv)
    if not model.grants:
        return None, ctx.not_assessed(
            None, "the input holds no RoleBinding or ClusterRoleBinding; who holds which permission is unknown "
                  "(scan a cluster dump or a live cluster)")  # fmt: skip
    return model, None


def _system(ctx: CheckContext, grant: Grant) -> bool:
    """Reported apart only when every subject is a control-plane identity (a binding to nobody is not)."""
    return bool(grant.subjects) and all(s.is_system(ctx.system_namespaces) for s in grant.subjects)


def _systems(ctx: CheckContext, model: RbacModel) -> dict[int, bool]:
    """_system of every grant by id, once per scan (four checks judge every grant; the scan's inventory, and
    so its model and grants, stay the same throughout)."""
    return ctx.scan.cached("rbac.grant-systems", lambda: {id(g): _system(ctx, g) for g in model.grants})


def _subjects_text(grant: Grant, subjects: tuple = ()) -> str:
    chosen = subjects or grant.subjects
    return ", ".join(s.display for s in chosen) if chosen else "no subjects"


def _scope_text(grant: Grant) -> str:
    return "cluster-wide" if grant.scope is None else f"in namespace {grant.scope}"


def _rules_text(found: list[Hit]) -> list[str]:
    return sorted({r.describe() + f" (from {r.source})" for h in found for r in h.rules})


def _grant_evidence(grant: Grant, rules: list[str]) -> dict:
    return {
        "binding": grant.binding_display,
        "role": grant.role_display,
        "subjects": [s.display for s in grant.subjects],
        "scope": grant.scope or "cluster",
        "rules": rules,
    }


MAX_LISTED = 6


def _hits_text(found: list[Hit]) -> str:
    """The hits, at most MAX_LISTED of them (the evidence keeps every matching rule)."""
    text = "; ".join(h.describe() for h in found[:MAX_LISTED])
    return text + (f"; and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else "")


def judge_grants(ctx: CheckContext, what: str, hits_of: HitsFn) -> Iterator[Finding]:
    """Fail every binding whose role grants `what`, pass the others, and report matching unbound roles."""
    model, verdict = _model(ctx)
    if model is None:
        yield verdict
        return
    for obj, problem in model.problems:
        yield ctx.not_assessed(obj, problem)
    # many bindings share a role: judge each (role, scope) once; a role granting nothing needs only its message
    judged: dict[tuple, tuple[list[Hit], str, list[str]]] = {}
    systems = _systems(ctx, model)
    for grant in model.grants:
        system = systems[id(grant)]
        role = grant.role
        if role is None:
            yield _on_grant(ctx.not_assessed, grant, system,
                            f"{grant.binding_display} references {grant.role_display}, which is not in the input; "
                            f"cannot tell whether it grants {what}")  # fmt: skip
            continue
        key = (role.kind, role.namespace, role.name, grant.scope)
        if (judgement := judged.get(key)) is None:
            found = hits_of(role, grant.scope)
            judgement = judged[key] = (found, _hits_text(found), _rules_text(found)) if found else (
                found, f"{role.display} grants no {what} ({_scope_text(grant)})", [])  # fmt: skip
        found, text, rules = judgement
        if not grant.subjects:
            yield _on_grant(ctx.passed, grant, system, f"{grant.binding_display} has no subjects: it grants nothing")
            continue
        if not found:
            yield _on_grant(ctx.passed, grant, system, text)
            continue
        severity = ctx.spec.severity
        if all(h.names for h in found):
            severity = Severity.LOW
        if any(s.is_everyone for s in grant.subjects):
            severity = Severity.CRITICAL
        yield _on_grant(
            ctx.fail, grant, system,
            f"{grant.binding_display} gives {_subjects_text(grant)} {what} {_scope_text(grant)} through "
            f"{grant.role_display}: {text}",
            severity=severity, evidence=_grant_evidence(grant, rules),
        )  # fmt: skip
    yield from _unbound(ctx, model, what, hits_of)


def _on_grant(verdict: Callable[..., Finding], grant: Grant, system: bool, message: str, **kw) -> Finding:
    return verdict(grant.binding, message, system=system, **kw)


def _unbound(ctx: CheckContext, model: RbacModel, what: str, hits_of: HitsFn) -> Iterator[Finding]:
    for role in model.unbound_roles():
        found = hits_of(role, role.namespace)
        if not found:
            continue
        into = [r.display for r in model.aggregated_into(role)]
        note = f"; its rules are aggregated into {', '.join(into)}" if into else ""
        yield ctx.fail(
            role.obj, f"{role.display} grants {what} but is not bound to any subject{note}: "
                      f"{_hits_text(found)}",
            severity=Severity.LOW,
            evidence={"role": role.display, "bound": False, "aggregated_into": into,
                      "rules": sorted({r.describe() for h in found for r in h.rules})},
            system=True if role.builtin else None,
        )  # fmt: skip


# ---- cluster-admin -------------------------------------------------------------------------------------


@check(
    id="rbac.cluster-admin-binding",
    title="cluster-admin is bound only to control-plane identities",
    severity=Severity.CRITICAL,
    measures=(*ACCESS, "ir2690.11.4"),
    remediation="Replace the binding with a namespaced Role (or the built-in admin/edit ClusterRole through a "
    "RoleBinding) holding only what the subject needs; keep break-glass admin access outside standing RBAC.",
)
def cluster_admin_binding(ctx: CheckContext) -> Iterator[Finding]:
    """Standing cluster-admin for people or workloads is the largest blast radius an account can have.

    Control-plane identities (system: users and groups, service accounts of system namespaces) are reported
    separately; the groups that reach everyone (system:authenticated, system:unauthenticated,
    system:serviceaccounts[:ns]) are never treated as system and make the finding critical."""
    model, verdict = _model(ctx)
    if model is None:
        yield verdict
        return
    bindings = [g for g in model.grants if g.role_kind == "ClusterRole" and g.role_name == CLUSTER_ADMIN]
    failed = False
    for grant in bindings:
        people = tuple(s for s in grant.subjects if not s.is_system(ctx.system_namespaces))
        if not people:
            yield _on_grant(ctx.passed, grant, _system(ctx, grant),
                            f"{grant.binding_display} binds cluster-admin only to control-plane identities: "
                            f"{_subjects_text(grant)}")  # fmt: skip
            continue
        failed = True
        everyone = any(s.is_everyone for s in people)
        severity = Severity.CRITICAL if grant.scope is None or everyone else Severity.HIGH
        reach = ("full control of the cluster" if grant.scope is None
                 else f"full control of namespace {grant.scope} (RoleBinding)")  # fmt: skip
        yield ctx.fail(
            grant.binding,
            f"{grant.binding_display} binds ClusterRole/cluster-admin to {_subjects_text(grant, people)}: {reach}",
            severity=severity,
            evidence=_grant_evidence(grant, []) | {"non_system_subjects": [s.display for s in people]},
            system=False,  # a person with admin in kube-system is no platform noise
        )  # fmt: skip
    if not failed:
        yield ctx.passed(None, f"no non-system subject is bound to cluster-admin ({len(bindings)} binding(s) of it, "
                               f"{len(model.grants)} bindings checked)")  # fmt: skip


# ---- wildcards -----------------------------------------------------------------------------------------


def _wildcard_hits(role: Role, scope: str | None) -> list[Hit]:
    out = []
    for rule in role.rules:
        fields = rule.wildcards
        if rule.non_resource_urls and not rule.resources and scope is not None:
            continue  # non-resource rules take effect only through a ClusterRoleBinding
        if fields:
            out.append(Hit(f"`*` in {'/'.join(fields)} ({rule.describe()})", (), (rule,), frozenset()))
    return out


@check(
    id="rbac.wildcard",
    title="Roles do not grant `*` verbs, resources or API groups",
    severity=Severity.HIGH,
    measures=ACCESS,
    remediation="List the verbs, resources and API groups the subject needs; `*` also grants every API and "
    "subresource added later (CRDs included).",
)
def wildcard(ctx: CheckContext) -> Iterator[Finding]:
    """A `*` grants what exists today and everything installed tomorrow: least privilege cannot be reviewed."""
    yield from judge_grants(ctx, "wildcard permissions", _wildcard_hits)


# ---- exec / attach -------------------------------------------------------------------------------------

EXEC = (
    *(Capability(sub, ("create", "get"), "", sub) for sub in ("pods/exec", "pods/attach")),
    # `kubectl debug` adds a container to a running pod: the subresource serves get, update and patch only
    Capability("pods/ephemeralcontainers", ("update", "patch"), "", "pods/ephemeralcontainers"),
)


@check(
    id="rbac.pod-exec",
    title="Few subjects may exec into or attach to pods",
    severity=Severity.HIGH,
    measures=ACCESS,
    remediation="Remove pods/exec, pods/attach and pods/ephemeralcontainers from standing roles; grant them just "
    "in time for debugging.",
)
def pod_exec(ctx: CheckContext) -> Iterator[Finding]:
    """exec/attach run commands inside workloads with their identity and secrets (create for SPDY, get for
    WebSocket clients: both verbs count); update/patch of pods/ephemeralcontainers starts a debug container of
    the caller's choosing in the pod, which is as good as exec."""
    yield from judge_grants(ctx, "exec/attach into pods", lambda role, scope: hits(role, scope, EXEC))


# ---- secrets -------------------------------------------------------------------------------------------

SECRETS = (Capability("secrets", ("get", "list", "watch"), "", "secrets"),)


@check(
    id="rbac.secrets-read",
    title="Few subjects may read Secrets",
    severity=Severity.HIGH,
    measures=ACCESS,
    remediation="Grant get on the named Secrets only (resourceNames), never list/watch; mount secrets into the "
    "workload instead of reading them through the API.",
)
def secrets_read(ctx: CheckContext) -> Iterator[Finding]:
    """get, list and watch all return Secret values (list/watch return every Secret of the namespace at once).
    A grant narrowed by resourceNames is reported at low severity."""
    yield from judge_grants(ctx, "read access to Secrets", lambda role, scope: hits(role, scope, SECRETS))


# ---- privilege escalation ------------------------------------------------------------------------------

_WORKLOAD_RESOURCES = (("", "pods"), ("", "replicationcontrollers"), ("apps", "deployments"),
                       ("apps", "daemonsets"), ("apps", "statefulsets"), ("apps", "replicasets"),
                       ("batch", "jobs"), ("batch", "cronjobs"))  # fmt: skip
ESCALATION = (
    Capability("roles", ("escalate", "bind"), RBAC_GROUP, "roles"),
    Capability("clusterroles", ("escalate",), RBAC_GROUP, "clusterroles", cluster_scoped=True),
    # bind on a ClusterRole is checked in the namespace of the RoleBinding being created: a RoleBinding grants it
    Capability("clusterroles", ("bind",), RBAC_GROUP, "clusterroles"),
    Capability("users", ("impersonate",), "", "users", cluster_scoped=True),
    Capability("groups", ("impersonate",), "", "groups", cluster_scoped=True),
    Capability("serviceaccounts", ("impersonate",), "", "serviceaccounts"),
    Capability("serviceaccounts/token", ("create",), "", "serviceaccounts/token"),
    Capability("nodes/proxy (the kubelet API)", ("get", "create"), "", "nodes/proxy", cluster_scoped=True),
    *(
        Capability(f"{resource} in {CONTROL_PLANE_NAMESPACE}", ("create", "update", "patch"), group, resource,
                   only_namespace=CONTROL_PLANE_NAMESPACE)
        for group, resource in _WORKLOAD_RESOURCES
    ),
)  # fmt: skip


@check(
    id="rbac.escalation",
    title="No subject holds a privilege-escalation permission",
    severity=Severity.CRITICAL,
    measures=(*ACCESS, "ir2690.11.4"),
    remediation="Remove escalate, bind, impersonate, serviceaccounts/token create and nodes/proxy from the role, "
    "and write access to workloads in kube-system; keep them for the control plane only.",
)
def escalation(ctx: CheckContext) -> Iterator[Finding]:
    """Each of these turns a limited identity into a stronger one: escalate/bind bypass RBAC's escalation
    prevention, impersonate and token creation act as another identity, nodes/proxy reaches the kubelet API,
    and pods or workloads in kube-system can run with control-plane service accounts."""
    yield from judge_grants(ctx, "privilege-escalation permissions",
                            lambda role, scope: hits(role, scope, ESCALATION))  # fmt: skip


# ---- service accounts of workloads ---------------------------------------------------------------------


def _automount(ctx: CheckContext, w: Workload) -> tuple[bool, str]:
    """Whether the pod gets an API token mounted, and why (pod field beats ServiceAccount field; default true)."""
    pod_value = w.pod_spec.get("automountServiceAccountToken")
    if isinstance(pod_value, bool):
        return pod_value, f"pod spec sets automountServiceAccountToken: {str(pod_value).lower()}"
    sa = ctx.inv.get("ServiceAccount", w.namespace, w.service_account)
    if sa is None:
        return True, f"ServiceAccount {w.namespace}/{w.service_account} is not in the input; the API default is true"
    sa_value = sa.get("automountServiceAccountToken")
    if isinstance(sa_value, bool):
        return sa_value, (
            f"ServiceAccount {w.service_account} sets automountServiceAccountToken: {str(sa_value).lower()}"
        )
    return True, "neither the pod spec nor the ServiceAccount sets automountServiceAccountToken (default true)"


def _projected_token(w: Workload) -> str | None:
    """Name of a volume that projects a serviceAccountToken on purpose (audience- and lifetime-bound)."""
    for volume in w.pod_spec.get("volumes") or []:
        projected = volume.get("projected") if isinstance(volume, dict) else None
        sources = projected.get("sources") if isinstance(projected, dict) else None
        if isinstance(sources, list) and any(isinstance(s, dict) and "serviceAccountToken" in s for s in sources):
            return str(volume.get("name", ""))
    return None


@check(
    id="rbac.default-service-account",
    title="Workloads run with their own ServiceAccount, not `default`",
    severity=Severity.MEDIUM,
    measures=ACCESS,
    remediation="Create a ServiceAccount per workload (automountServiceAccountToken: false unless it calls the "
    "API) and set serviceAccountName.",
)
def default_service_account(ctx: CheckContext) -> Iterator[Finding]:
    """Every workload of a namespace shares `default`: a permission granted to one is granted to all, and
    access cannot be reviewed per application."""
    model = rbac_model(ctx.inv)
    for w in workloads(ctx.inv):
        if w.service_account != "default":
            yield ctx.passed(w, f"runs as ServiceAccount {w.service_account}")
            continue
        mounted, why = _automount(ctx, w)
        bound = [g.role_display for g in model.grants_for_service_account(w.namespace, "default")]
        extra = f"; the default ServiceAccount is bound to {', '.join(bound)}" if bound else ""
        yield ctx.fail(w, f"runs as the namespace's default ServiceAccount (token "
                          f"{'mounted' if mounted else 'not mounted'}: {why}){extra}",
                       severity=Severity.HIGH if bound and mounted else None if mounted else Severity.LOW,
                       evidence={"automount": mounted, "roles": bound})  # fmt: skip


@check(
    id="rbac.automount-token",
    title="API tokens are mounted only into workloads that use the API",
    severity=Severity.MEDIUM,
    measures=ACCESS,
    remediation="Set automountServiceAccountToken: false on the ServiceAccount or the pod template.",
)
def automount_token(ctx: CheckContext) -> Iterator[Finding]:
    """A mounted token is a credential anyone with code execution in the pod can take.

    Fails when the token is mounted and no RoleBinding/ClusterRoleBinding names the workload's ServiceAccount
    (the workload shows no need for the API; permissions given to groups every account is in are not a
    need). Passes when the token is not mounted, or is mounted and the account has bindings of its own."""
    model = rbac_model(ctx.inv)
    unreadable = [f"{kind}s: {reason}" for kind in ("RoleBinding", "ClusterRoleBinding")
                  if (reason := ctx.inv.unlisted_reason(kind, RBAC_GROUP))]  # fmt: skip
    for w in workloads(ctx.inv):
        mounted, why = _automount(ctx, w)
        if not mounted:
            explicit = _projected_token(w)
            note = f"; volume {explicit} projects a token explicitly (bounded lifetime)" if explicit else ""
            yield ctx.passed(w, f"no API token is automounted ({why}){note}")
            continue
        if unreadable:
            yield ctx.not_assessed(w, f"API token mounted ({why}); whether the ServiceAccount needs it is unknown, "
                                      f"bindings could not be read ({'; '.join(unreadable)})")  # fmt: skip
            continue
        roles = sorted({g.role_display for g in model.grants_for_service_account(w.namespace, w.service_account)})
        if roles:
            yield ctx.passed(w, f"API token mounted ({why}); ServiceAccount {w.service_account} is bound to "
                                f"{', '.join(roles)}, so the workload uses the API",
                             evidence={"roles": roles})  # fmt: skip
        else:
            yield ctx.fail(w, f"API token mounted ({why}) but no binding names ServiceAccount "
                              f"{w.namespace}/{w.service_account}: the token is not needed",
                           evidence={"automount": True, "service_account": w.service_account})  # fmt: skip
