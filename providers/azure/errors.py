"""Map azure-core / azure-identity exceptions onto secretsync's one error tree.

Why here and only here: every SDK call of this provider runs inside
:meth:`AzureKeyVaultClient._call`, which sends whatever the SDK raised through
:func:`map_azure_error` and re-raises the result ``from`` the SDK exception, so no
``azure.*`` type reaches a caller and only a definite 404 becomes :class:`NotFound`.

Messages carry the service's error code and message (Key Vault never echoes a value) or
the exception's first line, cut short; never a request body.

Only Key Vault's own ``404`` with error code ``SecretNotFound``, ``CertificateNotFound`` or
``KeyNotFound`` (a missing secret, certificate or key, or version, or a missing deleted
secret) is :class:`NotFound`. A 404 from anything else (a proxy's HTML
page, an unknown route, a vault URL pointing at some other service) says nothing about the
secret and is :class:`InvalidConfig`.

What stays attached as ``__cause__`` is a value-free twin of the SDK exception
(:func:`mapper` returns it): same type, the summary below as its message, no response object.
An ``HttpResponseError`` carries the raw response (and through it the request, whose body
holds the value on a write), and a ``DecodeError`` quotes the body it could not parse (on a
read, the value); ``traceback.format_exception`` of a mapped error must show neither.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    IncompleteReadError,
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
    TemporaryError,
    Throttled,
    Unavailable,
    parse_retry_after,
)
from secretsync.core.redact import mask_values
from secretsync.core.values import SecretValue

from ..calls import Mapper

PROVIDER = "azure"
_MAX_MESSAGE = 300

#: Key Vault's inner error code for a PUT on a soft-deleted name.
DELETED_BUT_RECOVERABLE = "ObjectIsDeletedButRecoverable"
#: Key Vault's error code for a secret (or version, or deleted secret) that does not exist.
SECRET_NOT_FOUND = "SecretNotFound"
#: Key Vault's error codes for a missing object of each kind (secret, certificate, key).
NOT_FOUND_CODES = frozenset({SECRET_NOT_FOUND, "CertificateNotFound", "KeyNotFound"})


class MalformedAnswer(TemporaryError):
    """A 2xx answer without the shape Key Vault gives it (raised by the api's response check)."""


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
    return isinstance(exc, Conflict) and DELETED_BUT_RECOVERABLE in (exc.code or "").split("/")


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
    return parse_retry_after(raw)


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


def map_azure_error(
    exc: BaseException,
    *,
    operation: str,
    key: str | None = None,
    values: tuple[SecretValue | str, ...] = (),
) -> ProviderError:
    """The secretsync error for an exception raised by the SDK (or azure-identity).

    ``values``: what the call sent that the service's text must not repeat (the value on a put).
    """
    codes = error_codes(exc)
    where: dict[str, Any] = {"provider": PROVIDER, "operation": operation, "key": key,
                             "code": "/".join(codes) or None}
    text = mask_values(_describe(exc), values)
    if isinstance(exc, MalformedAnswer):
        return Unavailable(f"malformed answer from the vault: {exc}", **where)
    if isinstance(exc, IncompleteReadError):
        return Unavailable("the connection broke before a complete answer arrived", **where)
    if isinstance(exc, DecodeError | json.JSONDecodeError):
        return Unavailable(f"malformed answer from the vault (not the JSON Key Vault sends): "
                           f"{type(exc).__name__}", **where)
    # azure-identity's CredentialUnavailableError subclasses ClientAuthenticationError.
    if isinstance(exc, ClientAuthenticationError):
        return AuthenticationFailed(text, **where)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Unavailable(text, **where)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        if status == 404 or isinstance(exc, ResourceNotFoundError):
            if NOT_FOUND_CODES.intersection(codes):
                return NotFound(text, **where)
            return InvalidConfig(
                f"{text} (a 404 that is not Key Vault's SecretNotFound, CertificateNotFound or KeyNotFound: "
                "check the vault URL / endpoint, "
                "or a proxy in front of it)", **where)
        if isinstance(exc, ResourceExistsError):
            return Conflict(text, **where)
        if status == 401:
            return AuthenticationFailed(text, **where)
        if status == 403:
            return PermissionDenied(text, **where)
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


def mapper(values: tuple[SecretValue | str, ...] = ()) -> Mapper:
    """The :data:`providers.calls.Mapper` of one call: the mapped error (``values`` masked) and a
    value-free cause to chain."""

    def mapping(exc: BaseException, operation: str, key: str | None) -> tuple[ProviderError, BaseException | None]:
        error = map_azure_error(exc, operation=operation, key=key, values=values)
        return error, _sanitized_cause(exc, error)

    return mapping


def _sanitized_cause(exc: BaseException, mapped: ProviderError) -> BaseException:
    """What to chain as ``__cause__``: the exception itself when it cannot hold a body or a
    value (transport errors), else a twin of the same type holding only the mapped summary."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError) and not isinstance(exc, HttpResponseError):
        return exc
    summary = str(mapped)
    try:
        if isinstance(exc, AzureError):
            twin: BaseException = type(exc)(message=summary)
        else:
            twin = type(exc)(summary)
    except Exception:  # an exception type with an unusual constructor
        twin = RuntimeError(f"{type(exc).__module__}.{type(exc).__name__}: {summary}")
    return twin.with_traceback(exc.__traceback__)
