"""Token renewal and re-login scheduling, with a scripted Transport (our own interface) and a
fake clock, so the timing logic is checked exactly and without sleeping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

pytest.importorskip("hvac")
from secretsync_providers.vault.auth import AppRoleAuth, TokenAuth, TokenSession

from secretsync.core.errors import AuthenticationFailed, PermissionDenied, Unavailable
from secretsync.core.values import SecretValue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedTransport:
    """Answers per path from a script; records the calls made."""

    def __init__(self, script: Mapping[str, list[Any]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[str] = []
        self.token: str | None = None

    def request(self, method: str, path: str, *, operation: str, key: str | None = None,
                body: Mapping[str, Any] | None = None, params: Mapping[str, str] | None = None,
                authenticated: bool = True) -> dict[str, Any] | None:
        self.calls.append(path)
        answer = self.script[path].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    def set_token(self, token: str | None) -> None:
        self.token = token

    def close(self) -> None:
        pass


def _login(token: str, lease: int, renewable: bool = True) -> dict[str, Any]:
    return {"auth": {"client_token": token, "lease_duration": lease, "renewable": renewable}}


def test_static_token_is_looked_up_once_and_renewed_at_two_thirds() -> None:
    clock = Clock()
    transport = ScriptedTransport({
        "auth/token/lookup-self": [{"data": {"ttl": 30, "renewable": True}}],
        "auth/token/renew-self": [_login("t", 30)],
    })
    session = TokenSession(TokenAuth(SecretValue("t")), transport, clock)
    session.ensure()
    session.ensure()
    assert transport.calls == ["auth/token/lookup-self"]
    clock.now += 19
    session.ensure()
    assert transport.calls[-1] == "auth/token/lookup-self"
    clock.now += 2
    session.ensure()
    assert transport.calls[-1] == "auth/token/renew-self"
    assert transport.token == "t"


def test_root_token_without_ttl_is_never_renewed() -> None:
    clock = Clock()
    transport = ScriptedTransport({"auth/token/lookup-self": [{"data": {"ttl": 0, "renewable": False}}]})
    session = TokenSession(TokenAuth(SecretValue("root")), transport, clock)
    session.ensure()
    clock.now += 10**6
    session.ensure()
    assert transport.calls == ["auth/token/lookup-self"]


def test_login_method_logs_in_again_when_renewal_is_refused() -> None:
    clock = Clock()
    transport = ScriptedTransport({
        "auth/approle/login": [_login("first", 60), _login("second", 60)],
        "auth/token/renew-self": [PermissionDenied("permission denied")],
    })
    session = TokenSession(AppRoleAuth("approle", SecretValue("r"), SecretValue("s")), transport, clock)
    session.ensure()
    assert transport.token == "first"
    clock.now += 41
    session.ensure()
    assert transport.token == "second"
    assert transport.calls == ["auth/approle/login", "auth/token/renew-self", "auth/approle/login"]


def test_login_method_near_max_ttl_logs_in_instead_of_renewing() -> None:
    clock = Clock()
    transport = ScriptedTransport({
        "auth/approle/login": [_login("first", 60), _login("second", 60)],
        "auth/token/renew-self": [_login("first", 10)],  # capped by max TTL
    })
    session = TokenSession(AppRoleAuth("approle", SecretValue("r"), None), transport, clock)
    session.ensure()
    clock.now += 41
    session.ensure()
    clock.now += 7
    session.ensure()
    assert transport.calls == ["auth/approle/login", "auth/token/renew-self", "auth/approle/login"]


def test_static_token_renewal_during_an_outage_is_retried_next_time() -> None:
    clock = Clock()
    transport = ScriptedTransport({
        "auth/token/lookup-self": [{"data": {"ttl": 30, "renewable": True}}],
        "auth/token/renew-self": [Unavailable("down"), _login("t", 30)],
    })
    session = TokenSession(TokenAuth(SecretValue("t")), transport, clock)
    session.ensure()
    clock.now += 21
    with pytest.raises(Unavailable):
        session.ensure()
    session.ensure()
    assert transport.calls.count("auth/token/renew-self") == 2


def test_forbidden_with_an_invalid_static_token_is_authentication_failed() -> None:
    transport = ScriptedTransport({"auth/token/lookup-self": [PermissionDenied("permission denied")] * 2})
    session = TokenSession(TokenAuth(SecretValue("bogus")), transport, Clock())
    session.ensure()  # a token that cannot look itself up is simply not renewed
    with pytest.raises(AuthenticationFailed, match="invalid or expired"):
        session.on_forbidden(PermissionDenied("permission denied", operation="read", key="k"))


def test_forbidden_with_a_valid_token_is_a_genuine_denial() -> None:
    transport = ScriptedTransport({"auth/token/lookup-self": [{"data": {"ttl": 0}}, {"data": {"ttl": 0}}]})
    session = TokenSession(TokenAuth(SecretValue("ok")), transport, Clock())
    session.ensure()
    assert session.on_forbidden(PermissionDenied("permission denied")) is False


def test_missing_token_is_authentication_failed_without_any_call() -> None:
    transport = ScriptedTransport({})
    session = TokenSession(TokenAuth(None), transport, Clock())
    with pytest.raises(AuthenticationFailed, match="no Vault token"):
        session.ensure()
    assert transport.calls == []
