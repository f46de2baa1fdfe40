"""Store URLs resolve to providers found through entry points."""

from __future__ import annotations

import pytest

from secretsync.core.errors import InvalidConfig
from secretsync.core.registry import provider_for_url, providers


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("aws://us-east-1", "aws"),
        ("aws://eu-west-1/team/prefix", "aws"),
        ("gcp://my-project", "gcp"),
        ("azure://myvault", "azure"),
        ("https://myvault.vault.azure.net", "azure"),
        ("vault://127.0.0.1:8200/secret", "vault"),
        ("vault:///secret", "vault"),
        ("openbao:///secret", "vault"),
        ("file:///tmp/x.json", "file"),
        ("memory://", "memory"),
    ],
)
def test_url_scheme_selects_the_provider(url: str, provider: str) -> None:
    assert provider_for_url(url) == provider


@pytest.mark.parametrize("url", ["no-scheme", "https://example.com/"])
def test_unroutable_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(InvalidConfig, match="store URL"):
        provider_for_url(url)


def test_every_builtin_provider_is_registered_through_entry_points() -> None:
    names = {p.name for p in providers()}
    assert {"memory", "file", "aws", "gcp", "azure", "vault"} <= names
    embedded = {p.name: p for p in providers()}
    assert embedded["memory"].available and embedded["file"].available
