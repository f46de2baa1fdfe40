"""Build the Secret Manager SDK client: credentials, endpoint, channel.

Three ways in, first match wins:

1. ``SECRETSYNC_GCP_INSECURE_ENDPOINT`` (the process's environment, never a store field): a
   plaintext gRPC channel to ``HOST:PORT``, **for tests against the fake server only**. A static bearer
   token (``accessToken`` credential or ``SECRETSYNC_GCP_ACCESS_TOKEN``) is attached as
   ``authorization`` metadata by a client interceptor, because google-auth's call
   credentials refuse to ride on an insecure channel (they would leak the token).
2. A ``serviceAccountKey`` credential (a ``service_account`` key JSON, as ESO's
   ``secretAccessKeySecretRef`` holds) or an ``accessToken`` credential. Any other key
   ``type`` is refused: google-auth's ``external_account`` / ``impersonated_service_account``
   / ``authorized_user`` JSON makes the client read a local file (``credential_source.file``)
   or call a token URL named in the JSON, i.e. lets whoever wrote the Secret pick a file of
   the controller and where to send it. A ``service_account`` key signs its own access token
   (a self-signed JWT with the ``cloud-platform`` scope, what the Secret Manager client makes
   of such credentials, ``always_use_jwt_access``) and contacts nothing but Secret Manager;
   the key's ``token_uri`` is replaced by Google's anyway, so no URL the tenant wrote is ever
   called should google-auth fall back to the OAuth2 assertion grant. On the plaintext test
   channel that token rides as ``authorization`` metadata, as the token exchange's does.
3. A ``subjectToken`` credential (the store's ServiceAccount token, ``tokenExchange`` in the
   config: ESO's ``auth.workloadIdentity`` / ``auth.workloadIdentityFederation``): google-auth's
   ``identity_pool.Credentials`` exchanges it at STS for the pool audience and, with
   ``impersonate``, calls IAM Credentials ``generateAccessToken`` for the Google service account
   named by the ``serviceAccountEmail`` credential (the KSA's ``iam.gke.io/gcp-service-account``
   annotation). Where those two services are is the process's configuration
   (``SECRETSYNC_GCP_STS_ENDPOINT``, ``SECRETSYNC_GCP_IAM_CREDENTIALS_ENDPOINT``), never a store
   field: a store author must not choose where the controller sends a token.
4. Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's user
   credentials, the GKE/GCE metadata server (Workload Identity).

Why the SDK client is built lazily (on the first call): resolving ADC may fail or touch
the network; doing it in ``open()`` would make ``validate()`` unable to report it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from secretsync.core.errors import InvalidConfig
from secretsync.core.redact import guard_sdk_loggers
from secretsync.core.values import SecretValue

INSECURE_ENDPOINT_ENV = "SECRETSYNC_GCP_INSECURE_ENDPOINT"
#: Google's STS token endpoint and IAM Credentials API (controller configuration, for tests).
STS_ENDPOINT_ENV = "SECRETSYNC_GCP_STS_ENDPOINT"
DEFAULT_STS_ENDPOINT = "https://sts.googleapis.com/v1/token"
IAM_CREDENTIALS_ENV = "SECRETSYNC_GCP_IAM_CREDENTIALS_ENDPOINT"
DEFAULT_IAM_CREDENTIALS = "https://iamcredentials.googleapis.com"
#: Google's OAuth2 token endpoint: the only ``token_uri`` a service-account key keeps.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
#: A Google service account email, as the KSA annotation must name it.
_GSA_EMAIL = re.compile(r"^[a-z0-9-]{1,63}@[a-z0-9.:-]+\.iam\.gserviceaccount\.com$")
ACCESS_TOKEN_ENV = "SECRETSYNC_GCP_ACCESS_TOKEN"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
DEFAULT_ENDPOINT = "secretmanager.googleapis.com"

#: The SDK's transports attach every request and response payload (AccessSecretVersion's
#: value, base64) to their DEBUG records once a caller turns google logging on.
_TRANSPORTS = "google.cloud.secretmanager_v1.services.secret_manager_service.transports"
guard_sdk_loggers([f"{_TRANSPORTS}.grpc", f"{_TRANSPORTS}.grpc_asyncio", f"{_TRANSPORTS}.rest",
                   f"{_TRANSPORTS}.rest_base"])

#: Secret Manager payloads are at most 64 KiB; leave room for metadata, refuse anything absurd.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ("grpc.enable_retries", 0),
]


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """Everything needed to build an SDK client; holds the token as a SecretValue."""

    endpoint: str | None
    insecure_endpoint: str | None
    service_account_info: SecretValue | None
    access_token: SecretValue | None
    #: ``tokenExchange``: (STS audience, the KSA token, the GSA email to impersonate or None).
    exchange: TokenExchange | None = None

    def describe(self) -> str:
        if self.insecure_endpoint:
            return f"insecure endpoint {self.insecure_endpoint} (test mode)"
        return f"endpoint {self.endpoint or DEFAULT_ENDPOINT}"


@dataclass(frozen=True, slots=True)
class TokenExchange:
    """A ServiceAccount token to exchange at STS (and the GSA to impersonate with the result)."""

    audience: str
    subject_token: SecretValue
    service_account: str | None

    def __repr__(self) -> str:
        return f"TokenExchange(audience={self.audience!r}, service_account={self.service_account!r})"


def regional_endpoint(location: str) -> str:
    return f"secretmanager.{location}.rep.googleapis.com"


def connection_spec(config: Mapping[str, Any], credentials: Mapping[str, SecretValue] | None) -> ConnectionSpec:
    creds = dict(credentials or {})
    insecure = os.environ.get(INSECURE_ENDPOINT_ENV) or None
    token = creds.get("accessToken")
    if token is None and os.environ.get(ACCESS_TOKEN_ENV):
        token = SecretValue(os.environ[ACCESS_TOKEN_ENV])
    endpoint = config.get("endpoint")
    if not endpoint and config.get("location"):
        endpoint = regional_endpoint(str(config["location"]))
    unknown = sorted(set(creds) - {"accessToken", "serviceAccountKey", "subjectToken", "serviceAccountEmail"})
    if unknown:
        raise InvalidConfig(
            f"gcp credentials: unknown key(s) {unknown}; expected 'serviceAccountKey' or 'accessToken'",
            provider="gcp", operation="open",
        )
    exchange = _token_exchange(config, creds)
    key = creds.get("serviceAccountKey")
    if key is not None:
        _check_service_account_key(key)
    return ConnectionSpec(
        endpoint=str(endpoint) if endpoint else None,
        insecure_endpoint=str(insecure) if insecure else None,
        service_account_info=creds.get("serviceAccountKey"),
        access_token=token,
        exchange=exchange,
    )


def _token_exchange(config: Mapping[str, Any], creds: Mapping[str, SecretValue]) -> TokenExchange | None:
    spec = config.get("tokenExchange")
    if not isinstance(spec, Mapping):
        return None
    subject = creds.get("subjectToken")
    if subject is None:
        raise InvalidConfig("gcp tokenExchange needs the ServiceAccount token (serviceAccountRef)",
                            provider="gcp", operation="open")
    gsa: str | None = None
    if spec.get("impersonate"):
        email = creds.get("serviceAccountEmail")
        gsa = email.reveal_text().strip() if email is not None else ""
        if not _GSA_EMAIL.match(gsa):
            raise InvalidConfig(
                "auth.workloadIdentity.serviceAccountRef: the ServiceAccount's annotation "
                "iam.gke.io/gcp-service-account must name a Google service account "
                "(NAME@PROJECT.iam.gserviceaccount.com)", provider="gcp", operation="open")
    return TokenExchange(str(spec["audience"]), subject, gsa)

def _key_info(key: SecretValue) -> dict[str, Any]:
    try:
        info = json.loads(key.reveal_text())
    except ValueError:
        raise InvalidConfig("gcp credential 'serviceAccountKey' (secretRef.serviceAccountKey) is not a JSON key "
                            "file", provider="gcp", operation="open") from None
    if not isinstance(info, dict):
        raise InvalidConfig("gcp credential 'serviceAccountKey' (secretRef.serviceAccountKey) must be a JSON object",
                            provider="gcp", operation="open")
    return info


def _check_service_account_key(key: SecretValue) -> None:
    """Only ``type: service_account``: every other google-auth type reads files or calls URLs it names."""
    kind = _key_info(key).get("type")
    if kind != "service_account":
        shown = kind if isinstance(kind, str) and kind.replace("_", "").isalnum() and len(kind) < 40 else "?"
        raise InvalidConfig(
            f"gcp credential 'serviceAccountKey' (secretRef.serviceAccountKey): key type {shown!r} is refused; "
            "only a 'service_account' key JSON is accepted (external_account and other types make the "
            "controller read local files or call token URLs named in the JSON)",
            provider="gcp", operation="open",
        )


class _BearerToken(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds ``authorization: Bearer TOKEN`` to every call (insecure test channel only).

    ``token``: a fixed token, or a function giving a fresh one (google-auth credentials that
    refresh themselves, e.g. a token exchange)."""

    def __init__(self, token: SecretValue | Callable[[], str]) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "<_BearerToken ***>"

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        metadata = list(client_call_details.metadata or ())
        token = self._token.reveal_text() if isinstance(self._token, SecretValue) else self._token()
        metadata.append(("authorization", "Bearer " + token))
        details = _CallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            getattr(client_call_details, "wait_for_ready", None),
            getattr(client_call_details, "compression", None),
        )
        return continuation(details, request)


