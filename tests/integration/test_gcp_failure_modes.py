"""What the Secret Manager adapter makes of a broken service: never "absent", never forever.

Faults come from the fake gRPC server (injected statuses, endless paging) and from
endpoints that do not speak gRPC at all (an HTTP/1.1 proxy page, a black hole), through
the REAL google-cloud-secret-manager client.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from secretsync.core.contract import SecretsClient
from secretsync.core.errors import InvalidConfig, NotFound, Unavailable
from secretsync.core.settings import ClientSettings, RateLimitSettings, TimeoutSettings
from secretsync.core.values import SecretValue
from tests.harness.canned import BlackHole, CannedServer, Reply, timed
from tests.harness.gcp import gcp_client

#: Stall tests: short timeouts, SDK retries on, to show they do not multiply the time.
FAST = TimeoutSettings(connect=0.3, read=0.3, sdk_retries=1)
#: Answer-mapping tests: generous timeouts (a busy CI machine is not a failure), no retries.
PROMPT = TimeoutSettings(connect=5.0, read=5.0, sdk_retries=0)
CANARY = "canary-gcp-failure-Zq8w-7734"


@pytest.fixture
def client(gcp_server: Any) -> Iterator[SecretsClient]:
    c = gcp_client(gcp_server.address, gcp_server.token, ClientSettings(timeouts=PROMPT))
    yield c
    c.close()


@pytest.mark.parametrize("message", [
    "Location europe-nowhere1 is not found or access is unauthorized.",
    "Requested entity was not found.",
])
def test_a_not_found_about_something_other_than_a_secret_is_invalid_config(
    client: SecretsClient, gcp_server: Any, message: str
) -> None:
    client.put("app/db", SecretValue("v"))
    gcp_server.fail_next(None, grpc.StatusCode.NOT_FOUND, message=message, times=3)
    for call in (lambda: client.get("app/db"), lambda: client.exists("app/db"), lambda: list(client.list())):
        exc, _ = timed(call)
        assert type(exc) is InvalidConfig, repr(exc)
    assert client.get("app/db").reveal() == b"v"


def test_the_services_not_found_for_a_secret_stays_not_found(client: SecretsClient) -> None:
    with pytest.raises(NotFound):
        client.get("never/written")
    assert client.exists("never/written") is False


@pytest.mark.parametrize("same_token", [True, False], ids=["same-token", "fresh-tokens"])
def test_a_list_that_pages_forever_stops(
    client: SecretsClient, gcp_server: Any, same_token: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretsync_providers.gcp import client as gcp_module

    monkeypatch.setattr(gcp_module, "MAX_LIST_PAGES", 30)
    gcp_server.endless_pages(same_token=same_token)
    with pytest.raises(Unavailable, match="paging loop" if same_token else "30 pages"):
        list(client.list())
    assert gcp_server.calls["ListSecrets"] == (2 if same_token else 30)


def test_an_http_proxy_answering_html_404_is_unavailable_not_absent() -> None:
    with CannedServer() as proxy:
        proxy.respond(Reply(404, {"Content-Type": "text/html"}, b"<html>404 Not Found</html>"))
        c = gcp_client(f"127.0.0.1:{proxy.port}", "t", ClientSettings(timeouts=PROMPT))
        for call in (lambda: c.get("app/db"), lambda: c.exists("app/db"), lambda: list(c.list())):
            exc, _ = timed(call)
            assert isinstance(exc, Unavailable | InvalidConfig) and not isinstance(exc, NotFound), repr(exc)
        c.close()


def test_a_black_hole_fails_within_the_deadline_without_retrying_it() -> None:
    with BlackHole() as hole:
        c = gcp_client(f"127.0.0.1:{hole.port}", "t", ClientSettings(timeouts=FAST))
        exc, elapsed = timed(lambda: c.get("app/db"))
        c.close()
    assert isinstance(exc, Unavailable), repr(exc)
    assert elapsed < 2 * FAST.read + 0.5, f"took {elapsed:.1f}s"


def test_a_refused_add_version_shows_the_value_nowhere(client: SecretsClient, gcp_server: Any) -> None:
    gcp_server.fail_next("AddSecretVersion", grpc.StatusCode.INVALID_ARGUMENT, message=f"payload {CANARY} refused")
    with pytest.raises(InvalidConfig) as info:
        client.put("app/db", SecretValue(CANARY))
    text = "".join(traceback.format_exception(info.value))
    assert "refused" in text and CANARY not in text


def test_every_page_of_a_list_waits_for_the_rate_limiter(gcp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from secretsync_providers.gcp import client as gcp_module

    monkeypatch.setattr(gcp_module, "LIST_PAGE_SIZE", 2)
    settings = ClientSettings(timeouts=PROMPT, rate_limit=RateLimitSettings(rate=20, burst=1))
    c = gcp_client(gcp_server.address, gcp_server.token, settings)
    for i in range(5):
        c.put(f"p/{i}", SecretValue("v"))
    exc, elapsed = timed(lambda: list(c.list()))
    c.close()
    assert exc is None
    pages, versions = settings.calls.total("gcp", "ListSecrets"), settings.calls.total("gcp", "ListSecretVersions")
    assert pages == 3 and versions == 5
    assert elapsed >= (pages + versions - 1) / 20 - 0.02


def test_an_endpoint_that_does_not_resolve_is_unavailable() -> None:
    c = gcp_client("nohost.invalid:443", "t", ClientSettings(timeouts=FAST))
    exc, elapsed = timed(lambda: c.get("app/db"))
    c.close()
    assert isinstance(exc, Unavailable), repr(exc)
    assert elapsed < 3 * FAST.read + 1.0


@pytest.mark.parametrize("method", ["AccessSecretVersion", "ListSecrets", "GetSecret"])
def test_an_answer_that_does_not_parse_is_unavailable_never_absent(
    client: SecretsClient, gcp_server: Any, method: str
) -> None:
    client.put("app/db", SecretValue("v"))
    gcp_server.garble_next(method)
    call = {"AccessSecretVersion": lambda: client.get("app/db"), "ListSecrets": lambda: list(client.list()),
            "GetSecret": lambda: client.exists("app/db")}[method]
    exc, _ = timed(call)
    assert isinstance(exc, Unavailable), repr(exc)
    assert client.get("app/db").reveal() == b"v"
