"""What the Key Vault adapter makes of a broken network: never "absent", never a value, never forever.

Answers come from :class:`tests.harness.canned.CannedServer` over TLS (a proxy's HTML 404,
an unknown route, garbled/empty/truncated bodies, endless nextLinks, a drip-fed answer) and
go through the REAL azure-keyvault-secrets pipeline.
"""

from __future__ import annotations

import json
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.keyvault.secrets")

from secretsync_providers.azure import client as azure_client

from secretsync.core.contract import SecretsClient
from secretsync.core.errors import (
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
from tests.fakes.azure_keyvault import TlsFiles, make_tls_files
from tests.harness.azure import reaching
from tests.harness.canned import BlackHole, CannedServer, Close, Drip, Reply, Request, Truncate, timed

CANARY = "canary-azure-failure-Zq8w-6623"
JSON = {"Content-Type": "application/json; charset=utf-8"}
#: Stall tests: short timeouts, SDK retries on, to show they do not multiply the time
#: (a call may take connect + 2 * read = 0.9 s in all).
FAST = TimeoutSettings(connect=0.3, read=0.3, sdk_retries=2)
#: Answer-mapping tests: generous timeouts (a busy CI machine is not a failure), no retries.
PROMPT = TimeoutSettings(connect=5.0, read=5.0, sdk_retries=0)
SECRET = {"id": "https://testvault.vault.azure.net/secrets/app/0123456789abcdef0123456789abcdef",
          "value": "v", "attributes": {"enabled": True}}


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsFiles]:
    with tempfile.TemporaryDirectory(prefix="canned-tls-") as tmp:
        yield make_tls_files(Path(tmp))


@pytest.fixture(scope="module")
def canned(tls: TlsFiles) -> Iterator[CannedServer]:
    with CannedServer(cert=tls.cert_path, key=tls.key_path) as server:
        yield server


def vault_on(url: str, tls: TlsFiles, settings: ClientSettings | None = None) -> SecretsClient:
    config = {"vaultUrl": "https://testvault.vault.azure.net", "authType": "accessToken", "nameEncoding": "escape"}
    with reaching(url, str(tls.ca_path)):
        return get_factory("azure").open(config, settings or ClientSettings(timeouts=PROMPT),
                                         {"accessToken": SecretValue("test-token")})


def kv_error(status: int, code: str, message: str = "", **headers: str) -> Reply:
    return Reply(status, {**JSON, **headers}, json.dumps({"error": {"code": code, "message": message}}).encode())


OPERATIONS: dict[str, Callable[[SecretsClient], object]] = {
    "get": lambda c: c.get("app"),
    "describe": lambda c: c.describe("app"),
    "exists": lambda c: c.exists("app"),
    "list": lambda c: list(c.list()),
    "delete": lambda c: c.delete("app"),
}


@pytest.mark.parametrize(("answer", "expected"), [
    (Reply(404, {"Content-Type": "text/html"}, b"<html><body>404 Not Found</body></html>"), InvalidConfig),
    (kv_error(404, "NotFound", "The requested resource /secrets/app does not exist."), InvalidConfig),
    (kv_error(404, "ResourceNotFound", "The Resource 'Microsoft.KeyVault/vaults/x' was not found."),
     InvalidConfig),
    (Reply(403, {"Content-Type": "text/html"}, b"<html>denied by proxy</html>"), PermissionDenied),
    (kv_error(503, "ServiceUnavailable", "try later"), Unavailable),
    (Reply(200, JSON, b'{"value": "tru'), Unavailable),
    (Reply(200, JSON, b"{}"), Unavailable),
    (Reply(200, {"Content-Type": "text/html"}, b"<html>captive portal</html>"), Unavailable),
    (Truncate(200, JSON, json.dumps(SECRET).encode(), 20), Unavailable),
    (Close(), Unavailable),
], ids=["proxy-html-404", "unknown-route-404", "other-service-404", "proxy-html-403", "503", "garbled-200",
        "empty-200", "html-200", "truncated-200", "connection-closed"])
def test_answers_that_are_not_secret_not_found_never_read_as_absent(
    canned: CannedServer, tls: TlsFiles, answer: Any, expected: type[ProviderError]
) -> None:
    canned.respond(answer)
    client = vault_on(canned.url, tls)
    for name, call in OPERATIONS.items():
        exc, _ = timed(lambda call=call: call(client))  # type: ignore[misc]
        assert type(exc) is expected, f"{name}: {exc!r}"


def test_secret_not_found_is_not_found_except_on_a_list(canned: CannedServer, tls: TlsFiles) -> None:
    canned.respond(kv_error(404, "SecretNotFound", "A secret with (name/id) app was not found in this key vault."))
    client = vault_on(canned.url, tls)
    with pytest.raises(NotFound):
        client.get("app")
    assert client.exists("app") is False
    with pytest.raises(InvalidConfig):
        list(client.list())  # a list never answers "no such secret"


def test_a_secret_without_a_value_is_unavailable_never_an_empty_value(canned: CannedServer, tls: TlsFiles) -> None:
    canned.respond(Reply(200, JSON, json.dumps({k: v for k, v in SECRET.items() if k != "value"}).encode()))
    with pytest.raises(Unavailable):
        vault_on(canned.url, tls).get("app")


def test_a_next_link_seen_before_stops_the_list(canned: CannedServer, tls: TlsFiles) -> None:
    def answer(request: Request) -> Reply:
        link = f"{canned.url}/secrets?api-version=7.5&$skiptoken=same&maxresults=25"
        return Reply(200, JSON, json.dumps({"value": [], "nextLink": link}).encode())

    canned.respond(answer)
    with pytest.raises(Unavailable, match="paging loop"):
        list(vault_on(canned.url, tls).list())
    assert len(canned.requests) == 2


