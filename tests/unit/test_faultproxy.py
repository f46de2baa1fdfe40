"""The fault suite's TCP proxy does what a test asks, in front of a real (stdlib) HTTP server."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.harness.faultproxy import Fault, FaultProxy, status


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()


def _post(port: int, body: bytes = b"hello", timeout: float = 3.0) -> tuple[int, bytes, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/x", body=body)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Retry-After")
    finally:
        conn.close()


def test_forwards_requests_and_counts_them(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, http=True) as proxy:
        assert _post(proxy.port, b"a" * 100_000)[:2] == (200, b"a" * 100_000)
        assert _post(proxy.port)[:2] == (200, b"hello")
        assert [(r.method, r.path, r.answered) for r in proxy.requests()] == [("POST", "/x", None)] * 2


def test_answers_throttles_with_retry_after_then_heals(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, http=True) as proxy:
        proxy.request_fault(status(429, retry_after=2))
        code, _, retry_after = _post(proxy.port)
        assert (code, retry_after) == (429, "2")
        proxy.request_fault(status(503))
        assert _post(proxy.port)[0] == 503
        proxy.heal()
        assert _post(proxy.port)[0] == 200
        assert [r.answered for r in proxy.requests()] == [429, 503, None]


def test_per_request_policy_sees_the_request_number(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, http=True) as proxy:
        proxy.request_fault(lambda n, req: status(500) if n % 2 == 0 else Fault())
        assert [_post(proxy.port)[0] for _ in range(4)] == [500, 200, 500, 200]


def test_connection_faults_fail_the_way_networks_do(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream) as proxy:  # plain TCP: the same faults apply to TLS
        proxy.connection_fault(Fault("reset"))
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            _post(proxy.port)
        proxy.connection_fault(Fault("drop"))
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            _post(proxy.port)
        proxy.connection_fault(Fault("blackhole"))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            _post(proxy.port, timeout=0.5)
        assert time.monotonic() - started < 2
        proxy.connection_fault(Fault("delay", delay=0.3))
        started = time.monotonic()
        assert _post(proxy.port)[0] == 200
        assert time.monotonic() - started >= 0.3
        assert proxy.connections == 4


def test_sever_resets_open_connections(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        proxy.sever()
        # The reset lands on the proxy's thread: a request already on its way may still be
        # answered, but the connection is gone within moments.
        deadline = time.monotonic() + 5
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz")
                if not sock.recv(4096):
                    raise ConnectionError("closed")
                time.sleep(0.05)
        sock.close()


def test_max_in_window_is_a_sliding_count(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, http=True) as proxy:
        proxy.request_fault(status(429))
        for _ in range(3):
            _post(proxy.port)
        time.sleep(0.5)
        _post(proxy.port)
        assert proxy.max_in_window(0.3) == 3
        assert proxy.max_in_window(5.0) == 4
        assert proxy.max_in_window(5.0, forwarded_only=True) == 0
