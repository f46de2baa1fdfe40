"""PushSecret and ClusterPushSecret: keys of a Kubernetes Secret written to stores (ESO's push side).

A PushSecret is the reverse of an ExternalSecret: the cluster's Secret is the source and the
provider the target. What keeps it safe for a shared controller:

* **Its own namespace only.** A PushSecret reads Secrets of its own namespace (by name or
  label selector, never another namespace) and writes through stores that namespace may use:
  a SecretStore of the same namespace, or a ClusterSecretStore whose ``conditions`` allow the
  namespace; ``allowedKeyPrefix`` bounds the remote keys as it bounds reads.
* **One write path.** Every value goes through :func:`secretsync.core.contract.write_version`,
  as the migrator's and the rotation's writes do: create only when the key is absent (a
  concurrent creator is a Conflict), otherwise a new version with compare-and-set.
* **Deletes only what it created.** ``status.syncedPushSecrets`` records each remote secret
  (or property) written and whether this PushSecret created it. ``deletionPolicy: Delete``
  removes, when the PushSecret or one of its ``data`` entries goes, only entries it created:
  a key that was there before is never deleted by a tenant's PushSecret. A finalizer holds the
  PushSecret until that cleanup succeeded; provider errors keep it (and retry).
* **No values outside the provider.** Status, events and logs name stores, keys, properties
  and versions.

Only the leader pushes. Source changes are noticed by re-reading the source Secrets every
``PushSettings.source_poll`` seconds (a digest comparison; the provider is called only when
the data, the spec or the refresh interval asks for it).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from secretsync.api.fields import encode
from secretsync.api.models import (
    API_VERSION,
    GROUP,
    KIND_CLUSTER_PUSH_SECRET,
    KIND_PUSH_SECRET,
    KIND_SECRET_STORE,
    PLURALS,
    VERSION,
    ClusterPushSecret,
    ClusterPushSecretStatus,
    Condition,
    InvalidSpec,
    LabelSelector,
    NamespaceFailure,
    ObjectMeta,
    PushData,
    PushedKey,
    PushSecret,
    PushSecretSpec,
    PushSecretStatus,
    PushSelector,
    PushSourceSecret,
    PushStoreRef,
    SecretStore,
    StoreRef,
    parse_cluster_push_secret,
    parse_push_secret,
    set_condition,
)
from secretsync.api.template import ResourceLookup, TemplateEngine
from secretsync.core.contract import SecretsClient, read_current, write_version
from secretsync.core.errors import InvalidConfig, NotFound, PermanentError, ProviderError, SecretSyncError
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeApi, KubeError, Resource

from .events import EventRecorder, ObjectRef
from .informer import Informer, step_each
from .reconciler import now_rfc3339
from .rollout import stop_threads
from .settings import PushSettings, WatchSettings

log = logging.getLogger(__name__)

PS_RES = Resource(GROUP, VERSION, PLURALS[KIND_PUSH_SECRET], KIND_PUSH_SECRET)
CPS_RES = Resource(GROUP, VERSION, PLURALS[KIND_CLUSTER_PUSH_SECRET], KIND_CLUSTER_PUSH_SECRET, namespaced=False)
#: Holds a PushSecret with ``deletionPolicy: Delete`` until the keys it created are deleted.
PUSH_FINALIZER = f"{GROUP}/pushsecret-cleanup"
#: On PushSecrets a ClusterPushSecret created: its name (anything without it is not ours).
CPS_LABEL = f"{GROUP}/cluster-push-secret"

_UNICODE_ESCAPE = re.compile(r"_U([0-9a-fA-F]{4})_")


def reverse_unicode(key: str) -> str:
    """ESO's ``ReverseUnicode``: ``_U002f_`` back to ``/`` (the inverse of ExternalSecret's ``Unicode``)."""
    return _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), key)


class PushRecord:
    """What the informer keeps of a PushSecret: the parsed object or the parse error."""

    __slots__ = ("deleting", "error", "finalizers", "generation", "labels", "push", "resource_version", "status",
                 "uid")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        md = obj.get("metadata") or {}
        self.uid = md.get("uid")
        self.generation = md.get("generation")
        self.deleting = bool(md.get("deletionTimestamp"))
        self.finalizers: tuple[str, ...] = tuple(md.get("finalizers") or ())
        self.labels: Mapping[str, str] = dict(md.get("labels") or {})
        self.resource_version = md.get("resourceVersion")
        self.push: PushSecret | None = None
        self.error: str | None = None
        self.status: PushSecretStatus | None = None
        try:
            self.push = parse_push_secret(obj)
            self.status = self.push.status
        except InvalidSpec as exc:
            self.error = str(exc)
            raw = obj.get("status")
            if isinstance(raw, Mapping):
                # Cleanup needs what was pushed even when the spec no longer parses.
                try:
                    self.status = parse_push_secret({**obj, "spec": _MINIMAL_SPEC}).status
                except InvalidSpec:
                    self.status = None


_MINIMAL_SPEC: Mapping[str, Any] = {"secretStoreRefs": [{"name": "x"}], "selector": {"secret": {"name": "x"}}}
#: Stands in for the spec of a PushSecret whose spec no longer parses (only its namespace matters then).
_FALLBACK_SPEC = PushSecretSpec((PushStoreRef(name="x"),), PushSelector(PushSourceSecret(name="x")))


class ClusterPushRecord:
    __slots__ = ("cps", "error", "uid")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        md = obj.get("metadata") or {}
        self.uid = md.get("uid")
        self.cps: ClusterPushSecret | None = None
        self.error: str | None = None
        try:
            self.cps = parse_cluster_push_secret(obj)
        except InvalidSpec as exc:
            self.error = str(exc)


class PushFailed(PermanentError):
    """A PushSecret cannot be pushed as a whole (its source or a store); nothing was written."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Memo:
    """Per PushSecret: what was pushed last (the informer's copy of the status lags behind)."""

    status: PushSecretStatus
    generation: Any = None
    source_digest: str | None = None
    pushed_at: float = 0.0
    polled_at: float = 0.0
    failures: int = 0
    next_try: float = 0.0


