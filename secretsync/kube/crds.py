"""secretsync's own kinds (the CRDs of :mod:`secretsync.api`) as REST resources.

Apart from :mod:`.kinds` so that the built-in table imports nothing of the API layer (a
provider may read it); the group, version, plurals and scope come from the API models, once.
"""

from __future__ import annotations

from typing import Final

from secretsync.api.models import (
    GROUP,
    KIND_CLUSTER_EXTERNAL_SECRET,
    KIND_CLUSTER_SECRET_STORE,
    KIND_EXTERNAL_SECRET,
    KIND_SECRET_ROTATION,
    KIND_SECRET_STORE,
    NAMESPACED,
    PLURALS,
    VERSION,
)

from . import kinds
from .kinds import Resource


def _ours(kind: str) -> Resource:
    return Resource(GROUP, VERSION, PLURALS[kind], kind, namespaced=NAMESPACED[kind])


EXTERNAL_SECRETS: Final = _ours(KIND_EXTERNAL_SECRET)
SECRET_STORES: Final = _ours(KIND_SECRET_STORE)
CLUSTER_SECRET_STORES: Final = _ours(KIND_CLUSTER_SECRET_STORE)
CLUSTER_EXTERNAL_SECRETS: Final = _ours(KIND_CLUSTER_EXTERNAL_SECRET)
SECRET_ROTATIONS: Final = _ours(KIND_SECRET_ROTATION)

#: Every kind secretsync knows, built-in and its own, by kind name.
ALL_BY_KIND: Final = {**kinds.BY_KIND, **{r.kind: r for r in (
    EXTERNAL_SECRETS, SECRET_STORES, CLUSTER_SECRET_STORES, CLUSTER_EXTERNAL_SECRETS, SECRET_ROTATIONS)}}
