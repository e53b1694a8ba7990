"""Check families, one module each; `registry` holds the decorator and the contexts checks receive."""

from nis2kube.checks.registry import CheckContext, CheckSpec, ScanContext, all_checks, check

__all__ = ["CheckContext", "CheckSpec", "ScanContext", "all_checks", "check"]
