"""The ``kubernetes`` provider: Secrets of a namespace (this cluster or another) as a store.

ESO's Kubernetes provider, read-only: it is how one namespace's Secret is fanned out to many
(ClusterExternalSecret over a ClusterSecretStore of this provider), always with the store's
own ServiceAccount token or bearer token, so its reach is exactly that identity's RBAC.
"""

from .factory import factory

__all__ = ["factory"]
