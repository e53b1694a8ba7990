"""Identity and authentication (NIS2 Art. 21(2)(i) access control, (j) multi-factor authentication;
IR 2024/2690 11.6 authentication, 11.7 MFA).

Humans should log in through an identity provider (OIDC or structured authentication), where MFA,
offboarding and revocation live. Static token files, anonymous access, AlwaysAllow authorization and
client certificates with cluster-admin (a certificate cannot be revoked before it expires) undo that.
"""

from __future__ import annotations

from collections.abc import Iterator

from nis2kube import gostrconv
from nis2kube.apiserver import MISSING_EVIDENCE, ApiServer, apiservers
from nis2kube.checks.registry import CheckContext, check
from nis2kube.findings import Finding, Severity
from nis2kube.inventory.selectors import labels_of
from nis2kube.rbac import BOOTSTRAP_LABEL, CLUSTER_ADMIN, RBAC_GROUP, Grant, Subject, rbac_model

MEASURES = ("art21.2.j", "ir2690.11.6", "ir2690.11.7")
ACCESS = ("art21.2.i", "ir2690.11.6")
# Groups only a client certificate (or the node/bootstrap machinery) can carry.
CERT_ONLY_GROUPS = ("system:masters",)
BUILTIN_MASTERS = Subject("Group", "system:masters")


def _servers_or_na(ctx: CheckContext) -> tuple[list[ApiServer], Finding | None]:
    servers = apiservers(ctx)
    return servers, (None if servers else ctx.not_assessed(None, MISSING_EVIDENCE))


