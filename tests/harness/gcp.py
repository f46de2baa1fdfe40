"""Harness for gcp: the fake Secret Manager gRPC server, once per session, driven by the real SDK.

* ``gcp_fake`` (session): the server on 127.0.0.1:<port the OS picked> (binding port 0 is
  race-free, unlike probing for a free port first), stopped at the end of the session.
* ``gcp_server`` (function): the same server, state and injected faults reset around the test.
* ``backend_gcp`` (function): the :class:`~tests.harness.backends.Backend` the conformance
  suite uses. Out-of-band writes go through the REAL ``SecretManagerServiceClient``, not
  our adapter.

The CLI reaches the fake through two clearly test-only environment variables:
``SECRETSYNC_GCP_INSECURE_ENDPOINT`` (plaintext HOST:PORT) and ``SECRETSYNC_GCP_ACCESS_TOKEN``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from secretsync.core.contract import SecretsClient
from secretsync.core.registry import get_factory
from secretsync.core.settings import ClientSettings, TimeoutSettings
from secretsync.core.values import SecretValue
from tests.harness.backends import Backend
from tests.harness.env import environ
from tests.harness.ports import closed_port

PROJECT = "test-project"
URL = f"gcp://{PROJECT}"


@pytest.fixture(scope="session")
def gcp_fake() -> Iterator[Any]:
    from tests.fakes.gcp_secretmanager import FakeSecretManager

    fake = FakeSecretManager(token="fake-" + uuid.uuid4().hex).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def gcp_server(gcp_fake: Any) -> Iterator[Any]:
    gcp_fake.reset()
    yield gcp_fake
    gcp_fake.reset()


def gcp_client(address: str, token: str | None, settings: ClientSettings | None = None,
               **config: Any) -> SecretsClient:
    """An adapter client on the fake, opened through the registry like any store."""
    credentials = {"accessToken": SecretValue(token)} if token else None
    with environ(SECRETSYNC_GCP_INSECURE_ENDPOINT=address):
        return get_factory("gcp").open({"project": PROJECT, **config}, settings or ClientSettings(), credentials)


@pytest.fixture
def backend_gcp(gcp_server: Any) -> Iterator[Backend]:
    from google.api_core import exceptions as gexc
    from google.cloud.secretmanager_v1 import types
    from secretsync_providers.gcp.names import encode_secret_id

    from tests.fakes.gcp_secretmanager import sdk_client

    fake = gcp_server
    sdk = sdk_client(fake.address, fake.token)
    parent = f"projects/{PROJECT}"

    def create(name: str, value: SecretValue, tags: Mapping[str, str] | None = None) -> None:
        secret_id = encode_secret_id(name)
        with contextlib.suppress(gexc.AlreadyExists):
            sdk.create_secret(parent=parent, secret_id=secret_id, secret=types.Secret(
                replication=types.Replication(automatic=types.Replication.Automatic()),
                labels=dict(tags or {})))
        if tags is not None:
            sdk.update_secret(secret=types.Secret(name=f"{parent}/secrets/{secret_id}", labels=dict(tags)),
                              update_mask={"paths": ["labels"]})
        sdk.add_secret_version(parent=f"{parent}/secrets/{secret_id}",
                               payload=types.SecretPayload(data=value.reveal()))

    def delete(name: str) -> None:
        sdk.delete_secret(name=f"{parent}/secrets/{encode_secret_id(name)}")

    fast = ClientSettings(timeouts=TimeoutSettings(connect=2.0, read=3.0, sdk_retries=1))
    yield Backend(
        name="gcp",
        client=lambda: gcp_client(fake.address, fake.token),
        create=create,
        delete=delete,
        bad_credentials_client=lambda: gcp_client(fake.address, "wrong-" + uuid.uuid4().hex),
        unreachable_client=lambda: gcp_client(f"127.0.0.1:{closed_port()}", fake.token, fast),
        url=URL,
        env={"SECRETSYNC_GCP_INSECURE_ENDPOINT": fake.address, "SECRETSYNC_GCP_ACCESS_TOKEN": fake.token},
    )
    sdk.transport.close()
