"""Map azure-core / azure-identity exceptions onto secretsync's one error tree.

Why here and only here: every SDK call of this provider runs inside
:meth:`AzureKeyVaultClient._call`, which sends whatever the SDK raised through
:func:`map_azure_error` and re-raises the result ``from`` the SDK exception, so no
``azure.*`` type reaches a caller and only a definite 404 becomes :class:`NotFound`.

Messages carry the service's error code and message (Key Vault never echoes a value) or
the exception's first line, cut short; never a request body.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from secretsync.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Unavailable,
)

PROVIDER = "azure"
_MAX_MESSAGE = 300

#: Key Vault's inner error code for a PUT on a soft-deleted name.
DELETED_BUT_RECOVERABLE = "ObjectIsDeletedButRecoverable"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _body(exc: HttpResponseError) -> dict[str, Any]:
    response = exc.response
    if response is None:
        return {}
    try:
        doc = json.loads(response.text())
    except Exception:  # an unread stream, no body, not JSON: no code to report
        return {}
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else {}


def error_codes(exc: BaseException) -> list[str]:
    """Key Vault's error code and inner error codes (outermost first) of an SDK exception."""
    if not isinstance(exc, HttpResponseError):
        return []
    codes: list[str] = []
    err: Any = _body(exc)
    while isinstance(err, dict):
        if isinstance(err.get("code"), str):
            codes.append(err["code"])
        err = err.get("innererror")
    return codes


def is_deleted_but_recoverable(exc: ProviderError) -> bool:
    """Whether a mapped Conflict was Key Vault refusing a PUT on a soft-deleted name."""
    return isinstance(exc, Conflict) and DELETED_BUT_RECOVERABLE in error_codes(exc.__cause__ or exc)


def retry_after(exc: HttpResponseError) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    response = exc.response
    if response is None:
        return None
    headers: Mapping[str, str] = getattr(response, "headers", None) or {}
    raw = headers.get("Retry-After")
    if not raw:
        millis = headers.get("x-ms-retry-after-ms")
        try:
            return max(0.0, float(millis) / 1000.0) if millis else None
        except ValueError:
            return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HttpResponseError):
        err = _body(exc)
        code = err.get("code") or getattr(getattr(exc, "error", None), "code", None)
        message = err.get("message") or getattr(getattr(exc, "error", None), "message", None)
        status = exc.status_code
        parts = [f"HTTP {status}" if status else type(exc).__name__]
        if code:
            parts.append(str(code))
        if message:
            parts.append(str(message))
        if not code and not message:
            parts.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return _short(": ".join(parts))
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return _short(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def map_azure_error(exc: BaseException, *, operation: str, key: str | None = None) -> ProviderError:
    """The secretsync error for an exception raised by the SDK (or azure-identity)."""
    where: dict[str, Any] = {"provider": PROVIDER, "operation": operation, "key": key}
    text = _describe(exc)
    # azure-identity's CredentialUnavailableError subclasses ClientAuthenticationError.
    if isinstance(exc, ClientAuthenticationError):
        return AuthenticationFailed(text, **where)
    if isinstance(exc, ResourceNotFoundError):
        return NotFound(text, **where)
    if isinstance(exc, ResourceExistsError):
        return Conflict(text, **where)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Unavailable(text, **where)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        if status == 401:
            return AuthenticationFailed(text, **where)
        if status == 403:
            return PermissionDenied(text, **where)
        if status == 404:
            return NotFound(text, **where)
        if status == 409:
            return Conflict(text, **where)
        if status == 429:
            return Throttled(text, retry_after=retry_after(exc), **where)
        if status in (400, 405, 413, 414):
            return InvalidConfig(text, **where)
        delay = retry_after(exc) if status == 503 else None
        return Unavailable(text, delay=delay, **where)
    if isinstance(exc, AzureError):
        return Unavailable(text, **where)
    if isinstance(exc, ValueError):
        # The SDK raises ValueError for a challenge that does not match the vault's domain
        # and for malformed URLs: configuration, not an outage.
        return InvalidConfig(text, **where)
    return Unavailable(text, **where)
