"""The two-method harness each backend supplies to the conformance suite (as ESO's e2e does).

A ``Backend`` knows how to build a client of the provider under test and how to create and
delete secrets *out of band* (through the raw SDK or server API, not through our adapter), so
the conformance suite can check the adapter against state it did not write itself.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from secretsync.core.contract import SecretsClient
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue


@dataclass
class Backend:
    """What a provider's harness gives the conformance suite.

    - ``client()``: a fresh adapter client against the running server.
    - ``create(name, value, tags)`` / ``delete(name)``: out-of-band writes.
    - ``bad_credentials_client()``: same server, rejected credentials.
    - ``unreachable_client()``: an endpoint where nothing listens.
    - ``url`` + ``env``: what the CLI needs (``secretsync secret ls URL`` with ``env`` set).
    """

    name: str
    client: Callable[[], SecretsClient]
    create: Callable[[str, SecretValue, Mapping[str, str] | None], None]
    delete: Callable[[str], None]
    bad_credentials_client: Callable[[], SecretsClient] | None = None
    unreachable_client: Callable[[], SecretsClient] | None = None
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)


def unique_name(prefix: str = "ct") -> str:
    """A per-test secret name with a slash and a dot, so every test also covers such names."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}/app.db"


def _via_client(open_client: Callable[[], SecretsClient]) -> tuple[
    Callable[[str, SecretValue, Mapping[str, str] | None], None], Callable[[str], None]
]:
    def create(name: str, value: SecretValue, tags: Mapping[str, str] | None = None) -> None:
        open_client().put(name, value, tags=tags)

    def delete(name: str) -> None:
        open_client().delete(name, force=True)

    return create, delete


@pytest.fixture
def backend_memory() -> Iterator[Backend]:
    url = f"memory://conformance-{uuid.uuid4().hex[:8]}"
    create, delete = _via_client(lambda: open_store(url))
    yield Backend("memory", lambda: open_store(url), create, delete, url=url)


@pytest.fixture
def backend_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    url = f"file://{tmp_path}/store.json"
    create, delete = _via_client(lambda: open_store(url))
    yield Backend("file", lambda: open_store(url), create, delete, url=url,
                  env={"SECRETSYNC_FILE_KEY": ""} if "SECRETSYNC_FILE_KEY" in os.environ else {})
