"""``vault://`` / ``openbao://``: the ProviderFactory for HashiCorp Vault and OpenBao KV mounts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..factorybase import ConfiguredFactory
from . import config as cfg
from .auth import TokenSession, authenticator
from .client import CAPABILITIES_V2, VaultClient, check_name
from .names import NAME_RULES, read_paths
from .sdk import HvacTransport


class VaultFactory(ConfiguredFactory):
    """Stateless: parses URLs, validates config, opens :class:`VaultClient` (no call made yet)."""

    config_module = cfg
    name = "vault"
    #: Other keys its SecretStore block may be written under.
    aliases: tuple[str, ...] = ()
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NAME_RULES
    #: The block's description in the SecretStore CRD.
    block_doc = (
        'HashiCorp Vault / OpenBao KV, in ESO\'s dialect {server, path, version?, namespace?, caBundle?, '
        'caProvider?, tls?, auth: {tokenSecretRef | appRole | kubernetes | jwt | cert | userPass | ldap, '
        'namespace?}} or secretsync\'s {address, mount, prefix?, kvVersion?, namespace?, caBundle?, '
        'auth?: {method: token|kubernetes|approle|jwt|cert|userpass|ldap, mountPath?, role?, roleId?, '
        'username?, namespace?}, secretRef?: {credential: {name, key}}, serviceAccountRef?}.'
    )
    capabilities = CAPABILITIES_V2

    def addressed_names(self, config: Mapping[str, Any], key: str) -> tuple[str, ...]:
        """Every path a read of ``key`` may try (a key starting with the mount reads the path
        after it first); a name with '.', '..' or empty segments is refused, as every read does."""
        check_name(key)
        version = cfg.kv_version(config)
        mount = str(config.get("mount") or cfg.DEFAULT_MOUNT).strip("/")
        return tuple(read_paths(key, mount, lambda: None if version is None else version == 2))

    def open(
        self,
        config: Mapping[str, Any],
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> VaultClient:
        """Resolve address/TLS/namespace (config, then VAULT_* / BAO_* env) and the auth method.

        Nothing is sent here: login, mount detection and the first request happen lazily,
        so opening a client for an unreachable server fails on first use, as Unavailable.
        """
        self.validate_config(config)
        settings = settings or ClientSettings()
        transport = HvacTransport(cfg.endpoint(config, credentials=credentials or {}), settings)
        session = TokenSession(authenticator(config, credentials or {}), transport)
        return VaultClient(
            transport,
            session,
            mount=str(config.get("mount") or cfg.DEFAULT_MOUNT),
            prefix=str(config.get("prefix") or ""),
            kv_version=cfg.kv_version(config),
            settings=settings,
        )


factory = VaultFactory()
