"""Every provider's store config, fed wrong types, empty strings, control characters, unicode,
traversal attempts and huge values: InvalidConfig naming the field, or accepted; never a crash.

The SecretStore spec path (a mapping straight from YAML), not the URL path (tests/unit/
test_cli_secret.py runs URLs through the CLI).
"""

from __future__ import annotations

from typing import Any

import pytest

from secretsync.core.errors import InvalidConfig
from secretsync.core.registry import get_factory, providers

BASE: dict[str, dict[str, Any]] = {
    "aws": {"region": "us-east-1"},
    "gcp": {"project": "my-project"},
    "azure": {"vaultUrl": "https://myvault.vault.azure.net"},
    "vault": {"address": "http://127.0.0.1:8200", "mount": "secret"},
    "file": {"path": "/tmp/secretsync-test-store.json"},
    "memory": {},
}
FIELDS: dict[str, list[str]] = {
    "aws": ["region", "prefix", "endpoint", "role", "recoveryWindowDays", "profile", "service"],
    "gcp": ["project", "prefix", "location", "endpoint"],
    "azure": ["vaultUrl", "authType", "tenantId", "clientId", "authorityHost", "purgeOnDelete", "nameEncoding",
              "maxConcurrency", "caCert"],
    "vault": ["address", "mount", "prefix", "kvVersion", "namespace", "caCert", "tlsSkipVerify", "auth"],
    "file": ["path", "keyFile"],
    "memory": ["name"],
}
ODD_VALUES: list[Any] = [5, True, 1.5, [], {}, ["x"], "", " ", "\x00", "a\x7fb", "../x", "a/../b", "x" * 5000,
                         "pässwörd-密码", "http://[::1", "https://h:99999", "javascript:alert(1)"]

#: Values that must be refused (field, value) per provider.
MUST_REFUSE: dict[str, list[tuple[str, Any]]] = {
    "aws": [("prefix", "../x"), ("prefix", []), ("endpoint", ""), ("endpoint", "https://h:99999"),
            ("endpoint", "http://[::1"), ("role", ""), ("profile", "\x00"), ("region", "")],
    "gcp": [("prefix", "a/../b"), ("endpoint", "http://x/y"), ("endpoint", "\x00"), ("location", "")],
    "azure": [("vaultUrl", "http://[::1"), ("tenantId", "a b"), ("clientId", "\x00"), ("maxConcurrency", True),
              ("maxConcurrency", 1.5), ("caCert", "x" * 5000), ("endpoint", "https://127.0.0.1:1")],
    "vault": [("address", "http://[::1"), ("address", "https://h:99999"), ("mount", "\x00"),
              ("prefix", "a/../b"), ("namespace", "a/../b"), ("namespace", "\x00"), ("kvVersion", True),
              ("kvVersion", 1.5)],
    "file": [("path", "\x00"), ("path", "x" * 5000 + "/s"), ("keyFile", 5), ("path", " ")],
    "memory": [("name", 5)],
}


def _installed(name: str) -> bool:
    return any(p.name == name and p.available for p in providers())


@pytest.mark.parametrize("provider", list(FIELDS))
def test_odd_values_are_refused_naming_the_field_or_accepted_never_a_crash(provider: str) -> None:
    if not _installed(provider):
        pytest.skip(f"{provider} is not installed")
    factory = get_factory(provider)
    for field in FIELDS[provider]:
        for value in ODD_VALUES:
            try:
                factory.validate_config({**BASE[provider], field: value})
            except InvalidConfig as exc:
                assert field in str(exc), (field, value, str(exc))
                assert len(str(exc)) < 1100, "a huge value is not echoed whole"


@pytest.mark.parametrize("provider", list(FIELDS))
def test_traversal_empty_and_badly_typed_values_are_refused(provider: str) -> None:
    if not _installed(provider):
        pytest.skip(f"{provider} is not installed")
    factory = get_factory(provider)
    for field, value in MUST_REFUSE[provider]:
        with pytest.raises(InvalidConfig, match=field):
            factory.validate_config({**BASE[provider], field: value})


@pytest.mark.parametrize("provider", list(FIELDS))
def test_unknown_fields_are_refused_naming_them(provider: str) -> None:
    if not _installed(provider):
        pytest.skip(f"{provider} is not installed")
    with pytest.raises(InvalidConfig, match="bogusField"):
        get_factory(provider).validate_config({**BASE[provider], "bogusField": "x"})
