"""Who reads which Secret, key by key: the consumer index of workloads that run pods.

Why key by key: a rotation of ``db/password`` must restart the Deployment that reads
``password`` and leave alone the one that reads only ``host`` from the same Secret. A pod
reads keys through ``env[].valueFrom.secretKeyRef.key`` and ``items[].key`` of secret and
projected volumes; ``envFrom`` and a volume without ``items`` read every key (adding a key
changes their environment or files too). Image pull Secrets and volume plugins are read by
the kubelet, not by the containers, so they are not consumers for restarts.

A :class:`Workload` is what the index keeps of a Deployment, StatefulSet, DaemonSet or Argo
Rollout: its identity, the Secrets it reads (name -> keys, ``None`` = every key), the
rollout opt-out and our own pod-template annotations; never the spec itself.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .kinds import ARGO_ROLLOUTS, DAEMONSETS, DEPLOYMENTS, STATEFULSETS, Resource
from .podspec import VIA_ENV, VIA_ENV_FROM, VIA_PROJECTED, VIA_VOLUME, pod_spec_uses

#: On a workload: ``"false"`` opts it out of rollout restarts (apps that reload mounted files).
ROLLOUT_OPT_OUT_ANNOTATION: Final = "secretsync.io/rollout"
#: Prefix of the pod-template annotations that record, per Secret, the hash of the keys the
#: pods were started with (``rollout.secretsync.io/<secret>: h1:...``).
STAMP_PREFIX: Final = "rollout.secretsync.io/"
_NAME_MAX: Final = 63
_CONTAINER_VIAS: Final = (VIA_ENV, VIA_ENV_FROM, VIA_VOLUME, VIA_PROJECTED)

#: Keys a workload reads from one Secret: a set of key names, or None for every key.
Keys = frozenset[str] | None


#: A kind that runs pods from a template at ``spec.template`` (what a restart patches).
WorkloadKind = Resource
DEPLOYMENT: Final = DEPLOYMENTS
STATEFULSET: Final = STATEFULSETS
DAEMONSET: Final = DAEMONSETS
#: Argo Rollouts: watched when the CRD exists (an absent CRD is an empty list, not an error).
ARGO_ROLLOUT: Final = ARGO_ROLLOUTS
WORKLOAD_KINDS: Final = (DEPLOYMENT, STATEFULSET, DAEMONSET, ARGO_ROLLOUT)
KIND_NAMES: Final = tuple(k.kind for k in WORKLOAD_KINDS)


def stamp_annotation(secret: str) -> str:
    """The pod-template annotation key for one Secret (name part at most 63 characters)."""
    if len(secret) <= _NAME_MAX:
        return STAMP_PREFIX + secret
    digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
    return f"{STAMP_PREFIX}{secret[:_NAME_MAX - 13].rstrip('.-')}-{digest}"


@dataclass(frozen=True, slots=True)
class Workload:
    """What the index keeps of one workload (no spec, no values)."""

    kind: str
    namespace: str
    name: str
    uid: str
    #: Secret name -> keys read (None: every key).
    reads: Mapping[str, Keys] = field(default_factory=dict)
    opted_out: bool = False
    #: Our pod-template annotations: stamp annotation key -> hash the pods run with.
    stamps: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> WorkloadId:
        return (self.kind, self.namespace, self.name)


#: (kind, namespace, name)
WorkloadId = tuple[str, str, str]


def merge_keys(a: Keys, b: Keys) -> Keys:
    """Union of two key sets where None (every key) absorbs everything."""
    if a is None or b is None:
        return None
    return a | b


def secret_reads(pod_spec: Mapping[str, Any]) -> dict[str, Keys]:
    """Secret name -> keys the containers of a pod spec read (None: every key).

    Malformed parts are skipped: a workload the API server accepted is well formed, and the
    index must never fail on one odd object.
    """
    problems: list[tuple[str, str]] = []
    out: dict[str, Keys] = {}
    for use in pod_spec_uses(pod_spec, "spec", problems):
        if use.via not in _CONTAINER_VIAS:
            continue
        keys: Keys = frozenset(use.keys) if use.keys else None
        out[use.secret] = merge_keys(out[use.secret], keys) if use.secret in out else keys
    return out


def workload_record(kind: str, obj: Mapping[str, Any]) -> Workload:
    """Cut a workload object down to what the index keeps."""
    md = obj.get("metadata") or {}
    ann = md.get("annotations") or {}
    template = (obj.get("spec") or {}).get("template") or {}
    tann = (template.get("metadata") or {}).get("annotations") or {}
    pod_spec = template.get("spec") or {}
    return Workload(
        kind=kind, namespace=str(md.get("namespace") or ""), name=str(md.get("name") or ""),
        uid=str(md.get("uid") or ""),
        reads=secret_reads(pod_spec) if isinstance(pod_spec, Mapping) else {},
        opted_out=str(ann.get(ROLLOUT_OPT_OUT_ANNOTATION, "")).lower() == "false",
        stamps={k: str(v) for k, v in tann.items() if isinstance(k, str) and k.startswith(STAMP_PREFIX)},
    )


class ConsumerIndex:
    """(namespace, Secret) -> the workloads that read it; thread-safe, updated per workload."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workloads: dict[WorkloadId, Workload] = {}
        self._by_secret: dict[tuple[str, str], set[WorkloadId]] = {}

    def put(self, wl: Workload) -> None:
        with self._lock:
            self._drop(wl.id)
            self._workloads[wl.id] = wl
            for secret in wl.reads:
                self._by_secret.setdefault((wl.namespace, secret), set()).add(wl.id)

    def remove(self, wid: WorkloadId) -> None:
        with self._lock:
            self._drop(wid)

    def _drop(self, wid: WorkloadId) -> None:
        old = self._workloads.pop(wid, None)
        if old is None:
            return
        for secret in old.reads:
            holders = self._by_secret.get((old.namespace, secret))
            if holders is not None:
                holders.discard(wid)
                if not holders:
                    del self._by_secret[(old.namespace, secret)]

    def get(self, wid: WorkloadId) -> Workload | None:
        with self._lock:
            return self._workloads.get(wid)

    def consumers(self, namespace: str, secret: str) -> list[Workload]:
        """Every workload of ``namespace`` whose containers read ``secret``."""
        with self._lock:
            return [self._workloads[w] for w in sorted(self._by_secret.get((namespace, secret), ()))]

    def workloads(self) -> Iterable[Workload]:
        with self._lock:
            return list(self._workloads.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._workloads)
