"""Kubernetes API answers -> contract errors (the one mapping of this provider)."""

from __future__ import annotations

import json
from typing import Any

from secretsync.core.errors import (
    AuthenticationFailed,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Unavailable,
)

from ..tls import UNTRUSTED, handshake_failure
from .config import PROVIDER
from .sdk import ApiStatus


def _status(body: bytes) -> dict[str, object]:
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def map_error(exc: BaseException, operation: str, key: str | None) -> tuple[ProviderError, BaseException | None]:
    """A definite NotFound only for a ``Status`` 404 about a Secret; the value-free cause is
    the status line (an API server never echoes Secret data in a Status)."""
    where: dict[str, Any] = {"provider": PROVIDER, "operation": operation, "key": key}
    if not isinstance(exc, ApiStatus):
        if handshake_failure(exc) == UNTRUSTED:
            # The store's CA does not vouch for this server: configuration, not an outage to wait out.
            return InvalidConfig("TLS handshake failed: the API server's certificate is not trusted by the "
                                 "store's CA (server.caBundle / server.caProvider)", **where), None
        return Unavailable(f"cannot reach the API server: {type(exc).__name__}", provider=PROVIDER,
                           operation=operation, key=key), None
    doc = _status(exc.body)
    details = doc.get("details")
    reason = str(doc.get("reason") or "")
    cause = RuntimeError(f"HTTP {exc.status} {reason}")
    code = str(exc.status)
    about_secret = isinstance(details, dict) and details.get("kind") == "secrets"
    error: ProviderError
    if exc.status == 404 and doc.get("kind") == "Status" and reason == "NotFound" and about_secret:
        error = NotFound("no such Secret", code=code, **where)
    elif exc.status == 401:
        error = AuthenticationFailed("HTTP 401: the API server does not accept the store's token", code=code,
                                     **where)
    elif exc.status == 403:
        error = PermissionDenied(f"HTTP {exc.status} {reason}: the store's identity may not do this",
                                 code=code, **where)
    elif exc.status == 429:
        try:
            delay = float(exc.retry_after or 1)
        except ValueError:
            delay = 1.0
        error = Throttled("the API server asked to slow down", retry_after=delay, code=code, **where)
    elif exc.status == 404:
        error = InvalidConfig("HTTP 404 that is not about a Secret (wrong server URL or namespace?)",
                              code=code, **where)
    elif exc.status >= 500:
        error = Unavailable(f"HTTP {exc.status} {reason}", code=code, **where)
    else:
        error = InvalidConfig(f"HTTP {exc.status} {reason}", code=code, **where)
    return error, cause
