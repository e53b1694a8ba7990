"""The name patterns of the policy engines we read. Each engine has its own dialect, and a pattern means what
its engine makes of it: shell globs (fnmatch's `[...]` classes) are none of them."""

from __future__ import annotations

import re
from functools import lru_cache

# policy-controller validates a ClusterImagePolicy glob against this; any other character makes it invalid
_SIGSTORE_VALID_GLOB = re.compile(r"[a-zA-Z0-9\-_:/*.]+")


@lru_cache(maxsize=4096)
def _kyverno(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern), re.DOTALL)


def kyverno_match(pattern: str, text: str) -> bool:
    """Kyverno's ext/wildcard Match (namespaces, names, imageReferences, override namespaces): `*` is any run of
    characters, `/` included, `?` exactly one; everything else is literal."""
    return _kyverno(pattern).fullmatch(text) is not None


def gatekeeper_match(pattern: str, name: str) -> bool:
    """Gatekeeper's Wildcard (namespaces, excludedNamespaces, Config exemptions): one `*` at the start, the end
    or both means suffix, prefix or substring; otherwise the name exactly."""
    if len(pattern) > 1 and pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in name
    if pattern.startswith("*"):
        return name.endswith(pattern[1:])
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


@lru_cache(maxsize=1024)
def sigstore(pattern: str) -> re.Pattern[str]:
    """policy-controller's GlobMatch on go-containerregistry names: `*` one or more characters but `/`, `**` one
    or more of any; a bare `*` or `*/*` means Docker Hub. An invalid glob matches nothing."""
    pattern = {"*/*": "index.docker.io/*/*", "*": "index.docker.io/library/*"}.get(pattern, pattern)
    if not _SIGSTORE_VALID_GLOB.fullmatch(pattern):
        return re.compile(r"(?!)")
    parts = (re.escape(p).replace(r"\*", "[^/]+") for p in pattern.split("**"))
    return re.compile(".+".join(parts))