class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, method: str, timeout: float | None, metadata: Any, credentials: Any,
                 wait_for_ready: bool | None, compression: Any) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


class _SubjectToken:
    """google-auth's ``SubjectTokenSupplier``: the store's ServiceAccount token, from memory
    (no file, no URL: what a ``credential_source`` would make the controller read)."""

    def __init__(self, token: SecretValue) -> None:
        self._token = token

    def get_subject_token(self, context: Any, request: Any) -> str:
        return self._token.reveal_text()

    def __repr__(self) -> str:
        return "_SubjectToken(***)"


def _exchange_credentials(exchange: TokenExchange) -> Any:
    from google.auth import identity_pool

    impersonation = None
    if exchange.service_account:
        base = (os.environ.get(IAM_CREDENTIALS_ENV) or DEFAULT_IAM_CREDENTIALS).rstrip("/")
        impersonation = f"{base}/v1/projects/-/serviceAccounts/{exchange.service_account}:generateAccessToken"
    return identity_pool.Credentials(  # type: ignore[no-untyped-call]
        audience=exchange.audience, subject_token_type=JWT_TOKEN_TYPE,
        token_url=os.environ.get(STS_ENDPOINT_ENV) or DEFAULT_STS_ENDPOINT,
        subject_token_supplier=_SubjectToken(exchange.subject_token),
        service_account_impersonation_url=impersonation, scopes=list(SCOPES))


