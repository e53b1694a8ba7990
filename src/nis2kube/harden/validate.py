"""Schema validation of generated objects before anything is written.

Built-in kinds are checked against the Kubernetes OpenAPI schemas of the target version, in their strict form
(unknown fields are errors, as with `kubectl apply --validate=strict`), from the `kubernetes-validate`
package's offline schema files. Custom resources (Kyverno ClusterPolicy, PrometheusRule, ...) are checked
against the openAPIV3Schema of their CustomResourceDefinition, taken from the input (the cluster's own CRD,
the best target) or from `--crd` files; unknown fields are errors there too unless the schema preserves
them. Object names are checked the way the API server does (DNS-1123 subdomain), which no schema says.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import jsonschema
from referencing import Registry, Resource

from nis2kube.inventory.selectors import valid_dns1123_subdomain, valid_label_value

DEFINITIONS = "https://kubernetes.io/api/_definitions.json"


class VersionError(ValueError):
    """No schemas for the requested Kubernetes version."""


@dataclass
class Report:
    """Per object: where its schema came from, and the errors found (empty = valid)."""

    checked: list[tuple[str, str]] = field(default_factory=list)  # (object display, schema source)
    errors: list[str] = field(default_factory=list)
    unchecked: list[tuple[str, str]] = field(default_factory=list)  # (object display, why not)

    @property
    def ok(self) -> bool:
        return not self.errors


def _schema_root():
    return resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:2])


@cache
def available_versions() -> tuple[str, ...]:
    names = [p.name for p in _schema_root().iterdir() if p.name.endswith("-local-strict")]
    return tuple(sorted((n[1:].split("-")[0] for n in names), key=_version_key))


def resolve_version(requested: str | None) -> str:
    """The newest schema version not newer than `requested` (major.minor), or the newest known."""
    versions = available_versions()
    if not versions:
        raise VersionError("the kubernetes-validate package ships no schemas")
    if not requested:
        return versions[-1]
    if not re.fullmatch(r"v?\d+\.\d+(\.\d+)?", requested.strip()):
        raise VersionError(f"--kube-version {requested!r}: expected MAJOR.MINOR, e.g. 1.31")
    want = _version_key(requested)
    candidates = [v for v in versions if _version_key(v) <= want]
    if not candidates or want > _version_key(versions[-1]):
        raise VersionError(f"no Kubernetes schemas for {requested} (known: {versions[0]} to {versions[-1]})")
    return candidates[-1]


@cache
def _registry(version: str) -> Registry:
    directory = _schema_root().joinpath(f"v{version}-local-strict")
    definitions = json.loads(directory.joinpath("_definitions.json").read_text(encoding="utf-8"))
    return Resource.from_contents(definitions) @ Registry()


@cache
def _builtin_validator(version: str, kind: str, api_version: str) -> jsonschema.Validator | None:
    mangled = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _schema_root().joinpath(f"v{version}-local-strict", f"{kind.lower()}-{mangled}.json")
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


@cache
def _object_meta_validator(version: str) -> jsonschema.Validator:
    schema = {"$ref": f"{DEFINITIONS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


class Validator:
    """Validates objects for one Kubernetes version and a set of CRDs."""

    def __init__(self, kube_version: str | None = None, crds: list[dict] | None = None) -> None:
        self.version = resolve_version(kube_version)
        self._crds: dict[tuple[str, str, str], tuple[dict, str]] = {}
        for crd in crds or []:
            self.add_crd(crd, "CRD")

    def add_crd(self, crd: dict, origin: str) -> None:
        """Register every served version of a CustomResourceDefinition (apiextensions.k8s.io/v1)."""
        spec = crd.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        if not group or not kind:
            return
        for version in spec.get("versions") or []:
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) if isinstance(version, dict) else None
            if isinstance(schema, dict):
                name = crd.get("metadata", {}).get("name", "")
                self._crds[(group, str(version.get("name")), kind)] = (_json_schema(schema), f"{origin} {name}")

    def validate(self, obj: dict, display: str, report: Report) -> None:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        errors = list(_name_errors(obj))
        group, _, version = api_version.rpartition("/")
        crd = self._crds.get((group, version, kind))
        if crd is not None:
            schema, source = crd
            errors += _schema_errors(jsonschema.Draft202012Validator(schema), obj)
            errors += _unknown_fields(schema, obj, "")
            errors += _schema_errors(_object_meta_validator(self.version), obj.get("metadata") or {}, "metadata")
        else:
            validator = _builtin_validator(self.version, kind, api_version)
            if validator is None:
                if "." in group and not group.endswith(".k8s.io"):
                    report.unchecked.append((display, f"no CRD schema for {kind}.{group}/{version} (give --crd)"))
                else:
                    errors.append(f"{api_version} {kind} does not exist in Kubernetes {self.version}")
                report.errors.extend(f"{display}: {e}" for e in errors)
                return
            errors += _schema_errors(validator, obj)
            source = f"Kubernetes {self.version} OpenAPI (strict)"
        if errors:
            report.errors.extend(f"{display}: {e}" for e in errors)
        else:
            report.checked.append((display, source))


def _schema_errors(validator: jsonschema.Validator, obj: object, prefix: str = "") -> list[str]:
    out = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in ([prefix] if prefix else []) + list(error.absolute_path)) or "(root)"
        out.append(f"{path}: {error.message[:300]}")
    return out


def _name_errors(obj: dict):
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    if not valid_dns1123_subdomain(name):
        yield f"metadata.name {name!r} is not a DNS-1123 subdomain"
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or not valid_label_value(value):
            yield f"metadata.labels.{key}: {value!r} is not a valid label value"


def _json_schema(openapi: dict) -> dict:
    """openAPIV3Schema -> JSON Schema: `nullable` becomes a null type; everything else is compatible."""
    schema = copy.deepcopy(openapi)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("nullable") is True and isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def _unknown_fields(schema: dict, value: object, path: str) -> list[str]:
    """Fields a structural schema does not declare (the API server prunes them; strict validation rejects)."""
    out: list[str] = []
    if not isinstance(schema, dict):
        return out
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields") or "properties" not in schema:
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for key, item in value.items():
                    out += _unknown_fields(extra, item, f"{path}.{key}" if path else str(key))
            return out
        props = schema["properties"]
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in props:
                if path == "" and key in ("apiVersion", "kind", "metadata"):
                    continue
                out.append(f"{where}: unknown field")
            elif path or key != "metadata":
                out += _unknown_fields(props[key], item, where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += _unknown_fields(schema["items"], item, f"{path}[{i}]")
    return out
