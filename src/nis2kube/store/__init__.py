"""The incident store: an append-only event log (SQLite by default, PostgreSQL by URL)."""

from nis2kube.store.db import NotFound, Store, StoreError, default_url

__all__ = ["NotFound", "Store", "StoreError", "default_url"]
