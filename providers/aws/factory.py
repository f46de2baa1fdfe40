"""The ``aws`` provider factory: store URL or SecretStore block -> validated config -> a client.

``service: SecretsManager`` (the default) opens :class:`~.client.AwsClient`, ``service:
ParameterStore`` opens :class:`~.parameters.ParameterStoreClient`; both share the session
(:mod:`.auth`) and the error mapping (:mod:`.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import NoRegionError

from secretsync.core.changes import ChangeFeed
from secretsync.core.contract import (
    Capabilities,
    NameRules,
    SecretsClient,
)
from secretsync.core.errors import InvalidConfig, ProviderError
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..factorybase import ConfiguredFactory
from . import config as cfg_module
from .auth import build_session
from .client import CAPABILITIES, AwsClient
from .config import PARAMETER_STORE, PROVIDER, parse_config
from .errors import mapper
from .events import open_feed, validate_queue_url
from .names import NAME_RULES, name_rules
from .parameters import ParameterStoreClient
from .sdk import service_client


class AwsFactory(ConfiguredFactory):
    """Stateless: validates ``aws://REGION[/PREFIX]`` configs and opens clients."""

    config_module = cfg_module
    name = PROVIDER
    #: Other keys its SecretStore block may be written under.
    aliases: tuple[str, ...] = ()
    #: Names Secrets Manager stores verbatim; a store's own rules come from name_rules_for.
    name_rules = NAME_RULES
    #: The block's description in the SecretStore CRD.
    block_doc = (
        'AWS Secrets Manager or SSM Parameter Store. secretsync: {region, prefix?, role?, endpoint?, '
        'recoveryWindowDays?, profile?, secretRef?: {accessKeyID, secretAccessKey, sessionToken?}, '
        'serviceAccountRef?}. ESO: {service, region, role?, externalID?, sessionTags?, additionalRoles?, prefix?, '
        'auth?: {secretRef: {accessKeyIDSecretRef, secretAccessKeySecretRef, sessionTokenSecretRef?} | '
        'jwt: {serviceAccountRef}}, secretsManager?: {forceDeleteWithoutRecovery?, recoveryWindowInDays?}}.'
    )
    capabilities: Capabilities = CAPABILITIES

    def name_rules_for(self, config: Mapping[str, Any]) -> NameRules:
        """The names this store keeps verbatim: its service's rules, after its prefix."""
        return name_rules(parse_config(config))

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
        service = "ssm" if cfg.service == PARAMETER_STORE else "secretsmanager"
        try:
            session = build_session(cfg, credentials, settings.timeouts, limiter, settings.calls)
            api = service_client(session, service, cfg.endpoint, settings.timeouts, limiter)
        except ProviderError:
            raise
        except NoRegionError as exc:
            raise InvalidConfig(
                "aws store config field 'region': not set, and neither AWS_REGION nor the profile "
                "gives one (use aws://REGION)", provider=PROVIDER, operation="open",
            ) from exc
        except Exception as exc:
            error, cause = mapper(exc, "open", None)
            raise error from cause
        if cfg.service == PARAMETER_STORE:
            return ParameterStoreClient(api, cfg, settings, limiter)
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
