"""The slice of boto3 the adapter uses, and how a boto3 client is built from a store config.

Why a Protocol: the adapter depends on ten secretsmanager methods, not on boto3's whole
surface; naming them here documents exactly which IAM actions the adapter needs (see
docs/providers.md) and keeps the rest of the package free of boto3 types.

Credentials, in order:

1. ``credentials`` passed to ``open()`` (``accessKeyID``, ``secretAccessKey``, optional
   ``sessionToken``): the controller's SecretStore secretRef; they replace the chain.
   Or ``jwt`` alone (a SecretStore serviceAccountRef token) with ``role``: the role is
   assumed with ``sts:AssumeRoleWithWebIdentity``, as IRSA does, but per store.
2. Otherwise boto3's default chain: env (``AWS_ACCESS_KEY_ID``...), ``AWS_PROFILE`` or the
   ``profile`` config key, IRSA web identity (``AWS_WEB_IDENTITY_TOKEN_FILE``), EKS Pod
   Identity and ECS (container credentials), then EC2 instance metadata.
3. ``role`` (optional): assume that role through STS with the credentials above as the
   source; the assumed credentials refresh themselves before they expire.

Endpoints: the ``endpoint`` config key wins; otherwise botocore honours
``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and ``AWS_ENDPOINT_URL`` natively.

Every client built here is :func:`instrument`-ed: each HTTP attempt (botocore's own retries
and the STS calls behind ``role``/``jwt`` included) waits for the store's rate limiter, STS
calls are counted (``aws/AssumeRole``...), and the connection pools obey the adapter's
whole-call deadline. ``botocore.endpoint`` and ``botocore.parsers`` log full request and
response bodies at DEBUG; they get :class:`~secretsync.core.redact.SdkBodyRedactor` on import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    AssumeRoleWithWebIdentityCredentialFetcher,
    CredentialProvider,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import NoCredentialsError

from secretsync.core.calls import CallRecorder
from secretsync.core.errors import InvalidConfig
from secretsync.core.ratelimit import TokenBucket
from secretsync.core.redact import guard_sdk_loggers
from secretsync.core.settings import TimeoutSettings
from secretsync.core.values import SecretValue

from ..http_deadline import with_deadline
from .config import PROVIDER, AwsConfig

#: botocore's loggers that print whole request parameters and response bodies at DEBUG.
guard_sdk_loggers(["botocore.endpoint", "botocore.parsers"])

#: Connections per client: the controller shares one client between its workers.
MAX_POOL_CONNECTIONS = 32
ROLE_SESSION_NAME = "secretsync"
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
    def tag_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def untag_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...
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


def _static_keys(credentials: Mapping[str, SecretValue]) -> dict[str, str]:
    def text(field: str) -> str | None:
        value = credentials.get(field)
        if value is None:
            return None
        try:
            return value.reveal_text().strip() or None
        except ValueError:
            raise InvalidConfig(f"aws credentials field {field!r} is not text",
                                provider=PROVIDER, operation="open") from None

    key_id, secret_key, token = text("accessKeyID"), text("secretAccessKey"), text("sessionToken")
    for field, value in (("accessKeyID", key_id), ("secretAccessKey", secret_key)):
        if value is None:
            raise InvalidConfig(f"aws credentials field {field!r} is missing or empty",
                                provider=PROVIDER, operation="open")
    keys = {"aws_access_key_id": cast(str, key_id), "aws_secret_access_key": cast(str, secret_key)}
    if token:
        keys["aws_session_token"] = token
    return keys


class _FixedProvider(CredentialProvider):
    """Hands botocore's resolver one credentials object (the assumed role's)."""

    METHOD = "assume-role"
    CANONICAL_NAME = "secretsync-assume-role"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


class _Auth:
    """What the STS clients share with the store's client: timeouts, rate limiter, call count."""

    def __init__(self, timeouts: TimeoutSettings, limiter: TokenBucket | None = None,
                 calls: CallRecorder | None = None) -> None:
        self.timeouts = timeouts
        self.limiter = limiter
        self.calls = calls


