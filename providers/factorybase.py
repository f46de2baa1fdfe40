"""What every provider's factory answers from its ``config`` module, written once.

Why: each provider keeps its block dialects, URL form, validation and trust declaration in
``config.py`` (one role, one file, in every folder); the factory's four config-facing methods
only hand over to it. A factory sets ``config_module`` and keeps what is its own: ``open``
(and a change feed where it has one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from secretsync.core.contract import CredentialUse, StoreBlock


class ConfigModule(Protocol):
    """The functions a provider's ``config.py`` offers its factory."""

    def store_block(self, block: Mapping[str, Any]) -> StoreBlock: ...

    def config_from_url(self, url: str) -> dict[str, Any]: ...

    def validate_config(self, config: Mapping[str, Any]) -> None: ...

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse: ...


class ConfiguredFactory:
    """Base of the built-in factories: the config-facing half of ``ProviderFactory``."""

    config_module: ConfigModule

    def store_block(self, block: Mapping[str, Any]) -> StoreBlock:
        """The block as written (secretsync's dialect or ESO's) -> canonical config and credentials."""
        return self.config_module.store_block(block)

    def config_from_url(self, url: str) -> dict[str, Any]:
        return self.config_module.config_from_url(url)

    def validate_config(self, config: Mapping[str, Any]) -> None:
        self.config_module.validate_config(config)

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        return self.config_module.credential_use(config, credentials)
