"""Read-only HTTP to the Kubernetes API server: authentication from the official client, GET only.

The `kubernetes` package is used for what it does best and nothing else: reading kubeconfig files
(several in KUBECONFIG, contexts, exec credential plugins, OIDC) or the in-cluster service account, and
building the TLS pool from them. Requests are plain urllib3 GETs so the scanner never builds model
objects and cannot, by construction, send a verb that writes.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 10.0
MAX_BODY_BYTES = 512 * 1024 * 1024  # one page; a hostile or broken server cannot exhaust memory


class LiveError(Exception):
    """The cluster cannot be scanned at all (no kubeconfig, authentication refused, server unreachable)."""


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = ""


@dataclass
class ClusterTarget:
    """What to connect to; mirrors kubectl's flags."""

    kubeconfig: str | None = None  # a path, or several joined by os.pathsep like KUBECONFIG
    context: str | None = None
    request_timeout: float = 30.0
    attempts: int = 5  # per request, for 429/5xx/timeouts
    backoff_base: float = 0.25  # seconds; doubled per attempt, with jitter


@dataclass
class Transport:
    """A connected, authenticated GET-only client for one API server."""

    host: str
    cluster: str  # kubeconfig context name, or "in-cluster"
    target: ClusterTarget
    _pool: Any = field(repr=False, default=None)
    _configuration: Any = field(repr=False, default=None)
    _auth_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _auth_headers(self) -> dict[str, str]:
        # The refresh hook (exec plugins, in-cluster token rotation) is not thread-safe: serialise it.
        with self._auth_lock:
            settings = self._configuration.auth_settings()
        out = {}
        for setting in settings.values():
            if setting.get("in") == "header" and setting.get("value"):
                out[setting["key"]] = setting["value"]
        return out

    def get(self, path: str, params: dict[str, str] | None = None, accept: str = "application/json") -> Response:
        """GET with retries on 429 (honouring Retry-After), 5xx, timeouts and dropped connections."""
        import urllib3

        url = self.host.rstrip("/") + path + ("?" + urlencode(params) if params else "")
        timeout = urllib3.Timeout(connect=min(10.0, self.target.request_timeout), read=self.target.request_timeout)
        last_error = ""
        for attempt in range(self.target.attempts):
            headers = {"Accept": accept, "User-Agent": "nis2kube (read-only)", **self._auth_headers()}
            delay = self.target.backoff_base * (2**attempt) * (0.5 + random.random())
            try:
                resp = self._pool.request(
                    "GET", url, headers=headers, timeout=timeout, retries=False, redirect=False,
                    preload_content=False,
                )
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError,
                    urllib3.exceptions.NewConnectionError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(delay)
                continue
            except urllib3.exceptions.HTTPError as exc:
                raise LiveError(f"{url}: {exc}") from None
            try:
                body = _read_bounded(resp)
            except urllib3.exceptions.HTTPError as exc:
                last_error = f"{type(exc).__name__} while reading: {exc}"
                time.sleep(delay)
                continue
            finally:
                resp.release_conn()
            if resp.status in RETRY_STATUSES and attempt + 1 < self.target.attempts:
                last_error = f"HTTP {resp.status}"
                time.sleep(_retry_after(resp.headers.get("Retry-After"), delay))
                continue
            return Response(resp.status, body, resp.headers.get("Content-Type", ""))
        raise LiveError(f"GET {path}: no answer after {self.target.attempts} attempts ({last_error})")


def _read_bounded(resp: Any) -> bytes:
    chunks, size = [], 0
    for chunk in resp.stream(1 << 20):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise LiveError(f"response over {MAX_BODY_BYTES:,} bytes; refusing to read it")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(header: str | None, default: float) -> float:
    """Retry-After in seconds (the API server sends an integer), capped; our backoff when absent or odd."""
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(header))) if header else default
    except ValueError:
        return default


def connect(target: ClusterTarget) -> Transport:
    """Load credentials like kubectl: --kubeconfig/KUBECONFIG/~/.kube/config, else the in-cluster account."""
    try:
        from kubernetes import client, config
        from kubernetes.client.rest import RESTClientObject
        from kubernetes.config.config_exception import ConfigException
    except ImportError:  # pragma: no cover - a declared dependency
        raise LiveError("live mode needs the `kubernetes` package (pip install kubernetes)") from None

    configuration = client.Configuration()
    try:
        if _use_in_cluster(target):
            config.load_incluster_config(client_configuration=configuration)
            cluster = "in-cluster"
        else:
            files = target.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            config.load_kube_config(config_file=files, context=target.context,
                                    client_configuration=configuration, persist_config=False)
            cluster = target.context or _current_context(files)
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        where = target.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise LiveError(f"cannot load cluster credentials from {where}: {exc}") from None
    configuration.retries = False
    configuration.connection_pool_maxsize = 32
    pool = RESTClientObject(configuration).pool_manager
    return Transport(configuration.host, cluster, target, pool, configuration)


def _use_in_cluster(target: ClusterTarget) -> bool:
    """In a Pod with no kubeconfig anywhere, use the mounted service account (as client-go does)."""
    if target.kubeconfig or target.context or os.environ.get("KUBECONFIG"):
        return False
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.path.exists(
        os.path.expanduser("~/.kube/config"))


def _current_context(files: str) -> str:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=files)
    except Exception:
        return "current-context"
    return str((active or {}).get("name") or "current-context")
