"""The controller's settings: small frozen groups passed explicitly (kopf-style), never globals.

Why groups: each part of the runtime (watching, the work queue, refresh schedules, the
provider circuit breaker, leader election, metrics, scope) reads only its own group, and a
test or the benchmark changes one knob (``refresh.floor=0.5``) without touching the rest.
Every default is safe for a production cluster; tests shorten the intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from secretsync.core.settings import RateLimitSettings, TimeoutSettings


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """List+watch of the informers."""

    #: Server-side timeout of one watch request; the informer re-watches from its bookmark.
    timeout_seconds: int = 300
    #: Page size of the initial and recovery lists (bounds the peak memory of a relist).
    page_size: int = 500
    #: Pause after a failed list or watch before the next try (doubles up to max).
    retry_delay: float = 1.0
    retry_max_delay: float = 30.0


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Worker threads and per-key retry backoff (exponential, with jitter)."""

    workers: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    #: +-fraction of random spread on every delay, so failed keys do not retry in lockstep.
    jitter: float = 0.2


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    """Refresh schedules and the provider change-detection cycle."""

    #: Shortest refresh honoured (a ``refreshInterval: 1ms`` must not hammer a provider).
    floor: float = 1.0
    #: +-fraction of random spread on each ExternalSecret's next refresh.
    jitter: float = 0.1
    #: An ExternalSecret due for refresh re-reads the provider when the store's cache is older
    #: than this fraction of its interval. Below 1 so that ExternalSecrets refreshed together
    #: with the cache's last cycle do not find it a hair too young and wait a second interval.
    cache_age: float = 0.9
    #: How long a store's credentials (read from Secrets) are reused before being re-read.
    credentials_ttl: float = 60.0
    #: A successful refresh that changed nothing rewrites status.refreshTime at most this often
    #: (10k ExternalSecrets on a short interval would otherwise be a status write storm).
    status_heartbeat: float = 300.0
    #: ClusterExternalSecrets re-check their namespaces at least this often.
    cluster_external_floor: float = 1.0


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    """An unhealthy store pauses its ExternalSecrets instead of hammering the provider."""

    #: Consecutive store-wide failures before the circuit opens.
    failures: int = 3
    #: First open period; doubles on every failed probe up to ``max_open``.
    open_for: float = 5.0
    max_open: float = 300.0


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What each store client gets (see :class:`secretsync.core.settings.ClientSettings`)."""

    timeouts: TimeoutSettings = field(default_factory=lambda: TimeoutSettings(connect=3.0, read=10.0,
                                                                              sdk_retries=1))
    #: Default client-side rate limit per store (a store's spec.rateLimit overrides it).
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    circuit: CircuitSettings = field(default_factory=CircuitSettings)
    #: Batched fetches in flight at once per store (a cold start of 10k AWS keys is 500 batches).
    fetch_concurrency: int = 4


@dataclass(frozen=True, slots=True)
class LeaderSettings:
    """One active replica through a coordination.k8s.io/v1 Lease (client-go's defaults)."""

    enabled: bool = True
    lease_name: str = "secretsync-controller"
    lease_namespace: str = "default"
    #: Empty: hostname + pid + random suffix.
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus metrics plus /healthz and /readyz on one port (None: no HTTP server)."""

    port: int | None = 8080
    host: str = "0.0.0.0"
    #: ESO-compatible metrics carry each object's name; off: summed per namespace (huge clusters).
    object_labels: bool = True


@dataclass(frozen=True, slots=True)
class ScopeSettings:
    """Which namespaces this controller serves: names, a label selector, and a shard."""

    namespaces: tuple[str, ...] = ()
    #: A Kubernetes label selector string (``team=a,env in (prod)``) over namespace labels.
    namespace_selector: str | None = None
    shard: int = 0
    shards: int = 1


@dataclass(frozen=True, slots=True)
class TrustSettings:
    """What namespaced SecretStores (written by namespace tenants) may draw on.

    Why off by default: the controller's own cloud identity (IRSA, Workload Identity, a
    managed identity, its ServiceAccount token, VAULT_TOKEN) can usually read far more than
    any one tenant may. A SecretStore that silently fell back on it would let anyone who
    can create a SecretStore in their namespace read another team's keys, bypassing the
    ClusterSecretStores (and their conditions and allowedKeyPrefix) the admin set up for
    that. ClusterSecretStores are written by the cluster admin and may always use it.
    """

    #: Let namespaced SecretStores without credentials use the controller's identity
    #: (``--allow-namespaced-ambient-identity``; Helm ``allowNamespacedAmbientIdentity``).
    #: Even then a SecretStore may not send that identity to a host it names.
    namespaced_ambient_identity: bool = False
    #: Let ClusterSecretStores name files of the controller (a CA bundle, an AWS profile, a
    #: ``file`` store) (``--allow-cluster-store-files``; Helm ``allowClusterStoreFiles``).
    #: Off: whoever may write ClusterSecretStores still cannot make the controller read its
    #: files; a namespaced SecretStore never may.
    cluster_store_files: bool = False


@dataclass(frozen=True, slots=True)
class EventSettings:
    """How notices are turned into reads (controller configuration, not store fields)."""

    #: Notices for one store within this window are read together.
    coalesce: float = 0.25
    #: Targeted reads per second per store (burst ``burst``): a flood waits and coalesces.
    rate: float = 5.0
    burst: int = 10
    #: Longest wait of one pull on a provider feed.
    poll_wait: float = 20.0
    #: Pause after a failed pull, doubling up to ``retry_max``.
    retry: float = 1.0
    retry_max: float = 300.0
    #: Address of the webhook receiver (generic signed webhook, Azure Event Grid); None: off.
    webhook_host: str = "0.0.0.0"
    webhook_port: int | None = None
    #: A signed webhook's timestamp may differ from the controller's clock by at most this.
    webhook_window: float = 300.0
    #: Largest webhook body accepted.
    webhook_max_body: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class RolloutSettings:
    """Restarts of the workloads that read a changed Secret (issue 13; see rollout.py).

    Off by default: watching Deployments, StatefulSets, DaemonSets and Rollouts needs RBAC
    the chart grants only when asked (``rollout.enabled``), and an ExternalSecret still has
    to say ``spec.rollout`` before anything restarts.
    """

    enabled: bool = False
    #: Changes within this many seconds of a workload's first pending change make one restart.
    debounce: float = 1.0
    #: Cluster-wide restarts per second, and how many may go at once after a quiet period.
    rate: float = 20.0
    burst: int = 100


@dataclass(frozen=True, slots=True)
class RotationSettings:
    """Scheduled rotation of ``SecretRotation`` objects (issue 13; see rotation.py). Opt-in:
    it writes to providers, so the store credentials need write access."""

    enabled: bool = False
    #: How often the leader checks which rotations are due.
    tick: float = 1.0
    #: Longest wait between retries of a failed rotation (hook or provider failure).
    retry_max: float = 300.0


@dataclass(frozen=True, slots=True)
class PushSettings:
    """PushSecret / ClusterPushSecret (issue 12; see pushsecret.py). Opt-in, as rotation: it writes
    to providers, so the store credentials need write access."""

    enabled: bool = False
    #: How often the leader walks the PushSecrets.
    tick: float = 1.0
    #: How often each PushSecret's source Secrets are re-read to notice a change.
    source_poll: float = 10.0
    #: Longest wait between retries of a failed push.
    retry_max: float = 300.0


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    watch: WatchSettings = field(default_factory=WatchSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    refresh: RefreshSettings = field(default_factory=RefreshSettings)
    provider: ProviderSettings = field(default_factory=ProviderSettings)
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    scope: ScopeSettings = field(default_factory=ScopeSettings)
    trust: TrustSettings = field(default_factory=TrustSettings)
    events: EventSettings = field(default_factory=EventSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    rotation: RotationSettings = field(default_factory=RotationSettings)
    push: PushSettings = field(default_factory=PushSettings)
    #: ESO's controller class: serve only stores whose spec.controller is unset or equal to it.
    controller_class: str = ""
    #: Namespace of the controller's own objects (the HMAC key Secret). Defaults to the lease's.
    namespace: str | None = None
    #: Secret holding the per-installation HMAC key for data hashes (created when absent).
    hash_key_secret: str = "secretsync-controller-hash-key"
    #: Kubernetes API request timeouts (connect, read) for non-watch calls.
    kube_timeout: tuple[float, float] = (5.0, 30.0)

    @property
    def own_namespace(self) -> str:
        return self.namespace or self.leader.lease_namespace
