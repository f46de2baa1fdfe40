# long-file: one ExternalSecret's sync end to end (stores, cache, render, write, status), each failure named
"""Reconcile one ExternalSecret: read through the store's cache, render, write, report.

The safety rules live here, in one function each:

* Only a definite NotFound (``is_definitely_absent``) reaches the deletion policy; every
  other provider error leaves the Secret exactly as it is, sets Ready=False with the
  reason, emits a Warning event, and retries with per-key backoff.
* An unhealthy store (circuit open) is not called at all; its ExternalSecrets say so.
* Status, events and logs carry reasons, key names and versions, never values.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from secretsync.api.fields import shared
from secretsync.api.models import (
    API_VERSION,
    KIND_EXTERNAL_SECRET,
    KIND_SECRET_STORE,
    Condition,
    ExternalSecret,
    ExternalSecretStatus,
    RewriteError,
    SecretBinding,
    SecretStore,
    SourceRef,
    StoreRef,
    apply_decoding,
    convert_key,
    get_condition,
    rewrite_map,
    set_condition,
)
from secretsync.api.template import ResourceLookup, TemplateEngine
from secretsync.core.contract import ListFilter, extract_property
from secretsync.core.errors import (
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    SecretSyncError,
    Unavailable,
    is_definitely_absent,
)
from secretsync.core.values import SecretValue
from secretsync.kube.client import CONFIGMAPS, SECRETS, KubeApi, KubeError, Resource

from .events import EventRecorder, ObjectRef
from .metrics import Metrics, ObjectCondition
from .providercache import Entry
from .secretwriter import Desired, SecretWriter, TargetRefused
from .settings import ControllerSettings
from .stores import PROBE, WAIT, StoreHandle, StoreManager
from .workqueue import jittered

log = logging.getLogger(__name__)

_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def now_rfc3339() -> str:
    """Now, to the second; one shared string per second (every status written in it holds it)."""
    return shared(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the runtime does with the key next."""

    #: Run again after this many seconds (a refresh schedule); None: only on events.
    requeue_after: float | None = None
    #: Failed: retry with the key's backoff (at least ``at_least`` seconds).
    retry: bool = False
    at_least: float = 0.0


@dataclass
class Collected:
    values: dict[str, SecretValue] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    errors: list[SecretSyncError] = field(default_factory=list)
    expected: int = 0
    #: id(error) -> the field and store it came from, for errors of an item's own
    #: ``sourceRef.storeRef`` (a provider's text never says which store answered).
    origin: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusMemo:
    """The status we last wrote for an ExternalSecret (the informer's copy lags behind)."""

    status: ExternalSecretStatus
    written_at: float


