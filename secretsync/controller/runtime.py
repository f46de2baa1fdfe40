# long-file: the wiring of every reconciler, informer and loop in one place (each part is its own module)
"""The controller runtime: informers -> work queue -> workers, behind a leader Lease.

Level-triggered: every watch event only queues a key; a worker reads the current state
from the informers and makes the world match it. What each informer watches (and so what
the controller holds in memory):

* ExternalSecrets, SecretStores, ClusterSecretStores, ClusterExternalSecrets: parsed once
  into frozen models (see :mod:`secretsync.api.models`);
* Secrets **with the managed-by label only** (label selector on the watch): name, owner,
  resourceVersion and "data matches its hash"; their data is hashed and dropped on arrival;
* Namespaces (labels), filtered by ``--namespace-selector`` on the server side.

Secrets the controller does not manage are never listed or watched. Standby replicas
keep their informers warm and take over within a lease duration; only the leader writes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from secretsync.api.fields import shared
from secretsync.api.models import (
    API_VERSION,
    KIND_CLUSTER_EXTERNAL_SECRET,
    KIND_CLUSTER_SECRET_STORE,
    KIND_EXTERNAL_SECRET,
    KIND_SECRET_STORE,
    ClusterExternalSecret,
    ExternalSecret,
    ExternalSecretStatus,
    InvalidSpec,
    RolloutPolicy,
    SecretStore,
    StoreRef,
    parse_cluster_external_secret,
    parse_external_secret,
    parse_secret_store,
)
from secretsync.api.template import TemplateEngine, default_engine
from secretsync.core.calls import CallRecorder
from secretsync.kube.client import NAMESPACES, SECRETS, KubeApi
from secretsync.kube.crds import CLUSTER_EXTERNAL_SECRETS, CLUSTER_SECRET_STORES, EXTERNAL_SECRETS, SECRET_STORES
from secretsync.kube.labels import CES_LABEL, FORCE_SYNC_ANNOTATION, MANAGED_LABEL, MANAGED_VALUE

from .clusterexternal import ClusterExternalSecretReconciler, ExistingES
from .eventrouting import EventRouting
from .events import EventRecorder, ObjectRef
from .hashing import load_or_create_key
from .informer import Informer, Key, key_of
from .leader import LeaderElector, default_identity
from .metrics import HealthServer, Metrics
from .providercache import Usage
from .pushsecret import PushManager
from .reconciler import ExternalSecretReconciler, Outcome
from .rollout import RolloutManager
from .rotation import RotationManager
from .secretwriter import ManagedSecret, SecretWriter, managed_secret_transform
from .settings import ControllerSettings
from .stores import StoreHandle, StoreId, StoreManager
from .storestatus import StoreStatusReconciler
from .workqueue import Backoff, WorkQueue

log = logging.getLogger(__name__)

ES_RES = EXTERNAL_SECRETS
SS_RES = SECRET_STORES
CSS_RES = CLUSTER_SECRET_STORES
CES_RES = CLUSTER_EXTERNAL_SECRETS

#: Work-queue keys: (kind, namespace or "", name).
QKey = tuple[str, str, str]
#: Drift repairs in a row that run at once before a write loop is assumed and damped.
LOOP_REPAIRS = 3
#: Seconds without a drift repair after which the count starts again.
LOOP_QUIET = 300.0


# --------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class ESRecord:
    namespace: str
    name: str
    uid: str | None
    generation: int | None
    es: ExternalSecret | None
    error: str | None
    force: str | None
    ces: str | None
    status: ExternalSecretStatus | None


def _meta(obj: Mapping[str, Any]) -> tuple[str, str, str | None, int | None, Mapping[str, str], Mapping[str, str]]:
    md = obj.get("metadata") or {}
    gen = md.get("generation")
    # The parsed object's shared strings: a record must not keep its own copy of the name.
    return (shared(str(md.get("namespace") or "")), shared(str(md.get("name") or "")), md.get("uid"),
            gen if isinstance(gen, int) else None, md.get("labels") or {}, md.get("annotations") or {})


def es_record(obj: dict[str, Any], prior: ESRecord | None = None,
              written: ExternalSecretStatus | None = None) -> ESRecord:
    """The informer's record of an ExternalSecret.

    ``prior``: the record this event replaces; its parsed spec is reused when the API server
    says the spec is unchanged (a status write's echo). ``written``: the status the controller
    last wrote; a parsed status equal to it is replaced by it, so the two stay one copy.
    """
    ns, name, uid, gen, labels, ann = _meta(obj)
    try:
        es = parse_external_secret(obj, prior=prior.es if prior is not None else None)
        if written is not None and es.status is not None and es.status is not written and es.status == written:
            es = replace(es, status=written)
        return ESRecord(ns, name, uid, gen, es, None, ann.get(FORCE_SYNC_ANNOTATION), labels.get(CES_LABEL),
                        es.status)
    except InvalidSpec as exc:
        return ESRecord(ns, name, uid, gen, None, str(exc), ann.get(FORCE_SYNC_ANNOTATION), labels.get(CES_LABEL),
                        None)


@dataclass(frozen=True, slots=True)
class StoreRecord:
    kind: str
    namespace: str
    name: str
    generation: int | None
    store: SecretStore | None
    error: str | None


def store_record(obj: dict[str, Any]) -> StoreRecord:
    ns, name, _uid, gen, _l, _a = _meta(obj)
    kind = str(obj.get("kind") or "")
    try:
        st = parse_secret_store(obj)
        return StoreRecord(st.kind, ns, name, gen, st, None)
    except InvalidSpec as exc:
        return StoreRecord(kind, ns, name, gen, None, str(exc))


@dataclass(frozen=True, slots=True)
class CESRecord:
    name: str
    uid: str | None
    generation: int | None
    ces: ClusterExternalSecret | None
    error: str | None


def ces_record(obj: dict[str, Any]) -> CESRecord:
    _ns, name, uid, gen, _l, _a = _meta(obj)
    try:
        return CESRecord(name, uid, gen, parse_cluster_external_secret(obj), None)
    except InvalidSpec as exc:
        return CESRecord(name, uid, gen, None, str(exc))


@dataclass(frozen=True, slots=True)
class NamespaceRecord:
    name: str
    labels: Mapping[str, str]
    terminating: bool


def namespace_record(obj: dict[str, Any]) -> NamespaceRecord:
    _ns, name, _uid, _gen, labels, _a = _meta(obj)
    phase = (obj.get("status") or {}).get("phase")
    deleting = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    return NamespaceRecord(name, dict(labels), phase == "Terminating" or deleting)


def shard_of(namespace: str, shards: int) -> int:
    """Stable shard of a namespace (the same in every replica and every release)."""
    if shards <= 1:
        return 0
    return int.from_bytes(hashlib.sha256(namespace.encode()).digest()[:8], "big") % shards


# --------------------------------------------------------------------------- controller
class Controller:
    """Build with a :class:`KubeApi` and settings; ``start()`` (threads) or ``run()`` (blocks)."""

    def __init__(self, api: KubeApi, settings: ControllerSettings | None = None, *,
                 calls: CallRecorder | None = None, engine: TemplateEngine | None = None) -> None:
        self.api = api
        self.settings = settings or ControllerSettings()
        s = self.settings
        self.calls = calls or CallRecorder()
        self.metrics = Metrics(object_labels=self.settings.metrics.object_labels)
        self.identity = s.leader.identity or default_identity()
        self.queue: WorkQueue[QKey] = WorkQueue(Backoff(s.queue.backoff_base, s.queue.backoff_max, s.queue.jitter))
        self.metrics.queue_depth.set_function(lambda: len(self.queue))
        self.metrics.queue_waiting.set_function(lambda: self.queue.waiting())
        self.events = EventRecorder(api, instance=self.identity, yield_to=lambda: len(self.queue) > 0,
                                    on_drop=self.metrics.events_dropped.inc)
        self.engine = engine or default_engine()
        self.leading = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.RLock()
        self._started = False
        self.hash_key = b""
        # Indexes, all guarded by _lock.
        self._es_store: dict[Key, StoreId] = {}
        #: (its remote keys, its find paths). Tuples, not sets: most read one or two keys, and
        #: a one-key frozenset is four times a one-key tuple (10k ExternalSecrets, issue 16).
        self._es_usage: dict[Key, tuple[tuple[str, ...], tuple[str | None, ...]]] = {}
        self._by_store: dict[StoreId, set[Key]] = {}
        #: remote key -> the ExternalSecret reading it, or a set of them when more than one does.
        self._by_remote: dict[StoreId, dict[str, Key | set[Key]]] = {}
        self._sids: dict[StoreId, StoreId] = {}  # one tuple per store id, shared by every index
        self._by_ns: dict[str, set[Key]] = {}
        self._by_ces: dict[str, set[Key]] = {}
        #: ExternalSecrets whose next reconcile must read the provider (force-sync).
        self._fresh: set[Key] = set()
        #: Deleted Merge ExternalSecrets -> the Secret whose keys they still hold.
        self._releases: dict[Key, str] = {}
        #: (namespace, ExternalSecret) -> (drift repairs in a row, when the last one was queued).
        self._drift: dict[Key, tuple[int, float]] = {}
        self._build_informers()
        self.elector: LeaderElector | None = None
        self.health: HealthServer | None = None
        self.rollout: RolloutManager | None = None
        self.rotation: RotationManager | None = None
        self.push: PushManager | None = None

    # -- wiring ----------------------------------------------------------------------------
    def _build_informers(self) -> None:
        s = self.settings
        api, w = self.api, s.watch
        scope_ns = s.scope.namespaces
        per_ns: list[str | None] = list(scope_ns) if scope_ns else [None]
        self.ns_informer: Informer[NamespaceRecord] = Informer(
            api, NAMESPACES, namespace_record, settings=w, label_selector=s.scope.namespace_selector,
            name="namespaces")
        self.es_informers: dict[str | None, Informer[ESRecord]] = {
            ns: Informer(api, ES_RES, self._es_record, settings=w, namespace=ns,
                         name=f"externalsecrets@{ns or '*'}")
            for ns in per_ns}
        self.ss_informers: dict[str | None, Informer[StoreRecord]] = {
            ns: Informer(api, SS_RES, store_record, settings=w, namespace=ns, name=f"secretstores@{ns or '*'}")
            for ns in per_ns}
        self.css_informer: Informer[StoreRecord] = Informer(api, CSS_RES, store_record, settings=w,
                                                            name="clustersecretstores")
        self.ces_informer: Informer[CESRecord] = Informer(api, CES_RES, ces_record, settings=w,
                                                          name="clusterexternalsecrets")
        # Created once the hash key is known (the transform hashes with it).
        self.secret_informers: dict[str | None, Informer[ManagedSecret]] = {}
        self._per_ns = per_ns

    def _all_informers(self) -> list[Informer[Any]]:
        return [self.ns_informer, *self.es_informers.values(), *self.ss_informers.values(), self.css_informer,
                self.ces_informer, *self.secret_informers.values()]

    def _es_record(self, obj: dict[str, Any]) -> ESRecord:
        key = key_of(obj)
        inf = self._es_informer(key[0])
        reconciler = getattr(self, "es_reconciler", None)
        memo = reconciler.memo.get(key) if reconciler is not None else None
        return es_record(obj, inf.get(key) if inf is not None else None, memo.status if memo is not None else None)

    def _es_informer(self, ns: str) -> Informer[ESRecord] | None:
        return self.es_informers.get(ns if self.settings.scope.namespaces else None)

    def _secret_cache(self, ns: str, name: str) -> ManagedSecret | None:
        inf = self.secret_informers.get(ns if self.settings.scope.namespaces else None)
        return inf.get((ns, name)) if inf is not None else None

    def _remember_secret(self, rec: ManagedSecret) -> None:
        inf = self.secret_informers.get(rec.namespace if self.settings.scope.namespaces else None)
        if inf is not None:
            inf.put_local((rec.namespace, rec.name), rec)

    # -- scope -----------------------------------------------------------------------------
    def in_scope(self, namespace: str) -> bool:
        sc = self.settings.scope
        if sc.namespaces and namespace not in sc.namespaces:
            return False
        if sc.shards > 1 and shard_of(namespace, sc.shards) != sc.shard:
            return False
        if self.ns_informer.unavailable:
            # Namespaced-only RBAC: namespaces cannot be listed; --namespaces is the scope.
            return bool(sc.namespaces)
        return self.ns_informer.get(("", namespace)) is not None

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        rec = self.ns_informer.get(("", namespace))
        if rec is None and self.ns_informer.unavailable and namespace in self.settings.scope.namespaces:
            return {}
        return rec.labels if rec is not None else None

    def _namespaces_in_scope(self) -> Iterable[tuple[str, Mapping[str, str], bool]]:
        if self.ns_informer.unavailable:
            for name in self.settings.scope.namespaces:
                if self.in_scope(name):
                    yield name, {}, False
            return
        for (_, name), rec in self.ns_informer.items():
            if self.in_scope(name):
                yield name, rec.labels, rec.terminating

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start every thread and return (use :meth:`wait_ready` to wait for the caches)."""
        if self._started:
            return
        self._started = True
        s = self.settings
        self.hash_key = load_or_create_key(self.api, s.own_namespace, s.hash_key_secret)
        transform = managed_secret_transform(self.hash_key)
        # -- rollout restarts (issue 13): digests of managed Secrets' data, per key ----------
        if s.rollout.enabled:
            self.rollout = RolloutManager(
                self.api, s.rollout, hash_key=self.hash_key, namespaces=self._per_ns, watch=s.watch,
                events=self.events, registry=self.metrics.registry, leading=self.leading, ready=self.ready,
                policy=self._rollout_policy, in_scope=self.in_scope,
                busy=self._es_busy)
            transform = self.rollout.wrap_transform(transform)
        # -- end rollout ------------------------------------------------------------------------
        selector = f"{MANAGED_LABEL}={MANAGED_VALUE}"
        self.secret_informers = {
            ns: Informer(self.api, SECRETS, transform, settings=s.watch, namespace=ns, label_selector=selector,
                         name=f"managed-secrets@{ns or '*'}") for ns in self._per_ns}
        self.stores = StoreManager(self.api, s, self.hash_key, usage=self.usage, on_changed=self._on_remote_changed,
                                   call_listeners=[self.metrics.call_listener, self.calls.record],
                                   on_cycle=lambda mode, outcome: self.metrics.store_cycles.labels(mode, outcome).inc())
        # Every write of a reconcile goes through the fence: once the lease is lost (or not
        # renewed within the renew deadline), a reconcile still in flight cannot write.
        wapi = self.api.fenced(self.may_write)
        self.writer = SecretWriter(wapi, self.hash_key, self._secret_cache, self._remember_secret)
        self.es_reconciler = ExternalSecretReconciler(
            wapi, s, self.stores, self.writer, self.events, self.metrics, self.engine,
            find_store=self._find_store, find_store_ref=self._find_store_ref, namespace_labels=self.namespace_labels,
            on_store_health=self._on_store_health, es_resource=ES_RES)
        self.routing = EventRouting(self.api, s, self.stores, self._store_by_id, self.metrics.registry, self.leading)
        self.es_reconciler.on_written = self.routing.secret_written
        self.routing.start()
        self.store_reconciler = StoreStatusReconciler(
            wapi, self.stores, {KIND_SECRET_STORE: SS_RES, KIND_CLUSTER_SECRET_STORE: CSS_RES})
        self.ces_reconciler = ClusterExternalSecretReconciler(
            wapi, self.events, es_resource=ES_RES, ces_resource=CES_RES,
            namespaces=self._namespaces_in_scope, existing=self._existing_es, owned_by=self._owned_by,
            floor=s.refresh.cluster_external_floor)
        self.metrics.watch_conditions(self.es_reconciler.conditions)
        for source in (self.es_reconciler, self.store_reconciler, self.ces_reconciler):
            self.metrics.watch_object_conditions(source.object_conditions)
        self.events.start()
        self.ns_informer.add_handler(self._on_namespace)
        for inf in self.es_informers.values():
            inf.add_handler(self._on_es)
        for ssinf in self.ss_informers.values():
            ssinf.add_handler(self._on_store)
        self.css_informer.add_handler(self._on_store)
        self.ces_informer.add_handler(self._on_ces)
        for sinf in self.secret_informers.values():
            sinf.add_handler(self._on_secret)
        # Namespaces first: scope decisions for the other informers' events need them.
        self.ns_informer.start()
        self.ns_informer.synced.wait(30)
        for inf in self._all_informers()[1:]:
            inf.start()
        if self.rollout is not None:  # rollout restarts (issue 13)
            self.rollout.start(self.secret_informers.values())
        if s.rotation.enabled:  # scheduled rotation (issue 13)
            self.rotation = RotationManager(
                self.api, namespaces=self._per_ns, watch=s.watch, events=self.events, leading=self.leading,
                find_store=self._find_store_ref, open_client=lambda st, ns: self.stores.handle(st, ns).client,
                namespace_labels=self.namespace_labels, in_scope=self.in_scope, tick=s.rotation.tick,
                retry_max=s.rotation.retry_max)
            self.rotation.start()
        if s.push.enabled:  # PushSecret / ClusterPushSecret (issue 12)
            self.push = PushManager(
                self.api, s.push, namespaces=self._per_ns, watch=s.watch, events=self.events, leading=self.leading,
                find_store=self._find_store_ref, stores_of=self._stores_of,
                open_client=lambda st, ns: self.stores.handle(st, ns).client,
                namespace_labels=self.namespace_labels, in_scope=self.in_scope,
                namespaces_in_scope=self._namespaces_in_scope, engine=self.engine,
                controller_class=s.controller_class, hash_key=self.hash_key,
                lookup=self.es_reconciler.lookup)
            self.push.start()
        if s.metrics.port is not None:
            self.health = HealthServer(s.metrics.host, s.metrics.port, self.metrics, self.healthy, self.ready)
            self.health.start()
        for i in range(s.queue.workers):
            t = threading.Thread(target=self._worker, name=f"worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if s.leader.enabled:
            self.elector = LeaderElector(self.api, s.leader, on_started=self._on_leading,
                                         on_stopped=self._on_not_leading)
            self.identity = self.elector.identity
            t = threading.Thread(target=self.elector.run, name="leader-election", daemon=True)
            t.start()
            self._threads.append(t)
        else:
            self._on_leading()

    def run(self) -> None:
        """Start and block until :meth:`stop` (or KeyboardInterrupt)."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        if self._stop.is_set() and not self._started:
            return
        self._stop.set()
        self.queue.shutdown()
        if self.elector is not None:
            self.elector.stop()
        for inf in self._all_informers():
            inf.stop()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for inf in self._all_informers():
            inf.join(max(0.0, deadline - time.monotonic()))
        if self.rollout is not None:  # rollout restarts (issue 13)
            self.rollout.stop(max(0.1, deadline - time.monotonic()))
        if self.rotation is not None:  # scheduled rotation (issue 13)
            self.rotation.stop(max(0.1, deadline - time.monotonic()))
        if self.push is not None:  # PushSecret (issue 12)
            self.push.stop(max(0.1, deadline - time.monotonic()))
        self.events.stop(max(0.1, deadline - time.monotonic()))
        if self.health is not None:
            self.health.stop()
        if hasattr(self, "routing"):
            self.routing.stop()
        if hasattr(self, "stores"):
            self.stores.close()
        self._started = False

    def wait_ready(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return True
            time.sleep(0.05)
        return False

    def ready(self) -> bool:
        return self._started and all(inf.synced.is_set() for inf in self._all_informers())

    def healthy(self) -> bool:
        if not self._started:
            return False
        return all(inf.alive() for inf in self._all_informers()) and all(t.is_alive() for t in self._threads)

    def _on_leading(self) -> None:
        self._forget_written()
        self.metrics.leader.set(1)
        self.leading.set()
        self._resync_all()

    def _on_not_leading(self) -> None:
        self.metrics.leader.set(0)
        self.leading.clear()
        # What we wrote as leader is no longer the truth once someone else may write: a
        # status memo kept over a failover would hide the new leader's writes (e.g. keep
        # showing Ready=True, or skip a needed status write, when this replica leads again).
        self._forget_written()
        if hasattr(self, "routing"):
            self.routing.leadership_lost()

    def _forget_written(self) -> None:
        if hasattr(self, "es_reconciler"):
            self.es_reconciler.memo.clear()
            self.store_reconciler.forget_all()
            self.ces_reconciler.forget_all()

    def may_write(self) -> bool:
        """Writes are allowed while this replica leads and its lease is fresh."""
        if not self.leading.is_set():
            return False
        return self.elector is None or self.elector.holds()

    def _resync_all(self) -> None:
        for inf in self.es_informers.values():
            for (ns, name), _ in inf.items():
                if self.in_scope(ns):
                    self.queue.add(("es", ns, name))
        for inf_s in self.ss_informers.values():
            for (ns, name), _ in inf_s.items():
                if self.in_scope(ns):
                    self.queue.add(("store", ns, name))
        for (_, name), _ in self.css_informer.items():
            self.queue.add(("cstore", "", name))
        for (_, name), _ in self.ces_informer.items():
            self.queue.add(("ces", "", name))

    # -- indexes ---------------------------------------------------------------------------
    def _index(self, key: Key, rec: ESRecord | None) -> None:
        """(Re)register an ExternalSecret's remote keys under its store; None removes it."""
        ns, _ = key
        with self._lock:
            if rec is not None:
                self._by_ns.setdefault(ns, set()).add(key)
            else:
                self._by_ns.get(ns, set()).discard(key)
            for ces_name, members in self._by_ces.items():
                if ces_name != (rec.ces if rec else None):
                    members.discard(key)
            if rec is not None and rec.ces:
                self._by_ces.setdefault(rec.ces, set()).add(key)
            old_sid = self._es_store.pop(key, None)
            old_usage = self._es_usage.pop(key, None)
            if old_sid is not None:
                self._by_store.get(old_sid, set()).discard(key)
                if old_usage is not None:
                    remote = self._by_remote.get(old_sid, {})
                    for k in old_usage[0]:
                        holders = remote.get(k)
                        if isinstance(holders, set):
                            holders.discard(key)
                            if len(holders) == 1:
                                remote[k] = next(iter(holders))
                        elif holders == key:
                            del remote[k]
            if rec is None or rec.es is None or not self.in_scope(ns):
                return
            es = rec.es
            ref = es.spec.secret_store_ref
            if ref is None:
                return  # every item names its own store: read fresh at each refresh (reconciler._source)
            sid: StoreId = (ref.kind, ns if ref.kind == KIND_SECRET_STORE else "", ref.name)
            sid = self._sids.setdefault(sid, sid)
            remote_keys = tuple(dict.fromkeys(es.spec.remote_keys()))
            finds = tuple(d.find.path for d in es.spec.data_from if d.find is not None)
            self._es_store[key] = sid
            self._es_usage[key] = (remote_keys, finds)
            self._by_store.setdefault(sid, set()).add(key)
            remote = self._by_remote.setdefault(sid, {})
            for rk in remote_keys:
                holders = remote.get(rk)
                if holders is None:
                    remote[rk] = key
                elif isinstance(holders, set):
                    holders.add(key)
                elif holders != key:
                    remote[rk] = {holders, key}

    def usage(self, sid: StoreId, cred_ns: str) -> Usage:
        """What the ExternalSecrets of a store need (the change-detection cycle's input)."""
        keys: set[str] = set()
        finds: list[str | None] = []
        with self._lock:
            for key in self._by_store.get(sid, ()):
                if cred_ns and key[0] != cred_ns:
                    continue
                k, f = self._es_usage.get(key, ((), ()))
                keys.update(k)
                finds.extend(f)
        return Usage(frozenset(keys), tuple(finds))

    def _on_remote_changed(self, sid: StoreId, names: set[str]) -> None:
        """A cycle saw remote keys change: queue exactly the ExternalSecrets that use them."""
        with self._lock:
            remote = self._by_remote.get(sid, {})
            hit: set[Key] = set()
            for n in names:
                holders = remote.get(n)
                if isinstance(holders, set):
                    hit |= holders
                elif holders is not None:
                    hit.add(holders)
            hit |= {k for k in self._by_store.get(sid, ()) if self._es_usage.get(k, ((), ()))[1]}
        for ns, name in hit:
            self.queue.add(("es", ns, name), urgent=True)

    def _es_busy(self, ns: str, name: str) -> bool:
        """An ExternalSecret is still at work: queued, running, or its store is settling a
        burst (a follow-up cycle may queue it again). Rollout holds restarts meanwhile."""
        if self.queue.active(("es", ns, name)):
            return True
        with self._lock:
            sid = self._es_store.get((ns, name))
        return sid is not None and any(h.cache.settling for h in self.stores.handles_of(sid))

    def _rollout_policy(self, ns: str, name: str) -> RolloutPolicy | None:
        """``spec.rollout`` of an ExternalSecret (rollout restarts, issue 13)."""
        inf = self._es_informer(ns)
        rec = inf.get((ns, name)) if inf is not None else None
        return rec.es.spec.rollout if rec is not None and rec.es is not None else None

    def _existing_es(self, ns: str, name: str) -> ExistingES | None:
        inf = self._es_informer(ns)
        rec = inf.get((ns, name)) if inf is not None else None
        return None if rec is None else ExistingES(rec.es, rec.ces, rec.uid)

    def _owned_by(self, ces_name: str) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._by_ces.get(ces_name, set()))

    def _find_store(self, es: ExternalSecret) -> SecretStore | str | None:
        ref = es.spec.secret_store_ref
        return self._find_store_ref(ref, es.namespace) if ref is not None else None

    def _find_store_ref(self, ref: StoreRef, namespace: str) -> SecretStore | str | None:
        if ref.kind == KIND_CLUSTER_SECRET_STORE:
            rec = self.css_informer.get(("", ref.name))
        else:
            inf = self.ss_informers.get(namespace if self.settings.scope.namespaces else None)
            rec = inf.get((namespace, ref.name)) if inf is not None else None
        if rec is None:
            return None
        return rec.store if rec.store is not None else (rec.error or "invalid")

    def _stores_of(self, kind: str, namespace: str) -> list[SecretStore]:
        """Every valid store of ``kind`` (SecretStores: of ``namespace``), for label selectors."""
        if kind == KIND_CLUSTER_SECRET_STORE:
            items = self.css_informer.items()
        else:
            inf = self.ss_informers.get(namespace if self.settings.scope.namespaces else None)
            items = [(k, r) for k, r in (inf.items() if inf is not None else []) if k[0] == namespace]
        return [r.store for _, r in items if r.store is not None]

    def _store_by_id(self, sid: StoreId) -> SecretStore | None:
        kind, ns, name = sid
        if kind == KIND_CLUSTER_SECRET_STORE:
            rec = self.css_informer.get(("", name))
        else:
            inf = self.ss_informers.get(ns if self.settings.scope.namespaces else None)
            rec = inf.get((ns, name)) if inf is not None else None
        return rec.store if rec is not None else None

    def _on_store_health(self, handle: StoreHandle) -> None:
        kind, ns, name = handle.id
        self.metrics.circuit_open.set(sum(1 for h in self.stores.all_handles() if h.breaker.is_open))
        self.queue.add(("cstore" if kind == KIND_CLUSTER_SECRET_STORE else "store", ns, name))
        with self._lock:
            keys = list(self._by_store.get(handle.id, ()))
        if not handle.breaker.is_open:
            # Recovered (or a probe ended without an answer): every ExternalSecret of the store
            # re-syncs now, not at its next refresh.
            for ens, ename in keys:
                self.queue.add(("es", ens, ename))
        else:
            # (Re-)opened: its ExternalSecrets wait for the end of the pause, when one of them
            # probes; the others wait for that probe's outcome instead of polling.
            delay = handle.breaker.retry_in()
            for ens, ename in keys:
                self.queue.add_after(("es", ens, ename), delay)

    # -- event handlers (informer threads: only queue keys, never call out) -----------------
    def _on_es(self, etype: str, key: Key, old: ESRecord | None, new: ESRecord | None) -> None:
        ns, name = key
        if not (old is not None and new is not None and old.es is not None and new.es is not None
                and old.es.spec is new.es.spec and old.ces == new.ces):
            self._index(key, new)  # a status write's echo (same parsed spec) changes no index
        if new is not None and new.ces and (etype != "ADDED" or old is not None):
            self.queue.add(("ces", "", new.ces))
        if etype == "DELETED":
            self.queue.cancel(("es", ns, name))
            self.es_reconciler.forget(ns, name)
            self.events.forget(KIND_EXTERNAL_SECRET, ns, name)
            if old is not None and old.ces:
                self.queue.add(("ces", "", old.ces))
            if old is not None and old.es is not None and old.es.spec.target.creation_policy == "Merge" \
                    and self.in_scope(ns):
                # Its keys in the shared Secret are released (other ExternalSecrets' stay).
                with self._lock:
                    self._releases[(ns, name)] = old.es.target_name
                self.queue.add(("release", ns, name))
            return
        if new is None or not self.in_scope(ns):
            return
        if old is not None and old.force != new.force:
            with self._lock:
                self._fresh.add(key)  # force-sync reads the provider, not the cache
        if old is None or old.generation != new.generation or old.force != new.force or (old.es is None) != (
                new.es is None):
            self.queue.add(("es", ns, name))

    def _on_store(self, etype: str, key: Key, old: StoreRecord | None, new: StoreRecord | None) -> None:
        rec = new or old
        if rec is None:
            return
        cluster = rec.kind == KIND_CLUSTER_SECRET_STORE or not key[0]
        sid: StoreId = (KIND_CLUSTER_SECRET_STORE if cluster else KIND_SECRET_STORE, key[0], key[1])
        if etype == "DELETED":
            if hasattr(self, "routing"):
                self.routing.store_deleted(sid)
            if hasattr(self, "stores"):
                self.stores.drop(sid)
            self.store_reconciler.forget(*sid)
        elif (old is not None and new is not None and old.generation == new.generation) or (
                not cluster and not self.in_scope(key[0])):
            return
        else:
            if old is not None and hasattr(self, "stores"):
                # The spec changed (backend, region, mount, prefix, credentials): its cache
                # and circuit breaker go now, not when the next reconcile notices.
                self.stores.drop(sid)
            self.queue.add(("cstore" if cluster else "store", key[0], key[1]))
        with self._lock:
            dependents = list(self._by_store.get(sid, ()))
        for ns, name in dependents:
            self.queue.add(("es", ns, name))

    def _on_ces(self, etype: str, key: Key, old: CESRecord | None, new: CESRecord | None) -> None:
        if etype == "DELETED":
            self.queue.cancel(("ces", "", key[1]))
            self.ces_reconciler.forget(key[1])
            return
        if old is None or new is None or old.generation != new.generation:
            self.queue.add(("ces", "", key[1]))

    def _on_namespace(self, etype: str, key: Key, old: NamespaceRecord | None, new: NamespaceRecord | None) -> None:
        ns = key[1]
        if old is not None and new is not None and old.labels == new.labels and old.terminating == new.terminating:
            return
        if not self._started or not hasattr(self, "es_reconciler"):
            return
        # Scope or ClusterSecretStore conditions may have changed for this namespace.
        with self._lock:
            members = list(self._by_ns.get(ns, ()))
        for k in members:
            inf = self._es_informer(k[0])
            self._index(k, inf.get(k) if inf is not None else None)
            self.queue.add(("es", k[0], k[1]))
        for (_, cname), _ in self.ces_informer.items():
            self.queue.add(("ces", "", cname))

    def _on_secret(self, etype: str, key: Key, old: ManagedSecret | None, new: ManagedSecret | None) -> None:
        """A managed Secret changed or vanished: if it no longer matches, its ExternalSecret repairs it."""
        ns = key[0]
        if etype == "DELETED" and old is not None and old.owner:
            self._repair(ns, old.owner, key[1])
        elif new is not None and not new.matches and new.owner:
            self._repair(ns, new.owner, key[1])

    def _repair(self, ns: str, es_name: str, secret: str) -> None:
        """Queue a drift repair, damped when another writer keeps changing the Secret back.

        The first ``LOOP_REPAIRS`` repairs within ``LOOP_QUIET`` seconds run at once; after
        that each waits twice as long as the last (up to the queue's backoff cap) and one
        Warning event says so, instead of the two writers trading writes as fast as the API
        server allows. A quiet period resets it.
        """
        qkey: QKey = ("es", ns, es_name)
        now = time.monotonic()
        with self._lock:
            count, last = self._drift.get((ns, es_name), (0, now))
            count = 1 if now - last > LOOP_QUIET else count + 1
            self._drift[(ns, es_name)] = (count, now)
        if count <= LOOP_REPAIRS:
            self.queue.add(qkey)
            return
        q = self.settings.queue
        delay = min(q.backoff_max, q.backoff_base * 2 ** (count - LOOP_REPAIRS))
        self.queue.add_after(qkey, delay)
        inf = self._es_informer(ns)
        rec = inf.get((ns, es_name)) if inf is not None else None
        self.events.emit(ObjectRef(API_VERSION, KIND_EXTERNAL_SECRET, ns, es_name, rec.uid if rec else None),
                         "Warning", "WriteLoop",
                         f"Secret {ns}/{secret} keeps being changed by another writer; the controller restores "
                         f"it with growing delays (up to {q.backoff_max:.0f}s) until the other writer stops")
        self.metrics.reconcile_errors.labels(KIND_EXTERNAL_SECRET, "WriteLoop").inc()

    # -- workers ---------------------------------------------------------------------------
    def _worker(self) -> None:
        while not self._stop.is_set():
            # Wait for leadership and for every cache to be filled: reconciling while the
            # ExternalSecret list is still arriving would fetch keys one ExternalSecret at a
            # time instead of in one batched cycle.
            if not self.leading.wait(0.5) or not self.ready():
                self._stop.wait(0.05)
                continue
            key = self.queue.get(timeout=0.5)
            if key is None:
                continue
            try:
                if not self.leading.is_set():
                    self.queue.add_after(key, 1.0)
                    continue
                self._apply(key, self._process(key))
            except Exception:
                log.exception("reconcile of %s %s/%s failed", *key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    def _apply(self, key: QKey, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        if outcome.retry:
            self.queue.add_rate_limited(key, outcome.at_least)
            return
        self.queue.forget(key)
        if outcome.requeue_after is not None:
            self.queue.schedule(key, outcome.requeue_after)

    def _process(self, key: QKey) -> Outcome | None:
        kind, ns, name = key
        if kind == "es":
            inf = self._es_informer(ns)
            rec = inf.get((ns, name)) if inf is not None else None
            with self._lock:
                forced = (ns, name) in self._fresh
                self._fresh.discard((ns, name))
            if rec is None or not self.in_scope(ns):
                return None
            if rec.es is None:
                return self.es_reconciler.invalid(ns, name, rec.uid, rec.generation, rec.error or "invalid spec",
                                                  rec.status)
            # A retry (the key failed before) or a force-sync reads the provider, not the cache.
            fresh = forced or self.queue.backoff.failures(key) > 0
            return self.es_reconciler.reconcile(rec.es, fresh=fresh)
        if kind == "release":
            with self._lock:
                target = self._releases.get((ns, name))
            if target is None:
                return None
            inf = self._es_informer(ns)
            if inf is not None and inf.get((ns, name)) is not None:
                with self._lock:
                    self._releases.pop((ns, name), None)
                return None  # re-created meanwhile: it merges again
            self.writer.release_merge(ns, target, name)
            with self._lock:
                self._releases.pop((ns, name), None)
            return Outcome()
        if kind in ("store", "cstore"):
            if kind == "store":
                sinf = self.ss_informers.get(ns if self.settings.scope.namespaces else None)
                srec = sinf.get((ns, name)) if sinf is not None else None
            else:
                srec = self.css_informer.get(("", name))
            if srec is None:
                return None
            if srec.store is None:
                skind = KIND_SECRET_STORE if kind == "store" else KIND_CLUSTER_SECRET_STORE
                return self.store_reconciler.invalid(skind, ns, name, srec.error or "invalid spec", srec.generation)
            if not srec.store.served_by(self.settings.controller_class):
                return None  # another controller class's store: its status is that controller's
            t0 = time.perf_counter()
            try:
                return self.store_reconciler.reconcile(srec.store)
            finally:
                self.metrics.sync_duration.labels(srec.store.kind).observe(time.perf_counter() - t0)
                self.routing.store_reconciled(srec.store)
        if kind == "ces":
            crec = self.ces_informer.get(("", name))
            if crec is None or crec.ces is None:
                return None
            t0 = time.perf_counter()
            try:
                return self.ces_reconciler.reconcile(crec.ces)
            finally:
                self.metrics.sync_duration.labels(KIND_CLUSTER_EXTERNAL_SECRET).observe(time.perf_counter() - t0)
        return None

    # -- introspection (tests, benchmark) --------------------------------------------------
    def store_stats(self) -> dict[str, dict[str, object]]:
        return {"/".join(h.id) + (f"@{h.cred_namespace}" if h.cred_namespace else ""): h.cache.stats()
                for h in self.stores.all_handles()}
