"""Admission policies: Kyverno ClusterPolicies (default) or native ValidatingAdmissionPolicies (`--engine vap`).

Everything is generated in Audit mode, with a kustomize overlay that switches to Enforce: switching straight
to Enforce rejects the next rollout of every workload that breaks a rule, so the README lists, from our own
scan, the workloads that would be rejected today and the team fixes those first.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from nis2kube.findings import Finding
from nis2kube.harden.bundle import Area, Artifact, Patch
from nis2kube.harden.context import HardenContext, meta

CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
REKOR_URL = "https://rekor.sigstore.dev"


@dataclass(frozen=True)
class Control:
    """One admission control: its policy name, what it demands, and the checks that find today's violators."""

    name: str
    title: str
    message: str
    measures: tuple[str, ...]
    checks: tuple[str, ...]  # check-id globs whose failures are the workloads this control would reject


CONTROLS = {
    "non-root": Control(
        "nis2-require-non-root", "Require containers to run as non-root",
        "Containers must run as non-root: set securityContext.runAsNonRoot=true on the Pod or on every container.",
        ("art21.2.e", "ir2690.6.8"), ("pss.restricted.run-as-non-root*", "pods.run-as-non-root*", "*.non-root*")),
    "registries": Control(
        "nis2-restrict-image-registries", "Allow images only from approved registries",
        "Images must come from an approved registry: {registries}.",
        ("art21.2.d", "ir2690.5.1", "ir2690.6.9"), ("images.approved-registry",)),
    "limits": Control(
        "nis2-require-resource-limits", "Require CPU and memory limits",
        "Every container must set resources.limits.cpu and resources.limits.memory.",
        ("art21.2.c", "ir2690.4.1"), ("pods.*limits*", "resources.*limits*", "*.resource-limits*")),
    "privileged": Control(
        "nis2-disallow-privileged-host-access", "Disallow privileged containers, host namespaces and hostPath",
        "Privileged containers, host namespaces (hostNetwork, hostPID, hostIPC) and hostPath volumes are not allowed.",
        ("art21.2.e", "ir2690.6.8"),
        ("pss.baseline.privileged*", "pss.baseline.host-namespaces*", "pss.baseline.host-path*",
         "pss.baseline.hostpath*")),
    "signatures": Control(
        "nis2-verify-image-signatures", "Verify image signatures (cosign)",
        "Images must carry a valid cosign signature from the release pipeline.",
        ("art21.2.d", "art21.2.e", "ir2690.6.3"), ("images.signed*", "images.signature*", "supply.*signature*")),
}  # fmt: skip


# The scan checks that judge whether a control is enforced (closed by the Enforce overlay).
TARGETS = {"non-root": "admission.non-root-enforced", "registries": "admission.registry-enforced",
           "limits": "admission.limits-enforced", "signatures": "admission.signature-enforced"}


def generate(ctx: HardenContext) -> Area:
    registries = tuple(ctx.config.approved_registries)
    signing = _attestors(ctx) if ctx.options.engine == "kyverno" else []
    selected = [k for k in CONTROLS if (k != "registries" or registries) and (k != "signatures" or signing)]
    area = Area("admission", "Admission control", targets=tuple(TARGETS[k] for k in selected if k in TARGETS))
    if not registries:
        area.skipped.append("approved registries: no `approved_registries` in nis2kube.yaml, so there is no "
                            "allow-list to enforce")
    if not signing:
        area.skipped.append("image signature verification: give --cosign-key FILE or --keyless-issuer with "
                            "--keyless-subject")
    system = sorted(ctx.config.system_namespaces)
    for key in selected:
        control = CONTROLS[key]
        if ctx.options.engine == "vap":
            if key == "signatures":
                area.skipped.append("image signature verification needs Kyverno: ValidatingAdmissionPolicy "
                                    "cannot check signatures")
                continue
            policy, binding = _vap(key, control, registries, system)
            area.artifacts.append(Artifact(f"admission/{control.name}.yaml", control.title, [policy, binding]))
            area.enforce_patches.append(Patch(
                "admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", control.name,
                [{"op": "replace", "path": "/spec/validationActions", "value": ["Deny"]}]))
        else:
            policy = _kyverno(key, control, registries, system, signing)
            area.artifacts.append(Artifact(f"admission/{control.name}.yaml", control.title, [policy]))
            area.enforce_patches.append(Patch(
                "kyverno.io", "v1", "ClusterPolicy", control.name,
                [{"op": "replace", "path": "/spec/validationFailureAction", "value": "Enforce"}]))
    area.notes.append(_rollout_note(ctx, selected))
    return area


