"""Image provenance: approved registries, no mutable tags, digests (NIS2 Art. 21(2)(d) supply chain)."""

from __future__ import annotations

from collections.abc import Iterator

from nis2kube.checks.registry import CheckContext, check
from nis2kube.findings import Finding, Severity
from nis2kube.images import parse_image, registry_approved
from nis2kube.inventory.workloads import workloads

SUPPLY = ("art21.2.d", "ir2690.5.1", "ir2690.6.1")


@check(
    id="images.approved-registry",
    title="Images come only from approved registries",
    severity=Severity.HIGH,
    measures=(*SUPPLY, "ir2690.6.9"),
    remediation="Mirror the image into an approved registry, or add the registry to approved_registries in "
    "nis2kube.yaml after a supplier review; enforce with `nis2kube harden --only admission`.",
)
def approved_registry(ctx: CheckContext) -> Iterator[Finding]:
    """Every container image (init and ephemeral too) must come from a registry on the allow-list.

    Without an allow-list in the config this is not assessed: an empty list proves nothing."""
    approved = ctx.config.approved_registries
    if not approved:
        yield ctx.not_assessed(None, "no approved_registries configured in nis2kube.yaml; nothing to compare with")
        return
    for w in workloads(ctx.inv):
        bad = False
        for _, container in w.containers():
            image = parse_image(str(container.get("image", "")))
            if registry_approved(image, approved) is None:
                bad = True
                yield ctx.fail(w, f"image {image.raw} comes from {image.registry}, which is not approved",
                               container=container.get("name"), evidence={"image": image.raw})
        if not bad:
            yield ctx.passed(w, "all images come from approved registries")


@check(
    id="images.mutable-tag",
    title="Images are not referenced by a mutable tag (:latest or no tag)",
    severity=Severity.MEDIUM,
    measures=(*SUPPLY, "ir2690.6.3"),
    remediation="Reference a release tag, better a digest (image@sha256:...).",
)
def mutable_tag(ctx: CheckContext) -> Iterator[Finding]:
    """`:latest` or a missing tag means the code that runs can change without any change to the manifest."""
    for w in workloads(ctx.inv):
        bad = False
        for _, container in w.containers():
            image = parse_image(str(container.get("image", "")))
            if image.tag in (None, "latest") and image.digest is None:
                bad = True
                what = "no tag (means :latest)" if image.tag is None else "the :latest tag"
                yield ctx.fail(w, f"image {image.raw} uses {what}", container=container.get("name"),
                               evidence={"image": image.raw})
        if not bad:
            yield ctx.passed(w, "all images use a fixed tag or a digest")


@check(
    id="images.digest-pinned",
    title="Images are pinned by digest",
    severity=Severity.LOW,
    measures=SUPPLY,
    remediation="Pin images by digest (image:tag@sha256:...), e.g. with `crane digest` in CI.",
)
def digest_pinned(ctx: CheckContext) -> Iterator[Finding]:
    """Only a digest guarantees the bytes that were reviewed, scanned and signed are the ones that run."""
    for w in workloads(ctx.inv):
        bad = False
        for _, container in w.containers():
            image = parse_image(str(container.get("image", "")))
            if image.digest is None:
                bad = True
                what = ("is not pinned by digest" if image.invalid_digest is None
                        else f"has an invalid digest {image.invalid_digest}")
                yield ctx.fail(w, f"image {image.raw} {what}", container=container.get("name"),
                               evidence={"image": image.raw})
        if not bad:
            yield ctx.passed(w, "all images are pinned by digest")
