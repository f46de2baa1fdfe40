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
   the controller and where to send it.
3. Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's user
   credentials, the GKE/GCE metadata server (Workload Identity).

Why the SDK client is built lazily (on the first call): resolving ADC may fail or touch
the network; doing it in ``open()`` would make ``validate()`` unable to report it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from secretsync.core.errors import InvalidConfig
from secretsync.core.redact import guard_sdk_loggers
from secretsync.core.values import SecretValue

INSECURE_ENDPOINT_ENV = "SECRETSYNC_GCP_INSECURE_ENDPOINT"
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

    def describe(self) -> str:
        if self.insecure_endpoint:
            return f"insecure endpoint {self.insecure_endpoint} (test mode)"
        return f"endpoint {self.endpoint or DEFAULT_ENDPOINT}"


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
    unknown = sorted(set(creds) - {"accessToken", "serviceAccountKey"})
    if unknown:
        raise InvalidConfig(
            f"gcp credentials: unknown key(s) {unknown}; expected 'serviceAccountKey' or 'accessToken'",
            provider="gcp", operation="open",
        )
    key = creds.get("serviceAccountKey")
    if key is not None:
        _check_service_account_key(key)
    return ConnectionSpec(
        endpoint=str(endpoint) if endpoint else None,
        insecure_endpoint=str(insecure) if insecure else None,
        service_account_info=creds.get("serviceAccountKey"),
        access_token=token,
    )


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
    """Adds ``authorization: Bearer TOKEN`` to every call (insecure test channel only)."""

    def __init__(self, token: SecretValue) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "<_BearerToken ***>"

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        metadata = list(client_call_details.metadata or ())
        metadata.append(("authorization", "Bearer " + self._token.reveal_text()))
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


def _google_credentials(spec: ConnectionSpec) -> Any:
    """google-auth credentials for the secure modes (None: let the SDK run ADC)."""
    if spec.service_account_info is not None:
        from google.oauth2 import service_account

        _check_service_account_key(spec.service_account_info)
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            _key_info(spec.service_account_info), scopes=list(SCOPES))
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
        if spec.access_token is not None:
            channel = grpc.intercept_channel(channel, _BearerToken(spec.access_token))
        return SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))
    credentials = _google_credentials(spec)
    options = ClientOptions(api_endpoint=spec.endpoint) if spec.endpoint else None
    return SecretManagerServiceClient(credentials=credentials, client_options=options)


SdkFactory = Callable[[], Any]
