"""The one wrapper around every provider SDK call: count, rate-limit, bound, map, sanitise.

Why one place (in the style of httpx's ``map_httpcore_exceptions``): every provider needs the
same five things around each backend call, and each copy drifted before. A provider passes
its own *mapper* (SDK exception -> contract error, plus the value-free cause to chain); this
module does the rest:

* the call is counted by provider, operation and outcome (:class:`~secretsync.core.calls.
  CallRecorder`, which also applies the store's rate limiter when given one);
* the whole call is bounded by ``timeouts.call_deadline`` (:mod:`.http_deadline`) for the
  urllib3-based SDKs (gRPC has its own per-call deadline: pass ``bounded=False``);
* any SDK exception becomes a :class:`~secretsync.core.errors.ProviderError`, raised ``from``
  the sanitised twin the mapper returns, never from an exception that could quote a value;
* a call cut by the deadline says so in the same words for every provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from secretsync.core.errors import ProviderError, Unavailable
from secretsync.core.ratelimit import TokenBucket
from secretsync.core.settings import ClientSettings

from .http_deadline import CallScope, call_deadline

#: ``(exception, operation, key) -> (mapped error, cause to chain)``; the cause must hold no value.
Mapper = Callable[[BaseException, str, "str | None"], tuple[ProviderError, "BaseException | None"]]


@contextmanager
def provider_call(
    settings: ClientSettings,
    provider: str,
    operation: str,
    mapper: Mapper,
    *,
    key: str | None = None,
    limiter: TokenBucket | None = None,
    bounded: bool = True,
    server: str = "the server",
) -> Iterator[None]:
    """Run one backend call inside the block; see the module docstring.

    ``server`` names the other side in the deadline message ("AWS", "the vault").
    A :class:`ProviderError` raised inside the block (the adapter's own check) passes as is.
    """
    deadline = settings.timeouts.call_deadline
    with settings.calls.call(provider, operation, limiter):
        error: ProviderError | None = None
        cause: BaseException | None = None
        scope_cm = call_deadline(deadline) if bounded else nullcontext(None)
        with scope_cm as scope:
            try:
                yield
            except ProviderError:
                raise
            except Exception as exc:
                error, cause = mapper(exc, operation, key)
                if isinstance(scope, CallScope) and scope.expired and isinstance(error, Unavailable):
                    error = deadline_error(deadline, provider, operation, key, server)
        if error is not None:
            raise error from cause


def deadline_error(deadline: float, provider: str, operation: str, key: str | None,
                   server: str = "the server") -> Unavailable:
    """The one message for a call cut by its deadline (a stalling server or proxy)."""
    return Unavailable(f"no complete answer within {deadline:g}s ({server} or a proxy is stalling)",
                       provider=provider, operation=operation, key=key)
