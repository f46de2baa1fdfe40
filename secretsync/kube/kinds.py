"""Every Kubernetes kind secretsync reads or writes, in one table: REST path, scope, pod spec.

Why one table: the controller, the migrator (``migrate --cluster``), the scanner
(``scan --cluster``) and the audit all talk to the API server. Each used to keep its own
list of group versions and plurals, its own CronJob fallback and its own idea of where a
workload keeps its pod spec; they drifted. Here a :class:`Resource` says where a kind lives
(group, version, plural, namespaced), where its pod spec sits (``pod_spec``) and which older
group versions a server may serve instead (``fallbacks``: CronJob is ``batch/v1beta1`` before
Kubernetes 1.21). The client (:mod:`.client`) is the only code that turns a Resource into a
path. Built-in kinds only, with no import of :mod:`secretsync.api`, so a provider may use this
table (the ``kubernetes`` provider does); secretsync's own CRDs are in :mod:`.crds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import quote

RBAC_GROUP: Final = "rbac.authorization.k8s.io"


@dataclass(frozen=True, slots=True)
class Resource:
    """One REST resource (``group`` empty for the core API).

    ``pod_spec`` and ``fallbacks`` are knowledge about the kind, not its identity: two
    Resources for the same group/version/plural compare equal whatever they say there.
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    #: Where the pod spec sits in an object of this kind (empty: the kind runs no pods).
    pod_spec: tuple[str, ...] = field(default=(), compare=False)
    #: Older versions of the same group a server may serve instead (tried in order on 404).
    fallbacks: tuple[str, ...] = field(default=(), compare=False)

    @property
    def group_version_path(self) -> str:
        """The group version's discovery path (GET it to learn whether the server serves it)."""
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = self.group_version_path
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def versions(self) -> tuple[Resource, ...]:
        """This resource, then the same at each fallback version (what a 404 makes us try next)."""
        return (self, *(replace(self, version=v, fallbacks=()) for v in self.fallbacks))


_TEMPLATE: Final = ("spec", "template", "spec")

# -- core ---------------------------------------------------------------------------------------
SECRETS: Final = Resource("", "v1", "secrets", "Secret")
CONFIGMAPS: Final = Resource("", "v1", "configmaps", "ConfigMap")
NAMESPACES: Final = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
EVENTS: Final = Resource("", "v1", "events", "Event")
SERVICE_ACCOUNTS: Final = Resource("", "v1", "serviceaccounts", "ServiceAccount")
PODS: Final = Resource("", "v1", "pods", "Pod", pod_spec=("spec",))
POD_TEMPLATES: Final = Resource("", "v1", "podtemplates", "PodTemplate", pod_spec=("template", "spec"))
REPLICATION_CONTROLLERS: Final = Resource("", "v1", "replicationcontrollers", "ReplicationController",
                                          pod_spec=_TEMPLATE)
LEASES: Final = Resource("coordination.k8s.io", "v1", "leases", "Lease")
INGRESSES: Final = Resource("networking.k8s.io", "v1", "ingresses", "Ingress")
# -- workloads ----------------------------------------------------------------------------------
DEPLOYMENTS: Final = Resource("apps", "v1", "deployments", "Deployment", pod_spec=_TEMPLATE)
STATEFULSETS: Final = Resource("apps", "v1", "statefulsets", "StatefulSet", pod_spec=_TEMPLATE)
DAEMONSETS: Final = Resource("apps", "v1", "daemonsets", "DaemonSet", pod_spec=_TEMPLATE)
REPLICASETS: Final = Resource("apps", "v1", "replicasets", "ReplicaSet", pod_spec=_TEMPLATE)
JOBS: Final = Resource("batch", "v1", "jobs", "Job", pod_spec=_TEMPLATE)
CRONJOBS: Final = Resource("batch", "v1", "cronjobs", "CronJob", pod_spec=("spec", "jobTemplate", *_TEMPLATE),
                           fallbacks=("v1beta1",))
#: Argo Rollouts (a CRD: an absent one is a 404 the callers expect).
ARGO_ROLLOUTS: Final = Resource("argoproj.io", "v1alpha1", "rollouts", "Rollout", pod_spec=_TEMPLATE)
# -- RBAC ---------------------------------------------------------------------------------------
ROLES: Final = Resource(RBAC_GROUP, "v1", "roles", "Role")
ROLE_BINDINGS: Final = Resource(RBAC_GROUP, "v1", "rolebindings", "RoleBinding")
CLUSTER_ROLES: Final = Resource(RBAC_GROUP, "v1", "clusterroles", "ClusterRole", namespaced=False)
CLUSTER_ROLE_BINDINGS: Final = Resource(RBAC_GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding",
                                        namespaced=False)


#: Every built-in kind above, by kind name.
BY_KIND: Final = {r.kind: r for r in (
    SECRETS, CONFIGMAPS, NAMESPACES, EVENTS, SERVICE_ACCOUNTS, PODS, POD_TEMPLATES, REPLICATION_CONTROLLERS, LEASES,
    INGRESSES, DEPLOYMENTS, STATEFULSETS, DAEMONSETS, REPLICASETS, JOBS, CRONJOBS, ARGO_ROLLOUTS, ROLES,
    ROLE_BINDINGS, CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS)}
#: The built-in kinds that run pods, in the order the scanner and the audit list them.
POD_KINDS: Final = (PODS, REPLICATION_CONTROLLERS, DEPLOYMENTS, STATEFULSETS, DAEMONSETS, REPLICASETS, JOBS, CRONJOBS)
