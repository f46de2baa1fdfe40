"""The ``kubernetes`` provider factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from secretsync.core.contract import Capabilities
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..factorybase import ConfiguredFactory
from . import config as cfg
from .auth import target
from .client import CAPABILITIES, KubernetesClient
from .names import NAME_RULES
from .sdk import SecretsApi


class KubernetesFactory(ConfiguredFactory):
    config_module = cfg
    name = cfg.PROVIDER
    #: Other keys its SecretStore block may be written under.
    aliases: tuple[str, ...] = ()
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NAME_RULES
    #: The block's description in the SecretStore CRD.
    block_doc = (
        "Secrets of a namespace, read with the store's own identity (ESO's kubernetes provider): "
        "{remoteNamespace, server?: {url?, caBundle?, caProvider?}, auth: {serviceAccount | "
        "token.bearerToken}}."
    )
    capabilities: Capabilities = CAPABILITIES

    def open(self, config: Mapping[str, Any], settings: ClientSettings | None = None,
             credentials: Mapping[str, SecretValue] | None = None) -> KubernetesClient:
        parsed = cfg.parse_config(config)
        settings = settings or ClientSettings()
        where = target(parsed, credentials)
        api = SecretsApi(where.server, where.token, where.ca_pem, settings.timeouts.read)
        return KubernetesClient(api, parsed["remoteNamespace"], settings)


factory = KubernetesFactory()
