"""SecretStore / ClusterSecretStore status: Ready (can we talk to the provider?) and capabilities.

One validation call when a store appears or changes (and every ``spec.refreshInterval`` if
set); afterwards readiness follows the store's change-detection cycles for free: the
circuit breaker opening or closing re-queues the store, so its status says "Unavailable"
during an outage without any extra provider call.
"""

from __future__ import annotations

import logging
from typing import Any

from secretsync.api.models import (
    Condition,
    SecretStore,
    SecretStoreStatus,
    StoreCapabilities,
    get_condition,
    set_condition,
)
from secretsync.core.contract import ValidationStatus
from secretsync.core.errors import ProviderError
from secretsync.core.registry import get_factory
from secretsync.kube.client import KubeApi, KubeError, Resource

from .metrics import ObjectCondition
from .reconciler import Outcome, now_rfc3339
from .stores import StoreManager, needs_es_namespace

log = logging.getLogger(__name__)


class StoreStatusReconciler:
    def __init__(self, api: KubeApi, stores: StoreManager, resources: dict[str, Resource]) -> None:
        self.api = api
        self.stores = stores
        self.resources = resources
        self._written: dict[tuple[str, str, str], SecretStoreStatus] = {}

    def invalid(self, kind: str, namespace: str, name: str, message: str, generation: int | None) -> Outcome:
        self._write(kind, namespace, name, None, False, "InvalidSpec", message, None, generation)
        return Outcome()

    def reconcile(self, store: SecretStore) -> Outcome:
        ns = store.namespace or ""
        gen = store.meta.generation
        caps: Any = None
        try:
            caps = StoreCapabilities.from_core(get_factory(store.spec.provider.name).capabilities)
        except ProviderError:
            caps = None
        if needs_es_namespace(store):
            self._write(store.kind, ns, store.name, store.status, True, "Valid",
                        "credentials are read from each ExternalSecret's namespace", caps, gen)
            return Outcome()
        try:
            handle = self.stores.handle(store)
        except ProviderError as exc:
            self._write(store.kind, ns, store.name, store.status, False, exc.reason, str(exc), caps, gen)
            return Outcome(retry=True, at_least=exc.delay or 0.0)
        caps = StoreCapabilities.from_core(handle.client.capabilities)
        if handle.breaker.is_open:
            last = handle.breaker.last_error
            self._write(store.kind, ns, store.name, store.status, False, "Unavailable",
                        f"paused after {handle.breaker.failures} consecutive failures" + (f": {last}" if last else ""),
                        caps, gen)
            return Outcome(requeue_after=handle.breaker.retry_in() + 0.5)
        with handle.lock:
            if not handle.validated:
                with handle.cache.exclusive():
                    result = handle.client.validate()
                # Validation lists; a store whose listing is denied but whose reads work (a
                # cycle succeeded reading directly) is usable, and says so below.
                usable = handle.cache.listing_denied is not None and handle.cache.cycles > 0
                if result.status is ValidationStatus.ERROR and not usable:
                    self._write(store.kind, ns, store.name, store.status, False, "ValidationFailed",
                                result.message, caps, gen)
                    return Outcome(retry=True)
                handle.validated = True
        note = handle.cache.listing_denied
        self._write(store.kind, ns, store.name, store.status, True, "Valid",
                    "store is usable" + (f"; listing is denied ({note}), so keys in use are read directly and "
                                         "dataFrom.find cannot work" if note else ""), caps, gen)
        interval = store.spec.refresh_interval
        if interval:
            handle.validated = False
            return Outcome(requeue_after=interval)
        return Outcome()

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._written.pop((kind, namespace, name), None)

    def forget_all(self) -> None:
        """Leadership lost: what we wrote may since have been overwritten by another replica."""
        self._written.clear()

    def object_conditions(self) -> list[ObjectCondition]:
        """Every condition of every store as last written (for ESO's condition gauges)."""
        return [ObjectCondition(kind, ns, name, c.type, c.status)
                for (kind, ns, name), st in list(self._written.items()) for c in st.conditions]

    def ready(self, kind: str, namespace: str, name: str) -> bool | None:
        st = self._written.get((kind, namespace, name))
        cond = get_condition(st.conditions, "Ready") if st else None
        return None if cond is None else cond.status == "True"

    def _write(self, kind: str, namespace: str, name: str, current: SecretStoreStatus | None, ready: bool,
               reason: str, message: str, caps: StoreCapabilities | None, generation: int | None) -> None:
        key = (kind, namespace, name)
        old = self._written.get(key) or current or SecretStoreStatus()
        cond = Condition("Ready", "True" if ready else "False", reason, message[:2048], now_rfc3339(), generation)
        new = SecretStoreStatus(set_condition(old.conditions, cond), caps)
        prev = get_condition(old.conditions, "Ready")
        if (key in self._written and prev is not None and (prev.status, prev.reason, prev.message) ==
                (cond.status, cond.reason, cond.message) and old.capabilities == caps):
            return
        try:
            self.api.patch(self.resources[kind], name, {"status": new.to_dict()}, namespace or None,
                           subresource="status")
            self._written[key] = new
        except KubeError as exc:
            if not exc.not_found:
                log.warning("%s %s/%s: status update failed: %s", kind, namespace, name, exc)
