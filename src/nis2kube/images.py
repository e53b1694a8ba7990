"""Container image references parsed the way the container runtime resolves them (docker reference grammar)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"  # Docker Hub's old name: the reference grammar maps it to docker.io
# Every other name Docker Hub answers to. The reference grammar maps only index.docker.io (parse_image keeps
# the others as plain hosts, as the runtime does), but all of them serve the same content, so scan, SBOM and
# allow-list matching takes each of them as docker.io (normalize_registry).
DOCKER_HUB_HOSTS = (LEGACY_DEFAULT_REGISTRY, "registry-1.docker.io", "registry.hub.docker.com")
# The digests distribution/reference accepts (go-digest's algorithms, lower-case hex of the hash's size);
# any other `@...` makes the whole reference invalid, so it pins nothing.
VALID_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}")


@dataclass(frozen=True, slots=True)
class ImageRef:
    raw: str
    registry: str
    repository: str  # without registry, e.g. library/nginx
    tag: str | None
    digest: str | None  # a valid digest only: pinning checks and scan matching must not trust any other
    invalid_digest: str | None  # the text after `@` when it is not a valid digest (the reference pins nothing)

    @property
    def name(self) -> str:
        """registry/repository, the part registries and allow-lists are about."""
        return f"{self.registry}/{self.repository}"


def split_domain(name: str) -> tuple[str | None, str]:
    """(host as written, rest) when the first element of a reference (without its digest) is a registry,
    else (None, name). distribution/reference's rule: it is a host when it looks like one (a dot, a port,
    localhost) or is not lowercase, which a repository path never is; a lone element is a repository."""
    first, _, remainder = name.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return first, remainder
    return None, name


def split_tag(path: str) -> tuple[str, str]:
    """(repository, tag) of a path split off its host: the tag follows a `:` after the last `/` ("" when none)."""
    colon = path.rfind(":")
    if colon > path.rfind("/"):
        return path[:colon], path[colon + 1 :]
    return path, ""


@lru_cache(maxsize=8192)  # a cluster runs few distinct images in many containers, and several checks parse each
def parse_image(ref: str) -> ImageRef:
    """`nginx` → docker.io/library/nginx:None; `reg:5000/a/b:1.2@sha256:..` → parts."""
    raw = ref.strip()
    rest, _, digest_part = raw.partition("@")
    if VALID_DIGEST.fullmatch(digest_part):
        digest, invalid_digest = digest_part, None
    else:
        digest, invalid_digest = None, digest_part or None
    host, path = split_domain(rest)
    # the reference grammar maps Docker Hub's legacy host only; its other names are plain hosts here
    registry = DEFAULT_REGISTRY if host is None or host.lower() == LEGACY_DEFAULT_REGISTRY else host.lower()
    path, tag = split_tag(path)
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return ImageRef(raw, registry, path, tag or None, digest, invalid_digest)


def normalize_registry(host: str) -> str:
    """A registry host as matching compares it: lower-case, and Docker Hub under any of its names is docker.io."""
    host = host.lower()
    return DEFAULT_REGISTRY if host in DOCKER_HUB_HOSTS else host


def canonical(image: ImageRef) -> ImageRef:
    """The image with Docker Hub's every host name as docker.io (and its one-element paths under library/),
    so every spelling of one image gives one key."""
    if image.registry == DEFAULT_REGISTRY or normalize_registry(image.registry) != DEFAULT_REGISTRY:
        return image
    repository = image.repository if "/" in image.repository else f"library/{image.repository}"
    return replace(image, registry=DEFAULT_REGISTRY, repository=repository)


def canonical_image(ref: str) -> ImageRef:
    """parse_image plus Docker Hub's host aliases: the key scans and SBOMs are matched by."""
    return canonical(parse_image(ref))


def registry_approved(image: ImageRef, approved: tuple[str, ...]) -> str | None:
    """The allow-list entry that approves this image (a registry host or a registry/path prefix), if any.

    Image and entries are normalised as scans are matched (canonical, normalize_registry): Docker Hub under
    any of its host names is docker.io, so `index.docker.io/library` or `registry-1.docker.io/library`
    approves `nginx`, and `docker.io/library` approves `registry-1.docker.io/library/nginx`."""
    name = canonical(image).name
    for entry in approved:
        host, _, path = entry.partition("/")
        entry_norm = f"{normalize_registry(host)}/{path}" if path else normalize_registry(host)
        if name == entry_norm or name.startswith(entry_norm + "/"):
            return entry
    return None
