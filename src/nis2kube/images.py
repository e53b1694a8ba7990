"""Container image references parsed the way the container runtime resolves them (docker reference grammar)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"  # Docker Hub's old name: the reference grammar maps it to docker.io
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


@lru_cache(maxsize=8192)  # a cluster runs few distinct images in many containers, and several checks parse each
def parse_image(ref: str) -> ImageRef:
    """`nginx` → docker.io/library/nginx:None; `reg:5000/a/b:1.2@sha256:..` → parts."""
    raw = ref.strip()
    rest, _, digest_part = raw.partition("@")
    if VALID_DIGEST.fullmatch(digest_part):
        digest, invalid_digest = digest_part, None
    else:
        digest, invalid_digest = None, digest_part or None
    first, _, remainder = rest.partition("/")
    # A first element is a registry when it looks like a host (a dot, a port, localhost) or is not lowercase,
    # which a repository path never is; Docker Hub's legacy host is Docker Hub.
    if remainder and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        registry = first.lower()
        registry, path = (DEFAULT_REGISTRY if registry == LEGACY_DEFAULT_REGISTRY else registry), remainder
    else:
        registry, path = DEFAULT_REGISTRY, rest
    tag = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return ImageRef(raw, registry, path, tag or None, digest, invalid_digest)


def registry_approved(image: ImageRef, approved: tuple[str, ...]) -> str | None:
    """The allow-list entry that approves this image (a registry host or a registry/path prefix), if any."""
    name = image.name
    for entry in approved:
        host, _, path = entry.partition("/")
        host = DEFAULT_REGISTRY if host.lower() == LEGACY_DEFAULT_REGISTRY else host.lower()
        entry_norm = f"{host}/{path}" if path else host
        if name == entry_norm or name.startswith(entry_norm + "/"):
            return entry
    return None
