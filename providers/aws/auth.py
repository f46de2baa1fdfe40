"""A store's credentials and auth mode -> the boto3 session its clients are built from.

Credentials, in order:

1. ``credentials`` passed to ``open()`` (``accessKeyID``, ``secretAccessKey``, optional
   ``sessionToken``): the SecretStore's ``secretRef`` / ESO's ``auth.secretRef``; they replace
   the chain.
2. Or ``jwt`` (a ServiceAccount token from a TokenRequest with the ``sts.amazonaws.com``
   audience) exchanged with ``sts:AssumeRoleWithWebIdentity``, as IRSA does, but per store:
   for ESO's ``auth.jwt`` the role is the ServiceAccount's ``eks.amazonaws.com/role-arn``
   annotation (credential ``webIdentityRole``) and ``role`` is then assumed on top, as ESO
   does; for secretsync's ``serviceAccountRef`` the token is exchanged for ``role`` directly.
3. Otherwise boto3's default chain: env (``AWS_ACCESS_KEY_ID``...), ``AWS_PROFILE`` or the
   ``profile`` config key, IRSA web identity (``AWS_WEB_IDENTITY_TOKEN_FILE``), EKS Pod
   Identity and ECS (container credentials), then EC2 instance metadata.
4. Role chaining: each of ``additionalRoles``, then ``role``, assumed through sts:AssumeRole
   with the credentials before it; ``externalID``, ``sessionTags`` and ``transitiveTagKeys``
   go with the assumption of ``role``. Assumed credentials refresh themselves before expiry.

Every STS client is built like the store's own (:mod:`.sdk`): same bounded timeouts, rate
limiter and call count (``aws/AssumeRole``...); AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL apply.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, cast

import boto3
import botocore.session
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
from secretsync.core.settings import TimeoutSettings
from secretsync.core.values import SecretValue

from .config import PROVIDER, WEB_IDENTITY_ROLE, AwsConfig
from .sdk import botocore_config, instrument

ROLE_SESSION_NAME = "secretsync"

#: The AWS services this process builds clients for: the stores' (secretsmanager, ssm), change
#: notices (sqs) and botocore's own credential providers (sts, sso, sso-oidc). Only their
#: entries of botocore's endpoint data are kept in memory (see :class:`_EndpointData`).
ENDPOINT_SERVICES = frozenset({"secretsmanager", "ssm", "sqs", "sts", "sso", "sso-oidc"})

_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


class _EndpointData:
    """botocore's file loader, keeping only :data:`ENDPOINT_SERVICES` of ``endpoints.json``.

    Why: ``endpoints.json`` describes every AWS service in every partition (over 1,100
    service entries) and parses into 7.0 MB of Python objects (measured), held for the
    process's life by the loader's cache: 4.7% of the controller's 150 MB budget, for data
    about services it never calls. The services it does call keep their entries untouched, and
    botocore resolves a service missing from the data with its partition's defaults, so a
    client built for any service still works. Wraps the loader's own file loader (a public
    ``Loader`` attribute), so ``AWS_DATA_PATH`` and gzip'd data still load as botocore does.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def exists(self, file_path: str) -> bool:
        return bool(self._inner.exists(file_path))

    def load_file(self, file_path: str) -> Any:
        data = self._inner.load_file(file_path)
        if isinstance(data, dict) and os.path.basename(file_path) == "endpoints":
            data = trimmed_endpoints(data)
        return data


def trimmed_endpoints(data: dict[str, Any]) -> dict[str, Any]:
    """``endpoints.json`` with each partition's ``services`` cut to :data:`ENDPOINT_SERVICES`."""
    partitions = data.get("partitions")
    if not isinstance(partitions, list):
        return data
    return {**data, "partitions": [
        {**p, "services": {k: v for k, v in p["services"].items() if k in ENDPOINT_SERVICES}}
        if isinstance(p, dict) and isinstance(p.get("services"), dict) else p
        for p in partitions]}


def new_session(core: botocore.session.Session | None = None, **kwargs: Any) -> boto3.Session:
    """A boto3 session whose botocore data (endpoints, service models) is the process's one copy.

    Why: each botocore session has its own data loader, and the first client of a session
    parses botocore's ``endpoints.json`` (6.9 MB of Python objects, measured) and the service
    model again. The controller makes a session per store (each has its own credentials), so
    a cluster with 50 AWS SecretStores held 50 copies. The loader only reads botocore's own
    read-only data files and caches what it parsed, so sharing it shares nothing of a store's.
    """
    global _LOADER
    core = core or botocore.session.Session()
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
            _LOADER.file_loader = _EndpointData(_LOADER.file_loader)
        else:
            core.register_component("data_loader", _LOADER)
        session = boto3.Session(botocore_session=core, **kwargs)
        # boto3 adds its own data folder to the loader on every Session: keep each path once.
        _LOADER.search_paths[:] = list(dict.fromkeys(_LOADER.search_paths))
    return session


