"""What the Vault adapter makes of a broken network: never "absent", never a value, never forever.

Answers come from :class:`tests.harness.canned.CannedServer` (a proxy's HTML 404, Vault's
own 404 shapes, garbled/truncated bodies, a drip-fed answer, folders nested forever) and go
through the REAL hvac/requests stack; the mix-ups that need a real server (a KV v1 path on
a v2 mount) run against OpenBao.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from secretsync.core.contract import SecretsClient
from secretsync.core.errors import (
    AuthenticationFailed,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Unavailable,
)
from secretsync.core.registry import get_factory
from secretsync.core.settings import ClientSettings, RateLimitSettings, TimeoutSettings
from secretsync.core.values import SecretValue
from tests.harness.canned import BlackHole, CannedServer, Close, Drip, Reply, Request, Truncate, timed
from tests.harness.vault import OpenBao

pytest.importorskip("hvac")

CANARY = "canary-vault-failure-Zq8w-5512"
JSON = {"Content-Type": "application/json"}
#: Stall tests: short timeouts, SDK retries on, to show they do not multiply the time
#: (a call may take connect + 2 * read = 0.9 s in all).
FAST = TimeoutSettings(connect=0.3, read=0.3, sdk_retries=2)
#: Answer-mapping tests: generous timeouts (a busy CI machine is not a failure), no retries.
PROMPT = TimeoutSettings(connect=5.0, read=5.0, sdk_retries=0)


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedServer]:
    with CannedServer() as server:
        yield server


def vault_on(url: str, settings: ClientSettings | None = None, **config: Any) -> SecretsClient:
    conf = {"address": url, "mount": "secret", "kvVersion": 2, **config}
    return get_factory("vault").open(conf, settings or ClientSettings(timeouts=PROMPT),
                                     {"token": SecretValue("s.token")})


def with_token_lookup(answer: Any) -> Callable[[Request], Any]:
    """The static token's lookup-self succeeds; everything else gets ``answer``."""
    def respond(request: Request) -> Any:
        if "auth/token/lookup-self" in request.path:
            return Reply(200, JSON, json.dumps({"data": {"ttl": 0}}).encode())
        return answer(request) if callable(answer) else answer
    return respond


OPERATIONS: dict[str, Callable[[SecretsClient], object]] = {
    "get": lambda c: c.get("app/db"),
    "describe": lambda c: c.describe("app/db"),
    "exists": lambda c: c.exists("app/db"),
    "list": lambda c: list(c.list()),
    "delete": lambda c: c.delete("app/db"),
}


@pytest.mark.parametrize(("answer", "expected"), [
    (Reply(404, {"Content-Type": "text/html"}, b"<html><body>404 Not Found</body></html>"), InvalidConfig),
    (Reply(404, {"Content-Type": "text/plain"}, b"404 page not found"), InvalidConfig),
    (Reply(404, JSON, b'{"errors":["no handler for route \\"secret/data/app/db\\". route entry not found."]}'),
     InvalidConfig),
    (Reply(404, JSON, b'{"data":null,"warnings":["Invalid path for a versioned K/V secrets engine."]}'),
     InvalidConfig),
    (Reply(403, {"Content-Type": "text/html"}, b"<html>denied by proxy</html>"), PermissionDenied),
    (Reply(401, JSON, b'{"errors":["unauthorized"]}'), AuthenticationFailed),
    (Reply(503, JSON, b'{"errors":["Vault is sealed"]}'), Unavailable),
    (Reply(200, JSON, b'{"data": {"data": {"value": "tru'), Unavailable),
    (Reply(200, JSON, b"{}"), Unavailable),
    (Reply(200, JSON, b"[]"), Unavailable),
    (Reply(204, {}, b""), Unavailable),
    (Reply(200, {"Content-Type": "text/html"}, b"<html>captive portal</html>"), Unavailable),
    (Reply(307, {"Location": "http://standby:8200/v1/secret/data/app/db"}, b""), Unavailable),
    (Truncate(200, JSON, json.dumps({"data": {"data": {"value": "x" * 40}}}).encode(), 15), Unavailable),
    (Close(), Unavailable),
], ids=["proxy-html-404", "plain-404", "no-such-mount", "kv-version-mixup", "proxy-html-403", "401",
        "sealed-503", "garbled-200", "empty-200", "list-200", "bodiless-204", "html-200", "standby-307",
        "truncated-200", "connection-closed"])
def test_answers_that_are_not_a_definite_404_never_read_as_absent(
    canned: CannedServer, answer: Any, expected: type[ProviderError]
) -> None:
    canned.respond(with_token_lookup(answer))
    client = vault_on(canned.url)
    for name, call in OPERATIONS.items():
        exc, _ = timed(lambda call=call: call(client))  # type: ignore[misc]
        assert type(exc) is expected, f"{name}: {exc!r}"


@pytest.mark.parametrize("body", [
    b'{"errors":[]}',
    json.dumps({"data": {"data": None, "metadata": {"version": 3, "deletion_time": "2024-01-01T00:00:00Z",
                                                      "destroyed": False}}}).encode(),
], ids=["errors-empty", "kv2-deleted-version"])
def test_vaults_own_404_shapes_are_not_found(canned: CannedServer, body: bytes) -> None:
    canned.respond(with_token_lookup(Reply(404, JSON, body)))
    client = vault_on(canned.url)
    with pytest.raises(NotFound):
        client.get("app/db")
    assert client.exists("app/db") is False
    assert list(client.list()) == []  # a definite 404 on LIST: an empty folder