@dataclass
class _Round:
    pushed: list[PushedKey] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    written: int = 0


class PushManager:
    """Watches PushSecrets and ClusterPushSecrets; while leading, pushes and provisions them."""

    def __init__(self, api: KubeApi, settings: PushSettings, *, namespaces: Sequence[str | None],
                 watch: WatchSettings, events: EventRecorder, leading: threading.Event,
                 find_store: Callable[[StoreRef, str], SecretStore | str | None],
                 stores_of: Callable[[str, str], Iterable[SecretStore]],
                 open_client: Callable[[SecretStore, str], SecretsClient],
                 namespace_labels: Callable[[str], Mapping[str, str] | None],
                 in_scope: Callable[[str], bool],
                 namespaces_in_scope: Callable[[], Iterable[tuple[str, Mapping[str, str], bool]]],
                 engine: TemplateEngine, lookup: Callable[[str], ResourceLookup],
                 controller_class: str = "", hash_key: bytes = b"") -> None:
        self.api = api
        self.settings = settings
        self.events = events
        self.leading = leading
        self.find_store = find_store
        self.stores_of = stores_of
        self.open_client = open_client
        self.namespace_labels = namespace_labels
        self.in_scope = in_scope
        self.namespaces_in_scope = namespaces_in_scope
        self.engine = engine
        self.lookup = lookup
        self.controller_class = controller_class
        self.hash_key = hash_key
        self.informers: list[Informer[PushRecord]] = [
            Informer(api, PS_RES, PushRecord, settings=watch, namespace=ns, name=f"pushsecrets@{ns or '*'}")
            for ns in namespaces]
        self.cps_informer: Informer[ClusterPushRecord] = Informer(
            api, CPS_RES, ClusterPushRecord, settings=watch, name="clusterpushsecrets")
        self._memo: dict[tuple[str, str], _Memo] = {}
        self._cps_status: dict[str, ClusterPushSecretStatus] = {}
        self._cps_checked: dict[str, tuple[float, int | None]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        for inf in self._all_informers():
            inf.start()
        self._thread = threading.Thread(target=self._run, name="pushsecrets", daemon=True)
        self._thread.start()

    def _all_informers(self) -> list[Informer[Any]]:
        return [*self.informers, self.cps_informer]

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stop_threads([*self.informers, self.cps_informer], self._thread, timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.tick):
            if not self.leading.is_set():
                continue
            if not all(i.synced.is_set() for i in self._all_informers()):
                continue
            try:
                self._cluster_round()
            except Exception:
                log.exception("ClusterPushSecret round failed")
            if not step_each(self.informers, self._stop, self.leading, self.in_scope, self.step, "PushSecret"):
                return

    # -- one PushSecret ----------------------------------------------------------------------------
    def step(self, ns: str, name: str, rec: PushRecord) -> None:
        """Clean up a deleted PushSecret, or push when the spec, the source or the interval asks."""
        key = (ns, name)
        memo = self._memo.get(key)
        if memo is None:
            memo = self._memo[key] = _Memo(rec.status or PushSecretStatus())
        now = time.monotonic()
        if now < memo.next_try:
            return
        if rec.deleting:
            self._finish_deletion(ns, name, rec, memo)
            return
        ps = rec.push
        if ps is None:
            if memo.generation != rec.generation:
                memo.generation = rec.generation
                self._set_status(ns, name, memo, False, "InvalidSpec", rec.error or "invalid spec", rec.generation)
                self.events.emit(ObjectRef(API_VERSION, KIND_PUSH_SECRET, ns, name, None), "Warning",
                                 "InvalidSpec", rec.error or "invalid spec")
            return
        spec_changed = memo.generation != rec.generation
        interval = ps.spec.refresh_interval
        due = spec_changed or (interval > 0 and now - memo.pushed_at >= interval) or memo.failures > 0
        if not due and now - memo.polled_at < self.settings.source_poll:
            return
        memo.polled_at = now
        try:
            stores = self._stores(ps)  # before any Secret is read: may this namespace use them?
            if not stores:
                return  # every store is another controller class's: that controller pushes
            self._ensure_finalizer(ps, rec)
            sources = self._sources(ps)
            digest = _digest(sources)
            if not due and digest == memo.source_digest:
                return
            values = self.engine.render_data(ps.ref, ps.spec.template, sources, self.lookup(ps.namespace))
            rnd = self.push(ps, stores, values, memo.status)
        except (SecretSyncError, KubeError) as exc:
            self._failed(ps, memo, rec.generation, exc)
            return
        memo.source_digest = digest
        memo.generation = rec.generation
        memo.pushed_at = now
        if rnd.errors:
            memo.failures += 1
            memo.next_try = now + min(self.settings.retry_max, 2.0 * 2 ** min(memo.failures, 8))
            text = "; ".join(rnd.errors[:3]) + (f" (+{len(rnd.errors) - 3} more)" if len(rnd.errors) > 3 else "")
            memo.status = PushSecretStatus(memo.status.conditions, memo.status.refresh_time,
                                           memo.status.synced_resource_version, tuple(rnd.pushed))
            self._set_status(ns, name, memo, False, "Errored", text, rec.generation)
            self.events.emit(self._ref(ps), "Warning", "Errored", text)
            return
        memo.failures = 0
        memo.next_try = 0.0
        memo.status = PushSecretStatus(memo.status.conditions, now_rfc3339(), str(rec.generation),
                                       tuple(rnd.pushed))
        msg = f"{len(rnd.pushed)} remote secret(s) in sync" + (f", {rnd.written} written" if rnd.written else "")
        self._set_status(ns, name, memo, True, "Synced", msg, rec.generation)
        if rnd.written:
            self.events.emit(self._ref(ps), "Normal", "Synced", msg)

    def _failed(self, ps: PushSecret, memo: _Memo, generation: Any, exc: Exception) -> None:
        reason = str(getattr(exc, "reason", None) or "Error") if isinstance(exc, SecretSyncError) else "KubernetesError"
        memo.failures += 1
        memo.next_try = time.monotonic() + min(self.settings.retry_max, 2.0 * 2 ** min(memo.failures, 8))
        self._set_status(ps.namespace, ps.name, memo, False, reason, str(exc), generation)
        self.events.emit(self._ref(ps), "Warning", reason, str(exc))

    # -- inputs --------------------------------------------------------------------------------
    def _sources(self, ps: PushSecret) -> dict[str, SecretValue]:
        """The source Secret's data (several selected Secrets: merged in name order). Own namespace only."""
        sel = ps.spec.selector.secret
        assert sel is not None  # the spec's validation guarantees it
        objs: list[Mapping[str, Any]]
        try:
            if sel.name is not None:
                objs = [self.api.get(SECRETS, sel.name, ps.namespace)]
            else:
                assert sel.selector is not None
                found = self.api.list(SECRETS, ps.namespace, label_selector=_selector_text(sel.selector))
                objs = sorted(found.get("items") or [], key=lambda o: str((o.get("metadata") or {}).get("name")))
        except KubeError as exc:
            if exc.not_found:
                raise PushFailed("SourceNotFound", f"Secret {ps.namespace}/{sel.name} not found; nothing pushed "
                                                   "(and nothing deleted)") from None
            raise
        if not objs:
            raise PushFailed("SourceNotFound", f"no Secret of namespace {ps.namespace!r} matches "
                                               "spec.selector.secret.selector; nothing pushed")
        data: dict[str, SecretValue] = {}
        for obj in objs:
            for k, raw in (obj.get("data") or {}).items():
                data[str(k)] = SecretValue.from_b64(raw)
        return data

    def _stores(self, ps: PushSecret) -> list[SecretStore]:
        """Every store the PushSecret names that its namespace may use; anything else fails it whole."""
        out: dict[str, SecretStore] = {}
        labels = self.namespace_labels(ps.namespace) or {}
        for i, ref in enumerate(ps.spec.secret_store_refs):
            where = f"spec.secretStoreRefs[{i}]"
            candidates = self._resolve(ps, ref, where)
            for store in candidates:
                if store.kind == KIND_SECRET_STORE and store.namespace != ps.namespace:
                    raise PushFailed("StoreNotAllowed", f"{where}: {store.ref} is not in namespace {ps.namespace!r}")
                if not store.namespace_allowed(ps.namespace, labels):
                    raise PushFailed("StoreNotAllowed", f"{where}: {store.ref} does not allow namespace "
                                                        f"{ps.namespace!r} (spec.conditions)")
                if store.served_by(self.controller_class):
                    out[store.ref] = store
        return list(out.values())

    def _resolve(self, ps: PushSecret, ref: PushStoreRef, where: str) -> list[SecretStore]:
        if ref.name is not None:
            store = self.find_store(StoreRef(ref.name, ref.kind), ps.namespace)
            if store is None:
                raise PushFailed("StoreNotFound", f"{where}: {ref.kind} {ref.name!r} not found")
            if isinstance(store, str):
                raise PushFailed("StoreInvalid", f"{where}: {ref.kind} {ref.name!r} is invalid: {store}")
            return [store]
        assert ref.label_selector is not None
        ns = ps.namespace if ref.kind == KIND_SECRET_STORE else ""
        found = [s for s in self.stores_of(ref.kind, ns) if ref.label_selector.matches(s.meta.labels)]
        if not found:
            raise PushFailed("StoreNotFound", f"{where}.labelSelector: no {ref.kind} matches")
        return found

    # -- the push ------------------------------------------------------------------------------
    def push(self, ps: PushSecret, stores: Sequence[SecretStore], sources: Mapping[str, SecretValue],
             previous: PushSecretStatus) -> _Round:
        """Write every data entry to every store; per-entry errors are collected, never fatal."""
        rnd = _Round()
        before = {k.ident(): k for k in previous.synced_push_secrets}
        wanted: set[tuple[str, str, str | None]] = set()
        items: list[PushData | None] = [*ps.spec.data] or [None]
        for store in stores:
            client = self.open_client(store, ps.namespace)
            if not client.capabilities.read_write:
                rnd.errors.append(f"{store.ref} is read-only")
                continue
            for i, item in enumerate(items):
                for remote_key, prop, value, tags, options in self._entries(ps, i, item, sources, rnd):
                    sid = (store.ref, remote_key, prop)
                    wanted.add(sid)
                    where = f"data[{i}]" if item is not None else f"key {remote_key!r}"
                    refused = store.key_refusal(remote_key)
                    if refused is not None:
                        field = f"spec.data[{i}].match.remoteRef.remoteKey" if item is not None else where
                        rnd.errors.append(f"{field}: {store.ref}: {refused}")
                        continue
                    try:
                        pushed = self._push_one(ps, client, store, remote_key, prop, value, tags, before.get(sid),
                                                options)
                    except ProviderError as exc:
                        rnd.errors.append(f"{where}: {store.ref}: {exc}")
                        if sid in before:
                            rnd.pushed.append(before[sid])  # still ours to clean up later
                        continue
                    if pushed is not None:
                        rnd.pushed.append(pushed[0])
                        rnd.written += pushed[1]
        # Entries dropped from the spec (or a store no longer listed): Delete removes what we created.
        for sid, old in before.items():
            if sid in wanted:
                continue
            if ps.spec.deletion_policy != "Delete" or not self._provably_created(ps, old):
                continue
            try:
                self._delete_pushed(ps, old)
            except (ProviderError, PushFailed) as exc:
                rnd.errors.append(f"removing {old.remote_key!r} from {old.store}: {exc}")
                rnd.pushed.append(old)
        return rnd

    def _entries(self, ps: PushSecret, i: int, item: PushData | None, sources: Mapping[str, SecretValue],
                 rnd: _Round) -> list[tuple[str, str | None, SecretValue, dict[str, str] | None, dict[str, Any]]]:
        if item is None:
            # No data: each key becomes the remote secret of that name (as it is).
            return [(k, None, v, None, {}) for k, v in sorted(sources.items())]
        conv = item.conversion_strategy == "ReverseUnicode"
        data = {(reverse_unicode(k) if conv else k): v for k, v in sources.items()}
        m = item.match
        if m.secret_key is not None:
            if m.secret_key not in data:
                rnd.errors.append(f"data[{i}].match.secretKey: the source Secret has no key {m.secret_key!r}")
                return []
            value = data[m.secret_key]
        else:
            value = SecretValue(json.dumps({k: v.reveal_text() for k, v in sorted(data.items())},
                                           separators=(",", ":")))
        return [(m.remote_ref.remote_key, m.remote_ref.property, value, item.tags, item.options)]

    def _push_one(self, ps: PushSecret, client: SecretsClient, store: SecretStore, remote_key: str,
                  prop: str | None, value: SecretValue, tags: dict[str, str] | None,
                  old: PushedKey | None, options: Mapping[str, Any] | None = None) -> tuple[PushedKey, int] | None:
        """One remote secret (property): write it if it differs; returns what is tracked and 1 if written."""
        current = read_current(client, remote_key)
        if prop is None:
            if current is not None and ps.spec.update_policy == "IfNotExists" and old is None:
                return None  # somebody else's: left alone, not tracked
            if current is not None and current.value == value and tags is None:
                return PushedKey(store.ref, remote_key, None, current.version,
                                 *self._created(ps, store.ref, remote_key, None, old, False)), 0
            res = write_version(client, remote_key, value, current, tags=tags, options=options)
            return PushedKey(store.ref, remote_key, None, res.version,
                             *self._created(ps, store.ref, remote_key, None, old, current is None)), 1
        doc = _json_doc(current.value if current is not None else None, remote_key)
        had = prop in doc
        if had and ps.spec.update_policy == "IfNotExists" and old is None:
            return None
        text = value.reveal_text()
        if had and doc[prop] == text and tags is None:
            version = current.version if current is not None else None
            return PushedKey(store.ref, remote_key, prop, version,
                             *self._created(ps, store.ref, remote_key, prop, old, False)), 0
        doc[prop] = text
        res = write_version(client, remote_key, SecretValue(json.dumps(doc, separators=(",", ":"))), current,
                            tags=tags, options=options)
        return PushedKey(store.ref, remote_key, prop, res.version,
                         *self._created(ps, store.ref, remote_key, prop, old, not had)), 1

    def _proof(self, ps: PushSecret, store: str, remote_key: str, prop: str | None) -> str:
        """HMAC (the controller's per-installation key) binding a created entry to this PushSecret."""
        msg = "\0".join((ps.namespace, ps.name, ps.meta.uid or "", store, remote_key, prop or ""))
        return hmac.new(self.hash_key, msg.encode(), "sha256").hexdigest()

    def _created(self, ps: PushSecret, store: str, remote_key: str, prop: str | None, old: PushedKey | None,
                 now_created: bool) -> tuple[bool, str | None]:
        """(created, proof) of an entry: created now, or before with a valid proof."""
        proof = self._proof(ps, store, remote_key, prop)
        if now_created or (old is not None and old.created and old.proof is not None
                           and hmac.compare_digest(old.proof, proof)):
            return True, proof
        return False, None

    def _provably_created(self, ps: PushSecret, pushed: PushedKey) -> bool:
        expected = self._proof(ps, pushed.store, pushed.remote_key, pushed.property)
        return bool(pushed.created and pushed.proof and hmac.compare_digest(pushed.proof, expected))

    def _delete_pushed(self, ps: PushSecret, pushed: PushedKey) -> None:
        """Delete one remote secret (or remove one property) this PushSecret created: only an entry
        whose proof is the controller's own, so a forged status deletes nothing."""
        if not self._provably_created(ps, pushed):
            raise PushFailed("NotCreatedHere", f"{pushed.remote_key!r} in {pushed.store} is not provably created "
                                               "by this PushSecret; left alone")
        kind, _, name = pushed.store.partition("/")
        store_name = name.rpartition("/")[2]
        store = self.find_store(StoreRef(store_name, kind), ps.namespace)
        if not isinstance(store, SecretStore):
            raise PushFailed("StoreNotFound", f"{pushed.store} is gone or invalid")
        client = self.open_client(store, ps.namespace)
        if pushed.property is None:
            with contextlib.suppress(NotFound):
                client.delete(pushed.remote_key)
            return
        current = read_current(client, pushed.remote_key)
        if current is None:
            return
        doc = _json_doc(current.value, pushed.remote_key)
        if pushed.property not in doc:
            return
        del doc[pushed.property]
        if not doc:
            with contextlib.suppress(NotFound):
                client.delete(pushed.remote_key)
            return
        write_version(client, pushed.remote_key, SecretValue(json.dumps(doc, separators=(",", ":"))), current)

    # -- deletion ------------------------------------------------------------------------------
    def _ensure_finalizer(self, ps: PushSecret, rec: PushRecord) -> None:
        if ps.spec.deletion_policy != "Delete" or PUSH_FINALIZER in rec.finalizers:
            return
        self.api.patch(PS_RES, ps.name, {"metadata": {"finalizers": [*rec.finalizers, PUSH_FINALIZER],
                                                      "resourceVersion": rec.resource_version}}, ps.namespace)

    def _finish_deletion(self, ns: str, name: str, rec: PushRecord, memo: _Memo) -> None:
        if PUSH_FINALIZER not in rec.finalizers:
            self._memo.pop((ns, name), None)
            return
        status = memo.status if memo.status.synced_push_secrets else (rec.status or memo.status)
        left: list[PushedKey] = []
        errors: list[str] = []
        ps = rec.push or PushSecret(ObjectMeta(name=name, namespace=ns, uid=rec.uid), _FALLBACK_SPEC)
        for pushed in status.synced_push_secrets:
            if not self._provably_created(ps, pushed):
                continue  # found, not created, or a status entry the controller did not write
            try:
                self._delete_pushed(ps, pushed)
            except (ProviderError, PushFailed) as exc:
                errors.append(f"{pushed.remote_key!r} in {pushed.store}: {exc}")
                left.append(pushed)
        if errors:
            memo.failures += 1
            memo.next_try = time.monotonic() + min(self.settings.retry_max, 2.0 * 2 ** min(memo.failures, 8))
            memo.status = PushSecretStatus(memo.status.conditions, memo.status.refresh_time,
                                           memo.status.synced_resource_version, tuple(left))
            text = "deletionPolicy Delete: could not delete " + "; ".join(errors[:3])
            self._set_status(ns, name, memo, False, "DeletionFailed", text, rec.generation)
            return
        try:
            self.api.patch(PS_RES, name, {"metadata": {
                "finalizers": [f for f in rec.finalizers if f != PUSH_FINALIZER],
                "resourceVersion": rec.resource_version}}, ns)
        except KubeError as exc:
            if not exc.not_found:
                log.info("PushSecret %s/%s: finalizer removal failed: %s", ns, name, exc)
                return
        self._memo.pop((ns, name), None)

    # -- status --------------------------------------------------------------------------------
    @staticmethod
    def _ref(ps: PushSecret) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND_PUSH_SECRET, ps.namespace, ps.name, ps.meta.uid)

    def _set_status(self, ns: str, name: str, memo: _Memo, ready: bool, reason: str, message: str,
                    generation: Any) -> None:
        cond = Condition("Ready", "True" if ready else "False", reason, message[:2048], now_rfc3339(),
                         generation if isinstance(generation, int) else None)
        old = memo.status
        new = PushSecretStatus(set_condition(old.conditions, cond), old.refresh_time, old.synced_resource_version,
                               old.synced_push_secrets)
        memo.status = new
        try:
            self.api.patch(PS_RES, name, {"status": new.to_dict()}, ns, subresource="status")
        except KubeError as exc:
            if not exc.not_found:
                log.warning("PushSecret %s/%s: status update failed: %s", ns, name, exc)

    # -- ClusterPushSecret ---------------------------------------------------------------------
    def _cluster_round(self) -> None:
        """Stamp each ClusterPushSecret's PushSecret into its namespaces; remove it where it no longer
        belongs. A PushSecret of that name without our label is somebody else's: never touched."""
        now = time.monotonic()
        cps_by_name = {name: rec for (_, name), rec in self.cps_informer.items()}
        namespaces = list(self.namespaces_in_scope())
        for name, rec in cps_by_name.items():
            cps = rec.cps
            if cps is None:
                continue
            last, generation = self._cps_checked.get(name, (-1e9, None))
            if generation == cps.meta.generation and now - last < cps.spec.refresh_time:
                continue  # re-checked every refreshTime, and at once when the spec changes
            self._cps_checked[name] = (now, cps.meta.generation)
            provisioned: list[str] = []
            failed: list[NamespaceFailure] = []
            for ns, labels, terminating in namespaces:
                if terminating or not cps.selects(ns, labels):
                    continue
                problem = self._provision(cps, rec.uid, ns)
                if problem is None:
                    provisioned.append(ns)
                else:
                    failed.append(NamespaceFailure(ns, problem))
            self._cps_set_status(cps, provisioned, failed)
        # PushSecrets whose ClusterPushSecret is gone or no longer selects their namespace.
        labels_of = {ns: labels for ns, labels, _ in namespaces}
        for inf in self.informers:
            for (ns, name), prec in inf.items():
                owner = prec.labels.get(CPS_LABEL)
                if owner is None:
                    continue
                crec = cps_by_name.get(owner)
                keep = (crec is not None and crec.cps is not None and crec.cps.push_secret_name == name
                        and ns in labels_of and crec.cps.selects(ns, labels_of[ns]))
                if crec is not None and crec.cps is None:
                    keep = True  # an unparsable ClusterPushSecret deletes nothing
                if not keep and not prec.deleting:
                    try:
                        self.api.delete(PS_RES, name, ns)
                    except KubeError as exc:
                        if not exc.not_found:
                            log.info("PushSecret %s/%s: delete failed: %s", ns, name, exc)

    def _provision(self, cps: ClusterPushSecret, uid: str | None, ns: str) -> str | None:
        name = cps.push_secret_name
        md = cps.spec.push_secret_metadata
        body: dict[str, Any] = {
            "apiVersion": API_VERSION, "kind": KIND_PUSH_SECRET,
            "metadata": {"name": name, "namespace": ns,
                         "labels": {**(md.labels if md else {}), CPS_LABEL: cps.name},
                         **({"annotations": dict(md.annotations)} if md and md.annotations else {})},
            "spec": _encode_spec(cps),
        }
        if uid:
            body["metadata"]["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": KIND_CLUSTER_PUSH_SECRET,
                                                    "name": cps.name, "uid": uid}]
        try:
            existing = self.api.get(PS_RES, name, ns)
        except KubeError as exc:
            if not exc.not_found:
                return f"cannot read PushSecret: {exc.status} {exc.reason}"
            try:
                self.api.create(PS_RES, body, ns)
            except KubeError as cexc:
                return f"cannot create PushSecret: {cexc.status} {cexc.reason}"
            return None
        if ((existing.get("metadata") or {}).get("labels") or {}).get(CPS_LABEL) != cps.name:
            return "push secret already exists in namespace (not created by this ClusterPushSecret)"
        if existing.get("spec") != body["spec"] or (existing.get("metadata") or {}).get("labels") != \
                body["metadata"]["labels"]:
            try:
                self.api.patch(PS_RES, name, {"metadata": {"labels": body["metadata"]["labels"]},
                                              "spec": body["spec"]}, ns)
            except KubeError as exc:
                return f"cannot update PushSecret: {exc.status} {exc.reason}"
        return None

    def _cps_set_status(self, cps: ClusterPushSecret, provisioned: list[str], failed: list[NamespaceFailure]) -> None:
        ok = not failed
        cond = Condition("Ready", "True" if ok else "False", "Provisioned" if ok else "NamespacesFailed",
                         "PushSecret created in every selected namespace" if ok else "one or more namespaces failed",
                         now_rfc3339(), cps.meta.generation)
        old = self._cps_status.get(cps.name) or cps.status or ClusterPushSecretStatus()
        new = ClusterPushSecretStatus(set_condition(old.conditions, cond), cps.push_secret_name,
                                      tuple(sorted(provisioned)), tuple(failed))
        if _same_cps(old, new):
            return
        try:
            self.api.patch(CPS_RES, cps.name, {"status": new.to_dict()}, None, subresource="status")
        except KubeError as exc:
            log.warning("ClusterPushSecret %s: status update failed: %s", cps.name, exc)
            return
        self._cps_status[cps.name] = new