def test_a_list_that_pages_forever_stops_after_the_page_cap(
    canned: CannedServer, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_client, "MAX_LIST_PAGES", 20)
    counter = iter(range(10**6))
    canned.respond(lambda _: Reply(200, JSON, json.dumps({"value": [], "nextLink":
        f"{canned.url}/secrets?api-version=7.5&$skiptoken=t{next(counter)}&maxresults=25"}).encode()))
    with pytest.raises(Unavailable, match="20 pages"):
        list(vault_on(canned.url, tls).list())
    assert len(canned.requests) == 20


def test_throttling_carries_retry_after_and_the_sdk_does_not_sleep_it(canned: CannedServer, tls: TlsFiles) -> None:
    canned.respond(kv_error(429, "Throttled", "Too many requests", **{"Retry-After": "7"}))
    exc, elapsed = timed(lambda: vault_on(canned.url, tls).get("app"))
    assert isinstance(exc, Throttled) and exc.retry_after == 7 and exc.retryable
    assert elapsed < 2


def test_an_error_that_echoes_the_written_value_shows_it_nowhere(canned: CannedServer, tls: TlsFiles) -> None:
    def answer(request: Request) -> Reply:
        if request.method == "PUT":
            return kv_error(400, "BadParameter", f"cannot store {request.body.decode()}")
        return kv_error(404, "SecretNotFound", "not found")

    canned.respond(answer)
    client = vault_on(canned.url, tls)
    for value in (SecretValue(CANARY), SecretValue(b"\xff\xfe" + CANARY.encode())):
        with pytest.raises(InvalidConfig) as info:
            client.put("app", value)
        text = "".join(traceback.format_exception(info.value))
        assert "BadParameter" in text
        assert CANARY not in text and "Y2FuYXJ5" not in text  # nor its base64 (binary values)
        assert "azure.core.exceptions" in text, "the cause stays, as a value-free twin"


def test_a_garbled_read_shows_the_value_nowhere(canned: CannedServer, tls: TlsFiles) -> None:
    canned.respond(Reply(200, JSON, b'{"id": "https://x/secrets/app/1", "value": "' + CANARY.encode() + b'"'))
    with pytest.raises(Unavailable) as info:
        vault_on(canned.url, tls).get("app")
    assert CANARY not in "".join(traceback.format_exception(info.value))


def test_every_http_request_including_the_auth_challenge_waits_for_the_rate_limiter(
    canned: CannedServer, tls: TlsFiles
) -> None:
    def answer(request: Request) -> Reply:
        if "authorization" not in request.headers:
            return Reply(401, {**JSON, "WWW-Authenticate":
                               'Bearer authorization="https://login.microsoftonline.com/t", '
                               'resource="https://vault.azure.net"'}, b"{}")
        return Reply(200, JSON, json.dumps(SECRET).encode())

    canned.respond(answer)
    settings = ClientSettings(timeouts=PROMPT, rate_limit=RateLimitSettings(rate=10, burst=1))
    client = vault_on(canned.url, tls, settings)
    exc, elapsed = timed(lambda: client.get("app"))
    assert exc is None, repr(exc)
    assert len(canned.requests) == 2 and elapsed >= 0.09  # the challenge, then the read
    assert settings.calls.total("azure", "get") == 1


@pytest.mark.parametrize("stall", ["drip-fed answer", "black hole"])
def test_a_stalling_vault_fails_within_the_call_deadline(canned: CannedServer, tls: TlsFiles, stall: str) -> None:
    canned.respond(Drip(Reply(200, JSON, json.dumps(SECRET).encode()), interval=0.1))
    with BlackHole() as hole:
        url = canned.url if stall == "drip-fed answer" else hole.url.replace("http:", "https:")
        client = vault_on(url, tls, ClientSettings(timeouts=FAST))  # building the client is not the call
        exc, elapsed = timed(lambda: client.get("app"))
    assert isinstance(exc, Unavailable), repr(exc)
    assert elapsed < 3 * FAST.read + 1.0, f"took {elapsed:.1f}s"


def test_a_vault_host_that_does_not_resolve_is_unavailable(tls: TlsFiles) -> None:
    exc, elapsed = timed(lambda: vault_on("https://nohost.invalid", tls).get("app"))
    assert isinstance(exc, Unavailable), repr(exc)
    assert elapsed < 3


def test_a_version_that_would_change_the_url_path_is_invalid_config(canned: CannedServer, tls: TlsFiles) -> None:
    canned.respond(kv_error(404, "SecretNotFound", "not found"))
    client = vault_on(canned.url, tls)
    for version in ("../other", "a/b", "x\x00", "."):
        with pytest.raises(InvalidConfig):
            client.get("app", version=version)
    assert canned.requests == []
    with pytest.raises(NotFound):  # a well-formed id the vault does not know
        client.get("app", version="0123456789abcdef0123456789abcdef")


def test_a_list_item_without_an_id_is_unavailable(canned: CannedServer, tls: TlsFiles) -> None:
    canned.respond(Reply(200, JSON, json.dumps({"value": [{"attributes": {"enabled": True}}]}).encode()))
    for encoding in ("escape", "verbatim"):
        config = {"vaultUrl": "https://testvault.vault.azure.net", "authType": "accessToken",
                  "nameEncoding": encoding}
        with reaching(canned.url, str(tls.ca_path)):
            client = get_factory("azure").open(config, ClientSettings(timeouts=PROMPT),
                                               {"accessToken": SecretValue("t")})
        with pytest.raises(Unavailable):
            list(client.list())