def _sts_creator(source: boto3.Session, auth: _Auth) -> Callable[..., Any]:
    """Builds the STS client for a credential fetcher: same bounded timeouts, rate limiter and
    call count, and AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL apply as for any boto3 client."""

    def create(service: str, **kwargs: Any) -> Any:
        config = botocore_config(auth.timeouts)
        extra = kwargs.pop("config", None)
        if extra is not None:
            config = config.merge(extra)
        client = cast(Any, source).client(service, config=config, **kwargs)
        instrument(client, auth.limiter, auth.calls or CallRecorder())
        return client

    return create


def _session_with(credentials: Credentials, region: str | None) -> boto3.Session:
    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before("env", _FixedProvider(credentials))
    return boto3.Session(botocore_session=core, region_name=region)


def _assume_role(source: boto3.Session, role_arn: str, region: str | None, auth: _Auth) -> boto3.Session:
    """A session whose credentials come from sts:AssumeRole on ``role_arn``, refreshed lazily."""
    source_credentials = source.get_credentials()
    if source_credentials is None:
        raise NoCredentialsError()
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=_sts_creator(source, auth),
        source_credentials=source_credentials,
        role_arn=role_arn,
        extra_args={"RoleSessionName": ROLE_SESSION_NAME},
    )
    assumed = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
    return _session_with(assumed, region or source.region_name)


def _assume_role_with_web_identity(token: SecretValue, role_arn: str, region: str | None,
                                   auth: _Auth) -> boto3.Session:
    """sts:AssumeRoleWithWebIdentity with a ServiceAccount token (unsigned: the token is the proof)."""
    source = boto3.Session(region_name=region)
    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
        client_creator=_sts_creator(source, auth),
        web_identity_token_loader=token.reveal_text,
        role_arn=role_arn,
        extra_args={"RoleSessionName": ROLE_SESSION_NAME},
    )
    assumed = DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role-with-web-identity"
    )
    return _session_with(assumed, region or source.region_name)


def build_session(
    config: AwsConfig,
    credentials: Mapping[str, SecretValue] | None,
    timeouts: TimeoutSettings | None = None,
    limiter: TokenBucket | None = None,
    calls: CallRecorder | None = None,
) -> boto3.Session:
    """The boto3 session for a store: explicit keys, else the default chain; then the role."""
    auth = _Auth(timeouts or TimeoutSettings(), limiter, calls)
    jwt = (credentials or {}).get("jwt")
    if credentials and jwt is not None and "accessKeyID" not in credentials:
        if not config.role:
            raise InvalidConfig(
                "aws store config field 'role': a ServiceAccount token (credential 'jwt') is exchanged "
                "for a role with sts:AssumeRoleWithWebIdentity, so 'role' is required",
                provider=PROVIDER, operation="open",
            )
        return _assume_role_with_web_identity(jwt, config.role, config.region, auth)
    if credentials:
        keys = _static_keys(credentials)
        session = boto3.Session(
            aws_access_key_id=keys["aws_access_key_id"],
            aws_secret_access_key=keys["aws_secret_access_key"],
            aws_session_token=keys.get("aws_session_token"),
            region_name=config.region,
        )
    else:
        session = boto3.Session(profile_name=config.profile, region_name=config.region)
    if config.role:
        session = _assume_role(session, config.role, config.region, auth)
    return session


def build_client(
    config: AwsConfig,
    timeouts: TimeoutSettings,
    credentials: Mapping[str, SecretValue] | None = None,
    limiter: TokenBucket | None = None,
    calls: CallRecorder | None = None,
) -> SecretsManagerAPI:
    """A secretsmanager client (SDK exceptions propagate; the caller maps them).

    ``limiter`` / ``calls``: the store's, shared with the STS client behind ``role``/``jwt``.
    """
    session = build_session(config, credentials, timeouts, limiter, calls)
    client = session.client("secretsmanager", endpoint_url=config.endpoint, config=botocore_config(timeouts))
    instrument(client, limiter)
    return cast(SecretsManagerAPI, client)
