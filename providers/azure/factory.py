"""The Azure Key Vault factory: what the provider declares and how a client is opened.

The block dialects, the canonical config (:class:`.config.AzureConfig`) and what a config
draws on live in :mod:`.config`; the credential in :mod:`.auth`; the SDK seam in :mod:`.sdk`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from secretsync.core.contract import Capabilities, NameRules, SecretsClient
from secretsync.core.errors import InvalidConfig
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..factorybase import ConfiguredFactory
from . import config as cfg
from .auth import CountedCredential, StaticTokenCredential, build_credential
from .client import CAPABILITIES, AzureKeyVaultClient
from .config import TEST_CA_CERT_ENV, AzureConfig, _fail
from .names import MODES, NameCodec, UnstorableName
from .sdk import SdkKeyVaultApi, pipeline_options


class AzureKeyVaultFactory(ConfiguredFactory):
    """The ``azure`` provider: validates config and opens :class:`AzureKeyVaultClient`."""

    config_module = cfg
    name = "azure"
    #: Other keys its SecretStore block may be written under.
    aliases: tuple[str, ...] = ("azurekv",)
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NameRules(r"0-9A-Za-z-", 127, False, first_alpha=True)
    #: The block's description in the SecretStore CRD.
    block_doc = (
        'Azure Key Vault: {vaultUrl, authType?: '
        'default|workloadIdentity|managedIdentity|servicePrincipal|accessToken, tenantId?, '
        'clientId?, authorityHost?, secretRef?: {clientSecret | clientCertificate, '
        'clientCertificatePassword?}} or ESO azurekv: {vaultUrl, authType?, tenantId?, '
        'environmentType?, identityId?, authSecretRef?: {clientId?, tenantId?, clientSecret?, '
        'clientCertificate?}, serviceAccountRef?}.'
    )
    capabilities: Capabilities = CAPABILITIES

    def addressed_names(self, config: Mapping[str, Any], key: str) -> tuple[str, ...]:
        """The object a read of ``key`` addresses (see :meth:`.names.NameCodec.addressed_name`)."""
        mode = config.get("nameEncoding") or "verbatim"
        if mode not in MODES:
            return (key,)  # the store does not open (validate_config says why): nothing is read
        try:
            return (NameCodec(mode).addressed_name(key),)
        except UnstorableName as exc:
            raise InvalidConfig(f"invalid secret name: {exc}", provider=self.name, operation="name",
                                key=key) from None

    def open(
        self,
        config: Mapping[str, Any],
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> SecretsClient:
        cfg = AzureConfig.parse(config)
        settings = settings or ClientSettings()
        t = settings.timeouts
        # Bounded: a dead endpoint fails as Unavailable in seconds. Status retries are off
        # (429/5xx surface at once with their Retry-After; the controller retries above).
        transport: dict[str, Any] = {
            "connection_timeout": t.connect,
            "read_timeout": t.read,
            "retry_total": t.sdk_retries,
            "retry_connect": t.sdk_retries,
            "retry_read": t.sdk_retries,
            "retry_status": 0,
            "retry_backoff_factor": 0.2,
            "retry_backoff_max": 2,
        }
        ca_cert = cfg.ca_cert or (os.environ.get(TEST_CA_CERT_ENV) if cfg.endpoint else None)
        if ca_cert:
            transport["connection_verify"] = ca_cert
        credential = build_credential(
            cfg.auth_type, tenant_id=cfg.tenant_id, client_id=cfg.client_id,
            authority_host=cfg.authority_host, credentials=credentials, transport=transport,
        )
        # One bucket for every HTTP request of this store: vault calls (each attempt, in the
        # pipeline) and token requests to Entra ID alike.
        limiter = settings.rate_limit.bucket()
        if not isinstance(credential, StaticTokenCredential):
            credential = CountedCredential(credential, settings.calls, limiter)
        try:
            api = SdkKeyVaultApi(
                cfg.endpoint or cfg.vault_url, credential,
                lambda: {"verify_challenge_resource": cfg.endpoint is None,
                         **pipeline_options(limiter, **transport)},
            )
        except (ValueError, NotImplementedError) as exc:
            raise _fail(f"cannot open {cfg.vault_url}: {exc}") from exc
        return AzureKeyVaultClient(
            api, vault_url=cfg.vault_url, names=NameCodec(cfg.name_encoding),
            purge_on_delete=cfg.purge_on_delete, settings=settings, max_workers=cfg.max_concurrency,
            limited_in_pipeline=True,
        )


factory = AzureKeyVaultFactory()