def rejected_today(ctx: HardenContext, control: Control) -> list[Finding]:
    """Failures, in the scan of the input, of the checks that mirror this control (application namespaces)."""
    if ctx.before is None:
        return []
    return [
        f for f in ctx.before.findings
        if f.status.value == "fail" and not f.system and any(fnmatchcase(f.check, g) for g in control.checks)
    ]  # fmt: skip


def _rollout_note(ctx: HardenContext, selected: list[str]) -> str:
    lines = ["Rollout: apply the bundle (Audit mode) and watch the policy reports; fix the workloads below; then "
             "`kubectl apply -k overlays/enforce`.", "", "Workloads that Enforce mode would reject today:", ""]
    any_rejected = False
    for key in selected:
        control = CONTROLS[key]
        found = rejected_today(ctx, control)
        if ctx.before is None:
            continue
        names = sorted({f"{f.resource.display}" + (f" [{f.container}]" if f.container else "")
                        for f in found if f.resource})
        if names:
            any_rejected = True
            lines.append(f"- `{control.name}`: " + ", ".join(f"`{n}`" for n in names))
    if ctx.before is None:
        lines.append("- (not computed: the input was not scanned)")
    elif not any_rejected:
        lines.append("- none found by the scan")
    return "\n".join(lines)


# ---- Kyverno ------------------------------------------------------------------------------------------
def _kyverno(key: str, control: Control, registries: tuple[str, ...], system: list[str],
             attestors: list[dict]) -> dict:
    rules: list[dict]
    if key == "non-root":
        rules = [_rule("run-as-non-root", control.message, anyPattern=[
            {"spec": {"securityContext": {"runAsNonRoot": True},
                      **_each_container({"=(securityContext)": {"=(runAsNonRoot)": True}})}},
            {"spec": _each_container({"securityContext": {"runAsNonRoot": True}})},
        ])]
    elif key == "registries":
        allowed = " | ".join(f"{r}/*" for r in registries)
        message = control.message.format(registries=", ".join(registries))
        rules = [_rule("approved-registries", message, pattern={"spec": _each_container({"image": allowed})})]
    elif key == "limits":
        rules = [_rule("cpu-memory-limits", control.message, pattern={"spec": {"containers": [
            {"resources": {"limits": {"cpu": "?*", "memory": "?*"}}}]}})]
    elif key == "privileged":
        rules = [
            _rule("no-privileged", "Privileged containers are not allowed.",
                  pattern={"spec": _each_container({"=(securityContext)": {"=(privileged)": "false"}})}),
            _rule("no-host-namespaces", "hostNetwork, hostPID and hostIPC are not allowed.",
                  pattern={"spec": {"=(hostNetwork)": "false", "=(hostPID)": "false", "=(hostIPC)": "false"}}),
            _rule("no-host-path", "hostPath volumes are not allowed.",
                  pattern={"spec": {"=(volumes)": [{"X(hostPath)": "null"}]}}),
        ]
    else:  # signatures
        rules = [{
            "name": "verify-cosign-signature",
            "match": _match_pods(),
            "verifyImages": [{
                "imageReferences": [f"{r}/*" for r in registries] or ["*"],
                "mutateDigest": False,
                "required": True,
                "attestors": [{"count": 1, "entries": attestors}],
            }],
        }]
    for rule in rules:
        if system:
            rule["exclude"] = {"any": [{"resources": {"namespaces": system}}]}
    annotations = {
        "policies.kyverno.io/title": control.title,
        "policies.kyverno.io/category": "NIS2",
        "policies.kyverno.io/subject": "Pod",
        "policies.kyverno.io/description": control.message.format(registries=", ".join(registries)),
        "nis2kube.io/measures": ",".join(control.measures),
    }
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": meta(control.name, annotations=annotations),
        "spec": {"validationFailureAction": "Audit", "background": True, "rules": rules},
    }


def _match_pods() -> dict:
    return {"any": [{"resources": {"kinds": ["Pod"]}}]}


