"""The labels and annotations secretsync puts on (or reads from) Kubernetes objects.

Why one module: the controller writes them, and the scanner, the migrator and the audit
recognise the controller's Secrets by them. A label spelled twice is a label that drifts
(a scan that stops skipping managed Secrets, a migration that misses a merge), so every job
imports them from here.
"""

from __future__ import annotations

import hashlib
from typing import Final

#: Label on every Secret the controller writes: the managed-Secret watch selects on it, so
#: Secrets it does not manage cost the controller neither memory nor events.
MANAGED_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_VALUE: Final = "secretsync"
#: ``MANAGED_LABEL: MANAGED_VALUE`` as a label map (copy before changing it).
MANAGED_BY: Final = {MANAGED_LABEL: MANAGED_VALUE}
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
#: Annotations on managed Secrets (never values: the hash is keyed, see controller/hashing.py).
HASH_ANNOTATION: Final = "secretsync.io/data-hash"
OWNER_ANNOTATION: Final = "secretsync.io/external-secret"
#: On Secrets a ClusterExternalSecret's ExternalSecrets write.
CES_LABEL: Final = "secretsync.io/cluster-external-secret"
#: Legacy (one merging ExternalSecret per Secret); read to convert, never written.
MERGED_KEYS_ANNOTATION: Final = "secretsync.io/merged-keys"
#: Which template labels/annotations of a managed Secret are ours (so removing one from the
#: template removes it from the Secret).
OWNED_METADATA_ANNOTATION: Final = "secretsync.io/owned-metadata"
#: creationPolicy Merge: one annotation per merging ExternalSecret (``merge.secretsync.io/<name>``)
#: listing the keys, labels and annotations it owns in that Secret.
MERGE_ANNOTATION_PREFIX: Final = "merge.secretsync.io/"
#: On an ExternalSecret or an existing Secret: allow taking over an unmanaged Secret.
ADOPT_ANNOTATION: Final = "secretsync.io/adopt"
#: Changing this annotation on an ExternalSecret forces an immediate refresh (like ESO's force-sync).
FORCE_SYNC_ANNOTATION: Final = "secretsync.io/force-sync"
#: On what ``migrate`` created: the object whose plaintext it replaced.
MIGRATED_FROM_ANNOTATION: Final = "secretsync.io/migrated-from"
#: kubectl keeps the whole object it last applied here, as JSON: every plaintext value again.
LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"
#: ``fieldManager`` of the controller's writes (and the name ``managedFields`` shows).
FIELD_MANAGER: Final = "secretsync-controller"
_ANNOTATION_NAME_MAX: Final = 63


def merge_annotation(es_name: str) -> str:
    """``merge.secretsync.io/<name>``; names longer than an annotation name allows are shortened
    with a hash suffix (stable, so the same ExternalSecret always finds its own entry)."""
    if len(es_name) <= _ANNOTATION_NAME_MAX:
        return MERGE_ANNOTATION_PREFIX + es_name
    digest = hashlib.sha256(es_name.encode()).hexdigest()[:8]
    return f"{MERGE_ANNOTATION_PREFIX}{es_name[:54].rstrip('.-')}-{digest}"
