"""Supply chain (NIS2 Art. 21(2)(d); IR 2024/2690 5.1, 5.2 suppliers, 12.4 asset inventory).

Two questions per running image: is there an SBOM for it (the component inventory a CSIRT asks for the
day a new CVE lands), and will the cluster refuse it when its signature does not verify? SBOMs come from
Trivy Operator SbomReports or `--sbom` files; signature verification from Kyverno `verifyImages` rules,
Kyverno ImageValidatingPolicies or Sigstore policy-controller ClusterImagePolicies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from nis2kube.checks.admission import (
    ENFORCE,
    SIGSTORE_MODES,
    KyvernoActions,
    NsPredicate,
    kyverno_policy_actions,
    kyverno_scope,
    kyverno_sees,
    match_resources_scope,
    verify_images_actions,
)
from nis2kube.checks.registry import CheckContext, check
from nis2kube.findings import Finding, Severity
from nis2kube.images import DEFAULT_REGISTRY, canonical_image, split_domain, split_tag
from nis2kube.inventory import Inventory
from nis2kube.inventory.workloads import Workload, workloads
from nis2kube.sbom import load_sboms
from nis2kube.trivy import TRIVY_GROUP, ImageIndex, matcher
from nis2kube.wildcards import kyverno_match, sigstore

MEASURES = ("art21.2.d", "ir2690.5.1", "ir2690.5.2", "ir2690.12.4")
KYVERNO = "kyverno.io"
KYVERNO_POLICIES = "policies.kyverno.io"
SIGSTORE = "policy.sigstore.dev"
SIGSTORE_INCLUDE_LABEL = "policy.sigstore.dev/include"
POLICY_KINDS = (("ClusterPolicy", KYVERNO), ("Policy", KYVERNO), ("ImageValidatingPolicy", KYVERNO_POLICIES),
                ("ClusterImagePolicy", SIGSTORE))


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []



def _containers(w: Workload) -> Iterator[tuple[str, str]]:
    for _, container in w.containers():
        image = str(container.get("image", "")).strip()
        if image:
            yield str(container.get("name", "")), image


# ---- SBOM coverage ------------------------------------------------------------------------------------


@check(
    id="supply.sbom-coverage",
    title="Every running image has an SBOM",
    severity=Severity.MEDIUM,
    measures=MEASURES,
    remediation="Enable Trivy Operator's SBOM generation (sbomGeneration.enabled), or produce one per image in CI "
    "(`trivy image --format cyclonedx` / `syft IMAGE -o cyclonedx-json`) and give it with `--sbom`.",
)
def sbom_coverage(ctx: CheckContext) -> Iterator[Finding]:
    """An SBOM counts for a container when it names the image the container runs (digest, else tag)."""
    files = ctx.input("sbom", lambda raw: load_sboms([raw] if isinstance(raw, str) else list(raw))) or []
    file_index: ImageIndex = ImageIndex()
    for sbom in files:
        for image in sbom.images:
            file_index.add(image, sbom)
    operator = matcher(ctx.inv, "SbomReport")
    if not file_index and not operator:
        unnamed = [s.path for s in files if not s.images]
        reason = ctx.inv.unlisted_reason("SbomReport", TRIVY_GROUP)
        if unnamed:
            yield ctx.not_assessed(None, f"the SBOM file(s) {', '.join(unnamed)} name no container image; give "
                                         "them as --sbom IMAGE=FILE")
        elif reason:
            yield ctx.not_assessed(None, f"SbomReports could not be read ({reason})")
        else:
            yield ctx.not_assessed(None, "no SBOM in the input: no Trivy Operator SbomReports and no --sbom files")
        return
    for w in workloads(ctx.inv):
        for name, raw in _containers(w):
            image = canonical_image(raw)
            found, how = operator.find(w.ref, name, image)
            sboms = [r.source for r in found]
            if not found:
                matched, how = file_index.find(image)
                sboms = [f"{s.path} ({s.format}, {s.components} components)" for s in matched]
            if not sboms:
                yield ctx.fail(w, f"no SBOM for image {raw} (registry {image.registry})", container=name,
                               evidence={"image": raw})
            else:
                yield ctx.passed(w, f"image {raw} has an SBOM: {sboms[0]}", container=name,
                                 evidence={"image": raw, "sboms": sboms, "matched_by": how})


# ---- signature verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyRule:
    """One image-verification rule: which images, where, and whether a failure blocks admission."""

    policy: str  # Kind/name
    patterns: tuple[str, ...] | None  # None: every image (an ImageValidatingPolicy without matchImageReferences)
    skip: tuple[str, ...]
    enforce: bool
    namespace: str | None  # namespaced policy: only here
    # (workload kind, namespace, labels) -> whether it takes in every such workload there; None: everywhere
    scope: Callable[[str, str, dict], bool] | None
    engine: str = "kyverno"  # "kyverno" (verifyImages), "ivpol" (ImageValidatingPolicy) or "sigstore"
    # Kyverno: the rule's failure actions and overrides, resolved per namespace as admission.* resolves them
    kyverno: KyvernoActions | None = None

    def enforced_in(self, namespace: str, labels: dict) -> bool:
        if self.kyverno is not None:
            return self.kyverno.effective(namespace, labels) == ENFORCE
        return self.enforce

    def matches_image(self, raw: str) -> bool:
        """Each engine matches its patterns against its own spelling of the image, as it does at admission."""
        if self.engine == "sigstore":
            name = ggcr_name(raw)
            return name is not None and any(sigstore(p).fullmatch(name) for p in self.patterns or ())
        forms = kyverno_refs(raw) if self.engine == "kyverno" else (raw,)
        if self.patterns is not None and not any(kyverno_match(p, f) for p in self.patterns for f in forms):
            return False
        return not any(kyverno_match(p, f) for p in self.skip for f in forms)

    def covers(self, inv: Inventory, kind: str, namespace: str, raw: str) -> bool:
        if self.namespace is not None and self.namespace != namespace:
            return False
        if not self.matches_image(raw):
            return False
        labels = inv.namespace_labels(namespace)
        if self.engine == "sigstore" and labels.get(SIGSTORE_INCLUDE_LABEL) != "true":
            return False  # policy-controller only admits-checks namespaces that opt in
        if self.engine in ("kyverno", "ivpol") and not kyverno_sees(inv, namespace, labels):
            return False
        return self.scope is None or self.scope(kind, namespace, labels)


def _kyverno_rule_scope(rule: dict) -> Callable[[str, str, dict], bool]:
    """A verifyImages rule checks a workload's images when it takes in its Pods (always created, whoever
    creates them) or the workload's own kind (Kyverno checks a controller's pod template when it is admitted);
    a rule on CronJobs alone checks no Deployment."""
    scopes: dict[str, tuple[NsPredicate, tuple[str, ...]] | None] = {}

    def applies(kind: str, namespace: str, labels: dict) -> bool:
        for k in dict.fromkeys(("Pod", kind)):
            if k not in scopes:
                scopes[k] = kyverno_scope(rule, k)
            if scopes[k] is not None and scopes[k][0](namespace, labels):
                return True
        return False

    return applies


def _namespace_scope(predicate: NsPredicate) -> Callable[[str, str, dict], bool]:
    return lambda kind, namespace, labels: predicate(namespace, labels)


@lru_cache(maxsize=8192)  # asked per rule for every container, of few distinct images
def kyverno_refs(raw: str) -> tuple[str, ...]:
    """The string Kyverno matches imageReferences against, ImageInfo.String(): the default registry docker.io
    added only when the first element is not a host (index.docker.io stays as written), the digest instead of
    the tag when there is one, else the tag or `latest`. Kyverno releases differ on prefixing a one-element
    Docker Hub-style path with `library/`; both spellings are given."""
    name, _, digest = raw.partition("@")
    host, path = split_domain(name)
    path, tag = split_tag(path)
    suffix = f"@{digest}" if digest else f":{tag or 'latest'}"
    paths = (path, f"library/{path}") if "/" not in path else (path,)
    return tuple(f"{host or DEFAULT_REGISTRY}/{p}{suffix}" for p in paths)


@lru_cache(maxsize=8192)
def ggcr_name(raw: str) -> str | None:
    """go-containerregistry's Reference.Name(), what policy-controller globs are matched against:
    `nginx:1.27` is `index.docker.io/library/nginx:1.27`; a digest replaces the tag. None when unparsable."""
    name, _, digest = raw.partition("@")
    first, sep, rest = name.partition("/")
    registry, repo = (first, rest) if sep and ("." in first or ":" in first) else ("index.docker.io", name)
    registry = "index.docker.io" if registry == "docker.io" else registry
    tag = "latest"
    if repo.rfind(":") > repo.rfind("/"):
        repo, _, tag = repo.rpartition(":")
    if not repo or repo != repo.lower():
        return None
    if registry == "index.docker.io" and "/" not in repo:
        repo = f"library/{repo}"
    return f"{registry}/{repo}@{digest}" if digest else f"{registry}/{repo}:{tag}"


def _kyverno_rules(inv: Inventory) -> list[VerifyRule]:
    out = []
    for kind in ("ClusterPolicy", "Policy"):
        for policy in inv.objects(kind, KYVERNO):
            spec = policy.get("spec") if isinstance(policy.get("spec"), dict) else {}
            policy_actions = kyverno_policy_actions(spec)
            ns = policy["metadata"].get("namespace") if kind == "Policy" else None
            name = f"{kind}/{policy['metadata'].get('name', '')}"
            for rule in _l(spec.get("rules")):
                if not isinstance(rule, dict):
                    continue
                scope = _kyverno_rule_scope(rule)
                actions = verify_images_actions(_l(rule.get("verifyImages")), policy_actions)
                for verify in _l(rule.get("verifyImages")):
                    if not isinstance(verify, dict):
                        continue
                    patterns = [str(p) for p in _l(verify.get("imageReferences"))]
                    if verify.get("image"):
                        patterns.append(str(verify["image"]))
                    out.append(VerifyRule(f"{name} rule {rule.get('name', '?')}", tuple(patterns),
                                          tuple(str(p) for p in _l(verify.get("skipImageReferences"))),
                                          False, ns, scope,
                                          kyverno=actions))
    for policy in inv.objects("ImageValidatingPolicy", KYVERNO_POLICIES):
        spec = policy.get("spec") if isinstance(policy.get("spec"), dict) else {}
        refs = _l(spec.get("matchImageReferences"))
        # no matchImageReferences: the policy applies to every image (CEL expressions are not evaluated here)
        globs = tuple(str(m["glob"]) for m in refs if isinstance(m, dict) and m.get("glob")) if refs else None
        actions = [str(a) for a in _l(spec.get("validationActions"))]
        # matchConstraints narrow it as a VAP's do (absent: everywhere); matchConditions (CEL) leave some Pods out
        where = match_resources_scope(_d(spec.get("matchConstraints")), False)
        if where is None or _l(spec.get("matchConditions")):
            continue
        out.append(VerifyRule(f"ImageValidatingPolicy/{policy['metadata'].get('name', '')}", globs, (),
                              "Deny" in actions, None, _namespace_scope(where), engine="ivpol"))
    for policy in inv.objects("ClusterImagePolicy", SIGSTORE):
        spec = policy.get("spec") if isinstance(policy.get("spec"), dict) else {}
        globs = [str(i["glob"]) for i in _l(spec.get("images")) if isinstance(i, dict) and i.get("glob")]
        out.append(VerifyRule(f"ClusterImagePolicy/{policy['metadata'].get('name', '')}", tuple(globs), (),
                              SIGSTORE_MODES.get(spec.get("mode") or "enforce") == ENFORCE, None, None,
                              engine="sigstore"))
    return out


def _engine_present(inv: Inventory) -> bool:
    """Some admission policy engine is visible, so the absence of verification rules is evidence."""
    if any(inv.objects(kind, group) for kind, group in POLICY_KINDS):
        return True
    return inv.served_kinds is not None  # live mode: nothing served means no engine is installed


def _coverage(inv: Inventory, rules: list[VerifyRule], kind: str, namespace: str, raw: str) \
        -> tuple[list[str], list[str]]:
    """The policies whose rules cover an image of a workload kind in a namespace, and those that enforce there.
    It depends on nothing else, and many containers share the three, so the check asks once per triple."""
    covering = [r for r in rules if r.covers(inv, kind, namespace, raw)]
    labels = inv.namespace_labels(namespace)
    return [r.policy for r in covering], [r.policy for r in covering if r.enforced_in(namespace, labels)]


@check(
    id="supply.signature-policy",
    title="An enforced signature-verification policy covers every running image",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Add a Kyverno ClusterPolicy with a verifyImages rule (failureAction: Enforce) whose "
    "imageReferences cover the registry, e.g. `nis2kube harden --only admission`; sign images in CI with cosign.",
)
def signature_policy(ctx: CheckContext) -> Iterator[Finding]:
    """Per container: an Enforce verifyImages rule (or equivalent) must match its image in its namespace.

    An Audit-mode rule only logs an unsigned image; it is reported as not covering."""
    reason = ctx.unlisted(*POLICY_KINDS)
    if reason:
        yield ctx.not_assessed(None, reason)
        return
    rules = ctx.inv.cached("supply:verify-rules", lambda: _kyverno_rules(ctx.inv))
    if not rules and not _engine_present(ctx.inv):
        yield ctx.not_assessed(None, "no admission policies in the input (Kyverno ClusterPolicy/Policy, "
                                     "ImageValidatingPolicy, Sigstore ClusterImagePolicy); include them in the scan")
        return
    verdicts: dict[tuple[str, str, str], tuple[list[str], list[str]]] = {}
    for w in workloads(ctx.inv):
        for name, raw in _containers(w):
            image = canonical_image(raw)
            key = (w.kind, w.namespace, raw)
            if key not in verdicts:
                verdicts[key] = _coverage(ctx.inv, rules, w.kind, w.namespace, raw)
            covering, enforced = verdicts[key]
            evidence = {"image": raw, "registry": image.registry, "policies": list(covering)}
            if enforced:
                yield ctx.passed(w, f"image {raw} must pass signature verification ({enforced[0]})",
                                 container=name, evidence=evidence)
            elif covering:
                yield ctx.fail(w, f"image {raw} is verified in Audit mode only ({covering[0]}): an unsigned "
                                  "image is logged, not refused", container=name, evidence=evidence)
            else:
                yield ctx.fail(w, f"no signature-verification policy covers image {raw} (registry "
                                  f"{image.registry}) in namespace {w.namespace}", container=name, evidence=evidence)
