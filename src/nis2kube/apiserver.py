"""The kube-apiserver's command line, wherever it can be seen.

Logging, encryption and identity checks judge API server flags. The flags come from `--apiserver-manifest`
(the kubeadm static Pod file) or from the kube-apiserver mirror Pod in kube-system; on managed control planes
neither exists, and the checks say which evidence to supply instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
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
    """Flags of one kube-apiserver (`--name` without dashes -> every value given, in order; bare flags are
    "true"). Only the occurrences are kept: the value a flag ends up with is derived from them."""

    values: dict[str, list[str]]
    ref: ResourceRef  # the Pod the flags were read from (reported on)
    origin: str  # "manifest" or "inventory"
    image: str = ""  # the container image, whose tag is the version (resilience.k8s-version)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value a string or int flag ends up with: the last occurrence wins, as in pflag."""
        given = self.values.get(name)
        return given[-1] if given else default

    def list(self, name: str) -> list[str]:
        """A string-slice flag (e.g. --authorization-mode=Node,RBAC): pflag appends repeated occurrences
        (`--authorization-mode=Node --authorization-mode=RBAC` is both), each split at commas."""
        return [v.strip() for value in self.values.get(name, []) for v in value.split(",") if v.strip()]


# kube-apiserver's boolean flags: pflag gives them a value only through `=` (`--anonymous-auth false` sets
# true and leaves `false` as a stray argument), so the next argument is never theirs.
BOOL_FLAGS = frozenset({
    "allow-privileged", "anonymous-auth", "audit-log-batch-throttle-enable", "audit-log-compress",
    "audit-log-truncate-enabled", "audit-webhook-batch-throttle-enable", "audit-webhook-truncate-enabled",
    "contention-profiling", "enable-aggregator-routing", "enable-bootstrap-token-auth", "enable-garbage-collector",
    "enable-logs-handler", "enable-priority-and-fairness", "encryption-provider-config-automatic-reload",
    "logtostderr", "permit-address-sharing", "permit-port-sharing", "profiling",
    "service-account-extend-token-expiration", "service-account-lookup", "watch-cache",
})


def _is_flag(item: str) -> bool:
    """`-` alone and negative numbers are values, as spf13/pflag reads them."""
    return item.startswith("-") and len(item) > 1 and not item[1].isdigit()


def parse_flag_values(argv: list, bool_flags: Collection[str] = BOOL_FLAGS) -> dict[str, list[str]]:
    """Every value of every flag, in order, the way spf13/pflag reads a command line (kube-apiserver's unless
    other `bool_flags` are given): `--a=b`, `--a b` (`--audit-log-path -` is stdout; never for bool flags) and
    bare `--a` ("true"); `_` equals `-` in names (component-base's WordSepNormalizeFunc); `--` ends the flags."""
    out: dict[str, list[str]] = {}
    items = [str(a) for a in argv]
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if item == "--":
            break
        if not _is_flag(item):
            continue  # a positional argument
        name, eq, value = item.lstrip("-").partition("=")
        name = name.replace("_", "-")
        if not eq:
            if name not in bool_flags and i < len(items) and not _is_flag(items[i]):
                value, i = items[i], i + 1
            else:
                value = "true"
        out.setdefault(name, []).append(value)
    return out


def parse_flags(argv: list) -> dict[str, str]:
    """The value each flag ends up with: the last occurrence wins, like pflag's string and int flags."""
    return {name: values[-1] for name, values in parse_flag_values(argv).items()}


def _argv(container: dict) -> list:
    """command + args, treating wrong-typed fields as absent (the input is hostile until proven otherwise)."""
    command, args = container.get("command"), container.get("args")
    return [*(command if isinstance(command, list) else []), *(args if isinstance(args, list) else [])]


def is_apiserver_pod(pod: dict) -> bool:
    """A kube-apiserver mirror Pod (of those in kube-system): kubeadm labels it component=kube-apiserver, and the
    kubelet names a mirror Pod after its static Pod and the node (kube-apiserver-cp1) whatever the labels."""
    meta = pod.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    labels = meta.get("labels")
    labels = labels if isinstance(labels, dict) else {}
    return labels.get("component") == "kube-apiserver" or str(meta.get("name", "")).startswith("kube-apiserver")


def apiserver_containers(pod: dict) -> Iterator[dict]:
    """The Pod's kube-apiserver containers: named so, or running a kube-apiserver binary."""
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict):
            continue
        argv = _argv(container)
        if container.get("name") == "kube-apiserver" or any("kube-apiserver" in str(a) for a in argv[:1]):
            yield container


def _from_pod(pod: dict, ref: ResourceRef, origin: str) -> ApiServer | None:
    for container in apiserver_containers(pod):
        argv = _argv(container)
        values = parse_flag_values(argv[1:] if argv and not str(argv[0]).startswith("-") else argv)
        image = str(container.get("image", ""))
        return ApiServer(values, ref, origin, image)
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
            if is_apiserver_pod(pod):
                found = _from_pod(pod, ctx.inv.ref(pod), "inventory")
                if found is not None:
                    out.append(found)
        return out

    return ctx.inv.cached("apiservers", scan)
