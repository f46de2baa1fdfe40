"""A faithful fake of the Azure Key Vault *secrets* data-plane API, served over real HTTPS.

Why a fake: Microsoft ships no Key Vault emulator, and mocking ``SecretClient`` would test
our assumptions about the SDK instead of the SDK. This server speaks the documented REST
API (api-version 7.x and the date-style versions the current SDK sends) so the REAL
``azure-keyvault-secrets`` client, its challenge-auth policy, its pager and its error
mapping all run unchanged against it:

* TLS with a CA + server certificate generated at start (SAN ``IP:127.0.0.1``,
  ``DNS:localhost``); clients verify against :attr:`FakeKeyVault.ca_path`.
* The bearer challenge: a request without ``Authorization`` gets ``401`` with
  ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  resource="https://vault.azure.net"``; only configured tokens are accepted (others ``401``),
  each with a set of permissions (missing permission: ``403 Forbidden``/``ForbiddenByRbac``).
* Secrets with versions, per-version tags / contentType / attributes; ``GET /secrets`` and
  ``/versions`` paging with ``maxresults`` (1..25) and an opaque ``$skiptoken`` in ``nextLink``.
* Certificates and keys with versions, read as the real ``CertificateClient`` / ``KeyClient``
  read them: ``GET /certificates/{name}[/{version}]`` (a CertificateBundle: ``id``, ``kid``,
  ``sid``, ``x5t``, ``cer`` = base64 DER, ``attributes``, ``policy``, ``tags``) and ``GET
  /keys/{name}[/{version}]`` (a KeyBundle whose ``key`` holds the PUBLIC members of the JWK
  only, as the service answers; the private members it holds never leave it). A missing one
  answers ``404 CertificateNotFound`` / ``KeyNotFound``; reading them needs the
  ``read-certificate`` / ``read-key`` permission (RBAC ``certificates/read``, ``keys/read``:
  not in "Key Vault Secrets User"). Tests create them with :meth:`FakeKeyVault.put_certificate`
  and :meth:`FakeKeyVault.put_key` (the import APIs are not served).
* Soft delete: ``DELETE /secrets/{name}`` moves the secret to ``/deletedsecrets`` and
  reserves the name (``PUT`` then answers ``409 Conflict``/``ObjectIsDeletedButRecoverable``);
  ``POST /deletedsecrets/{name}/recover`` brings it back; ``DELETE /deletedsecrets/{name}``
  purges it. Deletion completes at once, so the SDK's poller finishes on its first poll.
* Service rules: names ``^[0-9a-zA-Z-]{1,127}$`` (case-insensitive, like the service),
  values up to 25 KiB, at most 15 tags; violations answer ``400 BadParameter``.
* A minimal Entra ID (Azure AD) on the same port for the credential flows: tenant
  discovery (``/{tenant}/v2.0/.well-known/openid-configuration``) and the OAuth2
  client-credentials token endpoint, accepting a registered app's client secret, a client
  assertion signed by its certificate (signature verified) or its federated (Workload
  Identity) token, and issuing a bearer token the vault then accepts. Point azure-identity
  at it with ``authority=<fake url>`` (and ``disable_instance_discovery=True``).
* Fault injection for the paths a real vault takes rarely: ``429 Throttled`` with
  ``Retry-After``, ``503``, a delay (read timeouts), any status/code once or N times.

Run standalone: ``python -m tests.fakes.azure_keyvault`` prints the URL, CA path and token.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import re
import shutil
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fakes import jwt_claims

#: Every permission a token may carry (the data actions of the Key Vault RBAC roles).
ALL_PERMISSIONS = frozenset({"get", "list", "set", "delete", "recover", "purge", "read-certificate", "read-key"})
#: What "Key Vault Secrets User" grants: read values and metadata.
SECRETS_USER = frozenset({"get", "list"})

NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_VALUE_BYTES = 25 * 1024
MAX_TAGS = 15
MAX_PAGE = 25
RECOVERABLE_DAYS = 90
API_VERSIONS = frozenset({
    "2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01",
})

_RBAC_ACTION = {
    "get": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "list": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "set": "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    "delete": "Microsoft.KeyVault/vaults/secrets/delete",
    "recover": "Microsoft.KeyVault/vaults/secrets/recover/action",
    "purge": "Microsoft.KeyVault/vaults/deletedSecrets/purge/action",
    "read-certificate": "Microsoft.KeyVault/vaults/certificates/read",
    "read-key": "Microsoft.KeyVault/vaults/keys/read",
}
#: A JWK's public members, as ``GET /keys`` answers them (the private ones stay in the vault).
JWK_PUBLIC = ("kty", "key_ops", "n", "e", "crv", "x", "y")


# --------------------------------------------------------------------------- TLS material
@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate it signed, written to ``directory``."""

    directory: Path
    ca_path: Path
    cert_path: Path
    key_path: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Generate a CA and a server cert for 127.0.0.1/localhost (EC P-256: fast to make)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secretsync test CA (fake Key Vault)")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory, directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    files.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_path.touch(mode=0o600)
    files.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


