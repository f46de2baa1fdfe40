"""ServiceAccount tokens for stores: reused until near expiry, with the audience the provider needs.

Every TokenRequest returns a new token; requesting one at every credentials refresh (once a
minute) changed the credentials and reopened the store's client, i.e. a new provider login
(and, on Vault, a new token left behind) every minute. Simulated here with a clock and an
API double that counts TokenRequests (the real TokenRequest path runs in tests/security).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from secretsync.api.models import parse_secret_store
from secretsync.controller.settings import ControllerSettings, RefreshSettings
from secretsync.controller.stores import StoreManager


class TokenApi:
    """Answers TokenRequests (a new token each time) and records them."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        assert method == "POST" and path.endswith("/token")
        self.requests.append((path, body or {}))
        return {"spec": {**(body or {}).get("spec", {})}, "status": {"token": f"token-{len(self.requests)}"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _manager(api: TokenApi, clock: Clock) -> StoreManager:
    settings = replace(ControllerSettings(), refresh=RefreshSettings(credentials_ttl=60.0))
    return StoreManager(api, settings, b"k" * 32, usage=lambda *_: None,  # type: ignore[arg-type,return-value]
                        on_changed=lambda *_: None, call_listeners=[], clock=clock)


def _store(provider: str, block: dict[str, Any]) -> Any:
    return parse_secret_store({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretStore",
                               "metadata": {"name": "s", "namespace": "team", "generation": 1},
                               "spec": {"provider": {provider: block}}})


def test_an_hour_of_credential_refreshes_requests_two_tokens_and_reopens_the_client_once() -> None:
    api, clock = TokenApi(), Clock()
    stores = _manager(api, clock)
    store = _store("vault", {"address": "http://127.0.0.1:9", "auth": {"method": "kubernetes", "role": "app"},
                             "serviceAccountRef": {"name": "app", "audiences": ["vault"]}})
    clients = set()
    for _ in range(60):  # one hour, a refresh a minute
        clients.add(id(stores.handle(store).client))
        clock.now += 61
    assert len(api.requests) == 2, api.requests
    assert len(clients) == 2
    assert api.requests[0][1]["spec"]["audiences"] == ["vault"]
    stores.close()


def test_per_store_irsa_asks_for_the_sts_audience() -> None:
    api, clock = TokenApi(), Clock()
    stores = _manager(api, clock)
    store = _store("aws", {"region": "us-east-1", "role": "arn:aws:iam::123456789012:role/team",
                           "serviceAccountRef": {"name": "app"}})
    stores.handle(store)
    assert api.requests[0][1]["spec"]["audiences"] == ["sts.amazonaws.com"]
    assert api.requests[0][0].endswith("/namespaces/team/serviceaccounts/app/token")
    stores.close()