class ExternalSecretReconciler:
    def __init__(
        self,
        api: KubeApi,
        settings: ControllerSettings,
        stores: StoreManager,
        writer: SecretWriter,
        events: EventRecorder,
        metrics: Metrics,
        engine: TemplateEngine,
        *,
        find_store: Callable[[ExternalSecret], SecretStore | str | None],
        namespace_labels: Callable[[str], Mapping[str, str] | None],
        on_store_health: Callable[[StoreHandle], None],
        es_resource: Resource,
        find_store_ref: Callable[[StoreRef, str], SecretStore | str | None] | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.stores = stores
        self.writer = writer
        self.events = events
        self.metrics = metrics
        self.engine = engine
        self.find_store = find_store
        self.namespace_labels = namespace_labels
        self.on_store_health = on_store_health
        self.es_resource = es_resource
        #: Resolves an item's ``sourceRef.storeRef`` (per-item stores); None: no per-item stores.
        self.find_store_ref = find_store_ref
        self.memo: dict[tuple[str, str], StatusMemo] = {}
        #: Told (store id, remote keys) after a Secret was written with new data: the event
        #: routing closes its notice-to-Secret latency there (controller/eventrouting.py).
        self.on_written: Callable[[tuple[str, str, str], frozenset[str]], None] | None = None

    # -- entry points ----------------------------------------------------------------------
    def reconcile(self, es: ExternalSecret, *, fresh: bool = False) -> Outcome:
        """Sync ``es``. ``fresh``: the user asked (force-sync) or this is a retry: read the
        provider for this ExternalSecret's keys instead of trusting the store's cache."""
        t0 = time.perf_counter()
        try:
            return self._sync(es, fresh)
        finally:
            elapsed = time.perf_counter() - t0
            self.metrics.sync_duration.labels(KIND_EXTERNAL_SECRET).observe(elapsed)
            self.metrics.eso.reconciled(es.namespace, es.name, elapsed)

    def invalid(self, namespace: str, name: str, uid: str | None, generation: int | None, message: str,
                status: ExternalSecretStatus | None) -> Outcome:
        """A spec that does not parse: say so in status (the parse error names every field)."""
        ref = ObjectRef(API_VERSION, KIND_EXTERNAL_SECRET, namespace, name, uid)
        self._write_status(namespace, name, status, ready=False, reason="InvalidSpec", message=message,
                           generation=generation)
        self.events.emit(ref, "Warning", "InvalidSpec", message)
        self.metrics.reconcile_errors.labels(KIND_EXTERNAL_SECRET, "InvalidSpec").inc()
        self.metrics.eso.reconciled(namespace, name, 0.0)
        self.metrics.eso.failed(namespace, name)
        return Outcome()

    def forget(self, namespace: str, name: str) -> None:
        self.memo.pop((namespace, name), None)
        self.metrics.eso.forget(namespace, name)

    def conditions(self) -> list[tuple[str, str]]:
        """(status, reason) of every ExternalSecret's Ready condition, for the metrics gauge."""
        out = []
        for memo in list(self.memo.values()):
            cond = get_condition(memo.status.conditions, "Ready")
            if cond is not None:
                out.append((cond.status, cond.reason or ""))
        return out

    def object_conditions(self) -> list[ObjectCondition]:
        """Every condition of every ExternalSecret as last written (for ESO's condition gauge)."""
        return [ObjectCondition(KIND_EXTERNAL_SECRET, ns, name, c.type, c.status)
                for (ns, name), memo in list(self.memo.items()) for c in memo.status.conditions]

    # -- the sync --------------------------------------------------------------------------
    def _refresh_interval(self, es: ExternalSecret) -> float | None:
        interval = es.spec.refresh_interval
        return max(self.settings.refresh.floor, interval) if interval > 0 else None

    def _up_to_date(self, es: ExternalSecret) -> bool:
        """refreshPolicy / ``refreshInterval: 0`` (ESO's meaning): nothing to read when this spec
        generation was synced already (CreatedOnce: when anything was ever synced) and the
        Secret is still there as written. A failed sync is never up to date (it is retried)."""
        policy = es.spec.refresh_policy
        if policy == "Periodic" and es.spec.refresh_interval > 0:
            return False
        return self._synced(es, any_generation=policy == "CreatedOnce")

    def _synced(self, es: ExternalSecret, *, any_generation: bool = False) -> bool:
        """This spec generation (any, with ``any_generation``) was synced, Ready, and the Secret
        is still there as written: what is left to do is a refresh, not a sync."""
        memo = self.memo.get((es.namespace, es.name))
        status = memo.status if memo is not None else es.status
        if status is None or status.synced_resource_version is None or _ready(status) != "True":
            return False
        if not any_generation and status.synced_resource_version != str(es.meta.generation):
            return False
        if status.binding is not None and status.binding.name != es.target_name:
            return False
        return self.writer.in_sync(es)

    def _sync(self, es: ExternalSecret, fresh: bool = False) -> Outcome:
        refresh = self._refresh_interval(es)
        if es.spec.refresh_policy != "Periodic":
            refresh = None
        if not fresh and self._up_to_date(es):
            return Outcome()
        windows = es.spec.sync_windows
        if windows is not None and not fresh and es.spec.refresh_policy == "Periodic" and self._synced(es):
            # Only a refresh waits for its window: a first sync, a spec change, a force-sync,
            # a retry or a drift repair (the Secret is no longer as written) runs now.
            wait = windows.wait_seconds(datetime.now(UTC))
            if wait is not None:
                return Outcome(requeue_after=wait)
        if es.spec.secret_store_ref is None:
            # Every item names its own store (sourceRef.storeRef): no store of the whole object.
            # One that names none is accepted at admission (as ESO's CRD does) and fails here.
            storeless = es.spec.storeless_items()
            if storeless:
                return self._fail(es, "StoreNotSet", f"{storeless[0]} names no store: set spec.secretStoreRef "
                                                     "or the item's sourceRef.storeRef")
            got = Collected()
            self._collect_data_from(es, None, got, _no_main_store, fresh)
            self._collect_data(es, None, got, _no_main_store)
            return self._after_collect(es, got, refresh)
        store = self.find_store(es)
        kind, sname = es.spec.secret_store_ref.kind, es.spec.secret_store_ref.name
        if store is None:
            return self._fail(es, "StoreNotFound", f"{kind} {sname!r} not found", retry=True)
        if isinstance(store, str):
            return self._fail(es, "StoreInvalid", f"{kind} {sname!r} is invalid: {store}", retry=True)
        if not store.served_by(self.settings.controller_class):
            return Outcome()  # the store's controller class is another controller's: not ours to touch
        if not store.namespace_allowed(es.namespace, self.namespace_labels(es.namespace) or {}):
            return self._fail(es, "StoreNotAllowed",
                              f"{store.ref} does not allow namespace {es.namespace!r} (spec.conditions)",
                              requeue_after=refresh)
        bad = _key_refusals(store, [k for item in _keys_read(es) if item[0] is None for k in item[1]])
        if bad:
            return self._fail(es, "KeyNotAllowed", f"{store.ref}: " + "; ".join(bad[:3])
                              + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""),
                              requeue_after=refresh)
        try:
            handle = self.stores.handle(store, es.namespace)
        except ProviderError as exc:
            return self._fail(es, exc.reason, f"{store.ref}: {exc}", retry=True, at_least=exc.delay or 0.0)
        breaker = handle.breaker
        admitted = breaker.admit()
        if admitted not in ("closed", PROBE):
            # Stable text (no counts, no countdown) so the Warning event de-duplicates: about
            # one per ExternalSecret per outage. While another ExternalSecret's probe is in
            # flight this one waits for its outcome (the runtime re-queues the store's
            # ExternalSecrets when the probe closes or re-opens the circuit).
            last = breaker.last_error
            return self._fail(
                es, "StoreUnavailable",
                f"{store.ref} is paused after repeated store-wide failures"
                + (f" (last: {last})" if last else "") + "; it is retried automatically",
                requeue_after=None if admitted == WAIT else breaker.retry_in())
        outcome_known = False
        try:
            try:
                called = True
                if admitted == PROBE or fresh:
                    # The half-open probe must really call the provider; a forced or retried
                    # sync must not be answered from the cache.
                    self._read_fresh(es, handle, whole_store=admitted == PROBE)
                else:
                    called = handle.cache.refresh(refresh * self.settings.refresh.cache_age
                                                  if refresh is not None else math.inf)
                got = self._collect(es, handle, fresh=fresh)
            except ProviderError as exc:
                outcome_known = True
                if breaker.failure(exc, probe=admitted == PROBE):
                    self.on_store_health(handle)
                return self._fail(es, exc.reason, f"{store.ref}: {exc}", retry=True, at_least=exc.delay or 0.0)
            outcome_known = True
            # Only an answer from the provider says it is healthy: a reconcile served from the
            # cache while another worker's cycle is failing must not reset the failure count
            # (under a throttle storm those resets kept the circuit from ever opening).
            if called and breaker.success():
                self.on_store_health(handle)
        finally:
            if admitted == PROBE and not outcome_known:
                breaker.abandon_probe()
                self.on_store_health(handle)
        if handle.cache.listing_denied and not handle.listing_noted:
            handle.listing_noted = True
            self.on_store_health(handle)  # the store's status says so, once
        # Every error of a one-store ExternalSecret is that store's: say which (a provider's own
        # text, "TLS handshake failed...", does not). Items of other stores name theirs by field.
        return self._after_collect(es, got, refresh, store.ref if len(es.spec.stores()) == 1 else None)

    def _after_collect(self, es: ExternalSecret, got: Collected, refresh: float | None,
                       store: str | None = None) -> Outcome:
        if got.errors:
            first = got.errors[0]
            text = (f"{store}: " if store else "") + "; ".join(
                f"{got.origin[id(e)]}: {e}" if id(e) in got.origin else str(e) for e in got.errors[:3]) + (
                f" (+{len(got.errors) - 3} more)" if len(got.errors) > 3 else "")
            delay = getattr(first, "delay", None) or 0.0
            reason = getattr(first, "reason", type(first).__name__)
            # Permanent errors too are retried with backoff (capped): a permission granted or
            # a key created a minute later must not wait a whole refreshInterval.
            return self._fail(es, str(reason), text, retry=True, at_least=delay)
        return self._write(es, got, refresh)

    def _read_fresh(self, es: ExternalSecret, h: StoreHandle, *, whole_store: bool) -> None:
        """Re-read from the provider now: this ExternalSecret's keys (a retry, force-sync) or,
        for the circuit breaker's probe, a whole store cycle."""
        if whole_store:
            h.cache.refresh(0.0)
            return
        keys = [d.remote_ref.key for d in es.spec.data if d.remote_ref.version is None and d.source_ref is None]
        keys += [d.extract.key for d in es.spec.data_from
                 if d.extract is not None and d.extract.version is None and d.source_ref is None]
        if keys:
            h.cache.refetch(keys)
        elif not any(d.find is not None for d in es.spec.data_from):
            h.cache.refresh(0.0)

    # -- reading values --------------------------------------------------------------------
    def _collect(self, es: ExternalSecret, h: StoreHandle, *, fresh: bool = False) -> Collected:
        """Values for every key, per key: an error of one key is that key's (and so this
        ExternalSecret's) problem, never the store's. ``dataFrom`` is applied first and
        ``data`` last, so ``data`` wins a key both write (ESO's order)."""
        got = Collected()
        latest = [d.remote_ref.key for d in es.spec.data if d.source_ref is None
                  and d.remote_ref.version is None and d.remote_ref.metadata_policy != "Fetch"]
        latest += [d.extract.key for d in es.spec.data_from if d.extract is not None and d.extract.version is None
                   and d.extract.metadata_policy != "Fetch" and d.source_ref is None]
        entries = h.cache.entries(latest) if latest else {}

        def entry_for(key: str, version: str | None) -> Entry:
            return h.cache.pinned(key, version) if version else entries[key]

        self._collect_data_from(es, h, got, entry_for, fresh)
        self._collect_data(es, h, got, entry_for)
        return got

    def _collect_data(self, es: ExternalSecret, main: StoreHandle | None, got: Collected,
                      main_entry: Callable[[str, str | None], Entry]) -> None:
        for i, item in enumerate(es.spec.data):
            ref = item.remote_ref
            got.expected += 1
            src = self._source(es, item.source_ref, main, main_entry, f"data[{i}]", _item_keys(es, "data", i), got)
            if src is None:
                continue
            h, entry_for = src
            if ref.metadata_policy == "Fetch":
                tags = self._tags(h, ref.key, f"data[{i}].remoteRef", got)
                if tags is None:
                    continue
                if ref.property is None:
                    value = SecretValue(json.dumps(dict(sorted(tags.items())), separators=(",", ":")))
                elif ref.property in tags:
                    value = SecretValue(tags[ref.property])
                else:
                    got.errors.append(InvalidConfig(f"data[{i}].remoteRef.property: the remote secret has no tag "
                                                    f"{ref.property!r} (metadataPolicy Fetch)", key=ref.key))
                    continue
                try:
                    got.values[item.secret_key] = apply_decoding(value, ref.decoding_strategy)
                except ValueError as exc:
                    got.errors.append(InvalidConfig(f"data[{item.secret_key}]: {exc}", key=ref.key))
                continue
            entry = entry_for(ref.key, ref.version)
            if entry.error is not None:
                (got.absent.append(ref.key) if is_definitely_absent(entry.error) else got.errors.append(entry.error))
                continue
            assert entry.value is not None
            try:
                value = extract_property(entry.value, ref.property, name=ref.key, provider=h.id[2])
                value = apply_decoding(value, ref.decoding_strategy)
            except NotFound as exc:
                # The secret exists but lacks the property: a config or format problem, never a
                # reason to delete anything (deletion needs the remote secret itself to be gone).
                got.errors.append(InvalidConfig(f"data[{item.secret_key}]: {exc}", key=ref.key))
                continue
            except ValueError as exc:
                got.errors.append(InvalidConfig(f"data[{item.secret_key}]: {exc}", key=ref.key))
                continue
            got.values[item.secret_key] = value
            if entry.version:
                got.versions[ref.key] = entry.version

    def _collect_data_from(self, es: ExternalSecret, main: StoreHandle | None, got: Collected,
                           main_entry: Callable[[str, str | None], Entry], fresh: bool) -> None:
        for i, dfi in enumerate(es.spec.data_from):
            got.expected += 1
            src = self._source(es, dfi.source_ref, main, main_entry, f"dataFrom[{i}]",
                               _item_keys(es, "dataFrom", i), got)
            if src is None:
                continue
            h, entry_for = src
            item_fresh = fresh or dfi.source_ref is not None
            if dfi.extract is not None and dfi.extract.metadata_policy == "Fetch":
                ex = dfi.extract
                tags = self._tags(h, ex.key, f"dataFrom[{i}].extract", got)
                if tags is not None:
                    self._put_entry(es, got, i, {t: SecretValue(v) for t, v in tags.items()},
                                    ex.conversion_strategy, ex.decoding_strategy, ex.key)
            elif dfi.extract is not None:
                ex = dfi.extract
                entry = entry_for(ex.key, ex.version)
                if entry.error is not None:
                    (got.absent.append(ex.key) if is_definitely_absent(entry.error)
                     else got.errors.append(entry.error))
                    continue
                assert entry.value is not None
                try:
                    base = entry.value.json_property(ex.property) if ex.property else entry.value
                    doc = json.loads(base.reveal())
                    if not isinstance(doc, dict):
                        raise ValueError("the secret is not a JSON object")
                except (KeyError, ValueError) as exc:
                    msg = exc.args[0] if isinstance(exc, KeyError) else "the secret is not a JSON object"
                    got.errors.append(InvalidConfig(f"dataFrom[{i}].extract: {msg}", key=ex.key))
                    continue
                if entry.version:
                    got.versions[ex.key] = entry.version
                props = {str(prop): SecretValue(raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":")))
                         for prop, raw in doc.items()}
                self._put_entry(es, got, i, props, ex.conversion_strategy, ex.decoding_strategy, ex.key)
            elif dfi.find is not None:
                fs = dfi.find
                flt = ListFilter(prefix=fs.path, name_regex=fs.name.regexp if fs.name else None, tags=dict(fs.tags),
                                 folder=h.client.capabilities.find_path_is_folder)
                try:
                    names = h.cache.find(flt, fresh=item_fresh)
                    refused = _listed_refusals(h, names)
                    if refused:
                        got.errors.append(InvalidConfig(f"spec.dataFrom[{i}].find: {refused[0]}"))
                        continue
                    if item_fresh and names:
                        # The cache keeps what a find read between cycles: a forced sync, a retry or
                        # another store's keys (see _source) are read again instead.
                        h.cache.refetch(names)
                    found = h.cache.entries(names)
                except (PermissionDenied, InvalidConfig, NotFound) as exc:
                    # This tenant may not list (or read) there: its problem, not the store's.
                    got.errors.append(exc)
                    continue
                except ProviderError as exc:
                    if dfi.source_ref is None:
                        raise  # the main store's outage: its breaker counts it
                    got.errors.append(exc)
                    continue
                if not names:
                    # Nothing matches: like a remote key that is gone, the deletionPolicy decides
                    # (Retain keeps the Secret as it is instead of emptying it).
                    got.absent.append(_describe_find(i, fs.path, fs.name.regexp if fs.name else None))
                    continue
                values: dict[str, SecretValue] = {}
                for name in names:
                    entry = found[name]
                    if entry.error is not None:
                        if not is_definitely_absent(entry.error):
                            got.errors.append(entry.error)
                        continue  # deleted between the listing and the fetch: simply not found
                    assert entry.value is not None
                    if entry.version:
                        got.versions[name] = entry.version
                    values[name] = entry.value
                self._put_entry(es, got, i, values, fs.conversion_strategy, fs.decoding_strategy,
                                _describe_find(i, fs.path, fs.name.regexp if fs.name else None), find=True)

    def _put_entry(self, es: ExternalSecret, got: Collected, i: int, items: dict[str, SecretValue],
                   conversion: str, strategy: str, remote: str, *, find: bool = False) -> None:
        """One dataFrom entry's keys, ESO's way: its rewrites in order (a find's '/' first becomes
        '_'), or without rewrites its conversionStrategy; then each value's decodingStrategy."""
        dfi = es.spec.data_from[i]
        where = f"dataFrom[{i}]"
        if dfi.rewrite:
            if find:
                items = {k.replace("/", "_"): v for k, v in items.items()}

            def transform(template: str, key: str) -> str:
                return self.engine.render(es.ref, f"{where}.rewrite.transform", template,
                                          {"value": SecretValue(key)}).reveal_text()

            try:
                items = rewrite_map(items, dfi.rewrite, transform)
            except (RewriteError, SecretSyncError) as exc:
                got.errors.append(InvalidConfig(f"{where}: {exc}", key=remote))
                return
        else:
            items = {convert_key(k, conversion): v for k, v in items.items()}
        for key, value in items.items():
            self._put(got, where, key, value, strategy, remote)

    def _source(self, es: ExternalSecret, source: SourceRef | None, main: StoreHandle | None,
                main_entry: Callable[[str, str | None], Entry], where: str, keys: list[KeyRead],
                got: Collected) -> tuple[StoreHandle, Callable[[str, str | None], Entry]] | None:
        """The store an item reads from: spec.secretStoreRef's, or its own ``sourceRef.storeRef``,
        checked like the main store (exists, allows this namespace, allowedKeyPrefix). Why items
        of another store are read fresh at every sync: only spec.secretStoreRef's keys are in the
        store caches' change detection (controller/runtime.py indexes one store per object), and a
        cached entry nobody refreshes would go stale. A failure is this item's (and so this
        ExternalSecret's), never the main store's breaker's."""
        if source is None:
            assert main is not None  # without spec.secretStoreRef every item has a sourceRef (parse check)
            return main, main_entry
        ref = source.store_ref
        assert ref is not None  # SourceRef validation
        problem: str | None = None
        store = self.find_store_ref(ref, es.namespace) if self.find_store_ref is not None else None
        if store is None:
            problem = f"{where}.sourceRef.storeRef: {ref.kind} {ref.name!r} not found"
        elif isinstance(store, str):
            problem = f"{where}.sourceRef.storeRef: {ref.kind} {ref.name!r} is invalid: {store}"
        elif not store.served_by(self.settings.controller_class):
            problem = (f"{where}.sourceRef.storeRef: {store.ref} belongs to controller class "
                       f"{store.spec.controller!r}")
        elif not store.namespace_allowed(es.namespace, self.namespace_labels(es.namespace) or {}):
            problem = (f"{where}.sourceRef.storeRef: {store.ref} does not allow namespace {es.namespace!r} "
                       "(spec.conditions)")
        elif refused := _key_refusals(store, keys):
            problem = f"{where}.sourceRef.storeRef: {store.ref}: {refused[0]}"
        if problem is not None or not isinstance(store, SecretStore):
            got.errors.append(InvalidConfig(problem or f"{where}: store unavailable"))
            return None
        try:
            h = self.stores.handle(store, es.namespace)
        except ProviderError as exc:
            got.errors.append(exc)
            return None
        if not h.breaker.allow():
            got.errors.append(Unavailable(f"{where}.sourceRef.storeRef: {store.ref} is paused after repeated "
                                          "store-wide failures; it is retried automatically"))
            return None

        def entry_for(key: str, version: str | None) -> Entry:
            try:
                if version:
                    entry = h.cache.pinned(key, version)
                else:
                    h.cache.refetch([key])
                    entry = h.cache.entries([key])[key]
            except ProviderError as exc:
                entry = Entry(None, None, exc, None)
            if entry.error is not None:
                got.origin[id(entry.error)] = f"{where}.sourceRef.storeRef {store.ref}"
            return entry

        return h, entry_for

    @staticmethod
    def _tags(h: StoreHandle, key: str, where: str, got: Collected) -> Mapping[str, str] | None:
        """metadataPolicy Fetch: the remote secret's tags (AWS tags, GCP labels, Azure tags, Vault
        custom_metadata), never its value. None when they could not be read (the reason is in ``got``)."""
        if not h.client.capabilities.tags:
            got.errors.append(InvalidConfig(f"{where}.metadataPolicy: Fetch is not supported by this store "
                                            f"({h.id[2]}: its secrets carry no metadata)", key=key))
            return None
        try:
            return h.client.describe(key).tags
        except ProviderError as exc:
            (got.absent.append(key) if is_definitely_absent(exc) else got.errors.append(exc))
            return None

    @staticmethod
    def _put(got: Collected, where: str, key: str, value: SecretValue, strategy: str, remote: str) -> None:
        if not _SECRET_KEY.match(key):
            got.errors.append(InvalidConfig(f"{where}: {key!r} is not a valid Secret key (use rewrite)", key=remote))
            return
        try:
            got.values[key] = apply_decoding(value, strategy)
        except ValueError as exc:
            got.errors.append(InvalidConfig(f"{where}: {exc}", key=remote))

    # -- writing ---------------------------------------------------------------------------
    def _write(self, es: ExternalSecret, got: Collected, refresh: float | None) -> Outcome:
        target = es.spec.target
        policy = target.deletion_policy
        where = f"Secret {es.namespace}/{es.target_name}"
        gone = ", ".join(repr(k) for k in got.absent[:5]) + (" ..." if len(got.absent) > 5 else "")
        if got.absent and policy == "Retain":
            # Without a refresh schedule (OnChange, CreatedOnce, 0) a missing key is retried
            # with backoff: it may simply not have been created yet.
            return self._fail(es, "RemoteSecretNotFound",
                              f"remote secret(s) {gone} not found; deletionPolicy Retain keeps {where} as it is",
                              requeue_after=refresh, retry=refresh is None, versions=got.versions)
        if got.absent and not got.values and policy == "Delete":
            try:
                res = self.writer.delete(es)
            except TargetRefused as exc:
                return self._fail(es, exc.reason, exc.message, requeue_after=refresh)
            except KubeError as exc:
                return self._fail(es, "KubernetesError", str(exc), retry=True)
            if res.outcome == "deleted":
                self.metrics.secrets_written.labels("delete").inc()
                self.events.emit(self._ref(es), "Normal", "Deleted",
                                 f"{where} deleted: remote secret(s) {gone} gone (deletionPolicy Delete)")
            self._write_status(es.namespace, es.name, es.status, ready=False, reason="RemoteSecretDeleted",
                               message=f"remote secret(s) {gone} not found; {where} deleted (deletionPolicy Delete)",
                               generation=es.meta.generation, versions={}, refreshed=True)
            return Outcome(requeue_after=self._next(refresh))
        try:
            desired = self._render(es, got.values)
        except SecretSyncError as exc:
            if exc.retryable:
                return self._fail(es, getattr(exc, "reason", "Error"), str(exc), retry=True)
            return self._fail(es, getattr(exc, "reason", "TemplateError"), str(exc), requeue_after=refresh)
        prior = self.memo.get((es.namespace, es.name))
        prior_status = prior.status if prior is not None else es.status
        was_synced = (prior_status is not None and prior_status.binding is not None
                      and prior_status.binding.name == es.target_name and _ready(prior_status) == "True")
        try:
            res = self.writer.apply(es, desired)
        except TargetRefused as exc:
            return self._fail(es, exc.reason, exc.message, retry=True)
        except KubeError as exc:
            return self._fail(es, "KubernetesError", str(exc), retry=True,
                              at_least=0.2 if exc.conflict else 0.0)
        old_name = prior_status.binding.name if prior_status is not None and prior_status.binding else None
        if old_name and old_name != es.target_name and res.outcome != "skipped":
            # target.name changed: the Secret under the old name is ours to delete (Owner) or
            # release (Orphan, Merge), never to leave behind still managed.
            try:
                gone_res = self.writer.retire(es, old_name)
            except KubeError as exc:
                return self._fail(es, "KubernetesError", f"Secret {es.namespace}/{old_name} (the previous "
                                                         f"target): {exc}", retry=True)
            if gone_res.outcome in ("deleted", "released"):
                self.events.emit(self._ref(es), "Normal", gone_res.outcome.capitalize(),
                                 f"Secret {es.namespace}/{old_name} {gone_res.outcome}: target.name is now "
                                 f"{es.target_name!r}")
        drift = res.drift or (res.outcome == "created" and was_synced)
        if res.outcome in ("created", "updated"):
            self.metrics.secrets_written.labels("create" if res.outcome == "created" else "update").inc()
            ref = es.spec.secret_store_ref
            if self.on_written is not None and ref is not None:
                self.on_written((ref.kind, es.namespace if ref.kind == KIND_SECRET_STORE else "", ref.name),
                                frozenset(es.spec.remote_keys()))
            if drift:
                self.metrics.drift_repaired.inc()
                self.events.emit(self._ref(es), "Normal", "DriftRepaired",
                                 f"{where} {'recreated' if res.outcome == 'created' else 'restored'} "
                                 "after a change outside the controller")
            else:
                self.events.emit(self._ref(es), "Normal", res.outcome.capitalize(),
                                 f"{where} {res.outcome} with {len(desired.data)} key(s)")
        note = ""
        if got.absent:
            note = f"; remote secret(s) {gone} gone, their keys dropped (deletionPolicy {policy})"
        msg = (f"{where} synced" + (f" at resourceVersion {res.resource_version}" if res.resource_version else "")
               + note) if res.outcome != "skipped" else "values fetched; creationPolicy None writes no Secret"
        self._write_status(es.namespace, es.name, es.status, ready=True, reason="SecretSynced", message=msg,
                           generation=es.meta.generation, versions=got.versions,
                           binding=es.target_name if res.outcome != "skipped" else None,
                           binding_rv=res.resource_version, refreshed=True)
        return Outcome(requeue_after=self._next(refresh))

    def _render(self, es: ExternalSecret, values: dict[str, SecretValue]) -> Desired:
        tmpl = es.spec.target.template
        lookup = self.lookup(es.namespace)
        data = self.engine.render_target(es, values, lookup)
        labels, annotations = self.engine.render_metadata(es, values, lookup)
        return Desired(dict(data), (tmpl.type if tmpl is not None and tmpl.type else "Opaque"),
                       labels, annotations)

    def lookup(self, namespace: str) -> ResourceLookup:
        """Template lookups (templateFrom, configMapKey, secretKey) in ``namespace`` only; PushSecret
        templates use it too."""
        def lookup(kind: str, name: str, key: str) -> str | SecretValue:
            res = CONFIGMAPS if kind == "ConfigMap" else SECRETS
            try:
                obj = self.api.get(res, name, namespace)
            except KubeError as exc:
                if exc.not_found:
                    raise NotFound(f"{kind} {namespace}/{name} not found", operation="template", key=key) from None
                raise Unavailable(f"cannot read {kind} {namespace}/{name}: {exc.status} {exc.reason}",
                                  operation="template") from None
            if kind == "ConfigMap":
                text = (obj.get("data") or {}).get(key)
                if text is None:
                    raise NotFound(f"ConfigMap {namespace}/{name} has no key", operation="template", key=key)
                return str(text)
            raw = (obj.get("data") or {}).get(key)
            if raw is None:
                raise NotFound(f"Secret {namespace}/{name} has no key", operation="template", key=key)
            return SecretValue.from_b64(raw)

        return lookup

    # -- status, events --------------------------------------------------------------------
    def _next(self, refresh: float | None) -> float | None:
        return jittered(refresh, self.settings.refresh.jitter) if refresh is not None else None

    @staticmethod
    def _ref(es: ExternalSecret) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND_EXTERNAL_SECRET, es.namespace, es.name, es.meta.uid)

    def _fail(self, es: ExternalSecret, reason: str, message: str, *, retry: bool = False, at_least: float = 0.0,
              requeue_after: float | None = None, versions: Mapping[str, str] | None = None) -> Outcome:
        """Ready=False with the reason; the Secret is left as it is."""
        log.info("ExternalSecret %s/%s not ready: %s: %s", es.namespace, es.name, reason, message)
        self.metrics.reconcile_errors.labels(KIND_EXTERNAL_SECRET, reason).inc()
        self.metrics.eso.failed(es.namespace, es.name)
        self.events.emit(self._ref(es), "Warning", reason, message)
        self._write_status(es.namespace, es.name, es.status, ready=False, reason=reason, message=message,
                           generation=es.meta.generation, versions=versions)
        if retry:
            return Outcome(retry=True, at_least=at_least)
        return Outcome(requeue_after=self._next(requeue_after) if requeue_after is not None else None)

    def _write_status(self, namespace: str, name: str, current: ExternalSecretStatus | None, *, ready: bool,
                      reason: str, message: str, generation: int | None,
                      versions: Mapping[str, str] | None = None, binding: str | None = None,
                      binding_rv: str | None = None, refreshed: bool = False) -> None:
        memo = self.memo.get((namespace, name))
        old = memo.status if memo is not None else (current or ExternalSecretStatus())
        now = now_rfc3339()
        cond = Condition("Ready", "True" if ready else "False", reason, message[:2048], now, generation)
        new = ExternalSecretStatus(
            conditions=set_condition(old.conditions, cond),
            refresh_time=now if refreshed else old.refresh_time,
            synced_resource_version=str(generation) if ready and generation is not None
            else old.synced_resource_version,
            binding=SecretBinding(binding, binding_rv or None) if binding else old.binding,
            synced_versions=dict(versions) if versions is not None else dict(old.synced_versions),
        )
        if memo is not None and _same_status(old, new):
            return
        if (memo is not None and _same_status(old, replace(new, refresh_time=old.refresh_time))
                and time.monotonic() - memo.written_at < self.settings.refresh.status_heartbeat):
            return  # only refreshTime moved: written at most once per heartbeat
        try:
            self.api.patch(self.es_resource, name, {"status": new.to_dict()}, namespace, subresource="status")
        except KubeError as exc:
            if exc.not_found:
                return
            log.warning("ExternalSecret %s/%s: status update failed: %s", namespace, name, exc)
            return
        self.memo[(namespace, name)] = StatusMemo(new, time.monotonic())


