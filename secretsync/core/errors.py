"""One error tree for every provider, the CLI, the migrator and the controller.

Why one tree: the single most dangerous bug in a secret syncer is deleting or emptying a
Secret because a provider call failed for a passing reason. Here only :class:`NotFound`
may ever drive a deletion or a prune, and every other failure is either *temporary*
(retry later, with a delay) or *permanent* (needs a human: config, permissions).

Like kopf's ``TemporaryError`` / ``PermanentError``, each class says whether it is
retryable and, where the backend told us, after how long. Messages name the store, the
operation and the key, never a value. Provider adapters map their SDK's exceptions into
this tree at the boundary with ``raise ... from exc`` so no SDK type leaks out.

The whole tree, drawn once (every public exception of ``secretsync`` and
``secretsync_providers``; ``tests/unit/test_error_tree.py`` fails on one that is missing).
A second base in brackets keeps old ``except`` clauses working::

    SecretSyncError                      core.errors: anything raised on purpose (exit 1)
    +-- TemporaryError                   retry after ``delay``
    |   +-- DeadlineExceeded             providers.http_deadline: a call's own deadline [TimeoutError]
    |   `-- MalformedAnswer              providers.azure.errors: a 2xx without Key Vault's shape
    +-- PermanentError                   needs a change of input or config
    |   +-- InvalidInput                 a user's object, file, template or flag is malformed (exit 6)
    |   |   +-- InvalidSpec              api.models: a custom resource, every bad field named
    |   |   +-- TemplateError            api.template: a template failed to compile or render
    |   |   +-- RewriteError             api.models: a dataFrom rewrite cannot apply (keys named) [ValueError]
    |   |   +-- LimitExceeded            api.template_limits: a render hit a bound (fixed text)
    |   |   +-- RegexError               core.regex: a tenant's pattern is refused [ValueError]
    |   |   +-- TooManyNodes             manifests.documents: a YAML text past any manifest's size
    |   |   +-- RenderProblem            manifests.helm: a chart that does not render
    |   |   +-- PathError                migrator.objpath: a field path that leads nowhere [ValueError]
    |   |   +-- MalformedConsumer        migrator.plan.consumers: a workload field of the wrong type [ValueError]
    |   |   +-- BaselineError            scan.baseline: an unreadable scan baseline [ValueError]
    |   |   `-- UnstorableName           providers.azure.names: a name Key Vault cannot hold [ValueError]
    |   +-- TargetRefused                controller.secretwriter: the target Secret is not ours to write
    |   +-- PushFailed                   controller.pushsecret: a PushSecret's source or store is unusable
    |   `-- StoreUnusable                controller.rotation: a rotation's store is missing or invalid
    +-- ProviderError                    a provider call failed (provider, operation, key; never a value)
    |   +-- NotFound                     [PermanentError] the ONLY error that may delete or prune (exit 3)
    |   +-- PermissionDenied             [PermanentError] 403 (exit 4)
    |   +-- AuthenticationFailed         [PermanentError] 401 (exit 4)
    |   +-- InvalidConfig                [PermanentError] store config or request malformed (exit 6)
    |   |   `-- RolledBack               migrator.journal: a migration already rolled back
    |   +-- Conflict                     [PermanentError] a precondition failed (exit 7)
    |   +-- Throttled                    [TemporaryError] slow down, ``retry_after`` (exit 5)
    |   `-- Unavailable                  [TemporaryError] outage, timeout, 5xx (exit 5)
    +-- KubeError                        kube.client: a Kubernetes API call failed (status 0: not reached)
    +-- ApiStatus                        providers.kubernetes.sdk: a non-2xx answer, mapped at its boundary
    +-- HookFailed                       controller.rotation: a rotation webhook did not answer 2xx
    +-- LocateError                      migrator.manifests: a plan's locator leads nowhere now [ValueError]
    +-- Manual                           migrator.plan.model: an item to move by hand (the reason)
    +-- Unverifiable                     migrator.plan.invariant: what a unit's containers read cannot be known
    +-- ApplyError                       migrator.apply: apply stopped
    |   +-- StalePlan                    the cluster or files moved since the plan
    |   `-- UnsafePlan                   the plan would change what a container reads
    +-- RestoreError                     migrator.restore: a snapshot cannot be restored [ValueError]
    +-- RewriteError                     migrator.rewrite: a file cannot be edited in place [ValueError]
    `-- RollbackError                    migrator.rollback: one rollback step cannot be done
"""

