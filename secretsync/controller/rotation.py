"""Scheduled rotation: ``SecretRotation`` generates a value and pushes it as a new provider version.

The order of a rotation is what makes it safe:

1. read the current value and version (``get_many``: the provider's one read path);
2. generate the new value (:mod:`.generators`);
3. run the hook, if any (an HTTPS webhook, or a Job: :mod:`.rotationjob`, that applies the
   credential to the target system). **If it fails, nothing is written**: the provider's
   current version and every synced Secret stay as they are, the status says ``HookFailed``
   and the rotation is retried with backoff;
4. ``put`` the new version, with compare-and-set on the version read in step 1 where the
   backend offers it (a concurrent rotation elsewhere is a Conflict, not a lost update);
5. the ExternalSecrets that read the key pick the new version up on their next refresh,
   and :mod:`.rollout` restarts their consumers.

With ``dualCredentials`` the value written is JSON ``{"current": new, "previous": old}``
(read it with ``dataFrom.extract``) and, once ``gracePeriod`` is over, ``{"current": new}``.
Provider versions themselves are never deleted, so the previous one stays reachable by id.

Who may rotate what: the store's own rules apply as for reading (a SecretStore only for its
namespace, ClusterSecretStore ``conditions``, ``allowedKeyPrefix``), checked before any call.
Only the leader rotates. ``secretsync rotate NS/NAME`` sets :data:`ROTATE_NOW_ANNOTATION`.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from secretsync.api.cron import next_after
from secretsync.api.models import (
    API_VERSION,
    KIND_SECRET_ROTATION,
    KIND_SECRET_STORE,
    Condition,
    InvalidSpec,
    SecretRotation,
    SecretRotationStatus,
    SecretStore,
    StoreRef,
    WebhookHook,
    parse_secret_rotation,
    set_condition,
)
from secretsync.core.contract import Fetched, SecretsClient, read_current, write_version
from secretsync.core.errors import PermanentError, SecretSyncError
from secretsync.core.values import SecretValue
from secretsync.kube.client import KubeApi, KubeError
from secretsync.kube.crds import SECRET_ROTATIONS

from .events import EventRecorder, ObjectRef
from .generators import generate
from .informer import Informer, step_each
from .rollout import stop_threads
from .rotationjob import HookFailed, JobHookRunner, JobRun
from .settings import WatchSettings

log = logging.getLogger(__name__)

SR_RES = SECRET_ROTATIONS
#: Changing this annotation's value on a SecretRotation rotates it now (``secretsync rotate``).
ROTATE_NOW_ANNOTATION = "secretsync.io/rotate-now"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


class Record:
    """What the informer keeps of a SecretRotation: the parsed object or the parse error."""

    __slots__ = ("created", "error", "generation", "requested", "rotation")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        md = obj.get("metadata") or {}
        self.created = _parse_time(md.get("creationTimestamp"))
        self.requested = (md.get("annotations") or {}).get(ROTATE_NOW_ANNOTATION)
        self.generation = md.get("generation")
        self.rotation: SecretRotation | None = None
        self.error: str | None = None
        try:
            self.rotation = parse_secret_rotation(obj)
        except InvalidSpec as exc:
            self.error = str(exc)


def call_webhook(hook: WebhookHook, payload: Mapping[str, Any]) -> None:
    """POST the payload (it holds the new value) over HTTPS; any non-2xx or error is HookFailed."""
    ctx = ssl.create_default_context(cadata=hook.ca_bundle) if hook.ca_bundle else ssl.create_default_context()
    if not hook.url.startswith("https://"):
        raise HookFailed("webhook url must be https://")
    # https:// only (checked above and by the spec's pattern), so S310's file:/custom schemes cannot occur.
    req = urllib.request.Request(hook.url, data=json.dumps(payload).encode(), method="POST",  # noqa: S310
                                 headers={"Content-Type": "application/json", "User-Agent": "secretsync-controller"})
    try:
        with urllib.request.urlopen(req, timeout=hook.timeout, context=ctx) as resp:  # noqa: S310
            if not 200 <= resp.status < 300:
                raise HookFailed(f"webhook answered HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        raise HookFailed(f"webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise HookFailed(f"webhook not reachable: {reason}") from None


class RotationManager:
    """Watches SecretRotations; while leading, rotates each one when due."""

    def __init__(self, api: KubeApi, *, namespaces: Sequence[str | None], watch: WatchSettings,
                 events: EventRecorder, leading: threading.Event,
                 find_store: Callable[[StoreRef, str], SecretStore | str | None],
                 open_client: Callable[[SecretStore, str], SecretsClient],
                 namespace_labels: Callable[[str], Mapping[str, str] | None],
                 in_scope: Callable[[str], bool], tick: float = 1.0, retry_max: float = 300.0,
                 webhook: Callable[[WebhookHook, Mapping[str, Any]], None] = call_webhook) -> None:
        self.api = api
        self.events = events
        self.leading = leading
        self.find_store = find_store
        self.open_client = open_client
        self.namespace_labels = namespace_labels
        self.in_scope = in_scope
        self.tick = tick
        self.retry_max = retry_max
        self.webhook = webhook
        self.jobs = JobHookRunner(api)
        #: (ns, name) -> a hook Job in flight and the write it stands for.
        self._runs: dict[tuple[str, str], _HookWait] = {}
        self.informers: list[Informer[Record]] = [
            Informer(api, SR_RES, Record, settings=watch, namespace=ns, name=f"secretrotations@{ns or '*'}")
            for ns in namespaces]
        #: (ns, name) -> (failures in a row, monotonic time of the next try)
        self._backoff: dict[tuple[str, str], tuple[int, float]] = {}
        #: (ns, name) -> status written last (the informer's copy lags behind our writes).
        self._status: dict[tuple[str, str], SecretRotationStatus] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for inf in self.informers:
            inf.start()
        self._thread = threading.Thread(target=self._run, name="rotation", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stop_threads(self.informers, self._thread, timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            if not self.leading.is_set() or not all(i.synced.is_set() for i in self.informers):
                continue
            if not step_each(self.informers, self._stop, self.leading, self.in_scope, self.step,
                             "rotation of SecretRotation"):
                return

    # -- one object --------------------------------------------------------------------------
    def step(self, ns: str, name: str, rec: Record) -> None:
        """Rotate if due (or asked to), end a grace period if over; at most one provider write."""
        key = (ns, name)
        status = self._status.get(key) or (rec.rotation.status if rec.rotation else None) or SecretRotationStatus()
        if rec.rotation is None:
            self._set_status(ns, name, status, False, "InvalidSpec", rec.error or "invalid spec", rec.generation)
            return
        fails, next_try = self._backoff.get(key, (0, 0.0))
        if key in self._runs:
            self._finish_hook(key, rec, status, fails)
            return
        if time.monotonic() < next_try:
            return
        now = _now()
        requested = rec.requested is not None and rec.requested != status.requested
        due = requested or self._due(rec, status, now)
        expire = (rec.rotation.spec.dual_credentials and status.previous_expires is not None
                  and (_parse_time(status.previous_expires) or now) <= now)
        if not due and not expire:
            return
        try:
            self.rotate(rec.rotation, status, now, requested=rec.requested, end_grace_only=not due)
            if key not in self._runs:
                self._backoff.pop(key, None)
        except (SecretSyncError, KubeError) as exc:
            self._failed(key, rec, status, fails, exc)

    def _failed(self, key: tuple[str, str], rec: Record, status: SecretRotationStatus, fails: int,
                exc: SecretSyncError | KubeError) -> None:
        assert rec.rotation is not None
        reason = "KubernetesError" if isinstance(exc, KubeError) else getattr(exc, "reason", None)
        delay = min(self.retry_max, 5.0 * 2 ** fails)
        self._backoff[key] = (fails + 1, time.monotonic() + delay)
        msg = f"rotation of {rec.rotation.spec.remote_key!r} failed, nothing written: {exc}"
        self._set_status(key[0], key[1], status, False, str(reason or "Error"), msg, rec.generation)
        self.events.emit(self._ref(rec.rotation), "Warning", str(reason or "Error"), msg)

    def _finish_hook(self, key: tuple[str, str], rec: Record, status: SecretRotationStatus, fails: int) -> None:
        """A hook Job is in flight: switch when it succeeded, give up (writing nothing) when not."""
        assert rec.rotation is not None
        wait = self._runs[key]
        try:
            if not self.jobs.poll(wait.run):
                return
        except KubeError as exc:  # the API server, not the Job: ask again next tick
            log.warning("SecretRotation %s/%s: cannot read hook Job %s: %s", *key, wait.run.name, exc)
            return
        except HookFailed as exc:
            del self._runs[key]
            self._failed(key, rec, status, fails, exc)
            return
        del self._runs[key]
        try:
            client = self.open_client(self._store(rec.rotation), rec.rotation.namespace)
            self._switch(rec.rotation, client, status, _now(), wait.value, wait.current, wait.had_old,
                         wait.requested)
            self._backoff.pop(key, None)
        except (SecretSyncError, KubeError) as exc:
            self._failed(key, rec, status, fails, exc)

    @staticmethod
    def _due(rec: Record, status: SecretRotationStatus, now: datetime) -> bool:
        assert rec.rotation is not None
        spec = rec.rotation.spec
        last = _parse_time(status.last_rotation_time) or rec.created or now
        if spec.interval is not None:
            return now >= last + timedelta(seconds=spec.interval)
        assert spec.schedule is not None
        return now >= next_after(spec.schedule, last)

    def _store(self, rot: SecretRotation) -> SecretStore:
        ref = rot.spec.secret_store_ref
        store = self.find_store(ref, rot.namespace)
        if store is None:
            raise StoreUnusable("StoreNotFound", f"{ref.kind} {ref.name!r} not found")
        if isinstance(store, str):
            raise StoreUnusable("StoreInvalid", f"{ref.kind} {ref.name!r} is invalid: {store}")
        if ref.kind == KIND_SECRET_STORE and store.namespace != rot.namespace:
            raise StoreUnusable("StoreNotAllowed", f"{store.ref} is not in namespace {rot.namespace!r}")
        if not store.namespace_allowed(rot.namespace, self.namespace_labels(rot.namespace) or {}):
            raise StoreUnusable("StoreNotAllowed",
                                   f"{store.ref} does not allow namespace {rot.namespace!r} (spec.conditions)")
        if (refused := store.key_refusal(rot.spec.remote_key)) is not None:
            raise StoreUnusable("KeyNotAllowed", f"spec.remoteKey: {store.ref}: {refused}")
        return store

    def rotate(self, rot: SecretRotation, status: SecretRotationStatus, now: datetime, *,
               requested: str | None = None, end_grace_only: bool = False) -> str | None:
        """One rotation (or the end of a grace period). Returns the new provider version."""
        spec = rot.spec
        store = self._store(rot)
        client = self.open_client(store, rot.namespace)
        current = read_current(client, spec.remote_key)  # None: first value of a new key
        old = _current_of(current.value, spec.dual_credentials) if current is not None else None
        if end_grace_only:
            if current is None or old is None:
                return None
            value = SecretValue(json.dumps({"current": old.reveal_text()}))
            new_value = None
        else:
            new_value = generate(spec.generator)
            hook = spec.hook.webhook if spec.hook is not None else None
            job = spec.hook.job if spec.hook is not None else None
            if hook is not None:
                payload: dict[str, Any] = {
                    "apiVersion": API_VERSION, "kind": "RotationHook", "namespace": rot.namespace,
                    "name": rot.name, "remoteKey": spec.remote_key, "value": new_value.reveal_text()}
                if old is not None:
                    payload["previous"] = old.reveal_text()
                self.webhook(hook, payload)
            if spec.dual_credentials:
                doc = {"current": new_value.reveal_text()}
                if old is not None:
                    doc["previous"] = old.reveal_text()
                value = SecretValue(json.dumps(doc))
            else:
                value = new_value
            if job is not None:
                # The Job runs while the rotation loop goes on; step() switches when it succeeds.
                run = self.jobs.start(rot, job, new_value, old)
                self._runs[(rot.namespace, rot.name)] = _HookWait(run, value, current, old is not None, requested)
                self._set_status(rot.namespace, rot.name, status, False, "HookRunning",
                                 f"hook Job {run.name} is running; the new value of {spec.remote_key!r} is "
                                 "written when it succeeds", rot.meta.generation)
                return None
        return self._switch(rot, client, status, now, value, current, old is not None, requested,
                            end_grace_only=end_grace_only)

    def _switch(self, rot: SecretRotation, client: SecretsClient, status: SecretRotationStatus, now: datetime,
                value: SecretValue, current: Fetched | None, had_old: bool, requested: str | None, *,
                end_grace_only: bool = False) -> str | None:
        """Write ``value`` as the provider's new current version (compare-and-set where offered)."""
        spec = rot.spec
        res = write_version(client, spec.remote_key, value, current)
        version = res.version
        if end_grace_only:
            new_status = SecretRotationStatus(status.conditions, status.last_rotation_time, version,
                                              status.previous_version, None, status.requested)
            msg = f"grace period over: previous value of {spec.remote_key!r} removed (version {version})"
        else:
            expires = (_rfc3339(now + timedelta(seconds=spec.grace_period))
                       if spec.dual_credentials and had_old else None)
            new_status = SecretRotationStatus(status.conditions, _rfc3339(now), version,
                                              current.version if current is not None else None, expires,
                                              requested if requested is not None else status.requested)
            msg = f"new version {version} of {spec.remote_key!r} written"
            self.events.emit(self._ref(rot), "Normal", "Rotated", msg)
            log.info("SecretRotation %s/%s: %s", rot.namespace, rot.name, msg)
        self._set_status(rot.namespace, rot.name, new_status, True, "Rotated", msg, rot.meta.generation)
        return version

    # -- status --------------------------------------------------------------------------------
    @staticmethod
    def _ref(rot: SecretRotation) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND_SECRET_ROTATION, rot.namespace, rot.name, rot.meta.uid)

    def _set_status(self, ns: str, name: str, status: SecretRotationStatus, ready: bool, reason: str, message: str,
                    generation: Any) -> None:
        cond = Condition("Ready", "True" if ready else "False", reason, message[:2048], _rfc3339(_now()),
                         generation if isinstance(generation, int) else None)
        new = SecretRotationStatus(set_condition(status.conditions, cond), status.last_rotation_time,
                                   status.current_version, status.previous_version, status.previous_expires,
                                   status.requested)
        if self._status.get((ns, name)) == new:
            return
        try:
            self.api.patch(SR_RES, name, {"status": new.to_dict()}, ns, subresource="status")
        except KubeError as exc:
            log.warning("SecretRotation %s/%s: status update failed: %s", ns, name, exc)
            return
        self._status[(ns, name)] = new


@dataclass(frozen=True, slots=True)
class _HookWait:
    """A rotation waiting for its hook Job: the run, and the write it stands for."""

    run: JobRun
    value: SecretValue
    current: Fetched | None
    had_old: bool
    requested: str | None


class StoreUnusable(PermanentError):
    """The rotation cannot use its store (missing, invalid, not allowed); nothing was called."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _current_of(value: SecretValue, dual: bool) -> SecretValue | None:
    """The value in use now: the ``current`` member of a dual-credential document, else the value."""
    if not dual:
        return value
    try:
        return value.json_property("current")
    except (KeyError, ValueError):
        return value
