"""The smallest interface to Secret Manager that the adapter uses, hiding the SDK.

Why a layer: the adapter (``client.py``) deals in plain dataclasses and secretsync errors;
everything that knows about proto-plus messages, ``google.api_core`` exceptions, gRPC
deadlines and retries lives here. Each method is exactly one RPC, wrapped in
:func:`providers.calls.provider_call` (``"gcp", "<RpcName>"``) so metrics, benchmarks and the
rate limiter see every backend call, and errors are mapped by :func:`.errors.mapper`.

Timeouts and retries: every call gets ``timeout=`` from the settings and ``retry=None``
(the SDK's own retry for AccessSecretVersion would otherwise wait up to 60 s). Reads that
are safe to repeat are retried here at most ``settings.timeouts.sdk_retries`` times on
UNAVAILABLE, with a short backoff, each attempt counted as its own call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from secretsync.core.errors import Unavailable
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..calls import provider_call
from .errors import PROVIDER, Precondition, is_connection_failure, mapper

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A Secret resource without anything secret: name, labels, creation time, etag."""

    name: str  # projects/P[/locations/L]/secrets/ID
    labels: Mapping[str, str] = field(default_factory=dict)
    create_time: datetime | None = None
    etag: str = ""

    @property
    def secret_id(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class VersionInfo:
    name: str  # .../secrets/ID/versions/N
    state: str  # ENABLED | DISABLED | DESTROYED
    create_time: datetime | None = None
    etag: str = ""

    @property
    def version_id(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Payload:
    """What AccessSecretVersion returned. ``data`` is the raw value: wrap it at once."""

    version_name: str
    data: bytes = field(repr=False)
    crc32c: int | None = None

    def __repr__(self) -> str:
        return f"Payload(version_name={self.version_name!r}, data=***)"


def _ts(value: Any) -> datetime | None:
    """proto-plus gives timestamps as DatetimeWithNanoseconds (a datetime); unset -> None."""
    if isinstance(value, datetime) and value.timestamp() > 0:
        return value
    return None


def _secret_info(secret: Any) -> SecretInfo:
    return SecretInfo(name=secret.name, labels=dict(secret.labels), create_time=_ts(secret.create_time),
                      etag=secret.etag)


def _version_info(version: Any) -> VersionInfo:
    return VersionInfo(name=version.name, state=version.state.name, create_time=_ts(version.create_time),
                       etag=version.etag)


class SecretManagerApi:
    """One method per RPC; thread-safe (the SDK client and the gRPC channel are)."""

    def __init__(self, build: Callable[[], Any], settings: ClientSettings) -> None:
        self._build = build
        self._settings = settings
        self._limiter = settings.rate_limit.bucket()
        self._timeout = settings.timeouts.read
        self._retries = max(0, settings.timeouts.sdk_retries)
        self._sdk: Any = None
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------
    def _client(self) -> Any:
        if self._sdk is None:
            with self._lock:
                if self._sdk is None:
                    self._sdk = self._build()
        return self._sdk

    def _rpc(
        self,
        rpc: str,
        key: str | None,
        call: Callable[[Any, dict[str, Any]], T],
        *,
        idempotent: bool = False,
        precondition: Precondition = "conflict",
        values: tuple[SecretValue | bytes, ...] = (),
    ) -> T:
        attempts = 1 + (self._retries if idempotent else 0)
        mapping = mapper(precondition, values)
        for attempt in range(attempts):
            try:
                # gRPC bounds each call itself (timeout=), so no urllib3 deadline (bounded=False).
                with provider_call(self._settings, PROVIDER, rpc, mapping, key=key, limiter=self._limiter,
                                   bounded=False, server="Secret Manager"):
                    return call(self._client(), {"timeout": self._timeout, "retry": None})
            except Unavailable as err:
                if attempt + 1 >= attempts or not is_connection_failure(err.__cause__):
                    raise
                time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            sdk, self._sdk = self._sdk, None
        if sdk is not None:
            try:
                sdk.transport.close()
            except Exception:  # closing a broken channel must not fail close()
                return

    # -- secrets -----------------------------------------------------------------------------
    def get_secret(self, name: str, *, key: str | None = None) -> SecretInfo:
        return self._rpc("GetSecret", key, lambda c, kw: _secret_info(c.get_secret(name=name, **kw)),
                         idempotent=True)

    def list_secrets(
        self, parent: str, *, filter: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[SecretInfo], str]:
        from google.cloud.secretmanager_v1 import types

        request = types.ListSecretsRequest(parent=parent, filter=filter, page_size=page_size,
                                           page_token=page_token)

        def call(client: Any, kw: dict[str, Any]) -> tuple[list[SecretInfo], str]:
            # The pager fetched exactly one page; its attributes read that page without more RPCs
            # (iterating it would fetch the next pages behind our back, uncounted).
            page = client.list_secrets(request=request, **kw)
            return [_secret_info(s) for s in page.secrets], page.next_page_token

        return self._rpc("ListSecrets", None, call, idempotent=True)

    def create_secret(
        self, parent: str, secret_id: str, *, labels: Mapping[str, str], regional: bool, key: str | None
    ) -> SecretInfo:
        from google.cloud.secretmanager_v1 import types

        secret = types.Secret(labels=dict(labels))
        if not regional:
            secret.replication = types.Replication(automatic=types.Replication.Automatic())

        def call(client: Any, kw: dict[str, Any]) -> SecretInfo:
            return _secret_info(client.create_secret(parent=parent, secret_id=secret_id, secret=secret, **kw))

        return self._rpc("CreateSecret", key, call)

    def update_labels(self, name: str, labels: Mapping[str, str], *, etag: str = "",
                      key: str | None = None) -> SecretInfo:
        from google.cloud.secretmanager_v1 import types
        from google.protobuf import field_mask_pb2

        secret = types.Secret(name=name, labels=dict(labels), etag=etag)
        mask = field_mask_pb2.FieldMask(paths=["labels"])
        return self._rpc(
            "UpdateSecret", key,
            lambda c, kw: _secret_info(c.update_secret(secret=secret, update_mask=mask, **kw)))

    def delete_secret(self, name: str, *, etag: str = "", key: str | None = None) -> None:
        from google.cloud.secretmanager_v1 import types

        request = types.DeleteSecretRequest(name=name, etag=etag)
        self._rpc("DeleteSecret", key, lambda c, kw: c.delete_secret(request=request, **kw))

    # -- versions ----------------------------------------------------------------------------
    def add_version(self, parent: str, data: bytes, crc32c: int, *, key: str | None = None) -> VersionInfo:
        from google.cloud.secretmanager_v1 import types

        payload = types.SecretPayload(data=data, data_crc32c=crc32c)
        return self._rpc(
            "AddSecretVersion", key,
            lambda c, kw: _version_info(c.add_secret_version(parent=parent, payload=payload, **kw)),
            values=(data,))

    def access_version(self, name: str, *, key: str | None = None) -> Payload:
        def call(client: Any, kw: dict[str, Any]) -> Payload:
            response = client.access_secret_version(name=name, **kw)
            payload = response.payload
            crc = payload.data_crc32c if "data_crc32c" in payload else None
            return Payload(response.name, bytes(payload.data), crc)

        return self._rpc("AccessSecretVersion", key, call, idempotent=True, precondition="version-state")

    def get_version(self, name: str, *, key: str | None = None) -> VersionInfo:
        return self._rpc("GetSecretVersion", key,
                         lambda c, kw: _version_info(c.get_secret_version(name=name, **kw)), idempotent=True)

    def list_versions(
        self, parent: str, *, filter: str = "", page_size: int = 0, page_token: str = "",
        key: str | None = None,
    ) -> tuple[list[VersionInfo], str]:
        from google.cloud.secretmanager_v1 import types

        request = types.ListSecretVersionsRequest(parent=parent, filter=filter, page_size=page_size,
                                                  page_token=page_token)

        def call(client: Any, kw: dict[str, Any]) -> tuple[list[VersionInfo], str]:
            page = client.list_secret_versions(request=request, **kw)
            return [_version_info(v) for v in page.versions], page.next_page_token

        return self._rpc("ListSecretVersions", key, call, idempotent=True)

    def set_version_state(self, name: str, action: str, *, etag: str = "", key: str | None = None) -> VersionInfo:
        """``action`` is enable, disable or destroy."""
        rpc = {"enable": "EnableSecretVersion", "disable": "DisableSecretVersion",
               "destroy": "DestroySecretVersion"}[action]

        def call(client: Any, kw: dict[str, Any]) -> VersionInfo:
            method = getattr(client, f"{action}_secret_version")
            return _version_info(method(request={"name": name, "etag": etag}, **kw))

        return self._rpc(rpc, key, call)

