"""Open one provider client per SecretStore, with its credentials, cache and circuit breaker.

Credentials are never in the store spec: the spec names Kubernetes Secrets
(``{name, key[, namespace]}``), which are read here (a SecretStore reads from its own
namespace; a ClusterSecretStore from the reference's namespace, or the ExternalSecret's
when the reference has none) and handed to ``factory.open(config, settings, credentials)``
as :class:`SecretValue`. They are re-read every ``credentials_ttl`` seconds; a rotated
credential reopens the client but keeps the cache.

Who may draw on what (docs/security.md): a namespaced SecretStore is written by a namespace
tenant, so before a client is opened its provider says what the config would use beyond the
credentials the store brings (:class:`~secretsync.core.contract.CredentialUse`), and a
SecretStore is refused, with a status naming the field, when it names a file of the
controller, or would use the controller's own identity (unless the admin allows that with
``TrustSettings.namespaced_ambient_identity``), or would send that identity to a host it
chose. ClusterSecretStores are the admin's and may use the controller's identity anywhere;
naming its files needs ``TrustSettings.cluster_store_files`` too.

ServiceAccount tokens (``serviceAccountRef``) are requested once and reused until two thirds
of their lifetime has passed: every TokenRequest returns a new token, and a new token would
reopen the client (a fresh provider login) at every credentials refresh.

The circuit breaker: after ``failures`` consecutive store-wide failures (outage, expired
credentials, throttling) the store is *open* for ``open_for`` seconds (doubling up to
``max_open``, jittered): its ExternalSecrets keep their Secrets, report why, and do not
call the provider. After the pause one probe goes through; success closes the circuit.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from secretsync.api.models import SecretStore
from secretsync.core.calls import CallRecorder
from secretsync.core.changes import ChangeFeed, ChangeFeedFactory
from secretsync.core.contract import CredentialUse, DescribesCredentialUse, SecretsClient
from secretsync.core.errors import InvalidConfig, ProviderError, Unavailable
from secretsync.core.registry import get_factory
from secretsync.core.settings import ClientSettings, RateLimitSettings
from secretsync.core.values import SecretValue
from secretsync.kube.client import CONFIGMAPS, SECRETS, SERVICE_ACCOUNTS, KubeApi, KubeError, Resource

from .hashing import data_hash
from .providercache import StoreCache, Usage
from .settings import CircuitSettings, ControllerSettings
from .workqueue import jittered

log = logging.getLogger(__name__)

#: (kind, namespace or "", name)
StoreId = tuple[str, str, str]

#: The audience a provider's token exchange expects when a serviceAccountRef names none
#: (AWS STS AssumeRoleWithWebIdentity checks ``aud``, as EKS's IRSA webhook sets it).
#: Lifetime asked for a ServiceAccount token; it is reused until RENEW_FRACTION of it passed.
TOKEN_SECONDS = 3600
TOKEN_RENEW_FRACTION = 2 / 3


#: :meth:`CircuitBreaker.admit` answers: go ahead; go ahead as the half-open probe; paused;
#: paused while another caller's probe is in flight.
CLOSED = "closed"
PROBE = "probe"
OPEN = "open"
WAIT = "wait"


class CircuitBreaker:
    def __init__(self, settings: CircuitSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0
        self.open_until = 0.0
        self._open_for = settings.open_for
        self._probing = False
        self.last_error: ProviderError | None = None

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self.failures >= self.settings.failures and (self._clock() < self.open_until or self._probing)

    def allow(self) -> bool:
        """May a provider call go through now? (Half-open: exactly one probe after the pause.)"""
        return self.admit() in (CLOSED, PROBE)

    def admit(self) -> str:
        """CLOSED, PROBE (the caller is the one half-open probe and must really call the
        provider), OPEN (paused) or WAIT (paused, a probe is in flight: wait for its outcome)."""
        with self._lock:
            if self.failures < self.settings.failures:
                return CLOSED
            if self._probing:
                return WAIT
            if self._clock() < self.open_until:
                return OPEN
            self._probing = True
            return PROBE

    def abandon_probe(self) -> None:
        """The probe ended without reaching the provider: let the next caller probe."""
        with self._lock:
            self._probing = False

    def retry_in(self) -> float:
        with self._lock:
            return max(0.5, self.open_until - self._clock())

    def success(self) -> bool:
        """Record a success; True if this closed an open circuit."""
        with self._lock:
            was_open = self.failures >= self.settings.failures
            self.failures = 0
            self._probing = False
            self._open_for = self.settings.open_for
            self.last_error = None
            return was_open

    def failure(self, exc: ProviderError, *, probe: bool = False) -> bool:
        """Record a store-wide failure; True if this opened (or re-opened) the circuit.

        ``probe``: this was the half-open probe. The pause doubles only on the opening failure
        and on each failed probe. Calls admitted before the circuit opened fail one after the
        other during the same outage (16 workers, each retrying its keys): had each doubled
        the pause, a 30-second outage would pause the store for ``max_open`` (5 min) and its
        ExternalSecrets would recover minutes after the provider did (found by bench soak).
        """
        with self._lock:
            self.failures += 1
            self.last_error = exc
            if probe or not self._probing:
                self._probing = False
            if self.failures < self.settings.failures:
                return False
            if not probe and (self._probing or self._clock() < self.open_until):
                return False  # a straggler of this outage: the pause already runs
            pause = max(self._open_for, exc.delay or 0.0)
            self.open_until = self._clock() + jittered(pause, 0.2)
            self._open_for = min(self.settings.max_open, self._open_for * 2)
            return True


@dataclass
class StoreHandle:
    id: StoreId
    cred_namespace: str
    generation: int | None
    client: SecretsClient
    cache: StoreCache
    breaker: CircuitBreaker
    cred_fingerprint: str
    creds_read_at: float
    recorder: CallRecorder
    validated: bool = False
    #: The store's status already says that listing is denied and keys are read directly.
    listing_noted: bool = False
    #: The store this handle was opened for (its ``allowedKeyPrefix`` bounds what a find reads).
    store: SecretStore | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def store_id_of(store: SecretStore) -> StoreId:
    return (store.kind, store.namespace or "", store.name)


class StoreManager:
    """Store handles keyed by (store id, credentials namespace); thread-safe."""

    def __init__(
        self,
        api: KubeApi,
        settings: ControllerSettings,
        hash_key: bytes,
        *,
        usage: Callable[[StoreId, str], Usage],
        on_changed: Callable[[StoreId, set[str]], None],
        call_listeners: list[Callable[[str, str, str], None]],
        on_cycle: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.settings = settings
        self.key = hash_key
        self._usage = usage
        self._on_changed = on_changed
        self._listeners = call_listeners
        self._on_cycle = on_cycle
        self._clock = clock
        self._handles: dict[tuple[StoreId, str], StoreHandle] = {}
        self._lock = threading.Lock()
        self._open_locks: dict[tuple[StoreId, str], threading.Lock] = {}
        #: (namespace, name, audiences) -> (token, reuse until), see _service_account_token.
        self._sa_tokens: dict[tuple[str, str, tuple[str, ...]], tuple[SecretValue, float]] = {}

    def cred_namespace(self, store: SecretStore, es_namespace: str) -> str:
        """Which namespace's Secrets the credentials come from ("" when fixed by the store)."""
        if not store.cluster_scoped:
            return ""
        return es_namespace if needs_es_namespace(store) else ""

    def handle(self, store: SecretStore, es_namespace: str = "") -> StoreHandle:
        """The open handle for ``store`` (opened or re-opened as needed). Raises ProviderError."""
        sid = store_id_of(store)
        cns = self.cred_namespace(store, es_namespace)
        hkey = (sid, cns)
        with self._lock:
            open_lock = self._open_locks.setdefault(hkey, threading.Lock())
        with open_lock:
            with self._lock:
                h = self._handles.get(hkey)
            if h is not None and h.generation != store.meta.generation:
                # Another backend, region, mount, prefix or credentials: nothing the old
                # handle learnt (cached values, listing, breaker state) is about this store.
                with self._lock:
                    self._handles.pop(hkey, None)
                _close(h.client)
                h = None
            now = self._clock()
            if h is not None:
                if now - h.creds_read_at < self.settings.refresh.credentials_ttl:
                    return h
                creds = self._credentials(store, cns)
                fp = self._fingerprint(creds)
                h.creds_read_at = now
                if fp == h.cred_fingerprint:
                    return h
                log.info("store %s: credentials changed; reopening the client", store.ref)
            else:
                creds = self._credentials(store, cns)
                fp = self._fingerprint(creds)
            recorder = h.recorder if h is not None else self._recorder()
            client = self._open(store, creds, recorder)
            if h is not None:
                _close(h.client)
                h.client = client
                h.cache.client = client
                h.generation = store.meta.generation
                h.cred_fingerprint = fp
                h.validated = False
                return h
            cache = StoreCache(client, recorder, lambda: bounded_usage(store, self._usage(sid, cns)),
                               lambda keys: self._on_changed(sid, keys), name=store.ref, on_cycle=self._on_cycle,
                               fetch_concurrency=self.settings.provider.fetch_concurrency,
                               settle=self.settings.rollout.enabled)
            h = StoreHandle(sid, cns, store.meta.generation, client, cache,
                            CircuitBreaker(self.settings.provider.circuit, self._clock), fp, now, recorder,
                            store=store)
            with self._lock:
                self._handles[hkey] = h
            return h

    def handles_of(self, sid: StoreId) -> list[StoreHandle]:
        with self._lock:
            return [h for (s, _), h in self._handles.items() if s == sid]

    def all_handles(self) -> list[StoreHandle]:
        with self._lock:
            return list(self._handles.values())

    def drop(self, sid: StoreId) -> None:
        with self._lock:
            gone = [k for k in self._handles if k[0] == sid]
            handles = [self._handles.pop(k) for k in gone]
        for h in handles:
            _close(h.client)

    def close(self) -> None:
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for h in handles:
            _close(h.client)

    def open_feed(self, store: SecretStore, subscription: str) -> ChangeFeed:
        """A change feed for ``store`` with the same config and credentials as its client
        (so a feed reaches nothing the store could not). Raises ProviderError."""
        provider = store.spec.provider.name
        factory = get_factory(provider)
        where = f"{store.ref}: spec.events.subscription"
        if not isinstance(factory, ChangeFeedFactory):
            raise InvalidConfig(f"{where}: provider {provider!r} offers no change feed (use spec.events.webhook)")
        if needs_es_namespace(store):
            raise InvalidConfig(f"{where}: this ClusterSecretStore reads credentials from each ExternalSecret's "
                                "namespace, so no single feed can be opened; name the credentials' namespace")
        try:
            factory.validate_feed(subscription)
        except InvalidConfig as exc:
            raise InvalidConfig(f"{where}: {exc}") from None
        creds = self._credentials(store, "")
        config = store.spec.provider.config
        # The same trust gate as the store's client: a feed reaches nothing the store could not.
        self._check_trust(store, credential_use(factory, config, frozenset(creds)))
        rl = store.spec.rate_limit
        rate = RateLimitSettings(rl.rate, rl.burst) if rl is not None else self.settings.provider.rate_limit
        settings = ClientSettings(timeouts=self.settings.provider.timeouts, rate_limit=rate, calls=self._recorder())
        return factory.open_feed(config, subscription, settings, creds or None)

    # -- internals -------------------------------------------------------------------------
    def _recorder(self) -> CallRecorder:
        rec = CallRecorder()
        for listener in self._listeners:
            rec.add_listener(listener)
        return rec

    def _open(self, store: SecretStore, creds: dict[str, SecretValue], recorder: CallRecorder) -> SecretsClient:
        provider = store.spec.provider.name
        factory = get_factory(provider)
        config = store.spec.provider.config
        try:
            factory.validate_config(config)
        except InvalidConfig as exc:
            raise InvalidConfig(f"{store.ref}: spec.provider.{provider}: {exc}") from None
        self._check_trust(store, credential_use(factory, config, frozenset(creds)))
        rl = store.spec.rate_limit
        rate = RateLimitSettings(rl.rate, rl.burst) if rl is not None else self.settings.provider.rate_limit
        settings = ClientSettings(timeouts=self.settings.provider.timeouts, rate_limit=rate, calls=recorder)
        try:
            return factory.open(config, settings, creds or None)
        except InvalidConfig as exc:  # e.g. a credential of the wrong kind: name the store
            raise InvalidConfig(f"{store.ref}: spec.provider.{provider}: {exc}") from None

    def _check_trust(self, store: SecretStore, use: CredentialUse) -> None:
        """Refuse a namespaced SecretStore that would reach what belongs to the controller."""
        base = f"{store.ref}: spec.provider.{store.spec.provider.name}"
        if store.cluster_scoped:
            if use.local_files and not self.settings.trust.cluster_store_files:
                raise InvalidConfig(
                    f"{base}.{use.local_files[0]}: names a file of the controller, which a ClusterSecretStore "
                    "may do only when the admin sets --allow-cluster-store-files")
            return
        if use.local_files:
            raise InvalidConfig(
                f"{base}.{use.local_files[0]}: names a file of the controller, which a SecretStore may not "
                "(only a ClusterSecretStore may, with --allow-cluster-store-files)")
        if use.ambient is None:
            return
        if not self.settings.trust.namespaced_ambient_identity:
            raise InvalidConfig(
                f"{base}.secretRef: a SecretStore must bring its own credentials (secretRef to a Secret or "
                f"serviceAccountRef to a ServiceAccount of namespace {store.namespace}); without them it "
                f"would use the controller's own identity ({use.ambient}), which only ClusterSecretStores "
                "may use unless the admin sets --allow-namespaced-ambient-identity")
        if use.destinations:
            raise InvalidConfig(
                f"{base}.{use.destinations[0]}: a SecretStore that uses the controller's identity may not "
                "choose where requests go (the controller's credentials would be sent there); bring your "
                "own credentials in secretRef, or leave the field out")

    def _credentials(self, store: SecretStore, cred_ns: str) -> dict[str, SecretValue]:
        """Resolve every credential the store's provider read from its block.

        Each source names a Secret key, a ServiceAccount token or a ServiceAccount annotation;
        a SecretStore's sources are in its own namespace (parse_secret_store refuses another)."""
        out: dict[str, SecretValue] = {}
        provider = store.spec.provider
        for src in provider.credentials:
            where = f"{store.ref}: spec.provider.{provider.key}.{src.field}"
            ns = (src.namespace or store.namespace) if not store.cluster_scoped else (src.namespace or cred_ns)
            if not ns:
                raise InvalidConfig(f"{where}: namespace is required in a ClusterSecretStore reference")
            if src.kind == "token":
                out[src.credential] = self._service_account_token(store, where, src.name, ns, src.audiences)
            elif src.kind == "annotation":
                out[src.credential] = self._service_account_annotation(where, src.name, ns, src.key)
            elif src.kind == "configmap":
                out[src.credential] = self._configmap_key(where, src.name, ns, src.key)
            else:
                out[src.credential] = self._secret_key(where, src.name, ns, src.key)
        return out

    @staticmethod
    def _read_object(where: str, res: Resource, name: str, ns: str,
                     read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """One object a store's credentials come from (``read`` names the resource at its call, so
        the chart's RBAC is derived from it): absent is the store's error, anything else an outage."""
        try:
            obj: dict[str, Any] = read()
        except KubeError as exc:
            if exc.not_found:
                raise InvalidConfig(f"{where}: {res.kind} {ns}/{name} not found") from None
            raise Unavailable(f"{where}: cannot read {res.kind} {ns}/{name}: {exc.status} {exc.reason}") from None
        return obj

    def _secret_key(self, where: str, name: str, ns: str, key: str) -> SecretValue:
        secret = self._read_object(where, SECRETS, name, ns, lambda: self.api.get(SECRETS, name, ns))
        raw = (secret.get("data") or {}).get(key)
        if raw is None:
            raise InvalidConfig(f"{where}: Secret {ns}/{name} has no key {key!r}")
        return SecretValue(base64.b64decode(raw))

    def _configmap_key(self, where: str, name: str, ns: str, key: str) -> SecretValue:
        """A ConfigMap key (a CA bundle is public data, often kept in a ConfigMap: Vault's caProvider)."""
        cm = self._read_object(where, CONFIGMAPS, name, ns, lambda: self.api.get(CONFIGMAPS, name, ns))
        text = (cm.get("data") or {}).get(key)
        if text is not None:
            return SecretValue(str(text))
        raw = (cm.get("binaryData") or {}).get(key)
        if raw is None:
            raise InvalidConfig(f"{where}: ConfigMap {ns}/{name} has no key {key!r}")
        return SecretValue(base64.b64decode(raw))

    def _service_account_annotation(self, where: str, name: str, ns: str, annotation: str) -> SecretValue:
        """An annotation of a ServiceAccount (Azure workload identity keeps client and tenant ids there)."""
        sa = self._read_object(where, SERVICE_ACCOUNTS, name, ns,
                               lambda: self.api.get(SERVICE_ACCOUNTS, name, ns))
        value = ((sa.get("metadata") or {}).get("annotations") or {}).get(annotation)
        if not value:
            raise InvalidConfig(f"{where}: ServiceAccount {ns}/{name} has no annotation {annotation!r}")
        return SecretValue(str(value))

    def _service_account_token(self, store: SecretStore, where: str, name: str, namespace: str,
                               audiences: tuple[str, ...]) -> SecretValue:
        """A short-lived token for the ServiceAccount (TokenRequest API), e.g. for Vault kubernetes auth.

        Reused until two thirds of its lifetime: a fresh token on every credentials refresh
        would change the credentials' fingerprint and reopen the client (a provider login,
        and a Vault token left behind) once a minute.
        """
        if not namespace:
            raise InvalidConfig(f"{where}: namespace is required in a ClusterSecretStore reference")
        cache_key = (namespace, name, audiences)
        now = self._clock()
        with self._lock:
            cached = self._sa_tokens.get(cache_key)
        if cached is not None and now < cached[1]:
            return cached[0]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": list(audiences), "expirationSeconds": TOKEN_SECONDS}}
        try:
            out = self.api.request("POST", SERVICE_ACCOUNTS.path(namespace, name, "token"), body=body)
        except KubeError as exc:
            if exc.not_found:
                raise InvalidConfig(f"{where}: ServiceAccount {namespace}/{name} not found") from None
            raise Unavailable(f"{where}: cannot get a token for ServiceAccount {namespace}/{name}: "
                              f"{exc.status} {exc.reason}") from None
        token = ((out or {}).get("status") or {}).get("token")
        if not token:
            raise Unavailable(f"{where}: the TokenRequest for {namespace}/{name} returned no token")
        value = SecretValue(str(token))
        granted = ((out or {}).get("spec") or {}).get("expirationSeconds") or TOKEN_SECONDS
        with self._lock:
            self._sa_tokens[cache_key] = (value, now + float(granted) * TOKEN_RENEW_FRACTION)
        return value

    def _fingerprint(self, creds: dict[str, SecretValue]) -> str:
        return data_hash(self.key, {k: v.reveal() for k, v in creds.items()}, None)


def credential_use(factory: object, config: dict[str, object], credentials: frozenset[str]) -> CredentialUse:
    """What the provider says the config draws on; a provider that cannot say is assumed to
    use the process's identity (so a SecretStore needs the admin's flag to use it)."""
    if isinstance(factory, DescribesCredentialUse):
        return factory.credential_use(config, credentials)
    return CredentialUse(ambient=f"provider {getattr(factory, 'name', '?')!r} does not declare its credential use")


def bounded_usage(store: SecretStore, usage: Usage) -> Usage:
    """What a store's change-detection cycle may read: only the keys and find paths its
    ``allowedKeyPrefix`` lets ExternalSecrets read. Why here too: the cycle reads every key
    the store's ExternalSecrets name before any of them is reconciled, so a refused key must
    never reach it (the reconciler refuses the ExternalSecret itself, naming the field)."""
    if not store.spec.allowed_key_prefix:
        return usage
    return Usage(frozenset(k for k in usage.keys if store.key_refusal(k) is None),
                 tuple(p for p in usage.find_prefixes if store.key_refusal(p, listing=True) is None))


def needs_es_namespace(store: SecretStore) -> bool:
    """A ClusterSecretStore whose credential references name no namespace reads them from the
    namespace of each ExternalSecret (one client per namespace then)."""
    if not store.cluster_scoped:
        return False
    return any(src.namespace is None for src in store.spec.provider.credentials)


def _close(client: SecretsClient) -> None:
    try:
        client.close()
    except Exception:  # closing must never fail a reconcile
        log.debug("closing a store client failed", exc_info=True)
