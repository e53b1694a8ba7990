"""nis2kube: make a Kubernetes cluster provably ready for the EU NIS2 Directive, and keep it that way."""

__version__ = "0.1.0"
