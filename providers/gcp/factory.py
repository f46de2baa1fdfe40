"""The GCP Secret Manager factory: what the provider declares and how a client is opened.

The block dialects, the canonical config and what it draws on live in :mod:`.config`; the
credentials and the SDK client in :mod:`.auth`. The plaintext test endpoint of the fake
server is not a store field: it is the process's ``SECRETSYNC_GCP_INSECURE_ENDPOINT``, so no
store author can make the client send anything in plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from secretsync.core.changes import ChangeFeed
from secretsync.core.contract import NameRules, SecretsClient
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..factorybase import ConfiguredFactory
from . import config as cfg
from .auth import build_sdk_client, connection_spec
from .client import CAPABILITIES, GcpClient
from .events import open_feed, validate_subscription
from .sdk import SecretManagerApi


class GcpFactory(ConfiguredFactory):
    config_module = cfg
    name = "gcp"
    #: Other keys its SecretStore block may be written under.
    aliases: tuple[str, ...] = ("gcpsm",)
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NameRules(r"A-Za-z0-9_-", 255, False)
    #: The block's description in the SecretStore CRD.
    block_doc = ('GCP Secret Manager: {project, location?, endpoint?, secretRef?: {serviceAccountKey | accessToken}} '
                 'or ESO gcpsm: {projectID, location?, secretVersionSelectionPolicy?, auth?: {secretRef | '
                 'workloadIdentity | workloadIdentityFederation}}.')
    capabilities = CAPABILITIES

    def open(
        self,
        config: Mapping[str, Any],
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> SecretsClient:
        self.validate_config(config)
        settings = settings or ClientSettings()
        spec = connection_spec(config, credentials)
        api = SecretManagerApi(lambda: build_sdk_client(spec), settings)
        return GcpClient(str(config["project"]), config.get("location"), api, settings,
                         prefix=str(config.get("prefix") or ""), where=spec.describe(),
                         fallback=config.get("secretVersionSelectionPolicy", cfg.DEFAULT_POLICY) == "LatestOrFetch")

    # -- change feed (secretsync.core.changes.ChangeFeedFactory) -----------------------------
    def validate_feed(self, subscription: str) -> None:
        validate_subscription(subscription)

    def open_feed(
        self,
        config: Mapping[str, Any],
        subscription: str,
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> ChangeFeed:
        """A Pub/Sub subscription of Secret Manager notifications (providers/gcp/events.py)."""
        self.validate_config(config)
        return open_feed(config, subscription, settings, credentials)


factory = GcpFactory()
