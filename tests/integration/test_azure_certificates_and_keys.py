"""ESO's ``cert/NAME`` and ``key/NAME`` remoteRef keys on Azure Key Vault, as an ESO user relies on them.

The real ``azure-keyvault-certificates`` / ``azure-keyvault-keys`` clients talk to the
wire-level fake. What ESO gives (pkg/provider/azure/keyvault GetSecret): for ``cert/`` the
certificate's ``cer`` (DER bytes); for ``key/`` ``json.Marshal`` of the JSON Web Key, whose
private members Key Vault never returns. Only a definite ``CertificateNotFound`` /
``KeyNotFound`` is NotFound; a 403, a proxy's 404, a throttle or a malformed answer never is.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

pytest.importorskip("azure.keyvault.certificates")
pytest.importorskip("azure.keyvault.keys")

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from secretsync.controller.providercache import StoreCache, Usage
from secretsync.core.calls import CallRecorder
from secretsync.core.contract import Fetched, SecretsClient
from secretsync.core.errors import (
    InvalidConfig,
    NotFound,
    PermissionDenied,
    Throttled,
    Unavailable,
    is_definitely_absent,
)
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.fakes.azure_keyvault import SECRETS_USER, FakeKeyVault, certificate_der, private_jwk
from tests.harness.azure import open_azure


def _eso_names(fake: FakeKeyVault, **kw: Any) -> SecretsClient:
    """A store with ESO's names (verbatim, the default): where the prefixes mean object kinds."""
    return open_azure(fake, nameEncoding="verbatim", **kw)


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def test_a_certificate_reads_as_the_der_bytes_eso_gives_and_each_version_by_its_id(
        fake_keyvault: FakeKeyVault) -> None:
    first, second = certificate_der("db v1"), certificate_der("db v2")
    v1 = fake_keyvault.put_certificate("db-client-cert", first, tags={"team": "payments"})
    v2 = fake_keyvault.put_certificate("db-client-cert", second, tags={"team": "payments"})
    client = _eso_names(fake_keyvault)

    assert client.get("cert/db-client-cert").reveal() == second
    assert x509.load_der_x509_certificate(client.get("cert/db-client-cert").reveal()).subject.rfc4514_string() \
        == "CN=db v2"
    assert client.get("cert/db-client-cert", version=v1).reveal() == first
    got = client.get_many(["cert/db-client-cert"])["cert/db-client-cert"]
    assert isinstance(got, Fetched) and got.version == v2 and got.value.reveal() == second
    meta = client.describe("cert/db-client-cert")  # what metadataPolicy: Fetch reads
    assert meta.version == v2 and dict(meta.tags) == {"team": "payments"}
    # The real CertificateClient's routes, nothing through the secrets API.
    paths = [p for _, p, _ in fake_keyvault.requests("GET")]
    assert "/certificates/db-client-cert/" in paths and f"/certificates/db-client-cert/{v1}" in paths
    assert not [p for p in paths if p.startswith("/secrets")]


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_a_key_reads_as_its_public_json_web_key_and_never_a_private_member(
        fake_keyvault: FakeKeyVault, kind: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "RSA" \
        else ec.generate_private_key(ec.SECP256R1())
    held = private_jwk(key, key_ops=("encrypt", "decrypt") if kind == "RSA" else ("sign", "verify"))
    version = fake_keyvault.put_key("encryption-pubkey", held)
    # A broken proxy (or a future API) that hands out the private members: still never copied.
    fake_keyvault.state.private_key_members = True
    client = _eso_names(fake_keyvault)

    text = client.get("key/encryption-pubkey").reveal_text()
    doc = json.loads(text)
    kid = f"{fake_keyvault.url}/keys/encryption-pubkey/{version}"
    if kind == "RSA":
        # json.Marshal of ESO's JSONWebKey: compact, its members in this order.
        assert list(doc) == ["kid", "kty", "key_ops", "n", "e"]
        assert doc["kid"] == kid and doc["kty"] == "RSA" and doc["key_ops"] == ["encrypt", "decrypt"]
        numbers = key.public_key().public_numbers()
        assert (_b64url_int(doc["n"]), _b64url_int(doc["e"])) == (numbers.n, numbers.e)
        assert text == json.dumps(doc, separators=(",", ":"))
    else:
        assert list(doc) == ["kid", "kty", "key_ops", "crv", "x", "y"]
        point = key.public_key().public_numbers()
        assert (doc["crv"], _b64url_int(doc["x"]), _b64url_int(doc["y"])) == ("P-256", point.x, point.y)
    for private in ("d", "p", "q", "dp", "dq", "qi", "k", "key_hsm", "t"):
        assert private not in doc
        if private in held:
            assert held[private] not in text
    assert client.get("key/encryption-pubkey", prop="kty").reveal_text() == kind


@pytest.mark.parametrize("key", ["cert/absent", "key/absent", "cert/db-client-cert", "key/encryption-pubkey"])
def test_a_missing_certificate_key_or_version_is_a_definite_not_found(fake_keyvault: FakeKeyVault, key: str) -> None:
    fake_keyvault.put_certificate("db-client-cert", certificate_der("db"))
    fake_keyvault.put_key("encryption-pubkey", {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"})
    client = _eso_names(fake_keyvault)
    version = None if key.endswith("absent") else "0" * 32
    with pytest.raises(NotFound) as caught:
        client.get(key, version=version)
    assert is_definitely_absent(caught.value)
    got = client.get_many([key])[key]
    assert isinstance(got, NotFound) if version is None else isinstance(got, Fetched)


@pytest.mark.parametrize("key", ["cert/db-client-cert", "key/encryption-pubkey"])
def test_a_refused_throttled_or_proxied_read_is_never_not_found(fake_keyvault: FakeKeyVault, key: str) -> None:
    fake_keyvault.put_certificate("db-client-cert", certificate_der("db"))
    fake_keyvault.put_key("encryption-pubkey", {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"})
    route = "/certificates/" if key.startswith("cert/") else "/keys/"

    # "Key Vault Secrets User" reads secrets, not certificates or keys: 403 ForbiddenByRbac.
    fake_keyvault.add_token("secrets-user", SECRETS_USER)
    with pytest.raises(PermissionDenied, match=r"(certificates|keys)/read"):
        _eso_names(fake_keyvault, token="secrets-user").get(key)
    client = _eso_names(fake_keyvault)
    failures: list[BaseException] = []
    for status, code, expected in ((404, "NotFound", InvalidConfig), (429, "Throttled", Throttled),
                                   (503, "ServiceUnavailable", Unavailable), (200, "NotACertificate", Unavailable)):
        # 200 with an error body: a proxy's page where the bundle should be.
        fake_keyvault.inject(status, code, path=route)
        with pytest.raises(expected) as caught:
            client.get(key)
        failures.append(caught.value)
        assert not isinstance(client.get_many([key])[key], NotFound)
    assert not any(is_definitely_absent(exc) for exc in failures)


def test_writes_to_a_certificate_or_key_are_refused_naming_the_object_before_any_call(
        fake_keyvault: FakeKeyVault) -> None:
    client = _eso_names(fake_keyvault)
    for key, word in (("cert/db-client-cert", "certificate"), ("key/encryption-pubkey", "key")):
        with pytest.raises(InvalidConfig, match=f"names a Key Vault {word}") as caught:
            client.put(key, SecretValue("-----BEGIN PRIVATE KEY-----"))
        assert caught.value.key == key
        with pytest.raises(InvalidConfig, match=f"names a Key Vault {word}"):
            client.delete(key, force=True)
    assert fake_keyvault.requests(path_prefix="/certificates") == []
    assert fake_keyvault.requests(path_prefix="/keys") == []


def test_no_certificate_or_key_material_reaches_logs_errors_or_reprs(
        fake_keyvault: FakeKeyVault, caplog: pytest.LogCaptureFixture) -> None:
    der = certificate_der("canary")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    held = private_jwk(key)
    fake_keyvault.put_certificate("db-client-cert", der)
    fake_keyvault.put_key("encryption-pubkey", held)
    canaries = [base64.b64encode(der).decode()[40:80], held["n"][:40], held["d"][:40]]
    caplog.set_level(logging.DEBUG)
    client = _eso_names(fake_keyvault)
    values = [client.get("cert/db-client-cert"), client.get("key/encryption-pubkey")]
    fake_keyvault.inject(403, "Forbidden", path="/keys/")
    with pytest.raises(PermissionDenied) as caught:
        client.get("key/encryption-pubkey")
    seen = " ".join([caplog.text, *(repr(v) for v in values), str(caught.value), repr(caught.value),
                     repr(client)])
    for canary in canaries:
        assert canary not in seen


def test_change_detection_reads_certificates_and_keys_each_cycle_and_sees_one_appear(
        fake_keyvault: FakeKeyVault) -> None:
    """The secrets listing never holds ``cert/`` or ``key/`` objects: a listing cannot say they
    changed or appeared, so every cycle reads them; a missing key is picked up once created."""
    rec = CallRecorder()
    client = _eso_names(fake_keyvault, settings=ClientSettings(calls=rec))
    from tests.harness.azure import sdk_client

    secrets = {f"app-{i}" for i in range(5)}
    for name in secrets:
        sdk_client(fake_keyvault).set_secret(name, "pw")
    fake_keyvault.put_certificate("db-client-cert", certificate_der("v1"))
    keys = secrets | {"cert/db-client-cert", "key/encryption-pubkey"}
    changed: list[set[str]] = []
    cache = StoreCache(client, rec, lambda: Usage(frozenset(keys)), changed.append)
    cache.refresh(0)
    cache.refresh(0)  # the first listing: records the secret's change token
    assert cache.entries(["key/encryption-pubkey"])["key/encryption-pubkey"].absent

    fake_keyvault.put_key("encryption-pubkey", {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"})
    renewed = certificate_der("v2")
    fake_keyvault.put_certificate("db-client-cert", renewed)
    before = len(fake_keyvault.requests())
    cache.refresh(0)
    window = [(m, p) for m, p, _ in fake_keyvault.requests()[before:]]
    assert changed[-1] == {"cert/db-client-cert", "key/encryption-pubkey"}
    entries = cache.entries(sorted(keys))
    assert entries["cert/db-client-cert"].value == SecretValue(renewed)
    assert entries["key/encryption-pubkey"].error is None
    # One listing for the secrets in use (cert/ and key/ never widen it); unchanged secrets are
    # not read again; the certificate and the key are read directly.
    assert [p for m, p in window if p.startswith("/secrets")] == ["/secrets"]
    assert sorted(p for m, p in window if not p.startswith("/secrets")) == [
        "/certificates/db-client-cert/", "/keys/encryption-pubkey/"]


def test_objects_named_like_another_route_read_as_what_they_are(
        fake_keyvault: FakeKeyVault) -> None:
    from tests.harness.azure import sdk_client

    client = _eso_names(fake_keyvault)
    for name in ("keys", "certificates", "cert", "key"):
        version = sdk_client(fake_keyvault).set_secret(name, f"value of {name}").properties.version
        assert client.get(name, version=version).reveal_text() == f"value of {name}"
        assert client.get(f"secret/{name}").reveal_text() == f"value of {name}"
    der = certificate_der("named secrets")
    fake_keyvault.put_certificate("secrets", der)
    fake_keyvault.put_key("secrets", {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"})
    assert client.get("cert/secrets").reveal() == der
    assert json.loads(client.get("key/secrets").reveal_text())["kty"] == "EC"
