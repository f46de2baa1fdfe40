"""List-then-watch informers that keep only what the controller needs of each object.

Why our own: the generic informers (kopf, the client's ``Watch`` + models) keep whole
objects, deserialized into Python models, for every watched resource. Here each informer
takes a ``transform`` that cuts an object down to a small frozen record (a managed Secret
becomes its name, resourceVersion, owner and a yes/no "data matches the hash"; its data is
dropped on arrival) and a label selector so that Secrets the controller does not manage
never reach it at all.

Protocol (as client-go's reflector): list in pages, remember the list's resourceVersion,
watch from it with bookmarks; when the watch ends, re-watch from the last seen version;
when the server says 410 Gone (the version is too old), relist and diff against the store
so that deletions missed while disconnected still produce events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from secretsync.api.fields import shared
from secretsync.kube.client import KubeApi, KubeError, Resource, WatchStream

from .settings import WatchSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Key = tuple[str, str]  # (namespace or "", name)
#: (event type ADDED/MODIFIED/DELETED, key, old record or None, new record or None)
Handler = Callable[[str, Key, Any, Any], None]


def key_of(obj: dict[str, Any]) -> Key:
    """(namespace, name), as the records' own shared strings (one copy per name, not per index)."""
    md = obj.get("metadata") or {}
    return (shared(str(md.get("namespace") or "")), shared(str(md.get("name") or "")))


class Informer(Generic[T]):
    """Keeps ``store`` (key -> transformed record) in sync with one resource; calls handlers."""

    def __init__(
        self,
        api: KubeApi,
        resource: Resource,
        transform: Callable[[dict[str, Any]], T | None],
        *,
        settings: WatchSettings | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
        name: str | None = None,
    ) -> None:
        self.api = api
        self.resource = resource
        self.transform = transform
        self.settings = settings or WatchSettings()
        self.namespace = namespace
        self.label_selector = label_selector
        self.name = name or resource.plural
        self._store: dict[Key, T] = {}
        self._lock = threading.RLock()
        self._handlers: list[Handler] = []
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None
        self.resource_version: str | None = None
        self.relists = 0
        self.last_error: str | None = None
        #: Listing was refused (403) or the resource does not exist (404): the store stays empty.
        self.unavailable = False

    # -- reading ---------------------------------------------------------------------------
    def get(self, key: Key) -> T | None:
        with self._lock:
            return self._store.get(key)

    def items(self) -> list[tuple[Key, T]]:
        with self._lock:
            return list(self._store.items())

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._store)

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def put_local(self, key: Key, record: T) -> None:
        """Record our own write right away (the watch event confirms it shortly after).

        Why: a worker that just wrote a Secret must not act on the pre-write record if the
        same key comes round again before the watch event arrives.
        """
        with self._lock:
            self._store[key] = record

    # -- running ---------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        delay = self.settings.retry_delay
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()
                delay = self.settings.retry_delay
            except KubeError as exc:
                if self._stop.is_set():
                    break
                if need_list and exc.status in (403, 404) and not self.synced.is_set():
                    # Not allowed to list this kind (namespaced-only RBAC) or its CRD is not
                    # installed: serve without it (an empty store) instead of never becoming
                    # ready, and look again now and then.
                    log.warning("informer %s: cannot list (%s %s); continuing without it", self.name,
                                exc.status, exc.reason)
                    self.unavailable = True
                    self.synced.set()
                    self._stop.wait(self.settings.retry_max_delay)
                    continue
                if exc.gone:
                    log.info("informer %s: resourceVersion too old, relisting", self.name)
                    need_list = True
                    continue
                self.last_error = str(exc)
                log.warning("informer %s: %s; retrying in %.1fs", self.name, exc, delay)
                need_list = need_list or exc.status not in (0,)
                self._stop.wait(delay)
                delay = min(self.settings.retry_max_delay, delay * 2)
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("informer %s failed; relisting in %.1fs", self.name, delay)
                need_list = True
                self._stop.wait(delay)
                delay = min(self.settings.retry_max_delay, delay * 2)

    def _list(self) -> None:
        fresh: dict[Key, T] = {}
        cont: str | None = None
        rv: str | None = None
        while True:
            page = self.api.list(self.resource, self.namespace, label_selector=self.label_selector,
                                 limit=self.settings.page_size, continue_=cont)
            for obj in page.get("items") or ():
                record = self._transform(obj)
                if record is not None:
                    fresh[key_of(obj)] = record
            meta = page.get("metadata") or {}
            rv = meta.get("resourceVersion") or rv
            cont = meta.get("continue")
            del page
            if not cont:
                break
        with self._lock:
            old = self._store
            self._store = fresh
            self.resource_version = rv
            self.relists += 1
            self.unavailable = False
        for key, record in fresh.items():
            prev = old.get(key)
            self._emit("ADDED" if prev is None else "MODIFIED", key, prev, record)
        for key, prev in old.items():
            if key not in fresh:
                self._emit("DELETED", key, prev, None)
        self.synced.set()
        log.debug("informer %s: listed %d objects at %s", self.name, len(fresh), rv)

    def _transform(self, obj: dict[str, Any]) -> T | None:
        try:
            return self.transform(obj)
        except Exception:
            log.exception("informer %s: cannot transform %s/%s", self.name, *key_of(obj))
            return None

    def _watch(self) -> None:
        stream = self.api.watch(self.resource, self.namespace, resource_version=self.resource_version,
                                label_selector=self.label_selector,
                                timeout_seconds=self.settings.timeout_seconds)
        self._stream = stream
        try:
            if self._stop.is_set():
                return
            for event in stream:
                etype = event.get("type")
                obj = event.get("object") or {}
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if etype == "BOOKMARK":
                    if rv:
                        self.resource_version = rv
                    continue
                key = key_of(obj)
                if etype in ("ADDED", "MODIFIED"):
                    record = self._transform(obj)
                    with self._lock:
                        prev = self._store.get(key)
                        if record is None:
                            self._store.pop(key, None)
                        else:
                            self._store[key] = record
                    if record is None:
                        if prev is not None:
                            self._emit("DELETED", key, prev, None)
                    else:
                        self._emit("ADDED" if prev is None else "MODIFIED", key, prev, record)
                elif etype == "DELETED":
                    with self._lock:
                        prev = self._store.pop(key, None)
                    self._emit("DELETED", key, prev, None)
                if rv:
                    self.resource_version = rv
                if self._stop.is_set():
                    return
        finally:
            self._stream = None
            stream.close()

    def _emit(self, etype: str, key: Key, old: T | None, new: T | None) -> None:
        for handler in self._handlers:
            try:
                handler(etype, key, old, new)
            except Exception:
                log.exception("informer %s: handler failed for %s/%s", self.name, *key)


def step_each(informers: list[Informer[T]], stop: threading.Event, leading: threading.Event,
              in_scope: Callable[[str], bool], step: Callable[[str, str, T], None], what: str) -> bool:
    """One leader's pass over every cached object of ``informers``: ``step`` each one in scope,
    logging (never raising) one object's failure so the others go on. False when the pass was
    cut short because the process stops or lost the lease.

    Why one place: rotation and PushSecret run the same loop, and both must stop writing the
    moment another replica leads.
    """
    for inf in informers:
        for (ns, name), rec in inf.items():
            if stop.is_set() or not leading.is_set():
                return False
            if not in_scope(ns):
                continue
            try:
                step(ns, name, rec)
            except Exception:
                log.exception("%s %s/%s failed", what, ns, name)
    return True

