"""A tiny loopback HTTP(S) server that answers with canned, possibly broken, responses.

Why: the failures that must never look like "absent" (a proxy's HTML 404, a truncated or
malformed body, a server that drips its answer a byte at a time, one that accepts and never
answers) are rare on the real services and cannot be produced by moto, OpenBao or our fakes
on demand. This server produces them at the socket level, so the REAL SDK clients (botocore,
requests/hvac, azure-core) parse them exactly as they would parse a broken network's answer.

Usage::

    with CannedServer() as server:
        server.respond(Reply(404, {"Content-Type": "text/html"}, b"<html>nope</html>"))
        client = open_aws(server.url)
        ...

``respond`` takes one action for every request, or a callable ``request -> action``.
Every request is recorded (method, path, headers, body) for call-count assertions.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """A well-formed HTTP/1.1 answer."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Truncate:
    """Announce ``Content-Length: len(body)``, send only ``keep`` bytes of the body, then close."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    keep: int


@dataclass(frozen=True)
class Drip:
    """Slow loris: the whole answer, one byte every ``interval`` seconds (each read succeeds)."""

    reply: Reply
    interval: float = 0.2


@dataclass(frozen=True)
class Hang:
    """Read the request, then never answer (until the server stops)."""


@dataclass(frozen=True)
class Close:
    """Read the request, then close the connection without a word."""


Action = Reply | Truncate | Drip | Hang | Close
Responder = Callable[[Request], Action]

_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}


def _head(status: int, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if not any(k.lower() == "content-length" for k in headers):
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        try:
            request = self._read_request(sock)
        except (OSError, ValueError):
            return
        if request is None:
            return
        with self.server.lock:
            self.server.requests.append(request)
            responder = self.server.responder
        action = responder(request)
        try:
            self._act(sock, action)
        except OSError:
            return  # the client gave up (timeouts are what many tests provoke)

    def _read_request(self, sock: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Request(method, path, headers, rest[:length])

    def _act(self, sock: socket.socket, action: Action) -> None:
        if isinstance(action, Reply):
            sock.sendall(_head(action.status, action.headers, len(action.body)) + action.body)
        elif isinstance(action, Truncate):
            sock.sendall(_head(action.status, action.headers, len(action.body)) + action.body[: action.keep])
        elif isinstance(action, Drip):
            reply = action.reply
            data = _head(reply.status, reply.headers, len(reply.body)) + reply.body
            for i in range(len(data)):
                if self.server.stopping.wait(action.interval):
                    return
                sock.sendall(data[i:i + 1])
        elif isinstance(action, Hang):
            self.server.stopping.wait()
        elif isinstance(action, Close):
            pass
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.responder: Responder = lambda _: Reply(500)
        self.stopping = threading.Event()

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError):
                sock.close()
                raise
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients hanging up mid-answer are what the tests provoke


class CannedServer:
    """``http://127.0.0.1:PORT`` (or https with ``cert``/``key``) answering canned actions."""

    def __init__(self, *, cert: Path | None = None, key: Path | None = None) -> None:
        tls = None
        if cert is not None and key is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(cert, key)
        self._server = _Server(tls)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="canned-http", daemon=True)
        self.scheme = "https" if tls is not None else "http"

    def start(self) -> CannedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> CannedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def respond(self, action: Action | Responder) -> None:
        """Answer every following request with ``action`` (or what the callable returns)."""
        responder: Responder = action if callable(action) else (lambda _: action)  # type: ignore[assignment]
        with self._server.lock:
            self._server.responder = responder
            self._server.requests.clear()

    @property
    def requests(self) -> list[Request]:
        with self._server.lock:
            return list(self._server.requests)


class BlackHole:
    """A port whose kernel completes TCP handshakes but where nobody ever reads or answers."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def timed(fn: Callable[[], object]) -> tuple[BaseException | None, float]:
    """Run ``fn``; return (what it raised or None, seconds it took)."""
    start = time.monotonic()
    try:
        fn()
    except BaseException as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start
