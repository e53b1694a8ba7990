"""Go's strconv number and bool parsing, which Kubernetes applies to flags, YAML scalars and label values.

Python's int() and bool rules are looser (spaces, `_` anywhere, non-ASCII digits, no range); a value Go
refuses must not count as set, so every reader of a Go-parsed value asks here.
"""

from __future__ import annotations

_PREFIX_BASES = {"0b": 2, "0o": 8, "0x": 16}
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# what strconv.ParseBool accepts
_BOOLS = dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True) | dict.fromkeys(
    ("0", "f", "F", "FALSE", "false", "False"), False
)


def _magnitude(body: str, base: int) -> int | None:
    """strconv.ParseUint's digits: base 0 reads a prefix (`0x1e`, `0o36`, `0b11`, a leading 0 for octal:
    `036`) and `_` between digits (`1_000`); an explicit base takes plain ASCII digits only."""
    digits = body
    if base == 0:
        base = _PREFIX_BASES.get(body[:2].lower(), 0) if len(body) > 2 else 0
        if base:
            digits = body[2:]
        else:
            base = 8 if body[:1] == "0" else 10  # a leading 0 means octal in Go (the 0 is a digit, so kept)
        if "_" in digits:
            if body.startswith("_") or body.endswith("_") or "__" in body:  # strconv's underscoreOK
                return None
            digits = digits.replace("_", "")
    allowed = _DIGITS[:base]  # int() alone would also take spaces, `_`, `١٢` and a second `0x`
    if not digits or not digits.isascii() or not all(c in allowed for c in digits.lower()):
        return None
    return int(digits, base)


def parse_int(text: str, base: int = 0, bits: int = 64) -> int | None:
    """strconv.ParseInt(text, base, bits), None where Go returns an error: out of the signed `bits` range is
    one (kube-apiserver refuses `--audit-log-maxage=99999999999999999999` like a non-number)."""
    negative = text[:1] == "-"
    value = _magnitude(text[1:] if text[:1] in ("+", "-") else text, base)
    if value is None:
        return None
    value = -value if negative else value
    limit = 1 << (bits - 1)
    return value if -limit <= value < limit else None


def parse_uint(text: str, base: int = 0, bits: int = 64) -> int | None:
    """strconv.ParseUint(text, base, bits): no sign at all, at most 2**bits - 1."""
    value = _magnitude(text, base)
    return value if value is not None and value < 1 << bits else None


def parse_bool(text: str) -> bool | None:
    """strconv.ParseBool, what pflag's bool flags use; None where Go returns an error."""
    return _BOOLS.get(text)
