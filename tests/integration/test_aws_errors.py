"""No SDK exception ever leaves the AWS adapter, and each failure lands in the right contract error.

Failures are real: moto (not found), a closed port (connection refused), a port that
accepts but never answers (read timeout), moto with IAM checks on (rejected keys), and a
tiny loopback HTTP server that answers every request with one canned AWS JSON error, so
the real boto3 parses it exactly as it would parse AWS's answer.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from secretsync.core.contract import ListFilter, SecretsClient, ValidationStatus
from secretsync.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    SecretSyncError,
    Throttled,
    Unavailable,
)
from secretsync.core.settings import ClientSettings, TimeoutSettings
from secretsync.core.values import SecretValue
from tests.harness.aws import MotoServer, open_aws
from tests.harness.ports import closed_port

pytest.importorskip("boto3")

CANARY = "canary-aws-errors-Zq8w-7f3a"
NO_RETRY = ClientSettings(timeouts=TimeoutSettings(connect=2.0, read=2.0, sdk_retries=0))


class _Canned(BaseHTTPRequestHandler):
    """Answers every request with the server's current canned response."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, headers, body = self.server.canned  # type: ignore[attr-defined]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def canned_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    server.canned = (500, {}, b"")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def aws_json_error(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


@pytest.mark.parametrize(
    ("status", "code", "headers", "expected"),
    [
        (400, "ResourceNotFoundException", {}, NotFound),
        (400, "AccessDeniedException", {}, PermissionDenied),
        (400, "UnrecognizedClientException", {}, AuthenticationFailed),
        (400, "ExpiredTokenException", {}, AuthenticationFailed),
        (400, "ThrottlingException", {"Retry-After": "3"}, Throttled),
        (429, "TooManyRequestsException", {}, Throttled),
        (500, "InternalServiceError", {}, Unavailable),
        (503, "ServiceUnavailable", {}, Unavailable),
        (400, "ValidationException", {}, InvalidConfig),
        (400, "InvalidParameterException", {}, InvalidConfig),
        (400, "ResourceExistsException", {}, Conflict),
    ],
)
def test_aws_error_answers_map_into_the_contract(
    canned_server: ThreadingHTTPServer, status: int, code: str, headers: dict[str, str],
    expected: type[ProviderError],
) -> None:
    canned_server.canned = (  # type: ignore[attr-defined]
        status, {"Content-Type": "application/x-amz-json-1.1", **headers}, aws_json_error(code, "canned")
    )
    client = open_aws(f"http://127.0.0.1:{canned_server.server_port}", settings=NO_RETRY)
    with pytest.raises(expected) as info:
        client.get("app/db")
    assert isinstance(info.value.__cause__, Exception)  # raised "from" the SDK error
    if expected is Throttled and "Retry-After" in headers:
        assert info.value.retry_after == 3.0


