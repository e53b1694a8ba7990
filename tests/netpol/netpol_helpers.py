"""Helpers for reachability truth tables in the shape of the upstream e2e suite.

Namespaces x, y, z (labelled ns=<name>; quoted in YAML, where a bare `y` is the boolean true) each run
pods a, b, c (labelled pod=<name>) serving 80/TCP as
`serve-80-tcp`, 81/TCP as `serve-81-tcp` and 53/UDP as `dns`. A table lists rows (from) and columns (to)
as `.` allowed / `X` denied, grouped by namespace:

         x   y   z
    x/a ... ... ...
"""

from __future__ import annotations

from nis2kube.inventory import Inventory
from nis2kube.inventory.files import load_text
from nis2kube.netpol import Model, build_model
from nis2kube.netpol.explain import pair_ports

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PROBE = [f"{ns}/{p}" for ns in NAMESPACES for p in PODS]


def pod_yaml(ns: str, name: str, labels: dict | None = None, host_network: bool = False,
             ports: str = "") -> str:
    labels = labels if labels is not None else {"pod": name}
    ports = ports or ("[{name: serve-80-tcp, containerPort: 80}, {name: serve-81-tcp, containerPort: 81}, "
                      "{name: dns, containerPort: 53, protocol: UDP}]")
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: "{ns}", labels: {labels}}}
spec:
  hostNetwork: {str(host_network).lower()}
  containers: [{{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.47, ports: {ports}}}]
"""


def inventory(text: str) -> Inventory:
    """An Inventory from YAML text, read exactly as files are."""
    loaded = load_text(text, "test.yaml")
    inv = Inventory()
    inv.problems.extend(loaded.problems)
    inv.extend(loaded.objects)
    return inv


def cluster(policies: str = "", extra: str = "") -> Model:
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: \"{ns}\", labels: {{ns: \"{ns}\"}}}}"
            for ns in NAMESPACES]
    docs += [pod_yaml(ns, p) for ns in NAMESPACES for p in PODS]
    text = "\n---\n".join(docs) + "\n---\n" + policies + ("\n---\n" + extra if extra else "")
    model = build_model(inventory(text))
    assert not model.problems, model.problems
    return model


def truth(model: Model, port: int, protocol: str = "TCP") -> str:
    """The probe table of the grouped engine, after checking the pairwise explainer agrees cell by cell."""
    matrix = model.matrix()
    index = {e.id: i for i, e in enumerate(model.endpoints)}
    lines = []
    for src in PROBE:
        cells = []
        for dst in PROBE:
            s, d = index[src], index[dst]
            ports = matrix.ports(model.class_of[s], model.class_of[d])
            naive = pair_ports(model, model.endpoints[s], model.endpoints[d])
            assert ports == naive, f"{src}->{dst}: engine {ports.describe()} != pairwise {naive.describe()}"
            cells.append("." if ports.contains(protocol, port) else "X")
        lines.append(f"{src} " + " ".join("".join(cells[i:i + 3]) for i in range(0, 9, 3)))
    return "\n".join(lines)


def table(text: str) -> str:
    """An expected table as written in a test: header line dropped, whitespace normalised."""
    rows = [line.split() for line in text.strip().splitlines()[1:]]
    return "\n".join(f"{r[0]} {' '.join(r[1:])}" for r in rows)


ALL_ALLOWED = """
        x   y   z
x/a    ... ... ...
x/b    ... ... ...
x/c    ... ... ...
y/a    ... ... ...
y/b    ... ... ...
y/c    ... ... ...
z/a    ... ... ...
z/b    ... ... ...
z/c    ... ... ...
"""
