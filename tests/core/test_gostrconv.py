"""Values Kubernetes parses with Go's strconv must be read with its rules, errors included."""

import pytest

from nis2kube.gostrconv import parse_bool, parse_int, parse_uint


@pytest.mark.parametrize(
    ("text", "base", "value"),
    [
        ("30", 0, 30), ("030", 0, 24), ("0x1e", 0, 30), ("0X1E", 0, 30), ("0o36", 0, 30), ("0b11110", 0, 30),
        ("1_000", 0, 1000), ("0x_1e", 0, 30), ("-12", 0, -12), ("+12", 0, 12),
        ("1_000", 10, None), ("0x1e", 10, None), ("030", 10, 30),  # an explicit base: plain digits, no prefix
        ("_1", 0, None), ("1_", 0, None), ("1__0", 0, None), ("08", 0, None), ("0x", 0, None), ("", 0, None),
        (" 1", 0, None), ("1 ", 0, None), ("١٢", 0, None), ("١٢", 10, None), ("0x0x1", 0, None), ("--1", 0, None),
        ("9223372036854775807", 0, 2**63 - 1), ("-9223372036854775808", 0, -(2**63)),
        ("9223372036854775808", 0, None), ("99999999999999999999", 10, None),
    ],
)  # fmt: skip
def test_parse_int_is_strconv_parse_int(text, base, value):
    assert parse_int(text, base) == value


def test_parse_int_bit_size_and_parse_uint():
    assert parse_int("128", 10, 8) is None and parse_int("-128", 10, 8) == -128
    assert parse_uint("18446744073709551615") == 2**64 - 1 and parse_uint("18446744073709551616") is None
    assert parse_uint("+1") is None and parse_uint("-0") is None and parse_uint("0x_ff") == 255


def test_parse_bool_is_strconv_parse_bool():
    assert [parse_bool(v) for v in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")] \
        == [True] * 6 + [False] * 6
    assert [parse_bool(v) for v in ("yes", "on", "tRuE", " true", "")] == [None] * 5
