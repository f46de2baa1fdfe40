"""A TCP fault proxy in front of a real server: the fault suite's way to break the network.

Why a proxy and not mocks: the promises under test (nothing deleted on an outage, the
configured rate never exceeded, watches that survive a dead connection) are about what the
real SDKs and the real kube client do when the wire misbehaves. The proxy sits between them
and a real server (moto, OpenBao, the fakes, the kube-apiserver) and the test switches its
behaviour at runtime.

Two levels, switchable independently while traffic flows:

* **per connection** (any TCP, TLS included): ``pass``, ``delay`` (before connecting
  upstream), ``drop`` (close at once), ``reset`` (RST), ``blackhole`` (accept, read, never
  answer). :meth:`FaultProxy.sever` resets the connections already open, so an outage also
  hits pooled keep-alive connections and long watches.
* **per request** (plain HTTP only, ``http=True``): each request is parsed (head and body),
  then a :class:`Fault` (or a function of the request's number) decides: forward, delay,
  drop, reset, blackhole, or answer ``status`` (429 / 500 / 503) with ``Retry-After``. A
  forwarded request goes upstream on its own connection with ``Connection: close`` and the
  client connection is closed after the answer: simple, and keep-alive is not under test.

It counts connections and (HTTP) requests with their arrival times, so a test can assert a
rate at the wire (:meth:`FaultProxy.max_in_window`). Threads and the stdlib only.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

Kind = Literal["pass", "delay", "drop", "reset", "blackhole", "status"]


@dataclass(frozen=True)
class Fault:
    """What the proxy does to a connection or a request."""

    kind: Kind = "pass"
    #: ``delay``: seconds before going on (then it forwards).
    delay: float = 0.0
    #: ``status``: the HTTP status answered instead of forwarding, and its Retry-After.
    status: int = 503
    retry_after: float | None = None
    #: The answer's body (None: an AWS-style JSON error matching the status).
    body: bytes | None = None


PASS = Fault()


def status(code: int, retry_after: float | None = None) -> Fault:
    return Fault("status", status=code, retry_after=retry_after)


@dataclass(frozen=True)
class Request:
    """One HTTP request seen by the proxy (no body kept: it may hold values)."""

    at: float
    method: str
    path: str
    answered: int | None  # the injected status, None when forwarded (or dropped)


RequestPolicy = Fault | Callable[[int, "Request"], Fault]

_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


class FaultProxy:
    """Listens on 127.0.0.1:``port`` and forwards to ``upstream`` (host, port)."""

    def __init__(self, upstream: tuple[str, int], *, http: bool = False, port: int = 0) -> None:
        self.upstream = upstream
        self.http = http
        self._connection: Fault = PASS
        self._request: RequestPolicy = PASS
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._requests: list[Request] = []
        self.connections = 0
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._listener.close()
        self.sever()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- switches --------------------------------------------------------------------------
    def connection_fault(self, fault: Fault) -> None:
        """What happens to each new connection from now on."""
        self._connection = fault

    def request_fault(self, policy: RequestPolicy) -> None:
        """What happens to each HTTP request from now on: a Fault, or ``f(n, request)``
        where n counts requests since this call (0-based)."""
        if not self.http:
            raise ValueError("request faults need http=True (the proxy cannot see inside TLS)")
        with self._lock:
            self._request = policy
            self._policy_base = len(self._requests)

    def heal(self) -> None:
        """Back to a plain forwarder (connections already severed stay closed)."""
        self._connection = PASS
        with self._lock:
            self._request = PASS

    def sever(self) -> None:
        """Reset every open connection (pooled keep-alives, watches) at once."""
        with self._lock:
            live, self._live = list(self._live), set()
        for sock in live:
            _reset(sock)

    @contextlib.contextmanager
    def outage(self, fault: Fault | None = None) -> Iterator[None]:
        """The provider is down until the block ends: every connection fails (reset by default,
        open ones included), or, for a ``status`` fault, every HTTP request gets that answer."""
        fault = fault or Fault("reset")
        if fault.kind == "status":
            self.request_fault(fault)
        else:
            self.connection_fault(fault)
            self.sever()
        try:
            yield
        finally:
            self.heal()

    # -- counts ----------------------------------------------------------------------------
    def requests(self, since: float = 0.0) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if r.at >= since]

    def max_in_window(self, window: float, since: float = 0.0, forwarded_only: bool = False) -> int:
        """The most requests that arrived within any ``window`` seconds (sliding)."""
        times = [r.at for r in self.requests(since) if not forwarded_only or r.answered is None]
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] > window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # -- plumbing --------------------------------------------------------------------------
    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.add(sock)

    def _untrack(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                self._live.discard(s)
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            fault = self._connection
            threading.Thread(target=self._serve, args=(client, fault), daemon=True,
                             name=f"faultproxy-{self.port}-conn").start()

    def _serve(self, client: socket.socket, fault: Fault) -> None:
        client.settimeout(None)
        self._track(client)
        try:
            if self._apply(client, fault):
                return
            if self.http:
                self._serve_http(client)
            else:
                upstream = self._dial()
                if upstream is None:
                    _reset(client)
                    return
                self._pipe(client, upstream)
        finally:
            self._untrack(client)

    def _apply(self, client: socket.socket, fault: Fault) -> bool:
        """Apply a connection-level fault; True when the connection is finished with."""
        if fault.kind == "delay":
            time.sleep(fault.delay)
        elif fault.kind == "drop":
            return True
        elif fault.kind == "reset":
            _reset(client)
            return True
        elif fault.kind == "blackhole":
            self._swallow(client)
            return True
        return False

    def _swallow(self, sock: socket.socket) -> None:
        """Read and discard until the peer gives up or the proxy is stopped or severs it."""
        sock.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                if not sock.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _dial(self) -> socket.socket | None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            return None
        upstream.settimeout(None)
        self._track(upstream)
        return upstream

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        back = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
        back.start()
        _copy(client, upstream)
        back.join()
        self._untrack(upstream)

    def _serve_http(self, client: socket.socket) -> None:
        reader = _Reader(client)
        while True:
            raw = reader.request()
            if raw is None:
                return
            head, method, path = raw
            with self._lock:
                n = len(self._requests) - getattr(self, "_policy_base", 0)
                policy = self._request
            req = Request(time.monotonic(), method, path, None)
            fault = policy(n, req) if callable(policy) else policy
            if fault.kind == "status":
                req = Request(req.at, method, path, fault.status)
            with self._lock:
                self._requests.append(req)
            if fault.kind == "status":
                client.sendall(_response(fault))
                continue  # keep-alive: the client may send its retry on this connection
            if self._apply(client, fault):
                return
            upstream = self._dial()
            if upstream is None:
                _reset(client)
                return
            try:
                upstream.sendall(head)
                _copy(upstream, client)
            finally:
                self._untrack(upstream)
            return


def _copy(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN: what a crashed or firewalled peer does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _response(fault: Fault) -> bytes:
    code = {429: "ThrottlingException", 500: "InternalServiceError"}.get(fault.status, "ServiceUnavailable")
    body = fault.body if fault.body is not None else (
        f'{{"__type":"{code}","message":"injected by the fault proxy"}}'.encode())
    headers = [f"HTTP/1.1 {fault.status} {_REASONS.get(fault.status, 'Error')}",
               "Content-Type: application/x-amz-json-1.1",
               f"Content-Length: {len(body)}",
               f"x-amzn-ErrorType: {code}"]
    if fault.retry_after is not None:
        headers.append(f"Retry-After: {fault.retry_after:g}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


class _Reader:
    """Reads HTTP/1.1 requests (head + Content-Length or chunked body) off a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        self.buf += data
        return bool(data)

    def _until(self, marker: bytes) -> bytes | None:
        while marker not in self.buf:
            if not self._fill():
                return None
        idx = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:idx], self.buf[idx:]
        return out

    def _exactly(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self) -> tuple[bytes, str, str] | None:
        """The request re-encoded with ``Connection: close``, its method and path; None at EOF."""
        head = self._until(b"\r\n\r\n")
        if head is None:
            return None
        lines = head[:-4].split(b"\r\n")
        method, path = [*lines[0].split(b" "), b"", b""][:2]
        headers = [ln for ln in lines[1:] if not ln.lower().startswith((b"connection:", b"keep-alive:"))]
        length, chunked = 0, False
        for ln in headers:
            name, _, value = ln.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        body = self._chunked() if chunked else self._exactly(length)
        if body is None:
            return None
        out = b"\r\n".join([lines[0], *headers, b"Connection: close"]) + b"\r\n\r\n" + body
        return out, method.decode("latin-1"), path.decode("latin-1")

    def _chunked(self) -> bytes | None:
        out = b""
        while True:
            size_line = self._until(b"\r\n")
            if size_line is None:
                return None
            out += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            chunk = self._exactly(size + 2)
            if chunk is None:
                return None
            out += chunk
            if size == 0:
                return out
