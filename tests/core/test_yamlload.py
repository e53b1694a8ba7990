"""The loader must read YAML exactly as Kubernetes (sigs.k8s.io/yaml, go-yaml v2) does."""

import pytest

from nis2kube.inventory.yamlload import AliasBombError, go_yaml_number, load_document


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on", True), ("On", True), ("ON", True), ("yes", True), ("y", True), ("Y", True), ("true", True),
        ("off", False), ("no", False), ("n", False), ("N", False), ("False", False),
        ("~", None), ("null", None), ("Null", None), ("", None),
        ("0755", 493), ("0o17", 15), ("0x1F", 31), ("-0b11", -3), ("+12", 12), ("1_000", 1000),
        ("08", 8.0), ("1e3", 1000.0), (".5", 0.5), ("3.", 3.0), ("-.inf", float("-inf")),
        ("1:20", "1:20"), ("2001-12-14", "2001-12-14"), ("2001-12-14T21:59:43Z", "2001-12-14T21:59:43Z"),
        ("12abc", "12abc"), ("'on'", "on"), ('"0755"', "0755"), ("yess", "yess"), ("nothing", "nothing"),
    ],
)  # fmt: skip
def test_scalars_resolve_like_kubernetes(text, expected):
    assert load_document(f"v: {text}")["v"] == expected


def test_privileged_on_is_privileged():
    doc = load_document("securityContext:\n  privileged: on\n  runAsUser: 0755\n")
    assert doc["securityContext"] == {"privileged": True, "runAsUser": 493}


def test_mapping_keys_become_json_strings():
    assert load_document("80: http\ntrue: x\nn: no\n") == {"80": "http", "true": "x", "false": False}


def test_merge_keys_are_applied():
    doc = load_document("base: &b {cpu: 100m}\nlimits:\n  <<: *b\n  memory: 1Gi\n")
    assert doc["limits"] == {"cpu": "100m", "memory": "1Gi"}


@pytest.mark.parametrize(("text", "value"), [("3.0", 3), ("08", 8), ("1e3", 1000), (".0", 0), ("-0.0", 0),
                                             ("3.5", 3.5), ("1e20", 1e20)])
def test_integral_floats_reach_kubernetes_as_integers(text, value):
    """`replicas: 3.0` is 3 to the API server: JSON writes the float as `3`, which decodes as an int64."""
    got = load_document(f"v: {text}")["v"]
    assert got == value and type(got) is type(value)


def test_go_number_edge_cases():
    assert go_yaml_number("0x") == "0x"
    # beyond int64: go-yaml's uint64 or float, then sigs.k8s.io/json's float64; hex that large stays a string
    assert go_yaml_number("9223372036854775807") == 2**63 - 1
    assert go_yaml_number("18446744073709551615") == 2.0**64 and isinstance(go_yaml_number("2" + "0" * 19), float)
    assert go_yaml_number("99999999999999999999999") == 1e23
    assert go_yaml_number("-9223372036854775809") == -(2.0**63)
    assert go_yaml_number("0x1ffffffffffffffff") == "0x1ffffffffffffffff"
    assert go_yaml_number("1e400") == "1e400"  # ParseFloat's range error: not a number at all
    assert go_yaml_number("-") == "-"


def test_alias_bomb_is_refused():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
        prev = name
    with pytest.raises(AliasBombError):
        load_document("\n".join(lines))


def test_small_aliases_are_fine():
    doc = load_document("a: &x {k: v}\nb: *x\nc: *x\n")
    assert doc["b"] == doc["c"] == {"k": "v"}


def test_libyaml_c_parser_is_used_when_pyyaml_has_it():
    import yaml

    from nis2kube.inventory import yamlload

    assert yamlload.HAVE_LIBYAML is yaml.__with_libyaml__
    if yaml.__with_libyaml__:
        assert yamlload.K8sLoader.__mro__[1].__module__ == "yaml._yaml"