def test_kv_v1_paths_on_a_v2_mount_are_invalid_config_not_not_found(openbao: OpenBao) -> None:
    openbao.kv2_write("mixup/x", {"value": "v"})
    wrong = openbao.open({"kvVersion": 1})
    for call in (lambda: wrong.get("mixup/x"), lambda: wrong.exists("mixup/x")):
        with pytest.raises(InvalidConfig, match=r"(?i)versioned K/V"):
            call()


def test_a_429_is_throttled_with_the_servers_retry_after(canned: CannedServer) -> None:
    canned.respond(with_token_lookup(Reply(429, {**JSON, "Retry-After": "9"},
                                           b'{"errors":["request path \\"secret/data/app/db\\": rate limit quota '
                                           b'exceeded"]}')))
    exc, elapsed = timed(lambda: vault_on(canned.url).get("app/db"))
    assert isinstance(exc, Throttled) and exc.retry_after == 9.0 and exc.retryable
    assert elapsed < 1.0, "the client must not sleep the Retry-After itself"


def test_an_error_that_echoes_the_written_value_shows_it_nowhere(canned: CannedServer) -> None:
    def answer(request: Request) -> Reply:
        if request.method == "POST":
            return Reply(400, JSON, json.dumps({"errors": [f"cannot store {request.body.decode()}"]}).encode())
        return Reply(404, JSON, b'{"errors":[]}')

    canned.respond(with_token_lookup(answer))
    with pytest.raises(InvalidConfig) as info:
        vault_on(canned.url).put("app/db", SecretValue(CANARY))
    text = "".join(traceback.format_exception(info.value))
    assert "cannot store" in text and CANARY not in text


def test_a_listing_that_nests_folders_forever_stops(canned: CannedServer) -> None:
    canned.respond(with_token_lookup(Reply(200, JSON, json.dumps({"data": {"keys": ["deeper/"]}}).encode())))
    with pytest.raises(Unavailable, match="deeper than"):
        list(vault_on(canned.url).list())


def test_listed_keys_that_would_leave_the_folder_are_skipped(canned: CannedServer) -> None:
    def answer(request: Request) -> Reply:
        if request.method == "LIST" or "list=true" in request.path:
            return Reply(200, JSON, json.dumps({"data": {"keys": ["../", "./", "a/../b", "", "ok"]}}).encode())
        return Reply(200, JSON, json.dumps({"data": {"current_version": 1, "versions": {
            "1": {"created_time": "2024-01-01T00:00:00Z", "deletion_time": "", "destroyed": False}}}}).encode())

    canned.respond(with_token_lookup(answer))
    assert [m.name for m in vault_on(canned.url).list()] == ["ok"]
    assert not any(".." in r.path for r in canned.requests)


def test_every_request_including_the_token_lookup_waits_for_the_rate_limiter(canned: CannedServer) -> None:
    canned.respond(with_token_lookup(Reply(404, JSON, b'{"errors":[]}')))
    settings = ClientSettings(timeouts=PROMPT, rate_limit=RateLimitSettings(rate=10, burst=1))
    client = vault_on(canned.url, settings)
    exc, elapsed = timed(lambda: client.get("app/db"))
    assert isinstance(exc, NotFound)
    assert [r.path.split("?")[0] for r in canned.requests] == ["/v1/auth/token/lookup-self",
                                                              "/v1/secret/data/app/db"]
    assert elapsed >= 0.09
    assert settings.calls.total("vault", "lookup_self") == 1


@pytest.mark.parametrize("stall", ["drip-fed answer", "black hole"])
def test_a_stalling_server_fails_within_the_call_deadline(canned: CannedServer, stall: str) -> None:
    body = json.dumps({"data": {"data": {"value": "v" * 100}, "metadata": {"version": 1}}}).encode()
    canned.respond(with_token_lookup(Drip(Reply(200, JSON, body), interval=0.1)))
    with BlackHole() as hole:
        url = canned.url if stall == "drip-fed answer" else hole.url
        client = vault_on(url, ClientSettings(timeouts=FAST))  # building the client is not the call
        exc, elapsed = timed(lambda: client.get("app/db"))
    assert isinstance(exc, Unavailable), repr(exc)
    assert elapsed < 3 * FAST.read + 1.0, f"took {elapsed:.1f}s"


def test_a_name_that_does_not_resolve_is_unavailable() -> None:
    exc, elapsed = timed(lambda: vault_on("http://nohost.invalid:8200").get("app/db"))
    assert isinstance(exc, Unavailable), repr(exc)
    assert elapsed < 3


@pytest.mark.parametrize("metadata", [
    {"current_version": 3, "versions": {"1": {"destroyed": False}}},
    {"current_version": 1, "versions": {"1": "not-an-object"}},
    {"current_version": 1, "versions": {"1": {"created_time": "2024-01-01T00:00:00Z"}}, "custom_metadata": ["x"]},
], ids=["current-version-missing", "version-not-an-object", "custom-metadata-not-an-object"])
def test_metadata_without_vaults_shape_is_unavailable_not_deleted(
    canned: CannedServer, metadata: dict[str, Any]
) -> None:
    canned.respond(with_token_lookup(Reply(200, JSON, json.dumps({"data": metadata}).encode())))
    client = vault_on(canned.url)
    for call in (lambda: client.describe("app/db"), lambda: client.exists("app/db"), lambda: client.delete("app/db")):
        exc, _ = timed(call)
        assert isinstance(exc, Unavailable), repr(exc)
