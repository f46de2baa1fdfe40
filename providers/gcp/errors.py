"""Map google-api-core, google-auth and gRPC errors onto secretsync's one error tree.

Why one function: every RPC goes through :func:`map_error` (called inside the
``CallRecorder.call`` block, so metrics count the mapped reason), which makes "no SDK
exception leaks out" a property of one place rather than of every call site.

Secret Manager answers FAILED_PRECONDITION for two different things: an etag that no longer
matches (a lost compare-and-set: :class:`Conflict`) and reading a version that is DISABLED
or DESTROYED. The caller says which one it means through ``precondition``:

* ``"conflict"`` (default): :class:`Conflict`;
* ``"version-state"``: a DESTROYED version becomes :class:`NotFound` (its value is gone for
  good), a DISABLED one :class:`Conflict` (the version exists and can be enabled again, so
  it must never drive a prune; see docs/providers.md).

NOT_FOUND is :class:`NotFound` only when the message is about a secret or a secret version
("Secret [projects/...] not found", "Secret Version [...] not found"); a NOT_FOUND about
anything else (a location, a project, a method behind some gateway) says nothing about the
secret and is :class:`InvalidConfig`.

Messages are the server's and never hold a payload; on AddSecretVersion (the one RPC that
carries a value) the value is masked anyway, and :func:`mapper` (what
:func:`providers.calls.provider_call` takes) returns the mapped error together with a
value-free twin of the SDK exception to chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

import grpc
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

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
from secretsync.core.redact import contains_value, mask_values
from secretsync.core.values import SecretValue

from ..calls import Mapper

PROVIDER = "gcp"
#: A NOT_FOUND about a secret or one of its versions (the only definite "absent").
_ABOUT_A_SECRET = re.compile(r"\bsecret\b", re.IGNORECASE)
Precondition = Literal["conflict", "version-state"]

_GRPC_TO_API: dict[grpc.StatusCode, type[gexc.GoogleAPICallError]] = {
    grpc.StatusCode.NOT_FOUND: gexc.NotFound,
    grpc.StatusCode.PERMISSION_DENIED: gexc.PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: gexc.Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: gexc.ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: gexc.ServiceUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: gexc.DeadlineExceeded,
    grpc.StatusCode.INVALID_ARGUMENT: gexc.InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: gexc.OutOfRange,
    grpc.StatusCode.ALREADY_EXISTS: gexc.AlreadyExists,
    grpc.StatusCode.ABORTED: gexc.Aborted,
    grpc.StatusCode.FAILED_PRECONDITION: gexc.FailedPrecondition,
    grpc.StatusCode.UNIMPLEMENTED: gexc.MethodNotImplemented,
    grpc.StatusCode.INTERNAL: gexc.InternalServerError,
    grpc.StatusCode.UNKNOWN: gexc.Unknown,
    grpc.StatusCode.DATA_LOSS: gexc.DataLoss,
    grpc.StatusCode.CANCELLED: gexc.Cancelled,
}


def _message(exc: BaseException) -> str:
    """The server's message (resource names and reasons, never payloads), kept short."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _retry_after(exc: gexc.GoogleAPICallError) -> float | None:
    """The server's google.rpc.RetryInfo delay, when it sent one."""
    for detail in getattr(exc, "details", None) or ():
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and hasattr(delay, "seconds"):
            return float(delay.seconds) + float(delay.nanos) / 1e9
    return None


def is_connection_failure(exc: BaseException | None) -> bool:
    """UNAVAILABLE from the transport (refused, reset): quick to fail, worth one more try.
    A deadline that expired is not: retrying would multiply the time a dead endpoint costs."""
    return isinstance(exc, gexc.ServiceUnavailable) or (
        isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None))
        and exc.code() == grpc.StatusCode.UNAVAILABLE)