def _rule(name: str, message: str, **validate: object) -> dict:
    """A validate rule on Pods; Kyverno's auto-gen extends it to Deployments, StatefulSets, Jobs, ..."""
    return {"name": name, "match": _match_pods(), "validate": {"message": message, **validate}}


def _each_container(item: dict) -> dict:
    """The same condition on every container list; init/ephemeral lists are optional (=() anchor)."""
    return {
        ("containers" if field == "containers" else f"=({field})"): [dict(item)]
        for field in CONTAINER_LISTS
    }


def _attestors(ctx: HardenContext) -> list[dict]:
    opts = ctx.options
    out: list[dict] = []
    if opts.cosign_key:
        out.append({"keys": {"publicKeys": opts.cosign_key.strip() + "\n", "rekor": {"url": REKOR_URL}}})
    if opts.keyless_issuer and opts.keyless_subject:
        out.append({"keyless": {"issuer": opts.keyless_issuer, "subject": opts.keyless_subject,
                                "rekor": {"url": REKOR_URL}}})
    return out


# ---- ValidatingAdmissionPolicy ------------------------------------------------------------------------
POD_SPEC = ("object.kind == 'Pod' ? object.spec : (object.kind == 'CronJob' ? "
            "object.spec.jobTemplate.spec.template.spec : object.spec.template.spec)")
ALL_CONTAINERS = ("variables.spec.containers"
                  " + (has(variables.spec.initContainers) ? variables.spec.initContainers : [])"
                  " + (has(variables.spec.ephemeralContainers) ? variables.spec.ephemeralContainers : [])")


def _cel_string_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values) + "]"


def _vap_validations(key: str, control: Control, registries: tuple[str, ...]) -> list[dict]:
    if key == "non-root":
        pod_level = ("has(variables.spec.securityContext) && has(variables.spec.securityContext.runAsNonRoot) && "
                     "variables.spec.securityContext.runAsNonRoot == true && variables.containers.all(c, "
                     "!has(c.securityContext) || !has(c.securityContext.runAsNonRoot) || "
                     "c.securityContext.runAsNonRoot == true)")
        each = ("variables.containers.all(c, has(c.securityContext) && has(c.securityContext.runAsNonRoot) && "
                "c.securityContext.runAsNonRoot == true)")
        return [{"expression": f"({pod_level}) || {each}", "message": control.message}]
    if key == "registries":
        prefixes = _cel_string_list(tuple(f"{r}/" for r in registries))
        return [{"expression": f"variables.containers.all(c, {prefixes}.exists(r, c.image.startsWith(r)))",
                 "message": control.message.format(registries=", ".join(registries))}]
    if key == "limits":
        return [{"expression": "variables.spec.containers.all(c, has(c.resources) && has(c.resources.limits) && "
                               "'cpu' in c.resources.limits && 'memory' in c.resources.limits)",
                 "message": control.message}]
    return [
        {"expression": "variables.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) "
                       "|| c.securityContext.privileged == false)",
         "message": "Privileged containers are not allowed."},
        {"expression": " && ".join(f"!(has(variables.spec.{f}) && variables.spec.{f} == true)"
                                   for f in ("hostNetwork", "hostPID", "hostIPC")),
         "message": "hostNetwork, hostPID and hostIPC are not allowed."},
        {"expression": "!has(variables.spec.volumes) || variables.spec.volumes.all(v, !has(v.hostPath))",
         "message": "hostPath volumes are not allowed."},
    ]


def _vap(key: str, control: Control, registries: tuple[str, ...], system: list[str]) -> tuple[dict, dict]:
    rules = [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"]},
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["daemonsets", "deployments", "replicasets", "statefulsets"]},
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["cronjobs", "jobs"]},
    ]
    constraints: dict = {"resourceRules": rules}
    if system:
        constraints["namespaceSelector"] = {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": system}]}
    annotations = {"nis2kube.io/measures": ",".join(control.measures), "nis2kube.io/title": control.title}
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": meta(control.name, annotations=annotations),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": constraints,
            "variables": [{"name": "spec", "expression": POD_SPEC},
                          {"name": "containers", "expression": ALL_CONTAINERS}],
            "validations": _vap_validations(key, control, registries),
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": meta(control.name),
        "spec": {"policyName": control.name, "validationActions": ["Audit", "Warn"]},
    }
    return policy, binding
