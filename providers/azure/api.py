"""The few Key Vault operations the provider uses, behind one small interface.

Why a wrapper: the client's logic (name mapping, binary encoding, soft-delete handling,
compare-and-set) should not depend on SDK model classes, and the SDK's surface we rely on
should be visible in one place. :class:`SdkKeyVaultApi` is the only class that touches
``SecretClient``; it returns :class:`SecretRecord` (values already wrapped in
:class:`SecretValue`) and lets SDK exceptions through for the client to map.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from azure.core.credentials import TokenCredential
from azure.keyvault.secrets import SecretClient, SecretProperties

from secretsync.core.values import SecretValue

#: Pinned so a new SDK default cannot change behaviour under us (the fake speaks it too).
API_VERSION = "7.5"
#: Key Vault's largest page (``maxresults`` is 1..25).
PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """One secret (or version) as the vault returned it; ``value`` only from a get."""

    name: str
    version: str | None
    content_type: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    updated: datetime | None = None
    enabled: bool | None = None
    value: SecretValue | None = None


class KeyVaultApi(Protocol):
    def get(self, name: str, version: str | None) -> SecretRecord: ...
    def set(self, name: str, value: str, content_type: str | None,
            tags: Mapping[str, str] | None) -> SecretRecord: ...
    def list_pages(self) -> Iterator[tuple[list[SecretRecord], bool]]:
        """Pages of every secret's metadata, each with "is there another page?".

        Each ``next()`` is exactly one HTTP call; callers stop after a page that says
        there is no other, so the count of calls is the count of pages.
        """
        ...
    def delete(self, name: str) -> bool:
        """Delete; True when the deletion is recoverable (soft), False when it was final."""
        ...
    def get_deleted(self, name: str) -> None: ...
    def purge(self, name: str) -> None: ...
    def recover(self, name: str) -> None: ...
    def close(self) -> None: ...


def _record(props: SecretProperties, value: str | None = None) -> SecretRecord:
    return SecretRecord(
        name=props.name or "",
        version=props.version,
        content_type=props.content_type,
        tags=dict(props.tags or {}),
        updated=props.updated_on,
        enabled=props.enabled,
        value=SecretValue(value) if value is not None else None,
    )


class SdkKeyVaultApi:
    """:class:`KeyVaultApi` on the real ``azure-keyvault-secrets`` client."""

    def __init__(self, vault_url: str, credential: TokenCredential, **client_kwargs: Any) -> None:
        self._credential = credential
        self._client = SecretClient(vault_url, credential, api_version=API_VERSION, **client_kwargs)

    def get(self, name: str, version: str | None) -> SecretRecord:
        secret = self._client.get_secret(name, version)
        return _record(secret.properties, secret.value)

    def set(self, name: str, value: str, content_type: str | None,
            tags: Mapping[str, str] | None) -> SecretRecord:
        secret = self._client.set_secret(
            name, value, content_type=content_type, tags=dict(tags) if tags is not None else None
        )
        return _record(secret.properties)

    def list_pages(self) -> Iterator[tuple[list[SecretRecord], bool]]:
        # Key Vault's list items carry no version (their ids are /secrets/NAME), only
        # attributes (updated, to the second), tags and contentType.
        pages = self._client.list_properties_of_secrets(max_page_size=PAGE_SIZE).by_page()
        while True:
            page = [_record(p) for p in next(pages)]
            more = bool(getattr(pages, "continuation_token", None))  # the nextLink, if any
            yield page, more
            if not more:
                return

    def delete(self, name: str) -> bool:
        # One DELETE; we poll for completion ourselves so each poll is counted and bounded.
        # No recovery id: a (legacy) vault without soft delete, where the delete was final.
        return self._client.begin_delete_secret(name).result().recovery_id is not None

    def get_deleted(self, name: str) -> None:
        self._client.get_deleted_secret(name)

    def purge(self, name: str) -> None:
        self._client.purge_deleted_secret(name)

    def recover(self, name: str) -> None:
        self._client.begin_recover_deleted_secret(name)

    def close(self) -> None:
        self._client.close()
        close = getattr(self._credential, "close", None)
        if callable(close):
            close()
