"""Container image references parsed the way the container runtime resolves them (docker reference grammar)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"  # Docker Hub's old name: the reference grammar maps it to docker.io


@dataclass(frozen=True, slots=True)
class ImageRef:
    raw: str
    registry: str
    repository: str  # without registry, e.g. library/nginx
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """registry/repository, the part registries and allow-lists are about."""
        return f"{self.registry}/{self.repository}"


@lru_cache(maxsize=8192)  # a cluster runs few distinct images in many containers, and several checks parse each
def parse_image(ref: str) -> ImageRef:
    """`nginx` → docker.io/library/nginx:None; `reg:5000/a/b:1.2@sha256:..` → parts."""
    raw = ref.strip()
    rest, _, digest_part = raw.partition("@")
    digest = digest_part or None
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
    return ImageRef(raw, registry, path, tag or None, digest)


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
