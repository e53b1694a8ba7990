"""Image references split as the container runtime's reference grammar (distribution/reference) splits them."""

import pytest

from nis2kube.images import parse_image, registry_approved, split_domain


@pytest.mark.parametrize(
    ("image", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
        ("docker.io/nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        # Docker Hub's legacy host is canonicalised to docker.io, official images included
        ("index.docker.io/nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("index.docker.io/bitnami/redis", "docker.io", "bitnami/redis", None, None),
        # registry-1.docker.io is a host like any other to the grammar
        ("registry-1.docker.io/nginx", "registry-1.docker.io", "nginx", None, None),
        ("localhost/opcua-gateway:2.1", "localhost", "opcua-gateway", "2.1", None),
        ("registry.plant.example:5000/scada/hmi:3.4", "registry.plant.example:5000", "scada/hmi", "3.4", None),
        # a first element that is not lowercase cannot be a repository path, so it is a host
        ("PlantRegistry/hmi:1", "plantregistry", "hmi", "1", None),
        ("ghcr.io/org/app@sha256:" + "a" * 64, "ghcr.io", "org/app", None, "sha256:" + "a" * 64),
        ("ghcr.io/org/app:1.0@sha256:" + "b" * 64, "ghcr.io", "org/app", "1.0", "sha256:" + "b" * 64),
    ],
)
def test_parse_image_follows_the_reference_grammar(image, registry, repository, tag, digest):
    ref = parse_image(image)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("image", "invalid"),
    [
        ("registry.plant.example/scada/hmi:3.4@sha256:4b1d6f0c", "sha256:4b1d6f0c"),
        ("registry.plant.example/scada/hmi@sha256:" + "4B1D" * 16, "sha256:" + "4B1D" * 16),
        ("registry.plant.example/scada/hmi@md5:" + "0" * 32, "md5:" + "0" * 32),
        ("registry.plant.example/scada/hmi:3.4", None),
    ],
)
def test_an_invalid_digest_is_no_digest(image, invalid):
    """Every reader of ImageRef.digest (pinning checks, scan matching) can trust it: an invalid one is kept apart."""
    ref = parse_image(image)
    assert (ref.digest, ref.invalid_digest) == (None, invalid)


def test_legacy_docker_hub_spelling_is_approved_by_a_docker_io_entry():
    assert registry_approved(parse_image("index.docker.io/library/postgres:16"), ("docker.io/library",)) == (
        "docker.io/library"
    )
    assert registry_approved(parse_image("quay.io/library/postgres:16"), ("docker.io/library",)) is None


def test_docker_hub_mirror_hosts_are_docker_hub_for_allow_lists_as_for_scans():
    """The reference grammar keeps registry-1.docker.io a plain host, but it serves Docker Hub's content."""
    assert parse_image("registry-1.docker.io/postgres:16").name == "registry-1.docker.io/postgres"
    assert registry_approved(parse_image("registry-1.docker.io/postgres:16"), ("docker.io/library",)) == (
        "docker.io/library"
    )
    assert registry_approved(parse_image("postgres:16"), ("registry.hub.docker.com",)) == "registry.hub.docker.com"
    assert registry_approved(parse_image("registry-1.docker.io.evil.example/postgres"), ("docker.io",)) is None


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("nginx", (None, "nginx")),
        ("team/app", (None, "team/app")),
        ("localhost/app", ("localhost", "app")),
        ("reg:5000/a/b:1", ("reg:5000", "a/b:1")),
        ("Index.Docker.IO/nginx", ("Index.Docker.IO", "nginx")),  # as written: callers decide what a host means
        ("reg.example", (None, "reg.example")),  # a lone element is a repository
    ],
)
def test_split_domain_follows_the_reference_grammar(name, split):
    assert split_domain(name) == split


def _image_findings(check_id: str, image: str) -> list:
    from conftest import inventory_from_yaml, run_check

    manifest = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: hmi, namespace: scada}}
spec: {{template: {{spec: {{containers: [{{name: hmi, image: "{image}"}}]}}}}}}
"""
    return [(f.status.value, f.message) for f in run_check(check_id, inventory_from_yaml(manifest))]


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("registry.plant.example/scada/hmi:3.4@sha256:" + "4b1d" * 16, True),
        ("registry.plant.example/scada/hmi@sha512:" + "0a" * 64, True),  # go-digest also registers sha384/512
        ("registry.plant.example/scada/hmi:3.4@sha256:4b1d6f0c", False),  # too short: not a sha256 digest
        ("registry.plant.example/scada/hmi:3.4@sha256:" + "4B1D" * 16, False),  # go-digest: lower-case hex only
        ("registry.plant.example/scada/hmi@md5:" + "0" * 32, False),  # not an algorithm the runtime knows
    ],
)
def test_digest_pinned_needs_a_valid_digest(image, pinned):
    (status, message), = _image_findings("images.digest-pinned", image)
    assert (status == "pass") is pinned, message
    assert pinned or message.endswith(f"has an invalid digest {image.partition('@')[2]}")


def test_an_invalid_digest_does_not_make_a_missing_tag_immutable():
    (status, message), = _image_findings("images.mutable-tag", "registry.plant.example/scada/hmi@sha256:latest")
    assert status == "fail" and "no tag" in message
    (status, _), = _image_findings("images.mutable-tag", "registry.plant.example/scada/hmi:latest@sha256:" + "e" * 64)
    assert status == "pass"
    # an allow-list entry in the legacy spelling means Docker Hub too
    assert registry_approved(parse_image("nginx:1.27"), ("index.docker.io/library",)) == "index.docker.io/library"
