"""The sync controller's API: custom resource models, parsing, CRD schemas, templates, ESO import.

Sits between the jobs (controller, migrator, audit) and :mod:`secretsync.core`; imports
neither the jobs nor the CLI (import-linter enforces the layering). The public surface is
small on purpose: the models and ``parse_*`` functions; the template engine, schema
generator and ESO converter are imported from their own modules by the few callers that
need them.
"""

from .models import (
    API_VERSION,
    GROUP,
    KIND_CLUSTER_EXTERNAL_SECRET,
    KIND_CLUSTER_SECRET_STORE,
    KIND_EXTERNAL_SECRET,
    KIND_SECRET_STORE,
    PLURALS,
    VERSION,
    ClusterExternalSecret,
    Condition,
    ExternalSecret,
    ExternalSecretStatus,
    InvalidSpec,
    SecretStore,
    SecretStoreStatus,
    external_secret_manifest,
    format_duration,
    parse_cluster_external_secret,
    parse_duration,
    parse_external_secret,
    parse_object,
    parse_secret_store,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND_CLUSTER_EXTERNAL_SECRET",
    "KIND_CLUSTER_SECRET_STORE",
    "KIND_EXTERNAL_SECRET",
    "KIND_SECRET_STORE",
    "PLURALS",
    "VERSION",
    "ClusterExternalSecret",
    "Condition",
    "ExternalSecret",
    "ExternalSecretStatus",
    "InvalidSpec",
    "SecretStore",
    "SecretStoreStatus",
    "external_secret_manifest",
    "format_duration",
    "parse_cluster_external_secret",
    "parse_duration",
    "parse_external_secret",
    "parse_object",
    "parse_secret_store",
]
