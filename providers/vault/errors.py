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
"""

from __future__ import annotations

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
)

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
            return where(NotFound, "secret not found")
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
        return where(InvalidConfig, "TLS handshake failed: check the address scheme (?tls=false or http:// "
                     "for a plain-HTTP server) and caCert / VAULT_CACERT")
    if isinstance(exc, requests.exceptions.Timeout):
        return where(Unavailable, "timed out")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return where(Unavailable, "cannot connect to the server")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return where(InvalidConfig, "invalid server address")
    if isinstance(exc, requests.exceptions.RequestException):
        return where(Unavailable, f"request failed ({type(exc).__name__})")
    return where(Unavailable, f"unexpected {type(exc).__name__}")


def _suffix(detail: str, redundant: str = "") -> str:
    if not detail or detail == redundant:
        return ""
    return f": {detail}"
