"""``vault://`` / ``openbao://``: the ProviderFactory for HashiCorp Vault and OpenBao KV mounts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from secretsync.core.contract import CredentialUse, NameRules, StoreBlock, generic_store_block
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from . import config as cfg
from .auth import TokenSession, authenticator
from .client import CAPABILITIES_V2, VaultClient
from .transport import HvacTransport


class VaultFactory:
    """Stateless: parses URLs, validates config, opens :class:`VaultClient` (no call made yet)."""

    name = "vault"
    #: Other keys its SecretStore block may be written under.
    aliases: tuple[str, ...] = ()
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NameRules(r"A-Za-z0-9/_.@+=-", 512, True)
    #: The block's description in the SecretStore CRD.
    block_doc = (
        'HashiCorp Vault / OpenBao KV: {address, mount, prefix?, kvVersion?, namespace?, caCert?, '
        'auth?: {method: token|kubernetes|approle|jwt, mountPath?, role?, roleId?}, secretRef?: '
        '{token | roleId, secretId | jwt}, serviceAccountRef?}.'
    )
    capabilities = CAPABILITIES_V2

    def store_block(self, block: Mapping[str, Any]) -> StoreBlock:
        """The block as written -> canonical config and the credentials it names."""
        return generic_store_block(block)

    def config_from_url(self, url: str) -> dict[str, Any]:
        return cfg.config_from_url(url)

    def validate_config(self, config: Mapping[str, Any]) -> None:
        cfg.validate_config(config)

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        return cfg.credential_use(config, credentials)

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
        transport = HvacTransport(cfg.endpoint(config), settings)
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