def _refreshing(creds: Any) -> Callable[[], str]:
    """A fresh access token of ``creds`` on each call (refreshed when expired; thread-safe)."""
    import google.auth.transport.requests

    lock = threading.Lock()

    def token() -> str:
        with lock:
            if not creds.valid:
                creds.refresh(google.auth.transport.requests.Request())
            return str(creds.token)

    return token


def _google_credentials(spec: ConnectionSpec) -> Any:
    """google-auth credentials for the secure modes (None: let the SDK run ADC)."""
    if spec.exchange is not None:
        return _exchange_credentials(spec.exchange)
    if spec.service_account_info is not None:
        from google.oauth2 import service_account

        _check_service_account_key(spec.service_account_info)
        info = {**_key_info(spec.service_account_info), "token_uri": GOOGLE_TOKEN_URI}
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(SCOPES))
        return creds.with_always_use_jwt_access(True)
    if spec.access_token is not None:
        from google.oauth2.credentials import Credentials

        return Credentials(token=spec.access_token.reveal_text())  # type: ignore[no-untyped-call]
    import google.auth

    creds, _ = google.auth.default(scopes=list(SCOPES))
    return creds


def build_sdk_client(spec: ConnectionSpec) -> Any:
    """A ``SecretManagerServiceClient``; raises google-auth errors (mapped by the caller)."""
    from google.api_core.client_options import ClientOptions
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    if spec.insecure_endpoint:
        channel = grpc.insecure_channel(spec.insecure_endpoint, options=_CHANNEL_OPTIONS)
        if spec.exchange is not None or spec.service_account_info is not None:
            channel = grpc.intercept_channel(channel, _BearerToken(_refreshing(_google_credentials(spec))))
        elif spec.access_token is not None:
            channel = grpc.intercept_channel(channel, _BearerToken(spec.access_token))
        return SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))
    credentials = _google_credentials(spec)
    options = ClientOptions(api_endpoint=spec.endpoint) if spec.endpoint else None
    return SecretManagerServiceClient(credentials=credentials, client_options=options)


SdkFactory = Callable[[], Any]