@check(
    id="identity.human-sso",
    title="Humans authenticate through an identity provider (OIDC or structured authentication)",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Configure --oidc-issuer-url/--oidc-client-id (or --authentication-config with a JWT "
    "authenticator) against the company IdP with MFA; hand out kubeconfigs using kubelogin/oidc-login.",
)
def human_sso(ctx: CheckContext) -> Iterator[Finding]:
    """Without an IdP, people use certificates or tokens: no MFA, no central offboarding."""
    servers, na = _servers_or_na(ctx)
    if na:
        yield na
        return
    for server in servers:
        if server.get("authentication-config"):
            yield ctx.passed(server.ref, f"structured authentication (--authentication-config="
                                         f"{server.get('authentication-config')})")
        elif server.get("oidc-issuer-url"):
            yield ctx.passed(server.ref, f"OIDC login via {server.get('oidc-issuer-url')}")
        else:
            yield ctx.fail(server.ref, "no OIDC issuer and no --authentication-config: people can only log in "
                                       "with client certificates or tokens (no MFA, no central revocation)")


@check(
    id="identity.token-auth-file",
    title="No static token file authenticates users",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Remove --token-auth-file; move people to OIDC and automation to ServiceAccount tokens.",
)
def token_auth_file(ctx: CheckContext) -> Iterator[Finding]:
    """Static tokens sit in cleartext on the control-plane disk, never expire and change only on restart."""
    servers, na = _servers_or_na(ctx)
    if na:
        yield na
        return
    for server in servers:
        if server.get("token-auth-file"):
            yield ctx.fail(server.ref, f"--token-auth-file={server.get('token-auth-file')}: static bearer tokens "
                                       "without expiry")
        else:
            yield ctx.passed(server.ref, "no --token-auth-file")


@check(
    id="identity.anonymous-auth",
    title="Anonymous requests to the API server are refused",
    severity=Severity.MEDIUM,
    measures=ACCESS,
    remediation="Set --anonymous-auth=false (or, from 1.32, restrict anonymous to health endpoints in the "
    "AuthenticationConfiguration's anonymous.conditions).",
)
def anonymous_auth(ctx: CheckContext) -> Iterator[Finding]:
    """The flag defaults to true: unauthenticated requests become system:anonymous, one RoleBinding away from
    data access."""
    servers, na = _servers_or_na(ctx)
    if na:
        yield na
        return
    for server in servers:
        value = server.get("anonymous-auth")
        if value is not None and gostrconv.parse_bool(value) is False:
            yield ctx.passed(server.ref, f"--anonymous-auth={value}")
        elif value is None and server.get("authentication-config"):
            yield ctx.not_assessed(server.ref, "anonymous access is configured in the --authentication-config file, "
                                               "which is not part of the input")
        else:
            yield ctx.fail(server.ref, f"anonymous requests are accepted (--anonymous-auth="
                                       f"{value if value is not None else 'true, the default'})")


@check(
    id="identity.authorization-mode",
    title="The API server authorizes with RBAC and never AlwaysAllow",
    severity=Severity.CRITICAL,
    measures=ACCESS,
    remediation="Set --authorization-mode=Node,RBAC.",
)
def authorization_mode(ctx: CheckContext) -> Iterator[Finding]:
    """The flag's default is AlwaysAllow: every authenticated request is allowed."""
    servers, na = _servers_or_na(ctx)
    if na:
        yield na
        return
    for server in servers:
        modes = server.list("authorization-mode")
        if not modes and server.get("authorization-config"):
            yield ctx.not_assessed(server.ref, "authorizers are configured in the --authorization-config file, "
                                               "which is not part of the input")
        elif not modes or "AlwaysAllow" in modes:
            shown = ",".join(modes) if modes else "AlwaysAllow (the default)"
            yield ctx.fail(server.ref, f"--authorization-mode={shown}: requests are allowed without an RBAC "
                                       "decision", evidence={"modes": modes})
        elif "RBAC" not in modes:
            yield ctx.fail(server.ref, f"--authorization-mode={','.join(modes)} does not include RBAC",
                           evidence={"modes": modes})
        else:
            yield ctx.passed(server.ref, f"--authorization-mode={','.join(modes)}", evidence={"modes": modes})


# ---- certificate users with cluster-admin -------------------------------------------------------------


def oidc_prefixes(server: ApiServer) -> tuple[str | None, str | None]:
    """(username prefix, groups prefix) OIDC identities carry; None when OIDC names cannot be told apart.

    kube-apiserver's rule: --oidc-username-prefix wins ("-" disables it); without it, claims other than
    `email` are prefixed with the issuer URL and "#". Groups carry --oidc-groups-prefix, if any."""
    if not server.get("oidc-issuer-url"):
        return None, None
    prefix = server.get("oidc-username-prefix")
    if prefix == "-":
        user = None
    elif prefix:
        user = prefix
    elif (server.get("oidc-username-claim") or "sub") != "email":
        user = f"{server.get('oidc-issuer-url')}#"
    else:
        user = None
    return user, server.get("oidc-groups-prefix") or None


def _admin_grants(ctx: CheckContext) -> Iterator[Grant]:
    """cluster-admin bindings the API server accepts (the RBAC model drops those it would reject)."""
    for grant in rbac_model(ctx.inv).grants:
        if grant.role_kind == "ClusterRole" and grant.role_name == CLUSTER_ADMIN:
            yield grant


def _builtin(grant: Grant, subject: Subject) -> bool:
    """The system:masters subject of the bootstrap ClusterRoleBinding every cluster has; other subjects added
    to that binding (or a copied label on another binding) are judged like any other."""
    return (grant.scope is None and grant.binding["metadata"].get("name") == CLUSTER_ADMIN
            and labels_of(grant.binding).get(BOOTSTRAP_LABEL[0]) == BOOTSTRAP_LABEL[1]
            and subject == BUILTIN_MASTERS)


@check(
    id="identity.cert-admin",
    title="No client-certificate identity holds cluster-admin",
    severity=Severity.HIGH,
    measures=(*MEASURES, "art21.2.i", "ir2690.11.3"),
    remediation="Bind cluster-admin to an OIDC group instead, keep the kubeadm admin.conf as sealed "
    "break-glass credential, and rotate the cluster CA if a certificate with admin rights has leaked.",
)
def cert_admin(ctx: CheckContext) -> Iterator[Finding]:
    """Users and groups bound to cluster-admin that are not OIDC identities can only log in with a client
    certificate (no token file, no IdP), and Kubernetes cannot revoke a certificate before it expires."""
    reason = ctx.unlisted(("ClusterRoleBinding", RBAC_GROUP), ("RoleBinding", RBAC_GROUP))
    if reason:
        yield ctx.not_assessed(None, reason)
        return
    servers = apiservers(ctx)
    token_file = any(s.get("token-auth-file") for s in servers)
    webhook = any(s.get("authentication-token-webhook-config-file") or s.get("authentication-config")
                  for s in servers)
    prefixes = [oidc_prefixes(s) for s in servers]
    for grant in _admin_grants(ctx):
        binding = grant.binding
        for subject in grant.subjects:
            if subject.service_account is not None or subject.is_everyone or _builtin(grant, subject):
                continue  # tokens and everyone-groups are rbac.* findings, not certificates; the default binding
            kind, name = subject.kind, subject.name
            scope = "cluster-wide" if grant.scope is None else f"in namespace {grant.scope}"
            what = f"{kind} {name} holds cluster-admin {scope}"
            evidence = {"subject": {"kind": kind, "name": name}}
            if kind == "Group" and name in CERT_ONLY_GROUPS:
                yield ctx.fail(binding, f"{what}: only client certificates carry this group", evidence=evidence)
                continue
            if not servers:
                yield ctx.not_assessed(binding, f"{what}; how it authenticates is unknown: {MISSING_EVIDENCE}",
                                       evidence=evidence)
                continue
            prefix = [p[0] if kind == "User" else p[1] for p in prefixes]
            if any(p and name.startswith(p) for p in prefix):
                yield ctx.passed(binding, f"{what} as an OIDC identity (prefix {next(p for p in prefix if p)})",
                                 evidence=evidence)
            elif (any(s.get("oidc-issuer-url") for s in servers) and not any(prefix)) or webhook or token_file:
                yield ctx.not_assessed(binding, f"{what}; it may come from OIDC, a webhook or a token file as well as "
                                                "a certificate (set --oidc-username-prefix/--oidc-groups-prefix to "
                                                "tell them apart)", evidence=evidence)
            else:
                yield ctx.fail(binding, f"{what} and is not an OIDC identity: it can only authenticate with a client "
                                        "certificate, which cannot be revoked", evidence=evidence)