def test_marked_for_deletion_answer_on_get_is_not_found(canned_server: ThreadingHTTPServer) -> None:
    canned_server.canned = (400, {}, aws_json_error(  # type: ignore[attr-defined]
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion."))
    client = open_aws(f"http://127.0.0.1:{canned_server.server_port}", settings=NO_RETRY)
    with pytest.raises(NotFound):
        client.get("app/db")


def test_a_port_that_never_answers_is_unavailable_after_the_read_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever replies
        settings = ClientSettings(timeouts=TimeoutSettings(connect=1.0, read=1.0, sdk_retries=0))
        client = open_aws(f"http://127.0.0.1:{silent.getsockname()[1]}", settings=settings)
        start = time.monotonic()
        with pytest.raises(Unavailable):
            client.get("app/db")
        assert time.monotonic() - start < 5


def test_default_settings_fail_a_dead_endpoint_fast() -> None:
    client = open_aws(f"http://127.0.0.1:{closed_port()}")
    start = time.monotonic()
    with pytest.raises(Unavailable):
        client.list().__next__()
    assert time.monotonic() - start < 15


Call = Callable[[SecretsClient], object]

#: Every public method of the client, driven with arguments that fail on a broken store.
EVERY_METHOD: dict[str, Call] = {
    "get": lambda c: c.get("leak/a"),
    "get_version": lambda c: c.get("leak/a", version="0b4a5c6e-1d2f-4a3b-8c9d-0e1f2a3b4c5d"),
    "get_prop": lambda c: c.get("leak/a", prop="password"),
    "get_many": lambda c: c.get_many(["leak/a", "leak/b"]),
    "describe": lambda c: c.describe("leak/a"),
    "exists": lambda c: c.exists("leak/a"),
    "list": lambda c: list(c.list()),
    "list_tags": lambda c: list(c.list(ListFilter(prefix="leak/", tags={"team": "a"}))),
    "put": lambda c: c.put("leak/a", SecretValue(CANARY)),
    "put_tags": lambda c: c.put("leak/a", SecretValue(CANARY), tags={"team": "a"}),
    "put_if_absent": lambda c: c.put("leak/a", SecretValue(CANARY), if_absent=True),
    "put_cas": lambda c: c.put("leak/a", SecretValue(CANARY), expected_version="v-stale-version-0000000000000000"),
    "put_binary": lambda c: c.put("leak/a", SecretValue(b"\xff" + CANARY.encode())),
    "delete": lambda c: c.delete("leak/a"),
    "delete_force": lambda c: c.delete("leak/a", force=True),
    "bad_name": lambda c: c.get("no spaces allowed"),
}


def _failing_clients(
    canned_server: ThreadingHTTPServer, moto_auth_server: Callable[[], MotoServer], aws_endpoint: str
) -> dict[str, SecretsClient]:
    canned_server.canned = (503, {}, b"")  # type: ignore[attr-defined]
    return {
        "closed-port": open_aws(f"http://127.0.0.1:{closed_port()}", settings=NO_RETRY),
        "bad-credentials": open_aws(moto_auth_server().endpoint, settings=NO_RETRY),
        "http-503": open_aws(f"http://127.0.0.1:{canned_server.server_port}", settings=NO_RETRY),
        "empty-moto": open_aws(aws_endpoint, settings=NO_RETRY),
    }


def test_no_sdk_exception_leaks_from_any_method(
    canned_server: ThreadingHTTPServer, moto_auth_server: Callable[[], MotoServer], aws_endpoint: str
) -> None:
    outcomes: dict[tuple[str, str], str] = {}
    for store, client in _failing_clients(canned_server, moto_auth_server, aws_endpoint).items():
        for method, call in EVERY_METHOD.items():
            if store == "empty-moto" and method.startswith("put") and method != "put_cas":
                continue  # these succeed on a working store
            try:
                call(client)
            except BaseException as exc:
                assert isinstance(exc, SecretSyncError), (
                    f"{store}/{method}: {type(exc).__module__}.{type(exc).__name__} leaked"
                )
                assert CANARY not in str(exc) and CANARY not in repr(exc)
                outcomes[(store, method)] = type(exc).__name__
            else:
                outcomes[(store, method)] = "ok"
        assert client.validate().status is (
            ValidationStatus.READY if store == "empty-moto" else ValidationStatus.ERROR
        )
    # Failures that mean "cannot tell" must never look like "absent".
    for (store, method), outcome in outcomes.items():
        if store in ("closed-port", "http-503"):
            assert outcome in ("Unavailable",) or method == "bad_name", (store, method, outcome)
        if store == "bad-credentials":
            assert outcome in ("AuthenticationFailed",) or method == "bad_name", (store, method, outcome)
    assert outcomes[("empty-moto", "get")] == "NotFound"
    assert outcomes[("empty-moto", "exists")] == "ok"
    assert outcomes[("empty-moto", "put_cas")] == "Conflict"
    assert outcomes[("empty-moto", "delete_force")] == "NotFound"
    assert outcomes[("closed-port", "bad_name")] == "InvalidConfig"