# --------------------------------------------------------------------------- the model
@dataclass
class _Version:
    id: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int


@dataclass
class _Secret:
    name: str  # as first created; lookups are case-insensitive
    versions: list[_Version] = field(default_factory=list)

    @property
    def current(self) -> _Version:
        return self.versions[-1]

    def version(self, version_id: str) -> _Version | None:
        for v in self.versions:
            if v.id == version_id.lower():
                return v
        return None


@dataclass
class _Deleted:
    secret: _Secret
    deleted_date: int
    scheduled_purge: int


@dataclass
class Fault:
    """An injected answer: the next ``times`` matching requests get it instead of the real one."""

    status: int
    code: str
    message: str
    method: str | None = None
    path: re.Pattern[str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0
    #: With a delay and ``status == 0`` the real answer follows the delay (slow, not failing).
    passthrough: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return not (self.path and not self.path.search(path))


@dataclass
class EntraApp:
    """An app registration the fake Entra ID issues tokens to (one credential kind or more)."""

    client_id: str
    secret: str | None = None
    certificate: x509.Certificate | None = None
    federated_token: str | None = None
    permissions: frozenset[str] = ALL_PERMISSIONS
    #: A federated identity credential: the subject (``system:serviceaccount:NS:NAME``) whose
    #: Kubernetes token (audience api://AzureADTokenExchange) is accepted as client assertion.
    #: The fake trusts the issuer (the test's apiserver) and reads, not verifies, the claims.
    federated_subject: str | None = None


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, inner: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            err["innererror"] = {"code": self.inner}
        return {"error": err}


def _not_found(name: str, kind: str = "secret") -> _ApiError:
    code = {"secret": "SecretNotFound", "certificate": "CertificateNotFound", "key": "KeyNotFound"}[kind]
    return _ApiError(
        404, code,
        f"A {kind} with (name/id) {name} was not found in this key vault. If you recently deleted this "
        f"{kind} you may be able to recover it using the correct recovery command. For help resolving "
        "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def _bad(message: str) -> _ApiError:
    return _ApiError(400, "BadParameter", message)


def _encode_token(offset: int) -> str:
    raw = json.dumps({"NextMarker": offset, "TargetLocation": 0}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        offset = int(json.loads(raw)["NextMarker"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad("The $skiptoken parameter is invalid.") from exc
    if offset < 0:
        raise _bad("The $skiptoken parameter is invalid.")
    return offset


class KeyVaultState:
    """The vault's contents and the fake's controls; every access holds ``lock``."""

    def __init__(self, tenant: str, tokens: Mapping[str, Iterable[str]]) -> None:
        self.lock = threading.RLock()
        self.tenant = tenant
        self.tokens: dict[str, frozenset[str]] = {t: frozenset(p) for t, p in tokens.items()}
        self.secrets: dict[str, _Secret] = {}
        #: Certificates (value: base64 DER) and keys (value: the full JWK as JSON, private
        #: members included, as the vault holds them), versioned like secrets.
        self.certificates: dict[str, _Secret] = {}
        self.keys: dict[str, _Secret] = {}
        self.deleted: dict[str, _Deleted] = {}
        self.faults: list[Fault] = []
        self.apps: dict[str, EntraApp] = {}
        #: (method, path, status) of every request, for tests that count calls.
        self.requests: list[tuple[str, str, int]] = []
        self.purge_protection = False
        #: A broken proxy (or a future API) that answers a key's private members too.
        self.private_key_members = False

    def reset(self) -> None:
        with self.lock:
            self.secrets.clear()
            self.certificates.clear()
            self.keys.clear()
            self.deleted.clear()
            self.faults.clear()
            self.requests.clear()
            self.purge_protection = False
            self.private_key_members = False

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None


# --------------------------------------------------------------------------- rendering
def _attributes(v: _Version) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": RECOVERABLE_DAYS,
    }
    if v.nbf is not None:
        attrs["nbf"] = v.nbf
    if v.exp is not None:
        attrs["exp"] = v.exp
    return attrs


def _bundle(base: str, s: _Secret, v: _Version, *, with_value: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f"{base}/secrets/{s.name}/{v.id}", "attributes": _attributes(v)}
    if with_value:
        out["value"] = v.value
    if v.content_type is not None:
        out["contentType"] = v.content_type
    if v.tags is not None:
        out["tags"] = dict(v.tags)
    return out


def _item(base: str, s: _Secret, v: _Version, *, versioned: bool) -> dict[str, Any]:
    """A list item: ``GET /secrets`` ids carry NO version; ``/versions`` ids do."""
    out: dict[str, Any] = {
        "id": f"{base}/secrets/{s.name}/{v.id}" if versioned else f"{base}/secrets/{s.name}",
        "attributes": _attributes(v),
    }
    if v.content_type is not None:
        out["contentType"] = v.content_type
    if v.tags is not None:
        out["tags"] = dict(v.tags)
    return out


def _certificate_bundle(base: str, c: _Secret, v: _Version) -> dict[str, Any]:
    """``GET /certificates/NAME[/VERSION]``: the certificate, its key's and secret's ids, its policy."""
    der = base64.b64decode(v.value)
    x5t = base64.urlsafe_b64encode(hashlib.sha1(der, usedforsecurity=False).digest()).decode().rstrip("=")
    out: dict[str, Any] = {
        "id": f"{base}/certificates/{c.name}/{v.id}",
        "kid": f"{base}/keys/{c.name}/{v.id}",
        "sid": f"{base}/secrets/{c.name}/{v.id}",
        "x5t": x5t,
        "cer": v.value,
        "attributes": _attributes(v),
        "policy": {
            "id": f"{base}/certificates/{c.name}/policy",
            "key_props": {"exportable": True, "kty": "EC", "key_size": 256, "reuse_key": False, "crv": "P-256"},
            "secret_props": {"contentType": "application/x-pem-file"},
            "issuer": {"name": "Self"},
            "attributes": {"enabled": True, "created": v.created, "updated": v.updated},
        },
    }
    if v.tags is not None:
        out["tags"] = dict(v.tags)
    return out


def _key_bundle(base: str, k: _Secret, v: _Version, *, private: bool) -> dict[str, Any]:
    """``GET /keys/NAME[/VERSION]``: the public JWK (``private``: every member, a broken proxy)."""
    jwk = json.loads(v.value)
    members = {m: jwk[m] for m in jwk if private or m in JWK_PUBLIC}
    out: dict[str, Any] = {"key": {"kid": f"{base}/keys/{k.name}/{v.id}", **members},
                           "attributes": {**_attributes(v), "exportable": False}}
    if v.tags is not None:
        out["tags"] = dict(v.tags)
    return out


def certificate_der(common_name: str) -> bytes:
    """A small self-signed X.509 certificate (EC P-256: fast to make) in DER, to store with
    :meth:`FakeKeyVault.put_certificate`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def private_jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
                key_ops: Iterable[str] = ("sign", "verify")) -> dict[str, Any]:
    """The full JWK (private members included) of a key, as a vault holds an imported key."""
    def b64(n: int, size: int | None = None) -> str:
        raw = n.to_bytes(size or max(1, (n.bit_length() + 7) // 8), "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    if isinstance(key, rsa.RSAPrivateKey):
        priv = key.private_numbers()
        pub = priv.public_numbers
        return {"kty": "RSA", "key_ops": list(key_ops), "n": b64(pub.n), "e": b64(pub.e), "d": b64(priv.d),
                "p": b64(priv.p), "q": b64(priv.q), "dp": b64(priv.dmp1), "dq": b64(priv.dmq1),
                "qi": b64(priv.iqmp)}
    enum = key.private_numbers()
    size = (key.curve.key_size + 7) // 8
    return {"kty": "EC", "key_ops": list(key_ops), "crv": "P-256", "x": b64(enum.public_numbers.x, size),
            "y": b64(enum.public_numbers.y, size), "d": b64(enum.private_value, size)}


def _deleted_fields(base: str, d: _Deleted) -> dict[str, Any]:
    return {
        "recoveryId": f"{base}/deletedsecrets/{d.secret.name}",
        "deletedDate": d.deleted_date,
        "scheduledPurgeDate": d.scheduled_purge,
    }


# --------------------------------------------------------------------------- the API
class _Api:
    """The operations, as pure functions of the state (the handler does HTTP around them)."""

    def __init__(self, state: KeyVaultState) -> None:
        self.state = state

    @staticmethod
    def _check_name(name: str) -> str:
        if not NAME_RE.match(name):
            raise _bad(f"The request URI contains an invalid name: {name}")
        return name.lower()

    def _live(self, name: str) -> _Secret:
        s = self.state.secrets.get(self._check_name(name))
        if s is None:
            raise _not_found(name)
        return s

    def _gone(self, name: str) -> _Deleted:
        d = self.state.deleted.get(self._check_name(name))
        if d is None:
            raise _not_found(name)
        return d

    def _page(self, base: str, path: str, items: list[dict[str, Any]], query: Mapping[str, str],
              api_version: str) -> dict[str, Any]:
        raw_max = query.get("maxresults")
        size = MAX_PAGE
        if raw_max:
            try:
                size = int(raw_max)
            except ValueError:
                raise _bad("Invalid value for maxresults: must be an integer.") from None
            if not 1 <= size <= MAX_PAGE:
                raise _bad(f"maxresults must be between 1 and {MAX_PAGE}.")
        offset = _decode_token(query["$skiptoken"]) if query.get("$skiptoken") else 0
        page = items[offset:offset + size]
        next_link = None
        if offset + size < len(items):
            next_link = (f"{base}{path}?api-version={api_version}&$skiptoken="
                         f"{quote(_encode_token(offset + size))}&maxresults={size}")
        return {"value": page, "nextLink": next_link}

    # ---- secrets
    def set(self, base: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        key = self._check_name(name)
        value = body.get("value")
        if not isinstance(value, str):
            raise _bad("The parameter 'value' is required and must be a string.")
        if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise _bad(f"Secret value is too large: the maximum size is {MAX_VALUE_BYTES} bytes.")
        content_type = body.get("contentType")
        tags = self._tags(body.get("tags"))
        attrs = body.get("attributes") or {}
        if key in self.state.deleted:
            raise _ApiError(
                409, "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be "
                "reused; in this state, the secret can only be recovered or purged.",
                inner="ObjectIsDeletedButRecoverable",
            )
        now = int(time.time())
        s = self.state.secrets.get(key)
        if s is None:
            s = self.state.secrets[key] = _Secret(name)
        v = _Version(uuid.uuid4().hex, value, content_type, tags, bool(attrs.get("enabled", True)),
                     attrs.get("nbf"), attrs.get("exp"), now, now)
        s.versions.append(v)
        return _bundle(base, s, v, with_value=True)

    @staticmethod
    def _tags(raw: Any) -> dict[str, str] | None:
        if raw is None:
            return None
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise _bad("Tags must be an object of string values.")
        if len(raw) > MAX_TAGS:
            raise _bad(f"Too many tags: at most {MAX_TAGS} are allowed.")
        for k, v in raw.items():
            if len(k) > 512 or len(v) > 256:
                raise _bad("Tag names are limited to 512 characters and tag values to 256.")
        return dict(raw)

    def get(self, base: str, name: str, version: str) -> dict[str, Any]:
        s = self._live(name)
        v = s.version(version) if version else s.current
        if v is None:
            raise _not_found(f"{name}/{version}")
        if not v.enabled:
            raise _ApiError(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                            inner="SecretDisabled")
        return _bundle(base, s, v, with_value=True)

    def update(self, base: str, name: str, version: str, body: Mapping[str, Any]) -> dict[str, Any]:
        s = self._live(name)
        v = s.version(version) if version else s.current
        if v is None:
            raise _not_found(f"{name}/{version}")
        if "contentType" in body:
            v.content_type = body["contentType"]
        if "tags" in body:
            v.tags = self._tags(body["tags"])
        attrs = body.get("attributes") or {}
        if "enabled" in attrs:
            v.enabled = bool(attrs["enabled"])
        if "nbf" in attrs:
            v.nbf = attrs["nbf"]
        if "exp" in attrs:
            v.exp = attrs["exp"]
        v.updated = int(time.time())
        return _bundle(base, s, v, with_value=False)

    def list(self, base: str, query: Mapping[str, str], api_version: str) -> dict[str, Any]:
        items = [_item(base, s, s.current, versioned=False)
                 for _, s in sorted(self.state.secrets.items())]
        return self._page(base, "/secrets", items, query, api_version)

    def versions(self, base: str, name: str, query: Mapping[str, str], api_version: str) -> dict[str, Any]:
        s = self._live(name)
        items = [_item(base, s, v, versioned=True) for v in s.versions]
        return self._page(base, f"/secrets/{s.name}/versions", items, query, api_version)

    def delete(self, base: str, name: str) -> dict[str, Any]:
        key = self._check_name(name)
        s = self._live(name)
        now = int(time.time())
        d = _Deleted(s, now, now + RECOVERABLE_DAYS * 86400)
        del self.state.secrets[key]
        self.state.deleted[key] = d
        return {**_deleted_fields(base, d), **_bundle(base, s, s.current, with_value=False)}

    # ---- certificates and keys (read-only here)
    def _object(self, table: dict[str, _Secret], name: str, version: str, kind: str) -> tuple[_Secret, _Version]:
        obj = table.get(self._check_name(name))
        if obj is None:
            raise _not_found(name, kind)
        v = obj.version(version) if version else obj.current
        if v is None:
            raise _not_found(f"{name}/{version}", kind)
        return obj, v

    def get_certificate(self, base: str, name: str, version: str) -> dict[str, Any]:
        return _certificate_bundle(base, *self._object(self.state.certificates, name, version, "certificate"))

    def get_key(self, base: str, name: str, version: str) -> dict[str, Any]:
        k, v = self._object(self.state.keys, name, version, "key")
        return _key_bundle(base, k, v, private=self.state.private_key_members)

    # ---- deleted secrets
    def list_deleted(self, base: str, query: Mapping[str, str], api_version: str) -> dict[str, Any]:
        items = [{**_deleted_fields(base, d), **_item(base, d.secret, d.secret.current, versioned=False)}
                 for _, d in sorted(self.state.deleted.items())]
        return self._page(base, "/deletedsecrets", items, query, api_version)

    def get_deleted(self, base: str, name: str) -> dict[str, Any]:
        d = self._gone(name)
        return {**_deleted_fields(base, d), **_bundle(base, d.secret, d.secret.current, with_value=False)}

    def purge(self, name: str) -> None:
        d = self._gone(name)
        if self.state.purge_protection:
            raise _ApiError(403, "Forbidden",
                            "Operation \"purge\" is not allowed because purge protection is enabled for "
                            "this vault. Key Vault service will automatically purge it after the "
                            "retention period has passed.", inner="ForbiddenByPolicy")
        del self.state.deleted[d.secret.name.lower()]

    def recover(self, base: str, name: str) -> dict[str, Any]:
        d = self._gone(name)
        key = d.secret.name.lower()
        del self.state.deleted[key]
        self.state.secrets[key] = d.secret
        return _bundle(base, d.secret, d.secret.current, with_value=False)


_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    # (method, path pattern, operation, permission)
    ("GET", re.compile(r"^/secrets/?$"), "list", "list"),
    ("GET", re.compile(r"^/secrets/(?P<name>[^/]+)/versions/?$"), "versions", "list"),
    ("GET", re.compile(r"^/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?$"), "get", "get"),
    ("PUT", re.compile(r"^/secrets/(?P<name>[^/]+)/?$"), "set", "set"),
    ("PATCH", re.compile(r"^/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?$"), "update", "set"),
    ("DELETE", re.compile(r"^/secrets/(?P<name>[^/]+)/?$"), "delete", "delete"),
    ("GET", re.compile(r"^/deletedsecrets/?$"), "list_deleted", "list"),
    ("GET", re.compile(r"^/deletedsecrets/(?P<name>[^/]+)/?$"), "get_deleted", "get"),
    ("DELETE", re.compile(r"^/deletedsecrets/(?P<name>[^/]+)/?$"), "purge", "purge"),
    ("POST", re.compile(r"^/deletedsecrets/(?P<name>[^/]+)/recover/?$"), "recover", "recover"),
    ("GET", re.compile(r"^/certificates/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?$"), "get_certificate",
     "read-certificate"),
    ("GET", re.compile(r"^/keys/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?$"), "get_key", "read-key"),
]


_ENTRA_ROUTE = re.compile(
    r"^/(?P<tenant>[^/]+)/(?:(?P<discovery>(?:v2\.0/)?\.well-known/openid-configuration)"
    r"|(?P<token>oauth2/v2\.0/token))$"
)
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verify_assertion(assertion: str, app: EntraApp) -> bool:
    """A client assertion JWT signed by the app's certificate key (RS256 or PS256), unexpired."""
    if app.certificate is None:
        return False
    try:
        head, body, sig = assertion.split(".")
        header = json.loads(_b64url(head))
        payload = json.loads(_b64url(body))
        key = app.certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        data = f"{head}.{body}".encode()
        if header.get("alg") == "RS256":
            key.verify(_b64url(sig), data, padding.PKCS1v15(), hashes.SHA256())
        elif header.get("alg") == "PS256":
            key.verify(_b64url(sig), data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                       hashes.SHA256())
        else:
            return False
    except (ValueError, KeyError, TypeError, InvalidSignature):
        return False
    return bool(payload.get("iss") == payload.get("sub") == app.client_id
                and float(payload.get("exp", 0)) > time.time())


def _federated_subject_matches(assertion: str, app: EntraApp) -> bool:
    """A Kubernetes ServiceAccount token for the app's federated identity credential."""
    if app.federated_subject is None:
        return False
    claims = jwt_claims(assertion)
    aud = claims.get("aud")
    return bool(claims.get("sub") == app.federated_subject
                and "api://AzureADTokenExchange" in (aud if isinstance(aud, list) else [aud]))


def _aad_error(status: int, error: str, code: int, description: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "error_description": f"AADSTS{code}: {description}", "error_codes": [code],
                    "timestamp": dt.datetime.now(dt.UTC).isoformat(), "trace_id": str(uuid.uuid4()),
                    "correlation_id": str(uuid.uuid4())}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeKeyVault/1.0"
    #: Idle keep-alive connections are dropped after this many seconds.
    timeout = 30
    #: Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
    #: client's delayed ACK add ~40 ms to every response.
    disable_nagle_algorithm = True

    # The server object carries the state (see FakeKeyVault.start).
    @property
    def state(self) -> KeyVaultState:
        return self.server.state  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests instead
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_POST(self) -> None:
        self._serve("POST")

    # ---- plumbing
    def _send(self, status: int, body: Mapping[str, Any] | None, headers: Mapping[str, str] | None = None,
              path: str = "") -> None:
        data = b"" if body is None else json.dumps(body).encode()
        # Record before answering: once the client has its response, a test may read the log.
        with self.state.lock:
            self.state.requests.append((self.command, path, status))
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-keyvault-service-version", "1.9.0.0")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _challenge(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": (
                f'Bearer authorization="https://login.microsoftonline.com/{self.state.tenant}", '
                'resource="https://vault.azure.net"'
            )
        }

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        base = f"https://{self.headers.get('Host') or 'localhost'}"

        entra = _ENTRA_ROUTE.match(path)
        if entra:
            status, doc = self._entra(method, entra, raw_body, base)
            self._send(status, doc, None, path)
            return

        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            self._send(401, {"error": {"code": "Unauthorized",
                                       "message": "AKV10000: Request is missing a Bearer or PoP token."}},
                       self._challenge(), path)
            return
        permissions = self.state.tokens.get(auth[len("Bearer "):].strip())
        if permissions is None:
            self._send(401, {"error": {"code": "Unauthorized",
                                       "message": "AKV10032: Invalid issuer or token. "
                                                  "The token is not accepted by this vault."}},
                       self._challenge(), path)
            return

        api_version = query.get("api-version", "")
        try:
            if api_version not in API_VERSIONS:
                raise _bad(f"The specified version ({api_version}) is not recognized. "
                           "Consider using the latest supported version (7.5).")
            fault = self.state.take_fault(method, path)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if not fault.passthrough:
                    self._send(fault.status, {"error": {"code": fault.code, "message": fault.message}},
                               fault.headers, path)
                    return
            status, body = self._route(method, path, query, raw_body, base, permissions, api_version)
        except _ApiError as err:
            self._send(err.status, err.body(), err.headers, path)
            return
        self._send(status, body, None, path)

    # ---- the fake Entra ID
    def _entra(self, method: str, m: re.Match[str], raw_body: bytes, base: str) -> tuple[int, dict[str, Any]]:
        tenant = m["tenant"]
        if tenant.lower() != self.state.tenant.lower():
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        if m["discovery"]:
            if method != "GET":
                return _aad_error(405, "invalid_request", 900561, "The endpoint only accepts GET requests.")
            root = f"{base}/{tenant}"
            return 200, {
                "issuer": f"{root}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
            }
        if method != "POST":
            return _aad_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
        form = {k: v[0] for k, v in parse_qs(raw_body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003, "The grant type is not supported.")
        with self.state.lock:
            app = self.state.apps.get(form.get("client_id", ""))
        if app is None:
            return _aad_error(400, "unauthorized_client", 700016,
                              f"Application with identifier '{form.get('client_id')}' was not found in the "
                              "directory.")
        if "client_secret" in form:
            ok = app.secret is not None and hmac.compare_digest(form["client_secret"], app.secret)
            failure = (7000215, "Invalid client secret provided.")
        elif form.get("client_assertion_type") == _JWT_BEARER:
            assertion = form.get("client_assertion", "")
            ok = (app.federated_token is not None and hmac.compare_digest(assertion, app.federated_token)) \
                or _verify_assertion(assertion, app) or _federated_subject_matches(assertion, app)
            failure = (700027, "Client assertion failed signature validation.")
        else:
            return _aad_error(401, "invalid_client", 7000216,
                              "'client_assertion', 'client_secret' or 'request' is required.")
        if not ok:
            return _aad_error(401, "invalid_client", *failure)
        token = f"entra-{uuid.uuid4().hex}"
        with self.state.lock:
            self.state.tokens[token] = app.permissions
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def _route(self, method: str, path: str, query: Mapping[str, str], raw_body: bytes, base: str,
               permissions: frozenset[str], api_version: str) -> tuple[int, dict[str, Any] | None]:
        for route_method, pattern, op, permission in _ROUTES:
            m = pattern.match(path)
            if not m or route_method != method:
                continue
            if permission not in permissions:
                raise _ApiError(
                    403, "Forbidden",
                    "Caller is not authorized to perform action on resource.\r\n"
                    f"Action: '{_RBAC_ACTION[permission]}'", inner="ForbiddenByRbac",
                )
            body: dict[str, Any] = {}
            if method in ("PUT", "PATCH"):
                try:
                    parsed = json.loads(raw_body or b"null")
                except ValueError:
                    raise _bad("The request body is not valid JSON.") from None
                if not isinstance(parsed, dict):
                    raise _bad("The request body must be a JSON object.")
                body = parsed
            name = m.groupdict().get("name") or ""
            version = m.groupdict().get("version") or ""
            api = _Api(self.state)
            with self.state.lock:
                if op == "list":
                    return 200, api.list(base, query, api_version)
                if op == "versions":
                    return 200, api.versions(base, name, query, api_version)
                if op == "get":
                    return 200, api.get(base, name, version)
                if op == "set":
                    return 200, api.set(base, name, body)
                if op == "update":
                    return 200, api.update(base, name, version, body)
                if op == "delete":
                    return 200, api.delete(base, name)
                if op == "list_deleted":
                    return 200, api.list_deleted(base, query, api_version)
                if op == "get_deleted":
                    return 200, api.get_deleted(base, name)
                if op == "purge":
                    api.purge(name)
                    return 204, None
                if op == "recover":
                    return 200, api.recover(base, name)
                if op == "get_certificate":
                    return 200, api.get_certificate(base, name, version)
                if op == "get_key":
                    return 200, api.get_key(base, name, version)
        if any(p.match(path) for _, p, _, _ in _ROUTES):
            raise _ApiError(405, "MethodNotAllowed", f"The requested method {method} is not allowed.")
        raise _ApiError(404, "NotFound", f"The requested resource {path} does not exist.")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: KeyVaultState

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeout tests do) is normal; anything else is printed."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            return
        super().handle_error(request, client_address)


class FakeKeyVault:
    """The fake vault on ``https://127.0.0.1:<port>``; start() / stop(), or use as a context manager."""

    def __init__(self, *, port: int = 0, tenant: str = "00000000-0000-0000-0000-0000000000aa",
                 token: str | None = None, workdir: Path | None = None) -> None:
        self.tenant = tenant
        #: The bearer token the fake accepts with every permission.
        self.token = token or f"fake-kv-token-{uuid.uuid4().hex}"
        self.state = KeyVaultState(tenant, {self.token: ALL_PERMISSIONS})
        self._requested_port = port
        self._own_dir = workdir is None
        self._dir = workdir or Path(tempfile.mkdtemp(prefix="fake-keyvault-"))
        self.tls = make_tls_files(self._dir)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    def start(self) -> FakeKeyVault:
        server = _Server(("127.0.0.1", self._requested_port), _Handler)
        server.state = self.state
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.tls.cert_path, self.tls.key_path)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-keyvault", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> FakeKeyVault:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses
    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.tls.ca_path

    # ---- controls for tests
    def reset(self) -> None:
        """Empty the vault and drop faults and the request log (tokens stay)."""
        self.state.reset()

    def add_token(self, token: str, permissions: Iterable[str] = ALL_PERMISSIONS) -> None:
        with self.state.lock:
            self.state.tokens[token] = frozenset(permissions)

    def register_app(self, client_id: str, *, secret: str | None = None, certificate_pem: bytes | None = None,
                     federated_token: str | None = None, permissions: Iterable[str] = ALL_PERMISSIONS,
                     federated_subject: str | None = None) -> None:
        """An app the fake Entra ID issues vault tokens to, for any credential given here."""
        cert = x509.load_pem_x509_certificate(certificate_pem) if certificate_pem else None
        with self.state.lock:
            self.state.apps[client_id] = EntraApp(client_id, secret, cert, federated_token, frozenset(permissions),
                                                  federated_subject)

    def inject(self, status: int, code: str, message: str = "injected fault", *, method: str | None = None,
               path: str | None = None, headers: Mapping[str, str] | None = None, times: int = 1,
               delay: float = 0.0) -> None:
        """Answer the next ``times`` matching authenticated requests with this error."""
        with self.state.lock:
            self.state.faults.append(Fault(status, code, message, method,
                                           re.compile(path) if path else None, dict(headers or {}),
                                           times, delay))

    def throttle(self, times: int = 1, retry_after: int = 1, **match: Any) -> None:
        """``429 Throttled`` with ``Retry-After``, as the vault answers over its quota."""
        self.inject(429, "Throttled",
                    "Request was not allowed because the request rate exceeded the limit for this vault.",
                    headers={"Retry-After": str(retry_after)}, times=times, **match)

    def slow(self, seconds: float, times: int = 1, **match: Any) -> None:
        """Delay the next matching requests (then answer them normally): read-timeout tests."""
        with self.state.lock:
            self.state.faults.append(Fault(0, "", "", match.get("method"),
                                           re.compile(match["path"]) if match.get("path") else None,
                                           {}, times, seconds, passthrough=True))

    def requests(self, method: str | None = None, path_prefix: str = "") -> list[tuple[str, str, int]]:
        """The request log (authenticated or not), optionally filtered."""
        with self.state.lock:
            return [r for r in self.state.requests
                    if (method is None or r[0] == method) and r[1].startswith(path_prefix)]

    def _add_version(self, table: dict[str, _Secret], name: str, value: str,
                     tags: Mapping[str, str] | None) -> str:
        if not NAME_RE.match(name):
            raise ValueError(f"not a Key Vault name: {name!r}")
        with self.state.lock:
            obj = table.setdefault(name.lower(), _Secret(name))
            now = int(time.time())
            # A new version must read as updated after the last one (the listing-free read
            # compares versions, but a test may look at ``updated`` too).
            now = max([now, *(v.updated + 1 for v in obj.versions)])
            v = _Version(uuid.uuid4().hex, value, None, dict(tags) if tags is not None else None, True,
                         None, None, now, now)
            obj.versions.append(v)
            return v.id

    def put_certificate(self, name: str, der: bytes, tags: Mapping[str, str] | None = None) -> str:
        """A new version of certificate ``name`` holding the X.509 certificate ``der``; its id."""
        return self._add_version(self.state.certificates, name, base64.b64encode(der).decode(), tags)

    def put_key(self, name: str, jwk: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> str:
        """A new version of key ``name`` holding ``jwk`` (private members too, see :func:`private_jwk`)."""
        return self._add_version(self.state.keys, name, json.dumps(dict(jwk)), tags)

    def raw_names(self) -> list[str]:
        """Names as stored in the vault (the encoded form an adapter wrote)."""
        with self.state.lock:
            return sorted(s.name for s in self.state.secrets.values())

    def deleted_names(self) -> list[str]:
        with self.state.lock:
            return sorted(d.secret.name for d in self.state.deleted.values())


def main() -> None:
    with FakeKeyVault() as fake:
        print(f"url={fake.url}\nca={fake.ca_path}\ntoken={fake.token}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
