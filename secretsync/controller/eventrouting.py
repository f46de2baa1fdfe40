"""Wires change notices into the controller: which feeds run, who may push, where reads go.

Kept apart from the runtime so the runtime only says *when* (a store was reconciled or
deleted, leadership was gained or lost) and this module decides *what* (open, replace or
stop a store's feed; answer a webhook; read the named keys through the store's cache).

Feeds run on the leader only: an SQS message or a Pub/Sub ack is consumed by whoever reads
it, so a standby polling the same queue would swallow notices the leader needs. For the
same reason a standby answers webhooks with 503, which Event Grid and well-behaved senders
retry (against the leader, once the Service routes there, or the same pod after failover).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from secretsync.api.models import SecretStore
from secretsync.core.errors import ProviderError
from secretsync.kube.client import SECRETS, KubeApi, KubeError

from .changefeed import ChangeHub, PrometheusEventMetrics, StoreId
from .settings import ControllerSettings
from .stores import StoreManager, store_id_of
from .webhooks import WebhookReceiver, WebhookServer

log = logging.getLogger(__name__)

#: How long a webhook key read from its Secret is reused.
KEY_TTL = 30.0
#: A noticed key whose Secret was not written within this long is forgotten.
NOTICE_TTL = 3600.0


class EventRouting:
    def __init__(self, api: KubeApi, settings: ControllerSettings, stores: StoreManager,
                 store_of: Callable[[StoreId], SecretStore | None], registry: CollectorRegistry,
                 leading: threading.Event) -> None:
        self.api = api
        self.settings = settings
        self.stores = stores
        self._store_of = store_of
        self._leading = leading
        self.hub = ChangeHub(settings.events, self._dispatch, metrics=PrometheusEventMetrics(registry))
        self._keys: dict[StoreId, tuple[float, bytes | None]] = {}
        #: store -> key -> when the notice that moved it arrived (monotonic), until its Secret is written.
        self._noticed: dict[StoreId, dict[str, float]] = {}
        self._lock = threading.Lock()
        self.receiver = WebhookReceiver(settings.events, self._key_for, self.hub.submit,
                                        available=self._leading.is_set)
        self.server: WebhookServer | None = None

    def start(self) -> None:
        self.hub.start()
        if self.settings.events.webhook_port is not None:
            self.server = WebhookServer(self.receiver)
            self.server.start()
            log.info("webhook receiver listening on port %d", self.server.port)

    def stop(self) -> None:
        self.hub.stop()
        if self.server is not None:
            self.server.stop()

    # -- runtime hooks --------------------------------------------------------------------
    def store_reconciled(self, store: SecretStore) -> None:
        """Make the store's pulled feed match its spec (called on the leader's worker)."""
        sid = store_id_of(store)
        with self._lock:
            self._keys.pop(sid, None)
        events = store.spec.events
        sub = events.subscription if events is not None else None
        if not sub or not self._leading.is_set():
            self.hub.drop_feeds(sid)
            return
        # A new generation may change credentials or provider config: a new feed then.
        self.hub.ensure_feed(sid, f"{store.meta.generation}:{sub}",
                             lambda: self.stores.open_feed(store, sub), store.spec.provider.name)

    def store_deleted(self, sid: StoreId) -> None:
        self.hub.drop_feeds(sid)
        with self._lock:
            self._keys.pop(sid, None)

    def leadership_lost(self) -> None:
        for sid, _ in self.hub.feeds():
            self.hub.drop_feeds(sid)

    # -- internals ------------------------------------------------------------------------
    def _dispatch(self, sid: StoreId, names: frozenset[str], first: float) -> None:
        for handle in self.stores.handles_of(sid):
            if handle.breaker.is_open:
                continue  # the store is paused; its recovery re-syncs everything anyway
            try:
                changed = handle.cache.refetch_notified(names)
            except ProviderError as exc:
                handle.breaker.failure(exc)
                raise
            if changed:
                now = time.monotonic()
                with self._lock:
                    seen = self._noticed.setdefault(sid, {})
                    for key in [k for k, t in seen.items() if now - t > NOTICE_TTL]:
                        del seen[key]  # never written (refused, failing): not a latency
                    for key in changed & names:
                        seen.setdefault(key, first)

    def secret_written(self, sid: StoreId, keys: frozenset[str]) -> None:
        """The reconciler wrote a Secret reading ``keys`` of ``sid``: close their notices'
        latency (notice arrival -> Secret updated)."""
        with self._lock:
            seen = self._noticed.get(sid)
            if not seen:
                return
            times = [seen.pop(k) for k in keys if k in seen]
        now = time.monotonic()
        for t in times:
            self.hub.metrics.secret_updated(now - t)

    def _key_for(self, sid: StoreId) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            hit = self._keys.get(sid)
        if hit is not None and now - hit[0] < KEY_TTL:
            return hit[1]
        key = self._read_key(sid)
        with self._lock:
            self._keys[sid] = (now, key)
        return key

    def _read_key(self, sid: StoreId) -> bytes | None:
        store = self._store_of(sid)
        hook = store.spec.events.webhook if store is not None and store.spec.events is not None else None
        if store is None or hook is None:
            return None
        ns = hook.secret_ref.namespace or store.namespace
        if not ns:
            return None
        try:
            secret = self.api.get(SECRETS, hook.secret_ref.name, ns)
        except KubeError as exc:
            log.warning("%s: spec.events.webhook.secretRef: cannot read Secret %s/%s (%s)", store.ref, ns,
                        hook.secret_ref.name, exc.status)
            return None
        raw = (secret.get("data") or {}).get(hook.secret_ref.key)
        if not raw:
            log.warning("%s: spec.events.webhook.secretRef: Secret %s/%s has no key %r", store.ref, ns,
                        hook.secret_ref.name, hook.secret_ref.key)
            return None
        key = base64.b64decode(raw).strip()
        return key or None