from __future__ import annotations

from typing import ClassVar

#: Longest message text a ProviderError keeps whole.
_MAX_TEXT = 1000


class SecretSyncError(Exception):
    """Base of every error secretsync raises on purpose."""

    retryable: ClassVar[bool] = False
    #: Process exit code the CLI uses for this kind of error (documented in README).
    exit_code: ClassVar[int] = 1


class TemporaryError(SecretSyncError):
    """A failure that may go away by itself; retry after ``delay`` seconds."""

    retryable = True

    def __init__(self, message: str = "", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(SecretSyncError):
    """A failure that retrying will not fix without a change of input or config."""

    retryable = False


class InvalidInput(PermanentError):
    """A user's object, file, template or flag is malformed; the message names it and the field.

    Not a :class:`ProviderError`: a bad ExternalSecret or template says nothing about the
    provider, so it must not trip a provider's circuit breaker or read as a store failure.
    """

    reason: ClassVar[str] = "InvalidInput"
    exit_code = 6


class ProviderError(SecretSyncError):
    """A provider call failed. Carries where it happened, never what was stored."""

    #: Stable machine-readable reason, used in status conditions, events and metrics.
    reason: ClassVar[str] = "ProviderError"

    def __init__(
        self,
        message: str = "",
        *,
        provider: str | None = None,
        operation: str | None = None,
        key: str | None = None,
        delay: float | None = None,
        code: str | None = None,
    ) -> None:
        parts = [p for p in (provider, operation) if p]
        where = "/".join(parts)
        text = message or self.reason
        if len(text) > _MAX_TEXT:
            # A huge input echoed into a message (a 5000-character name or URL) would swamp
            # logs and status fields; keep the start (what) and the end (why).
            text = f"{text[:600]} [...] {text[-300:]}"
        if key is not None:
            shown = key if len(key) <= 200 else key[:200] + "..."
            text = f"{text} (key {shown!r})"
        if where:
            text = f"{where}: {text}"
        super().__init__(text)
        self.provider = provider
        self.operation = operation
        self.key = key
        self.delay = delay
        #: The backend's own machine-readable code (AWS ``Error.Code``, Key Vault error codes,
        #: a gRPC status, an HTTP status), never a value. Adapters branch on it instead of on
        #: ``__cause__``, so they are free to drop an SDK exception that might quote a value.
        self.code = code


class NotFound(ProviderError, PermanentError):
    """The provider said, definitely, that the secret (or version/property) does not exist.

    The ONLY error that may drive a deletion or a prune.
    """

    reason = "NotFound"
    exit_code = 3


class PermissionDenied(ProviderError, PermanentError):
    """Authenticated, but not allowed (HTTP 403, AccessDenied). Never means "absent"."""

    reason = "PermissionDenied"
    exit_code = 4


class AuthenticationFailed(ProviderError, PermanentError):
    """Credentials missing, expired or rejected (HTTP 401)."""

    reason = "AuthenticationFailed"
    exit_code = 4


class InvalidConfig(ProviderError, PermanentError):
    """The store configuration (or a request) is malformed; fix the input."""

    reason = "InvalidConfig"
    exit_code = 6


class Conflict(ProviderError, PermanentError):
    """A precondition failed: the secret exists (only-if-absent) or its version moved (CAS)."""

    reason = "Conflict"
    exit_code = 7


class Throttled(ProviderError, TemporaryError):
    """The provider asked us to slow down; ``retry_after`` says for how long, when known."""

    reason = "Throttled"
    retryable = True
    exit_code = 5

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        provider: str | None = None,
        operation: str | None = None,
        key: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, operation=operation, key=key, delay=retry_after,
                         code=code)
        self.retry_after = retry_after


class Unavailable(ProviderError, TemporaryError):
    """Outage, timeout, connection refused, 5xx. Never means "absent"."""

    reason = "Unavailable"
    retryable = True
    exit_code = 5


def is_definitely_absent(exc: BaseException) -> bool:
    """True only for a definite not-found: the single gate for any delete or prune."""
    return isinstance(exc, NotFound)


def parse_retry_after(raw: str | None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` value (delta-seconds or an HTTP date), or None.

    Shared by the HTTP-based adapters so a throttled call carries the provider's own delay.
    """
    import email.utils
    import time

    if not raw:
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
