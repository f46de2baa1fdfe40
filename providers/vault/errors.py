"""Map hvac / requests exceptions into the secretsync error tree, in one place.

Why one function: every HTTP call the adapter makes goes through :func:`map_error`, so no
SDK exception type can leak past the provider boundary, and the decisions that matter for
safety live side by side:

* a 404 is :class:`NotFound` (the only error that may drive a prune) *only* when the mount
  exists: Vault answers ``no handler for route`` with a 404 when the mount is missing, and
  treating that as "every secret is gone" would make a controller delete everything after a
  typo in the mount name; it is :class:`InvalidConfig` instead;
* a 403 is :class:`PermissionDenied` here; the caller turns it into
  :class:`AuthenticationFailed` when a token lookup shows the token itself is invalid;
* a failed compare-and-set (a 400 from Vault) is :class:`Conflict`, other 400s are
  :class:`InvalidConfig`.

Messages carry Vault's own error strings (which name paths, never values), shortened.

The transport reads HTTP answers itself (:func:`error_for_response`) rather than through
hvac's exceptions, because whether a 404 is *Vault's* "no such secret" depends on what hvac
throws away: the content type and the exact body. Only these are definite:

* ``404`` with Vault's JSON ``{"errors": []}`` (no secret, version or folder at that path);
* ``404`` with a KV v2 body whose ``data.data`` is null and ``data.metadata`` an object (the
  current version is deleted or destroyed).

A 404 with a text/HTML body (a proxy, a load balancer, a wrong address), with an error
string, or with warnings (``Invalid path for a versioned K/V secrets engine``: a KV v1/v2
mix-up) is :class:`InvalidConfig`: it says nothing about the secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import hvac.exceptions as hvac_exc
import requests

from secretsync.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Unavailable,
    parse_retry_after,
)
from secretsync.core.redact import mask_values
from secretsync.core.values import SecretValue

from ..tls import CLIENT_CERT_REQUIRED, UNTRUSTED, handshake_failure

PROVIDER = "vault"
_MAX_MESSAGE = 300

#: Vault's message for a compare-and-set mismatch (HTTP 400).
CAS_MISMATCH = "check-and-set parameter did not match"
#: Part of the storage backends' message for an entry over their size limit (raft: 1 MiB).
TOO_LARGE = "too large"
#: Vault's message when no mount serves the path (HTTP 404): a config error, not an absent secret.
NO_ROUTE = "no handler for route"


def vault_messages(exc: BaseException) -> str:
    """Vault's error strings of an hvac exception (no URL, no body), shortened."""
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list):
        text = "; ".join(str(e) for e in errors if e)
    elif isinstance(errors, str):
        text = errors
    else:
        text = ""
    text = " ".join(text.split())
    return text[:_MAX_MESSAGE]


def map_error(exc: BaseException, *, operation: str, key: str | None = None) -> ProviderError:
    """The secretsync error for an hvac or requests exception (callers ``raise ... from exc``)."""

    def where(cls: type[ProviderError], message: str) -> ProviderError:
        return cls(message, provider=PROVIDER, operation=operation, key=key)

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, hvac_exc.VaultError):
        detail = vault_messages(exc)
        if isinstance(exc, hvac_exc.InvalidPath):
            if NO_ROUTE in detail:
                return where(InvalidConfig, f"no such mount or path ({detail}); check the store's mount")
            if _is_definite_404(exc.errors, exc.json):
                return where(NotFound, "secret not found")
            return where(InvalidConfig, "HTTP 404 that is not Vault's answer for a missing secret"
                         f"{_suffix(detail)}; check the address and mount")
        if isinstance(exc, hvac_exc.Forbidden):
            return where(PermissionDenied, f"permission denied{_suffix(detail, 'permission denied')}")
        if isinstance(exc, hvac_exc.Unauthorized):
            return where(AuthenticationFailed, f"unauthorized{_suffix(detail)}")
        if isinstance(exc, hvac_exc.RateLimitExceeded):
            return where(Throttled, f"rate limit exceeded{_suffix(detail)}")
        if isinstance(exc, hvac_exc.InvalidRequest):
            if CAS_MISMATCH in detail:
                return where(Conflict, "version changed (check-and-set failed)")
            return where(InvalidConfig, f"invalid request{_suffix(detail)}")
        if TOO_LARGE in detail.lower():
            # Raft answers an over-sized entry with a 500: retrying would never help.
            return where(InvalidConfig, f"value too large for the server's storage{_suffix(detail)}")
        if isinstance(exc, hvac_exc.InternalServerError | hvac_exc.VaultDown | hvac_exc.BadGateway
                      | hvac_exc.VaultNotInitialized | hvac_exc.UnexpectedError):
            return where(Unavailable, f"server error{_suffix(detail)}")
        if isinstance(exc, hvac_exc.PreconditionFailed):
            # Performance standbys answer 412 until they catch up: temporary.
            return where(Unavailable, f"precondition failed{_suffix(detail)}")
        return where(InvalidConfig, f"{type(exc).__name__}{_suffix(detail)}")
    if isinstance(exc, requests.exceptions.SSLError):
        failure = handshake_failure(exc)
        if failure == UNTRUSTED:
            return where(InvalidConfig, "TLS handshake failed: the server's certificate is not trusted; give its "
                         "CA (caBundle, caProvider, caCert / VAULT_CACERT)")
        if failure == CLIENT_CERT_REQUIRED:
            return where(InvalidConfig, "TLS handshake failed: the server requires a client certificate "
                         "(tls.certSecretRef/keySecretRef, or auth.cert)")
        return where(InvalidConfig, "TLS handshake failed: check the address scheme (?tls=false or http:// "
                     "for a plain-HTTP server), the CA (caBundle, caProvider, caCert / VAULT_CACERT) and the "
                     "client certificate (tls, auth.cert)")
    if isinstance(exc, requests.exceptions.Timeout) or _reason_is(exc, "ReadTimeoutError"):
        return where(Unavailable, "timed out waiting for the server's answer")
    if _reason_is(exc, "ProtocolError", "RemoteDisconnected", "IncompleteRead"):
        return where(Unavailable, "the connection broke before a complete answer arrived")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return where(Unavailable, "cannot connect to the server")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return where(InvalidConfig, "invalid server address")
    if isinstance(exc, requests.exceptions.RequestException):
        return where(Unavailable, f"request failed ({type(exc).__name__})")
    return where(Unavailable, f"unexpected {type(exc).__name__}")


