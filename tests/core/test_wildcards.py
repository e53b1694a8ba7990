"""Each policy engine's own pattern dialect: a shell glob is none of them."""

import pytest

from nis2kube.wildcards import gatekeeper_match, kyverno_match, sigstore, velero


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("prod-*", "prod-a", True), ("*", "", True), ("team-?", "team-a", True), ("team-?", "team-", False),
        ("team-?", "team-ab", False), ("registry.example/*", "registry.example/a/b:1", True),  # `*` crosses `/`
        ("team-[ab]", "team-a", False), ("team-[ab]", "team-[ab]", True),  # brackets are literal
        ("a.b", "axb", False), ("Prod", "prod", False),
    ],
)  # fmt: skip
def test_kyverno_wildcards(pattern, text, matches):
    assert kyverno_match(pattern, text) is matches


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("kube-*", "kube-system", True), ("*-system", "kube-system", True), ("*ot*", "scada-ot-1", True),
        ("kube-*", "my-kube-x", False), ("kube-?", "kube-a", False), ("kube-[a]", "kube-a", False),
        ("scada", "scada", True), ("scada", "scada-1", False), ("*", "anything", True),
    ],
)  # fmt: skip
def test_gatekeeper_wildcards_are_prefix_suffix_or_substring(pattern, name, matches):
    assert gatekeeper_match(pattern, name) is matches


def test_sigstore_globs():
    assert sigstore("registry.example/*").fullmatch("registry.example/app:1")
    assert not sigstore("registry.example/*").fullmatch("registry.example/team/app:1")
    assert sigstore("registry.example/**").fullmatch("registry.example/team/app:1")
    assert sigstore("*").fullmatch("index.docker.io/library/nginx:1.27")
    assert not sigstore("registry.example/[a]*").fullmatch("registry.example/a:1")  # invalid: matches nothing


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("prod-*", "prod-a", True), ("ns?", "ns1", True), ("ns?", "ns10", False), ("ns[123]", "ns2", True),
        ("ns[a-c]", "nsb", True), ("ns[a-z0-9]", "ns7", True), ("ns[a-c]", "ns-", False),
        ("*-app-*", "my-app-prod", True), ("app.prod", "app-prod", False), ("app+", "app+", True),
    ],
)  # fmt: skip
def test_velero_globs(pattern, name, matches):
    assert (velero(pattern).fullmatch(name) is not None) is matches


@pytest.mark.parametrize("pattern", ["a**", "app-{prod,staging}", "a{}", "a}", "a(b)", "a|b", "ns[!a]", "[", "ns[]",
                                     "ns[abc", "ns-abc]", "ns[abc]]", "a,b", "[z-a]"])
def test_velero_refuses(pattern):
    assert velero(pattern) is None