#: One remote key an ExternalSecret reads: its field (``spec.data[0].remoteRef.key``), the key
#: (None: a find without path, the whole store) and whether it is a ``find.path`` (a prefix).
KeyRead = tuple[str, str | None, bool]


def _item_keys(es: ExternalSecret, section: str, i: int) -> list[KeyRead]:
    """The remote keys of ``spec.<section>[i]`` (none for a generator)."""
    if section == "data":
        return [(f"spec.data[{i}].remoteRef.key", es.spec.data[i].remote_ref.key, False)]
    dfi = es.spec.data_from[i]
    if dfi.extract is not None:
        return [(f"spec.dataFrom[{i}].extract.key", dfi.extract.key, False)]
    if dfi.find is not None:
        return [(f"spec.dataFrom[{i}].find.path", dfi.find.path, True)]
    return []


def _keys_read(es: ExternalSecret) -> list[tuple[SourceRef | None, list[KeyRead]]]:
    """Every item's own store (None: spec.secretStoreRef's) and the keys it reads there."""
    return ([(d.source_ref, _item_keys(es, "data", i)) for i, d in enumerate(es.spec.data)]
            + [(d.source_ref, _item_keys(es, "dataFrom", i)) for i, d in enumerate(es.spec.data_from)])


def _key_refusals(store: SecretStore, keys: list[KeyRead]) -> list[str]:
    """What the store's ``allowedKeyPrefix`` refuses of ``keys``, each naming its field."""
    out: list[str] = []
    for where, key, listing in keys:
        why = store.key_refusal(key, listing=listing)
        if why is not None:
            out.append(f"{where}: {why}")
    return out