def _text(credentials: Mapping[str, SecretValue], field: str) -> str | None:
    value = credentials.get(field)
    if value is None:
        return None
    try:
        return value.reveal_text().strip() or None
    except ValueError:
        raise InvalidConfig(f"aws credentials field {field!r} is not text",
                            provider=PROVIDER, operation="open") from None


def _static_keys(credentials: Mapping[str, SecretValue]) -> dict[str, str]:
    key_id, secret_key, token = (_text(credentials, f) for f in ("accessKeyID", "secretAccessKey", "sessionToken"))
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
    """Builds the STS client for a credential fetcher (see the module docstring)."""

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
    return new_session(core, region_name=region)


def _assume_role(source: boto3.Session, role_arn: str, region: str | None, auth: _Auth,
                 extra: Mapping[str, Any] | None = None) -> boto3.Session:
    """A session whose credentials come from sts:AssumeRole on ``role_arn``, refreshed lazily."""
    source_credentials = source.get_credentials()
    if source_credentials is None:
        raise NoCredentialsError()
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=_sts_creator(source, auth),
        source_credentials=source_credentials,
        role_arn=role_arn,
        extra_args={"RoleSessionName": ROLE_SESSION_NAME, **(extra or {})},
    )
    assumed = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
    return _session_with(assumed, region or source.region_name)


def _assume_role_with_web_identity(token: SecretValue, role_arn: str, region: str | None,
                                   auth: _Auth) -> boto3.Session:
    """sts:AssumeRoleWithWebIdentity with a ServiceAccount token (unsigned: the token is the proof)."""
    source = new_session(region_name=region)
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


def _role_arguments(config: AwsConfig) -> dict[str, Any]:
    """sts:AssumeRole's ExternalId, Tags and TransitiveTagKeys for ``role``."""
    extra: dict[str, Any] = {}
    if config.external_id:
        extra["ExternalId"] = config.external_id
    if config.session_tags:
        extra["Tags"] = [{"Key": k, "Value": v} for k, v in config.session_tags]
    if config.transitive_tag_keys:
        extra["TransitiveTagKeys"] = list(config.transitive_tag_keys)
    return extra


def _chain(session: boto3.Session, config: AwsConfig, auth: _Auth) -> boto3.Session:
    for role in config.additional_roles:
        session = _assume_role(session, role, config.region, auth)
    if config.role:
        session = _assume_role(session, config.role, config.region, auth, _role_arguments(config))
    return session


def build_session(
    config: AwsConfig,
    credentials: Mapping[str, SecretValue] | None,
    timeouts: TimeoutSettings | None = None,
    limiter: TokenBucket | None = None,
    calls: CallRecorder | None = None,
) -> boto3.Session:
    """The boto3 session for a store (see the module docstring)."""
    auth = _Auth(timeouts or TimeoutSettings(), limiter, calls)
    creds = credentials or {}
    jwt = creds.get("jwt")
    if jwt is not None and "accessKeyID" not in creds:
        web_role = _text(creds, WEB_IDENTITY_ROLE)
        if web_role is not None:  # ESO's auth.jwt: the ServiceAccount's role, then the chain
            return _chain(_assume_role_with_web_identity(jwt, web_role, config.region, auth), config, auth)
        if not config.role:
            raise InvalidConfig(
                "aws store config field 'role': a ServiceAccount token (credential 'jwt') is exchanged "
                "for a role with sts:AssumeRoleWithWebIdentity, so 'role' is required",
                provider=PROVIDER, operation="open",
            )
        return _assume_role_with_web_identity(jwt, config.role, config.region, auth)
    if creds:
        keys = _static_keys(creds)
        session = new_session(
            aws_access_key_id=keys["aws_access_key_id"],
            aws_secret_access_key=keys["aws_secret_access_key"],
            aws_session_token=keys.get("aws_session_token"),
            region_name=config.region,
        )
    else:
        session = new_session(profile_name=config.profile, region_name=config.region)
    return _chain(session, config, auth)
