"""What the AWS adapter makes of a broken network: never "absent", never a value, never forever.

The answers come from :class:`tests.harness.canned.CannedServer` (a loopback HTTP server
answering proxy pages, garbled or truncated bodies, a drip-fed answer, endless paging) and
are parsed by the REAL botocore, so what is tested is what botocore hands the adapter.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from secretsync.core.contract import ListFilter, SecretsClient
from secretsync.core.errors import (
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Unavailable,
)
from secretsync.core.settings import ClientSettings, RateLimitSettings, TimeoutSettings
from secretsync.core.values import SecretValue
from tests.harness.aws import open_aws
from tests.harness.canned import BlackHole, CannedServer, Close, Drip, Reply, Request, Truncate, timed

pytest.importorskip("boto3")

CANARY = "canary-aws-failure-Zq8w-4411"
JSON = {"Content-Type": "application/x-amz-json-1.1"}
#: Stall tests: short timeouts, SDK retries on, to show they do not multiply the time
#: (a call may take connect + 2 * read = 0.9 s in all).
FAST = TimeoutSettings(connect=0.3, read=0.3, sdk_retries=2)
#: Answer-mapping tests: generous timeouts (a busy CI machine is not a failure), no retries.
PROMPT = TimeoutSettings(connect=5.0, read=5.0, sdk_retries=0)


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedServer]:
    with CannedServer() as server:
        yield server


def client_on(server: CannedServer, **settings: Any) -> SecretsClient:
    return open_aws(server.url, settings=ClientSettings(timeouts=PROMPT, **settings))


def operation(request: Request) -> str:
    return request.headers.get("x-amz-target", "").rsplit(".", 1)[-1]


READS: dict[str, Callable[[SecretsClient], object]] = {
    "get": lambda c: c.get("app/db"),
    "get_many": lambda c: c.get_many(["app/db", "app/other"]),
    "describe": lambda c: c.describe("app/db"),
    "exists": lambda c: c.exists("app/db"),
    "list": lambda c: list(c.list()),
    "delete": lambda c: c.delete("app/db", force=True),
}


@pytest.mark.parametrize(("answer", "expected"), [
    (Reply(404, {"Content-Type": "text/html"}, b"<html><body>404 Not Found</body></html>"), InvalidConfig),
    (Reply(404, JSON, b""), InvalidConfig),
    (Reply(403, {"Content-Type": "text/html"}, b"<html>Forbidden by proxy</html>"), PermissionDenied),
    (Reply(502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"), Unavailable),
    (Reply(200, JSON, b'{"SecretString": "half'), Unavailable),
    (Reply(200, JSON, b"{}"), Unavailable),
    (Reply(200, {"Content-Type": "text/html"}, b"<html>captive portal</html>"), Unavailable),
    (Truncate(200, JSON, json.dumps({"Name": "app/db", "SecretString": "x" * 50}).encode(), 12), Unavailable),
    (Close(), Unavailable),
], ids=["proxy-html-404", "bodiless-404", "proxy-html-403", "html-502", "garbled-200", "empty-200",
        "html-200", "truncated-200", "connection-closed"])
def test_answers_that_are_not_aws_never_read_as_absent_or_empty(
    canned: CannedServer, answer: Any, expected: type[ProviderError]
) -> None:
    canned.respond(answer)
    client = client_on(canned)
    for name, call in READS.items():
        exc, _ = timed(lambda call=call: call(client))  # type: ignore[misc]
        if exc is None and name == "get_many":
            # Per-name errors are allowed (IAM can deny secret by secret), "absent" is not.
            results = client.get_many(["app/db", "app/other"])
            assert all(type(r) is expected for r in results.values()), results
            continue
        assert type(exc) is expected, f"{name}: {exc!r}"
        assert not isinstance(exc, NotFound)


def test_a_list_answer_without_a_secret_list_is_unavailable_not_an_empty_store(canned: CannedServer) -> None:
    canned.respond(Reply(200, JSON, json.dumps({"NextToken": None}).encode()))
    with pytest.raises(Unavailable, match="SecretList"):
        list(client_on(canned).list())


def test_a_read_whose_value_has_the_wrong_type_is_unavailable(canned: CannedServer) -> None:
    canned.respond(Reply(200, JSON, json.dumps({"Name": "app/db", "SecretString": 5}).encode()))
    with pytest.raises(Unavailable):
        client_on(canned).get("app/db")


def test_paging_that_repeats_a_token_stops_with_unavailable(canned: CannedServer) -> None:
    canned.respond(Reply(200, JSON, json.dumps({"SecretList": [], "NextToken": "same"}).encode()))
    with pytest.raises(Unavailable, match="paging loop"):
        list(client_on(canned).list())
    assert len(canned.requests) == 2


def test_paging_that_never_ends_stops_after_the_page_cap(
    canned: CannedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretsync_providers.aws import client as aws_client

    monkeypatch.setattr(aws_client, "MAX_LIST_PAGES", 25)
    pages = iter(range(10**6))
    canned.respond(lambda _: Reply(200, JSON, json.dumps({"SecretList": [], "NextToken": f"t{next(pages)}"}
                                                          ).encode()))
    with pytest.raises(Unavailable, match="25 pages"):
        list(client_on(canned).list())
    assert len(canned.requests) == 25


def test_throttling_carries_the_retry_after_the_service_sent(canned: CannedServer) -> None:
    canned.respond(Reply(400, {**JSON, "Retry-After": "4"},
                         json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()))
    settings = ClientSettings(timeouts=TimeoutSettings(connect=0.5, read=0.5, sdk_retries=0))
    with pytest.raises(Throttled) as info:
        open_aws(canned.url, settings=settings).get("app/db")
    assert info.value.retry_after == 4.0 and info.value.retryable


def test_an_error_that_echoes_the_written_value_shows_it_nowhere(canned: CannedServer) -> None:
    def answer(request: Request) -> Reply:
        if operation(request) == "DescribeSecret":
            return Reply(200, JSON, json.dumps({"ARN": "arn:aws:secretsmanager:us-east-1:1:secret:app/db-x",
                                                "Name": "app/db", "VersionIdsToStages": {}}).encode())
        echo = json.loads(request.body)  # what a misbehaving proxy/endpoint might send back
        return Reply(400, JSON, json.dumps({"__type": "ValidationException",
                                            "message": f"cannot store {json.dumps(echo)}"}).encode())

    canned.respond(answer)
    client = client_on(canned)
    for value in (SecretValue(CANARY), SecretValue(b"\xff\xfe" + CANARY.encode())):
        with pytest.raises(InvalidConfig) as info:
            client.put("app/db", value)
        text = "".join(traceback.format_exception(info.value))
        assert "ValidationException" in text
        assert CANARY not in text and "Y2FuYXJ5" not in text  # nor its base64 (SecretBinary)
        assert "botocore.exceptions.ClientError" in text, "the cause stays, as a value-free twin"


def test_every_http_attempt_waits_for_the_rate_limiter(canned: CannedServer) -> None:
    """botocore retries a 503 by itself: each attempt is a backend call and takes a token."""
    canned.respond(Reply(503, JSON, json.dumps({"__type": "ServiceUnavailable", "message": "x"}).encode()))
    retrying = TimeoutSettings(connect=5.0, read=5.0, sdk_retries=2)
    settings = ClientSettings(timeouts=retrying, rate_limit=RateLimitSettings(rate=10, burst=1))
    exc, elapsed = timed(lambda: open_aws(canned.url, settings=settings).get("app/db"))
    assert isinstance(exc, Unavailable)
    assert len(canned.requests) == 3
    assert elapsed >= 0.18  # three attempts at 10/s with no burst: two waits of 0.1 s


@pytest.mark.parametrize("stall", ["drip-fed answer", "black hole"])
def test_a_stalling_endpoint_fails_within_the_call_deadline(canned: CannedServer, stall: str) -> None:
    body = json.dumps({"Name": "app/db", "SecretString": "v" * 200, "VersionId": "x" * 32}).encode()
    canned.respond(Drip(Reply(200, JSON, body), interval=0.1))  # every read succeeds: no read timeout
    with BlackHole() as hole:
        url = canned.url if stall == "drip-fed answer" else hole.url
        client = open_aws(url, settings=ClientSettings(timeouts=FAST))  # building boto3's client is not the call
        exc, elapsed = timed(lambda: client.get("app/db"))
    assert isinstance(exc, Unavailable), repr(exc)
    assert elapsed < 3 * FAST.read + 1.0, f"took {elapsed:.1f}s"


def test_list_filter_with_tags_survives_garbled_entries(canned: CannedServer) -> None:
    canned.respond(Reply(200, JSON, json.dumps({"SecretList": ["not-an-object"]}).encode()))
    with pytest.raises(Unavailable):
        list(client_on(canned).list(ListFilter(tags={"team": "a"})))


def test_a_name_that_does_not_resolve_is_unavailable() -> None:
    exc, elapsed = timed(lambda: open_aws("http://nohost.invalid:4566",
                                          settings=ClientSettings(timeouts=PROMPT)).get("app/db"))
    assert isinstance(exc, Unavailable), repr(exc)
    assert elapsed < 3


def test_a_listed_secret_without_a_name_is_unavailable_not_a_nameless_secret(canned: CannedServer) -> None:
    canned.respond(Reply(200, JSON, json.dumps({"SecretList": [{"ARN": "arn:aws:secretsmanager:x"}]}).encode()))
    with pytest.raises(Unavailable, match="Name"):
        list(client_on(canned).list())