def _listed_refusals(h: StoreHandle, names: list[str]) -> list[str]:
    """Listed names the store's ``allowedKeyPrefix`` refuses: a listed name is read like a key,
    and one the provider would read elsewhere (Vault reads ``MOUNT/x`` as ``x``) is outside the
    prefix however it was listed. Why an error and not a filter: the find's result would shrink
    without a word, and an emptied result would read as absence (deletionPolicy Delete)."""
    store = h.store
    if store is None or not store.spec.allowed_key_prefix:
        return []
    return [why for n in names if (why := store.key_refusal(n)) is not None]


def _no_main_store(key: str, version: str | None) -> Entry:
    raise AssertionError("every item has its own sourceRef.storeRef")  # pragma: no cover


def _describe_find(i: int, path: str | None, regexp: str | None) -> str:
    parts = ([f"path {path!r}"] if path else []) + ([f"name ~ {regexp!r}"] if regexp else [])
    return f"dataFrom[{i}].find ({', '.join(parts) or 'tags'}) matched nothing"


def _ready(status: ExternalSecretStatus) -> str | None:
    cond = get_condition(status.conditions, "Ready")
    return cond.status if cond is not None else None


def _same_status(a: ExternalSecretStatus, b: ExternalSecretStatus) -> bool:
    """Equal but for timestamps: then there is nothing worth a write."""
    def strip(s: ExternalSecretStatus) -> Any:
        return ([(c.type, c.status, c.reason, c.message, c.observed_generation) for c in s.conditions],
                s.synced_resource_version, s.binding, dict(s.synced_versions))
    return bool(strip(a) == strip(b)) and (a.refresh_time == b.refresh_time or b.refresh_time is None)
