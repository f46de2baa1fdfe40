"""``--emit eso``: ExternalSecrets and SecretStores for the External Secrets Operator (external-secrets.io/v1).

Why: teams that already run ESO want its objects, not ours. The ExternalSecret spec is the
same shape (secretStoreRef, refreshInterval, target with creation/deletion policy and
template metadata, data[].remoteRef), so only the API version changes. A store maps to
ESO's provider block for the same backend; ESO's authentication is the cluster's own
choice (IRSA, workload identity, a token Secret) and is left for the team to add.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from secretsync.core.errors import InvalidConfig

ESO_API_VERSION = "external-secrets.io/v1"


def external_secret(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Our ExternalSecret manifest as ESO's (same spec, ESO's API version)."""
    out = copy.deepcopy(dict(manifest))
    out["apiVersion"] = ESO_API_VERSION
    return out


def provider_block(provider: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """ESO's ``spec.provider`` for one of our store configs; InvalidConfig when ESO cannot read it the same."""
    if config.get("prefix"):
        raise InvalidConfig("--emit eso: the store URL has a key prefix, which ESO would not add to the keys; "
                            "put the prefix into --name-template instead")
    if provider == "aws":
        return {"aws": {"service": "SecretsManager", "region": str(config.get("region") or "")}}
    if provider == "gcp":
        return {"gcpsm": {"projectID": str(config["project"])}}
    if provider == "azure":
        return {"azurekv": {"vaultUrl": str(config["vaultUrl"])}}
    if provider == "vault":
        block: dict[str, Any] = {"server": str(config.get("address") or "https://vault:8200"),
                                 "path": str(config.get("mount") or "secret"),
                                 "version": "v1" if str(config.get("kvVersion")) == "1" else "v2"}
        if config.get("namespace"):
            block["namespace"] = str(config["namespace"])
        return {"vault": block}
    raise InvalidConfig(f"--emit eso: ESO has no provider for {provider}:// stores; choose aws, gcp, azure or vault")


def store(name: str, namespace: str | None, kind: str, provider: str, config: Mapping[str, Any],
          labels: Mapping[str, str]) -> dict[str, Any]:
    """An ESO SecretStore / ClusterSecretStore (authentication left to the team: see the module doc)."""
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace and kind == "SecretStore":
        metadata["namespace"] = namespace
    return {"apiVersion": ESO_API_VERSION, "kind": kind, "metadata": metadata,
            "spec": {"provider": provider_block(provider, config)}}