def mapper(exc: BaseException, operation: str, key: str | None) -> tuple[ProviderError, BaseException | None]:
    """:func:`map_error` in the shape :func:`~secretsync_providers.calls.provider_call` takes.

    The cause is the exception itself: requests' and hvac's texts name the URL (a path, which
    is a name) and Vault's error strings, never a request body, so they hold no value.
    """
    return map_error(exc, operation=operation, key=key), exc


def _suffix(detail: str, redundant: str = "") -> str:
    if not detail or detail == redundant:
        return ""
    return f": {detail}"


def _reason_is(exc: BaseException, *names: str) -> bool:
    """Whether a requests exception wraps (MaxRetryError.reason, args) one of these urllib3 errors."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(seen) < 8:
        item = todo.pop()
        if not isinstance(item, BaseException) or item in seen:
            continue
        seen.append(item)
        if type(item).__name__ in names:
            return True
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__, *item.args])
    return False


def _is_definite_404(errors: Any, body: Any) -> bool:
    """Vault's own "nothing at this path" (see the module docstring)."""
    if isinstance(errors, list) and not errors:
        return True
    data = body.get("data") if isinstance(body, Mapping) else None
    return (
        isinstance(data, Mapping) and data.get("data") is None and isinstance(data.get("metadata"), Mapping)
        and not (body.get("warnings") if isinstance(body, Mapping) else None)
    )


def json_object(content: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is empty, not JSON or not an object."""
    if not content:
        return None
    try:
        doc = json.loads(content)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    return parse_retry_after(headers.get("Retry-After"))


def error_for_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    operation: str,
    key: str | None = None,
    values: Iterable[SecretValue | str] = (),
) -> ProviderError:
    """The secretsync error for an HTTP answer that is not a success.

    ``values``: strings of the request (a value being written, a login secret) that Vault's
    error text must not repeat, whatever it quotes.
    """

    def where(cls: type[ProviderError], message: str, **extra: Any) -> ProviderError:
        return cls(_short(mask_values(message, values)), provider=PROVIDER, operation=operation, key=key,
                   code=str(status), **extra)

    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    body = json_object(content) if content_type == "application/json" else None
    errors = body.get("errors") if body is not None else None
    detail = "; ".join(str(e) for e in errors if e) if isinstance(errors, list) else ""
    warnings = body.get("warnings") if body is not None else None
    if not detail and isinstance(warnings, list):
        detail = "; ".join(str(w) for w in warnings if w)
    detail = " ".join(detail.split())
    if body is None:
        origin = f"HTTP {status} with a {content_type or 'bodiless'} answer, not Vault's JSON"
    else:
        origin = f"HTTP {status}"

    if status == 404:
        if NO_ROUTE in detail:
            return where(InvalidConfig, f"no such mount or path ({detail}); check the store's mount")
        if body is not None and _is_definite_404(errors, body):
            return where(NotFound, "secret not found")
        return where(InvalidConfig, f"{origin} that does not say the secret is missing{_suffix(detail)}; "
                                    "check the address (a proxy in front of Vault?), mount and kvVersion")
    if status == 400:
        if CAS_MISMATCH in detail:
            return where(Conflict, "version changed (check-and-set failed)")
        return where(InvalidConfig, f"invalid request{_suffix(detail or origin)}")
    if status == 401:
        return where(AuthenticationFailed, f"unauthorized{_suffix(detail)}")
    if status == 403:
        return where(PermissionDenied, f"permission denied{_suffix(detail, 'permission denied')}")
    if status == 429:
        return where(Throttled, f"rate limit exceeded{_suffix(detail)}", retry_after=retry_after(headers))
    if TOO_LARGE in detail.lower():
        return where(InvalidConfig, f"value too large for the server's storage{_suffix(detail)}")
    if status == 412:
        return where(Unavailable, f"precondition failed (a standby catching up){_suffix(detail)}")
    if 300 <= status < 400:
        return where(Unavailable, f"{origin}: redirected (a standby node? point the address at the active "
                                  "node or a load balancer)")
    if status >= 500:
        return where(Unavailable, f"server error ({origin}){_suffix(detail)}", delay=retry_after(headers))
    return where(InvalidConfig, f"{origin}{_suffix(detail)}")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
