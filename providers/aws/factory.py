"""The ``aws`` provider factory: store URL -> validated config -> :class:`AwsClient`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import NoRegionError

from secretsync.core.changes import ChangeFeed
from secretsync.core.contract import (
    Capabilities,
    CredentialUse,
    NameRules,
    SecretsClient,
    StoreBlock,
    generic_store_block,
)
from secretsync.core.errors import InvalidConfig, ProviderError
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from .client import CAPABILITIES, AwsClient
from .config import PROVIDER, config_from_url, credential_use, parse_config
from .error_mapping import map_error
from .events import open_feed, validate_queue_url
from .sdk import build_client


class AwsFactory:
    """Stateless: validates ``aws://REGION[/PREFIX]`` configs and opens clients."""

    name = PROVIDER
    #: Other keys its SecretStore block may be written under.
    aliases: tuple[str, ...] = ()
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NameRules(r"A-Za-z0-9/_+=.@-", 512, True)
    #: The block's description in the SecretStore CRD.
    block_doc = (
        'AWS Secrets Manager: {region, prefix?, role?, endpoint?, recoveryWindowDays?, profile?, '
        'secretRef?: {accessKeyID, secretAccessKey, sessionToken?}}.'
    )
    capabilities: Capabilities = CAPABILITIES

    def store_block(self, block: Mapping[str, Any]) -> StoreBlock:
        """The block as written -> canonical config and the credentials it names."""
        return generic_store_block(block, ("sts.amazonaws.com",))

    def config_from_url(self, url: str) -> dict[str, Any]:
        return config_from_url(url)

    def validate_config(self, config: Mapping[str, Any]) -> None:
        parse_config(config)

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        return credential_use(config, credentials)

    def open(
        self,
        config: Mapping[str, Any],
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> SecretsClient:
        """Build the boto3 client now (no AWS call yet; credentials resolve on first use)."""
        cfg = parse_config(config)
        settings = settings or ClientSettings()
        limiter = settings.rate_limit.bucket()
        try:
            api = build_client(cfg, settings.timeouts, credentials, limiter, settings.calls)
        except ProviderError:
            raise
        except NoRegionError as exc:
            raise InvalidConfig(
                "aws store config field 'region': not set, and neither AWS_REGION nor the profile "
                "gives one (use aws://REGION)", provider=PROVIDER, operation="open",
            ) from exc
        except Exception as exc:
            raise map_error(exc, "open") from exc
        return AwsClient(api, cfg, settings, limiter)

    # -- change feed (secretsync.core.changes.ChangeFeedFactory) -----------------------------
    def validate_feed(self, subscription: str) -> None:
        validate_queue_url(subscription)

    def open_feed(
        self,
        config: Mapping[str, Any],
        subscription: str,
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> ChangeFeed:
        """An SQS queue fed by EventBridge (providers/aws/events.py), with the store's session."""
        return open_feed(config, subscription, settings, credentials)


factory = AwsFactory()
