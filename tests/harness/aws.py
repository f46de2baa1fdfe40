"""AWS harness: moto in server mode on a free loopback port, driven through the real boto3.

Why a subprocess (``python -m moto.server``) rather than an in-process ThreadedMotoServer:
moto's IAM switch (``INITIAL_NO_AUTH_ACTION_COUNT``) is process-global, and the bad
credentials test needs a server that *checks* credentials while every other test needs one
that does not. Two processes keep the two settings apart, and keep moto's ~100 MB of
imports out of the pytest process.

* ``moto_server`` (session): the main server, credentials not checked; each test that uses
  ``backend_aws`` starts from empty state (``POST /moto-api/reset``).
* ``moto_auth_server`` (session, started on first use): IAM checks on from the first call,
  no IAM users, so any access key is unknown and moto answers like AWS does for a bad key.

Heavy imports (boto3) happen inside the fixtures so ``pytest tests/unit`` stays fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from secretsync.core.contract import SecretsClient
from secretsync.core.registry import StoreSpec, open_store
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.harness.backends import Backend
from tests.harness.ports import closed_port, free_port, wait_for_port

REGION = "us-east-1"
#: Dummy keys: moto without IAM checks accepts anything. Built at runtime (no key-shaped literal).
ACCESS_KEY = "AKIA" + "MOTO" * 4
SECRET_KEY = "moto-secret-" + "x" * 28


@dataclass
class MotoServer:
    """One moto server process on 127.0.0.1."""

    port: int
    proc: subprocess.Popen[bytes]
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Wipe every moto backend (secrets, IAM...) between tests."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_moto(extra_env: Mapping[str, str] | None = None) -> MotoServer:
    """Start ``python -m moto.server`` on a free port and wait until it answers."""
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    # moto must not itself try to reach AWS or the network for anything.
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = MotoServer(port, proc, dict(extra_env or {}))
    try:
        wait_for_port(port, timeout=60, proc=proc)
        server.reset()
    except BaseException:
        server.stop()
        raise
    return server


def client_env(endpoint: str) -> dict[str, str]:
    """What a CLI subprocess needs to talk to moto through boto3's own chain."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def static_credentials() -> dict[str, SecretValue]:
    return {"accessKeyID": SecretValue(ACCESS_KEY), "secretAccessKey": SecretValue(SECRET_KEY)}


def open_aws(
    endpoint: str,
    *,
    prefix: str = "",
    settings: ClientSettings | None = None,
    credentials: Mapping[str, SecretValue] | None = None,
    **config: Any,
) -> SecretsClient:
    """An adapter client on ``endpoint`` with explicit dummy credentials (no env needed)."""
    cfg: dict[str, Any] = {"region": REGION, "endpoint": endpoint, **config}
    if prefix:
        cfg["prefix"] = prefix
    return open_store(StoreSpec("aws", cfg), settings or ClientSettings(),
                      static_credentials() if credentials is None else credentials)


def raw_boto3(endpoint: str) -> Any:
    """A plain boto3 secretsmanager client for out-of-band writes (not our adapter)."""
    import boto3

    return boto3.client(
        "secretsmanager",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


class _Lazy:
    """Starts the IAM-checking moto only when a test first needs it."""

    def __init__(self) -> None:
        self.server: MotoServer | None = None

    def get(self) -> MotoServer:
        if self.server is None:
            self.server = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
        return self.server


@pytest.fixture(scope="session")
def moto_auth_server() -> Iterator[Callable[[], MotoServer]]:
    lazy = _Lazy()
    try:
        yield lazy.get
    finally:
        if lazy.server is not None:
            lazy.server.stop()


@pytest.fixture
def aws_endpoint(moto_server: MotoServer) -> str:
    """The main moto endpoint, reset to empty for this test."""
    moto_server.reset()
    return moto_server.endpoint


@pytest.fixture
def backend_aws(aws_endpoint: str, moto_auth_server: Callable[[], MotoServer]) -> Iterator[Backend]:
    raw = raw_boto3(aws_endpoint)

    def create(name: str, value: SecretValue, tags: Mapping[str, str] | None = None) -> None:
        kwargs: dict[str, Any] = {"Name": name}
        if value.is_text:
            kwargs["SecretString"] = value.reveal_text()
        else:
            kwargs["SecretBinary"] = value.reveal()
        if tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        raw.create_secret(**kwargs)

    def delete(name: str) -> None:
        raw.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)

    def bad_credentials_client() -> SecretsClient:
        server = moto_auth_server()
        return open_aws(server.endpoint)

    def unreachable_client() -> SecretsClient:
        # Default settings on purpose: the defaults themselves must fail fast.
        return open_aws(f"http://127.0.0.1:{closed_port()}")

    yield Backend(
        name="aws",
        client=lambda: open_aws(aws_endpoint),
        create=create,
        delete=delete,
        bad_credentials_client=bad_credentials_client,
        unreachable_client=unreachable_client,
        url=f"aws://{REGION}",
        env=client_env(aws_endpoint),
    )
    raw.close()