def map_error(
    exc: BaseException,
    *,
    operation: str,
    key: str | None = None,
    precondition: Precondition = "conflict",
    values: Iterable[SecretValue | bytes] = (),
) -> ProviderError:
    """The secretsync error for ``exc``; :func:`mapper` pairs it with a value-free cause.

    ``values``: what the call sent (AddSecretVersion's payload), masked in any message.
    """
    values = list(values)

    def make(cls: type[ProviderError], message: str) -> ProviderError:
        return cls(mask_values(message, values), provider=PROVIDER, operation=operation, key=key,
                   code=_code_name(exc))

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, grpc.RpcError) and not isinstance(exc, gexc.GoogleAPICallError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        api_cls = _GRPC_TO_API.get(code) if isinstance(code, grpc.StatusCode) else None
        details = exc.details() if callable(getattr(exc, "details", None)) else ""
        exc = (api_cls or gexc.Unknown)(str(details or code))
    # google-auth: no credentials found, or they could not be refreshed.
    if isinstance(exc, auth_exc.TransportError):
        return make(Unavailable, f"could not reach the token endpoint: {_message(exc)}")
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return make(AuthenticationFailed,
            "no Google credentials found (Application Default Credentials, "
            f"GOOGLE_APPLICATION_CREDENTIALS or a serviceAccountKey): {_message(exc)}")
    if isinstance(exc, auth_exc.GoogleAuthError):
        return make(AuthenticationFailed, f"Google credentials rejected: {_message(exc)}")
    if isinstance(exc, gexc.RetryError):
        return make(Unavailable, f"gave up retrying: {_message(exc)}")
    if not isinstance(exc, gexc.GoogleAPIError):
        if isinstance(exc, ValueError | TypeError):
            return make(InvalidConfig, f"request rejected by the client library: {_message(exc)}")
        return make(Unavailable, f"{type(exc).__name__}: {_message(exc)}")

    msg = _message(exc)
    if isinstance(exc, gexc.ServiceUnavailable) and "metadata from plugin failed" in msg.lower() and (
            "transporterror" not in msg.lower()):
        # google-auth's gRPC plugin could not get a token (refresh refused): a credentials problem.
        return make(AuthenticationFailed, f"could not obtain a Google access token: {msg}")
    if isinstance(exc, gexc.NotFound):
        if _ABOUT_A_SECRET.search(msg):
            return make(NotFound, msg)
        return make(InvalidConfig, f"NOT_FOUND that is not about a secret ({msg}); check the project, "
                                   "location and endpoint")
    if isinstance(exc, gexc.Unauthenticated):
        return make(AuthenticationFailed, msg)
    if isinstance(exc, gexc.PermissionDenied):
        return make(PermissionDenied, msg)
    if isinstance(exc, gexc.TooManyRequests):  # ResourceExhausted is a subclass
        return Throttled(mask_values(msg, values), retry_after=_retry_after(exc), provider=PROVIDER,
                         operation=operation, key=key, code=_code_name(exc))
    if isinstance(exc, gexc.FailedPrecondition):
        if precondition == "version-state" and "DESTROYED" in msg.upper():
            return make(NotFound, f"version destroyed: {msg}")
        if precondition == "version-state":
            return make(Conflict, f"version not readable (disabled): {msg}")
        return make(Conflict, f"precondition failed (etag changed): {msg}")
    if isinstance(exc, gexc.AlreadyExists | gexc.Aborted | gexc.Conflict):
        return make(Conflict, msg)
    if isinstance(exc, gexc.MethodNotImplemented):
        return make(InvalidConfig, f"endpoint does not implement Secret Manager: {msg}")
    if isinstance(exc, gexc.BadRequest):  # InvalidArgument, OutOfRange
        return make(InvalidConfig, msg)
    if isinstance(exc, gexc.Forbidden):
        return make(PermissionDenied, msg)
    if isinstance(exc, gexc.Unauthorized):
        return make(AuthenticationFailed, msg)
    # ServiceUnavailable, DeadlineExceeded, InternalServerError, Unknown, DataLoss, Cancelled, ...
    return make(Unavailable, msg)


def _code_name(exc: BaseException) -> str | None:
    """The gRPC status name (NOT_FOUND, ...) of an API error, when it has one."""
    code = getattr(exc, "grpc_status_code", None)
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        raw = exc.code()
        return str(raw.name) if isinstance(raw, grpc.StatusCode) else None
    return None


def mapper(precondition: Precondition = "conflict", values: Sequence[SecretValue | bytes] = ()) -> Mapper:
    """The :data:`providers.calls.Mapper` of one call: what FAILED_PRECONDITION means for it and
    which values it sent (masked in the message and kept out of the chained cause)."""

    def mapping(exc: BaseException, operation: str, key: str | None) -> tuple[ProviderError, BaseException | None]:
        error = map_error(exc, operation=operation, key=key, precondition=precondition, values=values)
        return error, _sanitized_cause(exc, error, values)

    return mapping


def _sanitized_cause(exc: BaseException, mapped: ProviderError,
                     values: Iterable[SecretValue | bytes] = ()) -> BaseException:
    """The exception itself, unless its text could hold a value the call sent: then a twin of
    the same type (or a RuntimeError) holding only the mapped, masked summary."""
    values = list(values)
    if not values or not contains_value(f"{exc!s} {exc!r}", values):
        return exc
    try:
        twin: BaseException = type(exc)(str(mapped))
    except Exception:  # an exception type with an unusual constructor
        twin = RuntimeError(f"{type(exc).__module__}.{type(exc).__name__}: {mapped}")
    return twin.with_traceback(exc.__traceback__)
