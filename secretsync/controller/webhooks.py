"""The webhook receiver: pushed change notices (a signed generic webhook, Azure Event Grid).

Why the controller serves this itself: Azure Key Vault publishes changes only through Event
Grid, which pushes to an HTTPS endpoint, and a CI job that just rotated a key has no queue
to write to. Both end in :meth:`ChangeHub.submit`, exactly like a pulled feed.

Trust: a store opts in with ``spec.events.webhook.secretRef``, a key in a Secret of the
store's own namespace (a ClusterSecretStore names the namespace). A sender proves it holds
that key, so a tenant can only nudge its own stores, and a nudge only makes the controller
read keys that ExternalSecrets already use (rate-limited per store). Refusals say nothing
about why beyond the status code: an unauthenticated sender learns neither which stores
exist nor which keys they hold.

* ``POST /v1/secretstores/NAMESPACE/NAME`` and ``POST /v1/clustersecretstores/NAME``: body
  ``{"keys": ["db/password", ...]}``; headers ``X-Secretsync-Timestamp`` (Unix seconds) and
  ``X-Secretsync-Signature: sha256=HEX`` where HEX is HMAC-SHA256(key, TIMESTAMP + "." +
  BODY). A timestamp outside the window is refused (401) and a signature already seen inside
  the window is a replay (409).
* ``POST /v1/eventgrid/secretstores/NAMESPACE/NAME`` (and ``/v1/eventgrid/clustersecretstores/
  NAME``): Event Grid's delivery, the key in the ``code`` query parameter or the
  ``X-Secretsync-Key`` header (Event Grid webhooks carry a URL secret or a delivery header).
  The subscription-validation handshake is answered only for a caller holding the key;
  ``Microsoft.KeyVault.SecretNewVersionCreated`` / ``SecretUpdated`` events (Event Grid and
  CloudEvents schemas) name the secret in ``data.ObjectName``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from secretsync.core.changes import ChangeNotice

from .changefeed import StoreId
from .settings import EventSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Secretsync-Signature"
TIMESTAMP_HEADER = "X-Secretsync-Timestamp"
KEY_HEADER = "X-Secretsync-Key"
MAX_KEYS = 1000
MAX_KEY_LENGTH = 1024
KEYVAULT_EVENTS = frozenset({
    "Microsoft.KeyVault.SecretNewVersionCreated", "Microsoft.KeyVault.SecretUpdated",
    "Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired",
})
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"

#: The store's webhook key, or None when the store does not exist or takes no webhook.
KeyLookup = Callable[[StoreId], bytes | None]
#: The store's names for raw provider names (Azure object names -> keys), by the provider.
NameMapper = Callable[[StoreId, set[str]], set[str]]
Submit = Callable[[StoreId, ChangeNotice], None]


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value a sender computes (documented for senders; tests use it)."""
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def parse_store_path(path: str) -> tuple[bool, StoreId] | None:
    """``(event_grid, store id)`` for a receiver path, None for anything else."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if len(parts) < 3 or parts[0] != "v1":
        return None
    grid = parts[1] == "eventgrid"
    rest = parts[2:] if grid else parts[1:]
    if len(rest) == 3 and rest[0] == "secretstores" and rest[1] and rest[2]:
        return grid, ("SecretStore", rest[1], rest[2])
    if len(rest) == 2 and rest[0] == "clustersecretstores" and rest[1]:
        return grid, ("ClusterSecretStore", "", rest[1])
    return None


def generic_keys(body: bytes) -> set[str]:
    doc = json.loads(body)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
        raise ValueError("body must be an object with a 'keys' list")
    keys = doc["keys"]
    if len(keys) > MAX_KEYS or not all(isinstance(k, str) and 0 < len(k) <= MAX_KEY_LENGTH for k in keys):
        raise ValueError(f"'keys' must hold at most {MAX_KEYS} non-empty names")
    return set(keys)


def event_grid_events(body: bytes) -> list[Mapping[str, Any]]:
    doc = json.loads(body)
    events = doc if isinstance(doc, list) else [doc]
    if not all(isinstance(e, Mapping) for e in events):
        raise ValueError("not Event Grid events")
    return events


def _event_type(event: Mapping[str, Any]) -> str:
    return str(event.get("eventType") or event.get("type") or "")


def keyvault_names(events: list[Mapping[str, Any]]) -> set[str]:
    names: set[str] = set()
    for e in events:
        if _event_type(e) not in KEYVAULT_EVENTS:
            continue
        data = e.get("data")
        name = data.get("ObjectName") if isinstance(data, Mapping) else None
        if isinstance(name, str) and 0 < len(name) <= MAX_KEY_LENGTH:
            names.add(name)
    return names


class ReplayGuard:
    """Signatures seen within the window (bounded; the oldest go first)."""

    def __init__(self, window: float, limit: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.limit = limit
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, token: str) -> bool:
        now = self._clock()
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - 2 * self.window
                                  or len(self._seen) >= self.limit):
                self._seen.popitem(last=False)
            if token in self._seen:
                return False
            self._seen[token] = now
            return True


class WebhookReceiver:
    """Authenticates pushed notices and hands them to the hub."""

    def __init__(self, settings: EventSettings, key_for: KeyLookup, submit: Submit,
                 map_names: NameMapper | None = None, clock: Callable[[], float] = time.time,
                 available: Callable[[], bool] = lambda: True) -> None:
        self.settings = settings
        self._available = available
        self._key_for = key_for
        self._submit = submit
        self._map = map_names or (lambda _sid, names: names)
        self._clock = clock
        self.replays = ReplayGuard(settings.webhook_window, clock=clock)
        self.refused = 0

    def handle(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        """(status, response body) for one POST; never raises."""
        try:
            return self._handle(path, {k.lower(): v for k, v in headers.items()}, body)
        except Exception:
            log.exception("webhook: unexpected failure")
            return 500, b'{"error":"internal"}'

    def _refuse(self, status: int, what: str) -> tuple[int, bytes]:
        self.refused += 1
        return status, json.dumps({"error": what}).encode()

    def _handle(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        url = urlsplit(path)
        target = parse_store_path(url.path)
        if target is None:
            return self._refuse(404, "not found")
        grid, sid = target
        if not self._available():
            return self._refuse(503, "not the leader; retry")
        key = self._key_for(sid)
        if grid:
            given = (parse_qs(url.query).get("code") or [headers.get(KEY_HEADER.lower(), "")])[0]
            if key is None or not hmac.compare_digest(given.encode(), key):
                return self._refuse(401, "unauthorized")
            return self._event_grid(sid, headers, body)
        ts = headers.get(TIMESTAMP_HEADER.lower(), "")
        sig = headers.get(SIGNATURE_HEADER.lower(), "")
        if key is None or not ts or not sig or not hmac.compare_digest(sig.encode(), sign(key, ts, body).encode()):
            return self._refuse(401, "unauthorized")
        try:
            skew = abs(self._clock() - float(ts))
        except ValueError:
            return self._refuse(401, "unauthorized")
        if skew > self.settings.webhook_window:
            return self._refuse(401, "stale timestamp")
        if not self.replays.first_time(f"{sid}|{sig}"):
            return self._refuse(409, "replayed")
        try:
            names = generic_keys(body)
        except ValueError as exc:
            return self._refuse(400, str(exc) if "keys" in str(exc) else "malformed body")
        self._submit(sid, ChangeNotice(frozenset(names), "webhook", float(ts)))
        return 202, b'{"accepted":true}'

    def _event_grid(self, sid: StoreId, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        try:
            events = event_grid_events(body)
        except ValueError:
            return self._refuse(400, "malformed body")
        if headers.get("aeg-event-type") == "SubscriptionValidation" or any(
                _event_type(e) == VALIDATION_EVENT for e in events):
            for e in events:
                data = e.get("data")
                code = data.get("validationCode") if isinstance(data, Mapping) else None
                if _event_type(e) == VALIDATION_EVENT and isinstance(code, str):
                    log.info("webhook: Event Grid subscription validated for %s/%s/%s", *sid)
                    return 200, json.dumps({"validationResponse": code}).encode()
            return self._refuse(400, "no validation code")
        names = self._map(sid, keyvault_names(events))
        if names:
            self._submit(sid, ChangeNotice(frozenset(names), "eventgrid", None))
        return 200, b'{"accepted":true}'


class WebhookServer:
    """HTTP front of a :class:`WebhookReceiver` (TLS is terminated in front of it, e.g. by the
    Service's ingress, as Event Grid requires HTTPS)."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        settings = receiver.settings
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0 or length > settings.webhook_max_body:
                    self._send(413, b'{"error":"too large"}')
                    return
                body = self.rfile.read(length)
                status, out = outer.receiver.handle(self.path, dict(self.headers.items()), body)
                self._send(status, out)

            def do_GET(self) -> None:
                self._send(405, b'{"error":"POST only"}')

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        assert settings.webhook_port is not None
        self._server = ThreadingHTTPServer((settings.webhook_host, settings.webhook_port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