def _encode_spec(cps: ClusterPushSecret) -> dict[str, Any]:
    return encode(cps.spec.push_secret_spec)


def _same_cps(a: ClusterPushSecretStatus, b: ClusterPushSecretStatus) -> bool:
    return ([(c.type, c.status, c.reason) for c in a.conditions] == [(c.type, c.status, c.reason)
                                                                     for c in b.conditions]
            and a.provisioned_namespaces == b.provisioned_namespaces and a.failed_namespaces == b.failed_namespaces
            and a.push_secret_name == b.push_secret_name)


def _json_doc(value: SecretValue | None, remote_key: str) -> dict[str, Any]:
    """The remote secret as a JSON object (a property is written into it); absent: an empty one."""
    if value is None:
        return {}
    try:
        doc = json.loads(value.reveal())
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise InvalidConfig("remoteRef.property needs a JSON object in the remote secret; it holds something else",
                            key=remote_key)
    return doc


def _digest(data: Mapping[str, SecretValue]) -> str:
    h = hashlib.sha256()
    for k in sorted(data):
        h.update(k.encode() + b"\0" + data[k].reveal() + b"\0")
    return h.hexdigest()


def _selector_text(sel: LabelSelector) -> str:
    parts = [f"{k}={v}" for k, v in sorted(sel.match_labels.items())]
    for req in sel.match_expressions:
        if req.operator == "Exists":
            parts.append(req.key)
        elif req.operator == "DoesNotExist":
            parts.append(f"!{req.key}")
        else:
            parts.append(f"{req.key} {req.operator.lower()} ({','.join(req.values)})")
    return ",".join(parts)
