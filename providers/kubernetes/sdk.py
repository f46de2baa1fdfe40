"""The narrow seam: the two Kubernetes API reads this provider makes, over urllib3.

Why urllib3 and not the official client: two GETs on one resource, with the CA as data (the
official client wants a file) and pools the call deadline can cut (``http_deadline``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import urllib3

from secretsync.core.errors import SecretSyncError
from secretsync.kube.kinds import SECRETS

from ..http_deadline import install_on_pool_manager
from ..tls import pinned_context
from .config import PROVIDER


class ApiStatus(SecretSyncError):
    """A non-2xx answer: status, Retry-After and the Status body (no Secret data in it)."""

    def __init__(self, status: int, body: bytes, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.retry_after = retry_after


class SecretsApi:
    """GET one Secret, LIST Secrets of a namespace (paged)."""

    def __init__(self, server: str, token: str, ca_pem: str | None, timeout: float) -> None:
        self._server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        # A store's CA is its whole trust (ESO's rule); without one, the system's roots.
        context = pinned_context(ca_pem, provider=PROVIDER, field="server.caBundle / server.caProvider") \
            if ca_pem else None
        self._pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ssl_context=context,
                                         timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
        install_on_pool_manager(self._pool)

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        url = self._server + path + (f"?{urlencode(params)}" if params else "")
        resp = self._pool.request("GET", url, headers=self._headers, preload_content=True)
        if not 200 <= resp.status < 300:
            raise ApiStatus(resp.status, resp.data[:4096], resp.headers.get("Retry-After"))
        doc = json.loads(resp.data)
        if not isinstance(doc, dict):
            raise ValueError("the API server's answer is not a JSON object")
        return doc

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self._get(SECRETS.path(namespace, name))

    def list_secrets(self, namespace: str, label_selector: str = "", cont: str = "") -> dict[str, Any]:
        params = {"limit": "500"}
        if label_selector:
            params["labelSelector"] = label_selector
        if cont:
            params["continue"] = cont
        return self._get(SECRETS.path(namespace), params)

    def close(self) -> None:
        self._pool.clear()
