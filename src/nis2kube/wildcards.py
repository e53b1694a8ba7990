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


def _gobwas(pattern: str, i: int, in_braces: bool) -> tuple[str, int]:
    """gobwas/glob (no separators) as a regex, from `i` to the end or to the `,`/`}` closing an alternative."""
    out = []
    while i < len(pattern):
        ch = pattern[i]
        if in_braces and ch in ",}":
            break
        if ch == "\\":
            if i + 1 == len(pattern):
                raise ValueError("dangling escape")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "}":
            raise ValueError("unmatched closing brace")
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            body = pattern[i + 1 : end] if end > 0 else ""
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if end < 0 or not body:
                raise ValueError("unclosed or empty character class")
            if len(body) == 3 and body[1] == "-":
                cls = f"{re.escape(body[0])}-{re.escape(body[2])}"
            else:
                cls = "".join(re.escape(c) for c in body)
            out.append(f"[{'^' if negate else ''}{cls}]")
            i = end
        elif ch == "{":
            options = []
            i += 1
            while True:
                option, i = _gobwas(pattern, i, True)
                options.append(option)
                if i >= len(pattern):
                    raise ValueError("unclosed brace")
                if pattern[i] == "}":
                    break
                i += 1  # the `,` before the next option
            out.append(f"(?:{'|'.join(options)})")
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out), i


@lru_cache(maxsize=1024)
def velero(pattern: str) -> re.Pattern[str] | None:
    """A Velero namespace include/exclude pattern (pkg/util/wildcard on gobwas/glob): `*`, `?`, `[abc]`, `[a-z]`,
    `[!abc]`, `{a,b}`, `\\` escapes. None where Velero refuses it and the backup fails validation: `|`, `(`,
    `)`, `**`, an empty or unclosed brace or class."""
    if any(c in pattern for c in "|()") or "**" in pattern:
        return None
    if any(not body.strip(", \t") for body in re.findall(r"\{([^}]*)\}", pattern)):
        return None
    try:
        regex, _ = _gobwas(pattern, 0, False)
    except ValueError:
        return None
    return re.compile(regex, re.DOTALL)
