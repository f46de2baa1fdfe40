"""The slice of boto3 the adapters use, and how a boto3 client is built from a session.

Why Protocols: the adapters depend on a dozen secretsmanager and ssm methods, not on boto3's
whole surface; naming them here documents exactly which IAM actions they need (see
docs/providers.md) and keeps the rest of the package free of boto3 types. How a session is
made from a store's credentials is :mod:`.auth`.

Endpoints: the ``endpoint`` config key wins; otherwise botocore honours
``AWS_ENDPOINT_URL_SECRETS_MANAGER`` / ``AWS_ENDPOINT_URL_SSM`` and ``AWS_ENDPOINT_URL``.

Every client built here is :func:`instrument`-ed: each HTTP attempt (botocore's own retries
and the STS calls behind a role included) waits for the store's rate limiter, STS calls are
counted (``aws/AssumeRole``...), and the connection pools obey the adapter's whole-call
deadline. ``botocore.endpoint`` and ``botocore.parsers`` log full request and response
bodies at DEBUG; they get :class:`~secretsync.core.redact.SdkBodyRedactor` on import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from botocore.config import Config as BotoConfig

from secretsync.core.calls import CallRecorder
from secretsync.core.ratelimit import TokenBucket
from secretsync.core.redact import guard_sdk_loggers
from secretsync.core.settings import TimeoutSettings

from ..http_deadline import with_deadline
from .names import PROVIDER

#: botocore's loggers that print whole request parameters and response bodies at DEBUG.
guard_sdk_loggers(["botocore.endpoint", "botocore.parsers"])

#: Connections per client: the controller shares one client between its workers.
MAX_POOL_CONNECTIONS = 32
USER_AGENT_EXTRA = "secretsync"


class SecretsManagerAPI(Protocol):
    """The secretsmanager client methods the adapter calls (boto3 keyword arguments)."""

    def get_secret_value(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def batch_get_secret_value(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def list_secrets(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def describe_secret(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def create_secret(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def put_secret_value(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def delete_secret(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def restore_secret(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def update_secret(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def tag_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def untag_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def close(self) -> None: ...


class ParameterStoreAPI(Protocol):
    """The ssm client methods the Parameter Store adapter calls (boto3 keyword arguments)."""

    def get_parameter(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def get_parameters(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def get_parameters_by_path(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def describe_parameters(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def put_parameter(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def delete_parameter(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def list_tags_for_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def add_tags_to_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def remove_tags_from_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def close(self) -> None: ...


def botocore_config(timeouts: TimeoutSettings) -> BotoConfig:
    """Bounded timeouts and few SDK retries, so a dead endpoint fails fast as Unavailable.

    ``standard`` retry mode retries throttling, 5xx and connection errors with jittered
    backoff; ``total_max_attempts`` counts the first try.
    """
    return BotoConfig(
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
        retries={"mode": "standard", "total_max_attempts": max(1, timeouts.sdk_retries + 1)},
        max_pool_connections=MAX_POOL_CONNECTIONS,
        user_agent_extra=USER_AGENT_EXTRA,
    )


def instrument(client: Any, limiter: TokenBucket | None, calls: CallRecorder | None = None) -> None:
    """Rate-limit every HTTP attempt of a botocore client and make its pools deadline-aware.

    ``calls``: also count each call of this client (for the STS client, whose calls do not
    go through the adapter's ``_invoke``). A no-op for anything that is not a botocore client.
    """
    meta = getattr(client, "meta", None)
    events = getattr(meta, "events", None)
    if events is None or getattr(client, "_secretsync_instrumented", False):
        return
    client._secretsync_instrumented = True
    if limiter is not None:
        def acquire(**_: Any) -> None:
            limiter.acquire()  # returns None: botocore goes on and sends the request

        events.register("before-send", acquire, unique_id="secretsync-rate-limit")
    if calls is not None:
        def after_call(http_response: Any = None, event_name: str = "", **_: Any) -> None:
            status = int(getattr(http_response, "status_code", 0) or 0)
            calls.record(PROVIDER, event_name.rsplit(".", 1)[-1], "OK" if 200 <= status < 300 else "Error")

        def after_error(event_name: str = "", **_: Any) -> None:
            calls.record(PROVIDER, event_name.rsplit(".", 1)[-1], "Error")

        events.register("after-call", after_call, unique_id="secretsync-count")
        events.register("after-call-error", after_error, unique_id="secretsync-count-error")
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    classes = getattr(session, "_pool_classes_by_scheme", None)
    if isinstance(classes, dict):  # shared in place with the pool and proxy managers
        for scheme, cls in list(classes.items()):
            classes[scheme] = with_deadline(cls)


def service_client(session: Any, service: str, endpoint: str | None, timeouts: TimeoutSettings,
                   limiter: TokenBucket | None = None) -> Any:
    """A ``secretsmanager`` / ``ssm`` / ``sqs`` client of ``session`` (SDK exceptions propagate;
    the caller maps them), rate-limited by the store's ``limiter``."""
    client = session.client(service, endpoint_url=endpoint, config=botocore_config(timeouts))
    instrument(client, limiter)
    return client
