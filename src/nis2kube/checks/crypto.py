"""Cryptography and encryption (NIS2 Art. 21(2)(h); IR 2024/2690 9).

In transit: Ingress hosts served over TLS, mutual TLS inside namespaces that carry plant or personal data
(Istio PeerAuthentication STRICT with sidecar/ambient membership, or Linkerd), the API server's minimum
TLS version and its TLS to etcd. At rest: Secrets encrypted in etcd (`--encryption-provider-config`, and
with `--encryption-config FILE` the provider that actually writes them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import yaml

from nis2kube.apiserver import MISSING_EVIDENCE, ApiServer, apiservers
from nis2kube.checks.registry import CheckContext, InputError, check, read_input_text
from nis2kube.findings import Finding, Severity
from nis2kube.inventory import Inventory
from nis2kube.inventory.selectors import labels_of
from nis2kube.inventory.workloads import Workload, workloads
from nis2kube.inventory.yamlload import load_document

MEASURES = ("art21.2.h", "ir2690.9")
ISTIO = "security.istio.io"
DEFAULT_SENSITIVE_LABEL = "nis2kube.io/data"
DEFAULT_SENSITIVE_VALUES = ("plant", "personal")
MAX_CONFIG_BYTES = 1024 * 1024
STRONG_TLS = ("VersionTLS12", "VersionTLS13")
# crypto/tls InsecureCipherSuites(), which --tls-cipher-suites still accepts (component-base cli/flag)
INSECURE_CIPHERS = frozenset({
    "TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
})
NO_POLICY = "Istio default, no PeerAuthentication"
PROVIDERS = ("kms", "aesgcm", "aescbc", "secretbox", "identity")  # EncryptionConfiguration provider types
LINKERD_INJECT = ("enabled", "ingress")  # linkerd.io/inject values that add the proxy


# ---- Ingress TLS --------------------------------------------------------------------------------------


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []



def tls_covers(tls_host: str, host: str) -> bool:
    """Ingress host matching: exact, or `*.example.com` covering exactly one more label (`a.example.com`)."""
    if tls_host == host:
        return True
    if tls_host.startswith("*.") and not host.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == tls_host[2:]
    return False


@check(
    id="crypto.ingress-tls",
    title="Every Ingress host is served over TLS",
    severity=Severity.HIGH,
    measures=(*MEASURES, "art21.2.j"),
    remediation="Add the host to spec.tls[].hosts with a certificate Secret (e.g. issued by cert-manager), and "
    "redirect HTTP to HTTPS.",
)
def ingress_tls(ctx: CheckContext) -> Iterator[Finding]:
    """A rule host counts as TLS-served when a spec.tls entry lists it (wildcards cover one label); a rule
    without host needs a tls entry without hosts (the controller's default certificate)."""
    reason = ctx.unlisted(("Ingress", "networking.k8s.io"))
    if reason:
        yield ctx.not_assessed(None, reason)
        return
    for ing in ctx.inv.objects("Ingress"):
        spec = _d(ing.get("spec"))
        tls = [t for t in _l(spec.get("tls")) if isinstance(t, dict)]
        tls_hosts = [str(h) for t in tls for h in _l(t.get("hosts"))]
        default_cert = any(not t.get("hosts") for t in tls)
        hosts = [str(r.get("host") or "") for r in _l(spec.get("rules")) if isinstance(r, dict)]
        if not hosts and spec.get("defaultBackend"):
            hosts = [""]
        plain = [h or "(any host)" for h in hosts
                 if not (default_cert if not h else any(tls_covers(t, h) for t in tls_hosts))]
        if plain:
            yield ctx.fail(ing, f"served without TLS: {', '.join(sorted(set(plain)))}",
                           evidence={"hosts": hosts, "tls_hosts": tls_hosts})
        elif hosts:
            yield ctx.passed(ing, f"all {len(hosts)} host(s) are covered by spec.tls", evidence={"hosts": hosts})


# ---- mTLS for sensitive namespaces --------------------------------------------------------------------


def _sensitive(ctx: CheckContext) -> tuple[str, tuple[str, ...]]:
    section = ctx.config.section("crypto")
    label = section.get("sensitive_label", DEFAULT_SENSITIVE_LABEL)
    values = section.get("sensitive_values", list(DEFAULT_SENSITIVE_VALUES))
    if not isinstance(label, str) or not label:
        raise InputError("nis2kube.yaml crypto.sensitive_label must be a label key")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError("nis2kube.yaml crypto.sensitive_values must be a list of label values")
    return label, tuple(values)


def _pa_mode(mtls: object) -> str:
    return str(_d(mtls).get("mode") or "UNSET").upper()


def _oldest_first(policies: list[dict]) -> list[dict]:
    """Istio's order (sortConfigByCreationTime): creationTimestamp, then name; in each scope the oldest wins."""
    return sorted(policies, key=lambda pa: (str(_d(pa.get("metadata")).get("creationTimestamp") or ""),
                                            str(_d(pa.get("metadata")).get("name") or "")))


def _workload_level(pa: dict) -> bool:
    """A selector with matchLabels makes a workload policy; no selector or empty matchLabels is namespace-wide."""
    return bool(_d(_d(_d(pa.get("spec")).get("selector")).get("matchLabels")))


def _wide_mode(policies: list[dict], namespace: str) -> tuple[str, str] | None:
    """(mode, source) of the oldest namespace-wide policy of one scope; None without one or when it is UNSET
    (the scope inherits from the one above)."""
    wide = _oldest_first([pa for pa in policies if not _workload_level(pa)])
    if wide and (found := _pa_mode(_d(wide[0].get("spec")).get("mtls"))) != "UNSET":
        return found, f"PeerAuthentication {namespace}/{wide[0]['metadata'].get('name', '')}"
    return None


def _mesh_mode(ctx: CheckContext, root: str) -> tuple[str, str]:
    """The mesh-wide (root namespace) mode every namespace inherits; with no policy at all Istio is PERMISSIVE.
    Read once per scan, not once per namespace."""
    return _wide_mode(ctx.inv.in_namespace("PeerAuthentication", root, ISTIO), root) or ("PERMISSIVE", NO_POLICY)


def _istio_mode(ctx: CheckContext, namespace: str, root: str, mesh: tuple[str, str]) -> tuple[str, str, list[str]]:
    """(effective namespace-wide mode, where it comes from, workload-level PeerAuthentications weakening it).

    Istio's ComposePeerAuthentication: per scope only the oldest policy counts; the workload policy overrides
    the namespace policy, which overrides the mesh policy (`mesh`, from the root namespace); UNSET inherits
    from the scope above. portLevelMtls only applies to workload policies."""
    if namespace == root:
        return *mesh, []
    policies = ctx.inv.in_namespace("PeerAuthentication", namespace, ISTIO)
    mode, source = _wide_mode(policies, namespace) or mesh
    weaker = []
    for pa in policies:
        if not _workload_level(pa):
            continue
        spec = _d(pa.get("spec"))
        own = _pa_mode(spec.get("mtls"))
        own = mode if own == "UNSET" else own
        ports = [_pa_mode(p) for p in _d(spec.get("portLevelMtls")).values() if isinstance(p, dict)]
        if any(m in ("DISABLE", "PERMISSIVE") for m in (own, *ports)):
            weaker.append(str(pa["metadata"].get("name", "")))
    return mode, source, weaker


def _in_istio(labels: dict[str, str]) -> bool:
    """Sidecar injection by istio-injection=enabled, or istio.io/rev when istio-injection is absent (the
    revision webhook's namespaceSelector requires that); or ambient enrolment."""
    injected = labels.get("istio-injection") == "enabled" or (
        "istio-injection" not in labels and "istio.io/rev" in labels)
    return injected or labels.get("istio.io/dataplane-mode") == "ambient"


def _workloads_in(inv: Inventory) -> dict[str, list[Workload]]:
    """The workloads by namespace, built once: every sensitive namespace looks its own up."""
    def build() -> dict[str, list[Workload]]:
        out: dict[str, list[Workload]] = defaultdict(list)
        for w in workloads(inv):
            out[w.namespace].append(w)
        return dict(out)

    return inv.cached("crypto:workloads-by-namespace", build)


def _linkerd(ctx: CheckContext, namespace: str, annotations: dict) -> tuple[bool, list[str]]:
    """(Linkerd injects into the namespace, its workloads left without a proxy).

    The proxy injector reads linkerd.io/inject from the pod (template) first, then the namespace; `enabled`
    and `ingress` inject, `disabled` overrides an enabled namespace."""
    default = annotations.get("linkerd.io/inject")
    values = {f"{w.kind}/{w.name}": w.pod_annotations.get("linkerd.io/inject", default)
              for w in _workloads_in(ctx.inv).get(namespace, ())}
    injected = default in LINKERD_INJECT or any(v in LINKERD_INJECT for v in values.values())
    return injected, [name for name, v in values.items() if injected and v not in LINKERD_INJECT]


@check(
    id="crypto.mtls-sensitive",
    title="Namespaces carrying plant or personal data use mutual TLS",
    severity=Severity.HIGH,
    measures=(*MEASURES, "art21.2.j"),
    remediation="Enrol the namespace in the mesh (istio-injection=enabled or ambient; or linkerd.io/inject: "
    "enabled) and set a PeerAuthentication with mtls.mode: STRICT for it.",
)
def mtls_sensitive(ctx: CheckContext) -> Iterator[Finding]:
    """Namespaces labelled crypto.sensitive_label (nis2kube.io/data) with a value in crypto.sensitive_values
    (plant, personal) must only accept mTLS: Istio STRICT plus mesh membership, or Linkerd injection."""
    reason = ctx.unlisted(("Namespace", ""), ("PeerAuthentication", ISTIO))
    if reason:
        yield ctx.not_assessed(None, reason)
        return
    label, values = _sensitive(ctx)
    root = str(ctx.config.section("crypto").get("istio_root_namespace", "istio-system"))
    namespaces = [ns for ns in ctx.inv.objects("Namespace") if labels_of(ns).get(label) in values]
    if not namespaces:
        yield ctx.not_assessed(None, f"no Namespace is labelled {label} with one of {', '.join(values)}; label the "
                                     "namespaces that hold plant or personal data")
        return
    mesh = _mesh_mode(ctx, root)
    for ns in namespaces:
        name = str(ns["metadata"].get("name", ""))
        labels = labels_of(ns)
        annotations = _d(_d(ns.get("metadata")).get("annotations"))
        kind = labels.get(label)
        linkerd, unmeshed = _linkerd(ctx, name, annotations)
        if linkerd:
            policy = annotations.get("config.linkerd.io/default-inbound-policy", "the cluster default")
            if unmeshed:
                yield ctx.fail(ns, f"{kind} data: Linkerd meshes the namespace, but {', '.join(unmeshed)} run "
                                   "without its proxy (linkerd.io/inject not enabled on the pod template), so their "
                                   "traffic is plaintext", evidence={"mesh": "linkerd", "unmeshed": unmeshed})
            else:
                yield ctx.passed(ns, f"{kind} data: Linkerd injects its proxies, which use mTLS between meshed pods "
                                     f"(default inbound policy: {policy})", evidence={"mesh": "linkerd"})
            continue
        mode, source, weaker = _istio_mode(ctx, name, root, mesh)
        evidence = {"mode": mode, "source": source, "mesh_member": _in_istio(labels), "weakened_by": weaker}
        if mode != "STRICT" and not _in_istio(labels) and source == NO_POLICY:
            yield ctx.fail(ns, f"{kind} data, but the namespace is in no service mesh (no Istio enrolment or "
                               "PeerAuthentication, no Linkerd injection): pod traffic is plaintext unless each "
                               "application does TLS itself", evidence=evidence)
        elif mode != "STRICT":
            yield ctx.fail(ns, f"{kind} data without mandatory mTLS: effective mode {mode} ({source})",
                           evidence=evidence)
        elif not _in_istio(labels):
            yield ctx.fail(ns, f"{kind} data: {source} is STRICT but the namespace is not in the mesh (no "
                               "istio-injection=enabled, istio.io/rev or ambient label), so no proxy enforces it",
                           evidence=evidence)
        elif weaker:
            yield ctx.fail(ns, f"{kind} data: STRICT namespace-wide, but PeerAuthentication(s) "
                               f"{', '.join(weaker)} allow plaintext for some workloads or ports", evidence=evidence)
        else:
            yield ctx.passed(ns, f"{kind} data: mTLS STRICT ({source}) and the namespace is in the mesh",
                             evidence=evidence)


# ---- API server: encryption at rest, TLS ---------------------------------------------------------------


@check(
    id="crypto.encryption-at-rest",
    title="The API server encrypts Secrets at rest in etcd",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Set --encryption-provider-config to an EncryptionConfiguration whose first provider for "
    "secrets is kms (v2), aesgcm or secretbox; then rewrite existing Secrets (kubectl get secrets -A -o json | "
    "kubectl replace -f -).",
)
def encryption_at_rest(ctx: CheckContext) -> Iterator[Finding]:
    """Without --encryption-provider-config, Secrets sit in etcd (and its backups) as plaintext."""
    servers = apiservers(ctx)
    if not servers:
        yield ctx.not_assessed(None, MISSING_EVIDENCE)
        return
    for server in servers:
        path = server.get("encryption-provider-config")
        if path:
            yield ctx.passed(server.ref, f"--encryption-provider-config={path}", evidence={"flag": path})
        else:
            yield ctx.fail(server.ref, "--encryption-provider-config is not set: Secrets are stored in etcd in "
                                       "plaintext (and in every etcd backup)")


def load_encryption_config(path: str) -> list[dict]:
    """The `resources` list of an EncryptionConfiguration file; InputError names the file and field."""
    where = f"--encryption-config {path}"
    text = read_input_text(path, "--encryption-config", MAX_CONFIG_BYTES, "an EncryptionConfiguration")
    try:
        doc = load_document(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise InputError(f"{where}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
        raise InputError(f"{where}: not an EncryptionConfiguration (kind: EncryptionConfiguration, "
                         "apiVersion: apiserver.config.k8s.io/v1)")
    entries = doc.get("resources")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"{where}: resources must be a list of {{resources, providers}} entries")
    for i, entry in enumerate(entries):
        if not isinstance(entry.get("resources"), list) or not isinstance(entry.get("providers"), list):
            raise InputError(f"{where}: resources[{i}] needs a resources list and a providers list")
        if not entry["providers"]:
            raise InputError(f"{where}: resources[{i}].providers is empty")
        for j, provider in enumerate(entry["providers"]):
            if not isinstance(provider, dict) or len(provider) != 1 or next(iter(provider)) not in PROVIDERS:
                raise InputError(f"{where}: resources[{i}].providers[{j}] must name exactly one of "
                                 f"{', '.join(PROVIDERS)} (the API server refuses the file otherwise)")
    return entries


def covers_secrets(resource: object) -> bool:
    """schema.ParseGroupResource as the API server reads the entry: `secrets` (or `secrets.`), every resource
    of the core group `*.`, or of every group `*.*`."""
    name, _, group = str(resource).partition(".")
    return (group, name) in (("", "secrets"), ("", "*"), ("*", "*"))


def secrets_provider(entries: list[dict]) -> tuple[str, dict, int] | None:
    """(provider name, its settings, entry index) that writes Secrets: the first provider of the first
    entry whose resources cover secrets; None when no entry covers them."""
    for i, entry in enumerate(entries):
        if any(covers_secrets(r) for r in entry["resources"]):
            name, settings = next(iter(entry["providers"][0].items()))
            return str(name), _d(settings), i
    return None


@check(
    id="crypto.secrets-provider",
    title="The provider that writes Secrets to etcd actually encrypts",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Put kms (apiVersion: v2), aesgcm or secretbox first in the providers for secrets; keep "
    "identity only after them, for reading data written before encryption was enabled.",
)
def secrets_provider_check(ctx: CheckContext) -> Iterator[Finding]:
    """Judged from the --encryption-config file: the first provider writes, so `identity` first means no
    encryption; aescbc is not recommended upstream (padding-oracle exposure) and KMS v1 is deprecated."""
    entries = ctx.input("encryption_config", load_encryption_config)
    if entries is None:
        yield ctx.not_assessed(None, "give the API server's EncryptionConfiguration with --encryption-config FILE "
                                     "(on managed clusters, attest the provider's envelope encryption)")
        return
    found = secrets_provider(entries)
    path = ctx.inputs.get("encryption_config")
    if found is None:
        yield ctx.fail(None, f"{path}: no entry covers secrets, so they are stored unencrypted")
        return
    name, settings, index = found
    evidence = {"file": path, "entry": index, "provider": name}
    if name == "identity":
        yield ctx.fail(None, f"{path}: the first provider for secrets (resources[{index}]) is identity: new Secrets "
                             "are written unencrypted", evidence=evidence)
    elif name == "aescbc":
        yield ctx.fail(None, f"{path}: secrets are written with aescbc (resources[{index}]), which upstream no "
                             "longer recommends; "
                             "use kms v2, aesgcm or secretbox", severity=Severity.LOW, evidence=evidence)
    elif name == "kms" and str(settings.get("apiVersion", "v1")) != "v2":
        yield ctx.fail(None, f"{path}: secrets are written with KMS v1 (resources[{index}]), deprecated since "
                             "Kubernetes 1.28; "
                             "migrate to KMS v2", severity=Severity.LOW, evidence=evidence)
    else:
        yield ctx.passed(None, f"{path}: secrets are written with {name} (resources[{index}])", evidence=evidence)


@check(
    id="crypto.apiserver-tls-version",
    title="The API server refuses TLS below 1.2",
    severity=Severity.MEDIUM,
    measures=MEASURES,
    remediation="Set --tls-min-version=VersionTLS12 (or VersionTLS13) on kube-apiserver.",
)
def apiserver_tls_version(ctx: CheckContext) -> Iterator[Finding]:
    """Unset means the Go library default of the build, which allowed TLS 1.0 for servers before Go 1.22. With
    TLS 1.2 the --tls-cipher-suites must not name Go's insecure suites (TLS 1.3 suites are not configurable)."""
    servers = apiservers(ctx)
    if not servers:
        yield ctx.not_assessed(None, MISSING_EVIDENCE)
        return
    for server in servers:
        value = server.get("tls-min-version")
        weak = [c for c in server.list("tls-cipher-suites") if c in INSECURE_CIPHERS]
        if value == "VersionTLS12" and weak:
            yield ctx.fail(server.ref, f"--tls-min-version={value}, but --tls-cipher-suites allows insecure suites: "
                                       f"{', '.join(weak)}", evidence={"insecure_cipher_suites": weak})
        elif value in STRONG_TLS:
            yield ctx.passed(server.ref, f"--tls-min-version={value}")
        elif value:
            yield ctx.fail(server.ref, f"--tls-min-version={value} allows TLS versions below 1.2")
        else:
            yield ctx.fail(server.ref, "--tls-min-version is not set: the minimum depends on the Go version the "
                                       "API server was built with", severity=Severity.LOW)


def etcd_endpoints(server: ApiServer) -> list[str]:
    """--etcd-servers plus the servers of --etcd-servers-overrides (`group/resource#url;url,...`)."""
    overrides = [url for item in server.list("etcd-servers-overrides")
                 for url in item.partition("#")[2].split(";") if url.strip()]
    return [*server.list("etcd-servers"), *(url.strip() for url in overrides)]


@check(
    id="crypto.etcd-tls",
    title="The API server talks to etcd over authenticated TLS",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Set --etcd-cafile, --etcd-certfile and --etcd-keyfile and use https:// in --etcd-servers.",
)
def etcd_tls(ctx: CheckContext) -> Iterator[Finding]:
    """etcd holds every Secret; the link to it must be encrypted and both ends authenticated (CIS 1.2.x)."""
    servers = apiservers(ctx)
    if not servers:
        yield ctx.not_assessed(None, MISSING_EVIDENCE)
        return
    for server in servers:
        missing = [f"--{f}" for f in ("etcd-cafile", "etcd-certfile", "etcd-keyfile") if not server.get(f)]
        plain = [s for s in etcd_endpoints(server) if s.lower().startswith("http://")]
        if missing or plain:
            problems = ([f"{', '.join(missing)} not set"] if missing else []) + (
                [f"plaintext etcd endpoint(s) {', '.join(plain)}"] if plain else [])
            yield ctx.fail(server.ref, "; ".join(problems), evidence={"missing": missing, "plaintext": plain})
        else:
            yield ctx.passed(server.ref, "etcd client TLS with CA, certificate and key; all endpoints https")
