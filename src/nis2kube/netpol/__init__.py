"""NetworkPolicy v1 (and ANP/BANP v1alpha1) reachability: which workload can reach which, on which port, and why.

Public API: `build_model(inv)` -> Model with `can_reach(src, dst, port, protocol)` and `matrix()`;
`flows.load_flows(path)` and `flows.verify(model, spec)` for declared-flow verification.
"""

from nis2kube.netpol.model import Endpoint, Model, build_model

__all__ = ["Endpoint", "Model", "build_model"]
