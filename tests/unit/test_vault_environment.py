"""The controller's environment (proxies, CA bundle) still applies to Vault though it is read once per client."""

from __future__ import annotations

import pytest
from secretsync_providers.vault.sdk import Endpoint, HvacTransport

from secretsync.core.settings import ClientSettings


def _session(address: str):  # type: ignore[no-untyped-def]
    return HvacTransport(Endpoint(address=address), ClientSettings())._adapter.session


def test_a_proxy_from_the_environment_is_used_for_the_vault_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _session("https://vault.example:8200").proxies.get("https") == "http://proxy.corp:3128"


def test_no_proxy_still_exempts_the_vault_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "vault.example")
    assert not _session("https://vault.example:8200").proxies


def test_the_environment_ca_bundle_is_still_trusted_without_a_store_ca(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert _session("https://vault.example:8200").verify == str(bundle)
