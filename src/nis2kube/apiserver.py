"""The kube-apiserver's command line, wherever it can be seen.

Logging, encryption and identity checks judge API server flags. The flags come from `--apiserver-manifest`
(the kubeadm static Pod file) or from the kube-apiserver mirror Pod in kube-system; on managed control planes
neither exists, and the checks say which evidence to supply instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from nis2kube.checks.registry import CheckContext, InputError
from nis2kube.findings import ResourceRef
from nis2kube.inventory.files import load_paths

MISSING_EVIDENCE = (
    "the kube-apiserver command line is not visible (managed control plane, or not in the input); give "
    "--apiserver-manifest /etc/kubernetes/manifests/kube-apiserver.yaml, or attest the setting in --evidence"
)


@dataclass(frozen=True)
class ApiServer:
    """Flags of one kube-apiserver (`--name` without dashes -> value; bare flags map to "true")."""

    flags: dict[str, str]
    ref: ResourceRef  # the Pod the flags were read from (reported on)
    origin: str  # "manifest" or "inventory"

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.flags.get(name, default)

    def list(self, name: str) -> list[str]:
        """Comma-separated flag values (e.g. --authorization-mode=Node,RBAC)."""
        value = self.flags.get(name)
        return [v.strip() for v in value.split(",") if v.strip()] if value else []


def parse_flags(argv: list) -> dict[str, str]:
    """`--a=b`, `--a b` and bare `--a` forms; later occurrences win, like the Go flag parser."""
    flags: dict[str, str] = {}
    items = [str(a) for a in argv]
    i = 0
    while i < len(items):
        item = items[i]
        if item.startswith("--") or (item.startswith("-") and len(item) > 1 and not item[1].isdigit()):
            name = item.lstrip("-")
            if "=" in name:
                key, value = name.split("=", 1)
                flags[key] = value
            elif i + 1 < len(items) and not items[i + 1].startswith("-"):
                flags[name] = items[i + 1]
                i += 1
            else:
                flags[name] = "true"
        i += 1
    return flags


def _argv(container: dict) -> list:
    """command + args, treating wrong-typed fields as absent (the input is hostile until proven otherwise)."""
    command, args = container.get("command"), container.get("args")
    return [*(command if isinstance(command, list) else []), *(args if isinstance(args, list) else [])]


def _apiserver_containers(pod: dict) -> Iterator[dict]:
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict):
            continue
        argv = _argv(container)
        if container.get("name") == "kube-apiserver" or any("kube-apiserver" in str(a) for a in argv[:1]):
            yield container


def _from_pod(pod: dict, ref: ResourceRef, origin: str) -> ApiServer | None:
    for container in _apiserver_containers(pod):
        argv = _argv(container)
        return ApiServer(parse_flags(argv[1:] if argv and not str(argv[0]).startswith("-") else argv), ref, origin)
    return None


def _load_manifest(path: str) -> ApiServer:
    loaded = load_paths([path])
    errors = [p for p in loaded.problems if p.level == "error"]
    if errors:
        raise InputError(f"--apiserver-manifest: {errors[0]}")
    for obj, location in loaded.objects:
        if obj.get("kind") == "Pod":
            found = _from_pod(obj, ResourceRef.of(obj, location), "manifest")
            if found is not None:
                return found
    raise InputError(f"--apiserver-manifest {path}: no Pod with a kube-apiserver container found")


def apiservers(ctx: CheckContext) -> list[ApiServer]:
    """Every kube-apiserver visible: the given manifest, else the mirror Pods in kube-system (one per node)."""
    manifest = ctx.input("apiserver_manifest", _load_manifest)
    if manifest is not None:
        return [manifest]

    def scan() -> list[ApiServer]:
        out = []
        for pod in ctx.inv.in_namespace("Pod", "kube-system"):
            labels = (pod.get("metadata") or {}).get("labels")
            labels = labels if isinstance(labels, dict) else {}
            name = str(pod["metadata"].get("name", ""))
            if labels.get("component") == "kube-apiserver" or name.startswith("kube-apiserver"):
                found = _from_pod(pod, ctx.inv.ref(pod), "inventory")
                if found is not None:
                    out.append(found)
        return out

    return ctx.inv.cached("apiservers", scan)
