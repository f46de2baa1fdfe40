"""Turn ``azure://VAULT`` or ``https://VAULT.vault.azure.net`` and a config into a client.

Config fields (a SecretStore spec uses the same names; a URL takes them as query
parameters, e.g. ``azure://myvault?authType=managedIdentity&clientId=...``):

``vaultUrl``        ``https://VAULT.vault.azure.net`` (filled in from the URL)
``authType``        ``default`` | ``workloadIdentity`` | ``managedIdentity`` |
                    ``servicePrincipal`` | ``accessToken`` (ESO's PascalCase spellings too)
``tenantId``        Entra ID tenant (servicePrincipal; optional for the others)
``clientId``        application / user-assigned identity client id
``authorityHost``   Entra ID host for sovereign clouds (``https://login.chinacloudapi.cn``)
``purgeOnDelete``   purge after every delete, so names are free at once (needs purge permission)
``nameEncoding``    ``verbatim`` (default: legal Key Vault names, 1-127 letters, digits and dashes,
                    read and written as they are, as ESO and every other tool name them) |
                    ``escape`` (opt-in: any name, mapped reversibly; see :mod:`.names`)
``maxConcurrency``  parallel GETs in ``get_many`` (default 8)
``caCert``          PEM bundle file to verify the vault's TLS certificate (default: system CAs);
                    a file of the controller, so a ClusterSecretStore field only

The fake vault of the tests is reached through the process's environment, never a store
field (a store field would let its author pick where the controller's token is sent and
for which resource): ``SECRETSYNC_AZURE_TEST_ENDPOINT`` sends every request there instead
of ``vaultUrl`` and ``SECRETSYNC_AZURE_TEST_CA_CERT`` verifies its certificate; they are
read when a client is opened. ``SECRETSYNC_AZURE_ACCESS_TOKEN`` selects ``authType:
accessToken`` when a store URL names no authType.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from secretsync.core.contract import (
    Capabilities,
    CredentialUse,
    NameRules,
    SecretsClient,
    StoreBlock,
    generic_store_block,
)
from secretsync.core.errors import InvalidConfig
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from .api import SdkKeyVaultApi, pipeline_options
from .auth import (
    ACCESS_TOKEN_ENV,
    AUTH_TYPES,
    WELL_KNOWN_AUTHORITIES,
    AuthType,
    CountedCredential,
    StaticTokenCredential,
    build_credential,
)
from .client import CAPABILITIES, AzureKeyVaultClient
from .names import MODES, Mode, NameCodec

TEST_ENDPOINT_ENV = "SECRETSYNC_AZURE_TEST_ENDPOINT"
TEST_CA_CERT_ENV = "SECRETSYNC_AZURE_TEST_CA_CERT"

#: DNS suffix of each Azure cloud's vaults.
DEFAULT_SUFFIX = ".vault.azure.net"
_SUFFIXES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net", ".vault.microsoftazure.de")
#: Key Vault names: 3-24 characters, letters, digits and dashes, starting with a letter.
_VAULT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")

_KEYS = frozenset({
    "vaultUrl", "authType", "tenantId", "clientId", "authorityHost", "purgeOnDelete", "nameEncoding",
    "maxConcurrency", "caCert",
})
_AUTH_ALIASES = {a.lower(): a for a in AUTH_TYPES}


def _fail(message: str) -> InvalidConfig:
    return InvalidConfig(message, provider="azure", operation="config")


#: Tenant and client ids: GUIDs, or tenant domain names / "organizations".
_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$")


def _https_url(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(f"config field {field!r} must be an https URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise _fail(f"config field {field!r} is not a valid URL ({exc}): {value[:80]!r}") from None
    if parts.scheme != "https" or not parts.hostname or any(ord(c) <= 0x20 for c in value):
        raise _fail(f"config field {field!r} must be an https URL (got {value[:80]!r})")
    return value.rstrip("/")


def _bool(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise _fail(f"config field {field!r} must be true or false (got {value!r})")


@dataclass(frozen=True, slots=True)
class AzureConfig:
    vault_url: str
    auth_type: AuthType = "default"
    tenant_id: str | None = None
    client_id: str | None = None
    authority_host: str | None = None
    purge_on_delete: bool = False
    name_encoding: Mode = "verbatim"
    max_concurrency: int = 8
    ca_cert: str | None = None
    endpoint: str | None = None

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> AzureConfig:
        unknown = sorted(set(config) - _KEYS)
        if unknown:
            raise _fail(f"unknown config field {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
        if "vaultUrl" not in config:
            raise _fail("config field 'vaultUrl' is required (https://VAULT.vault.azure.net)")
        vault_url = _https_url("vaultUrl", config["vaultUrl"])
        parts = urlsplit(vault_url)
        if parts.path not in ("", "/"):
            raise _fail(f"config field 'vaultUrl' must have no path (got {vault_url!r})")
        host = (parts.hostname or "").lower()
        for suffix in _SUFFIXES:
            if host.endswith(suffix) and not _VAULT_NAME.match(host[: -len(suffix)]):
                raise _fail(f"config field 'vaultUrl': {host[: -len(suffix)]!r} is not a Key Vault name "
                            "(3-24 letters, digits and dashes, starting with a letter)")

        raw_auth = config.get("authType") or "default"
        if not isinstance(raw_auth, str) or raw_auth.lower() not in _AUTH_ALIASES:
            raise _fail(f"config field 'authType' must be one of {', '.join(AUTH_TYPES)} (got {raw_auth!r})")
        auth_type: AuthType = _AUTH_ALIASES[raw_auth.lower()]

        def opt_str(field: str) -> str | None:
            value = config.get(field)
            if value is None or value == "":
                return None
            if not isinstance(value, str):
                raise _fail(f"config field {field!r} must be a string")
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise _fail(f"config field {field!r} contains a control character")
            return value

        encoding = config.get("nameEncoding", "verbatim")
        if encoding not in MODES:
            raise _fail(f"config field 'nameEncoding' must be one of {', '.join(MODES)} (got {encoding!r})")
        raw_concurrency = config.get("maxConcurrency", 8)
        try:
            if isinstance(raw_concurrency, bool) or (isinstance(raw_concurrency, float)
                                                     and not raw_concurrency.is_integer()):
                raise ValueError
            concurrency = int(raw_concurrency)
        except (TypeError, ValueError):
            raise _fail("config field 'maxConcurrency' must be an integer") from None
        if not 1 <= concurrency <= 64:
            raise _fail("config field 'maxConcurrency' must be between 1 and 64")
        ca_cert = opt_str("caCert")
        if ca_cert is not None:
            try:
                is_file = Path(ca_cert).is_file()
            except (OSError, ValueError):
                is_file = False
            if not is_file:
                raise _fail(f"config field 'caCert': no file at {ca_cert[:120]!r}")
        for id_field in ("tenantId", "clientId"):
            id_value = opt_str(id_field)
            if id_value is not None and not _ID.match(id_value):
                raise _fail(f"config field {id_field!r}: {id_value[:80]!r} is not a GUID or a domain name")
        authority = opt_str("authorityHost")
        return cls(
            vault_url=vault_url,
            auth_type=auth_type,
            tenant_id=opt_str("tenantId"),
            client_id=opt_str("clientId"),
            authority_host=_https_url("authorityHost", authority) if authority else None,
            purge_on_delete=_bool("purgeOnDelete", config.get("purgeOnDelete", False)),
            name_encoding=cast(Mode, encoding),
            max_concurrency=concurrency,
            ca_cert=ca_cert,
            endpoint=_test_endpoint(),
        )


def _test_endpoint() -> str | None:
    """The fake vault's URL from the process environment (tests only), validated like a field."""
    value = os.environ.get(TEST_ENDPOINT_ENV)
    return _https_url(TEST_ENDPOINT_ENV, value) if value else None


def _official_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host.endswith(suffix) for suffix in _SUFFIXES)


class AzureKeyVaultFactory:
    """The ``azure`` provider: validates config and opens :class:`AzureKeyVaultClient`."""

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
        'clientCertificatePassword?}}.'
    )
    capabilities: Capabilities = CAPABILITIES

    def store_block(self, block: Mapping[str, Any]) -> StoreBlock:
        """The block as written -> canonical config and the credentials it names."""
        return generic_store_block(block)

    def config_from_url(self, url: str) -> dict[str, Any]:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError as exc:
            raise _fail(f"store URL {url!r} does not parse: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme in ("azure", "azkv"):
            if not host:
                raise _fail(f"store URL {url!r} names no vault (azure://VAULT)")
            vault_url = f"https://{host}" if "." in host else f"https://{host}{DEFAULT_SUFFIX}"
            if parts.path not in ("", "/"):
                raise _fail(f"store URL {url!r}: a vault has no path (azure://VAULT)")
        elif scheme == "https":
            if parts.path not in ("", "/"):
                raise _fail(f"store URL {url!r}: a vault URL has no path (https://VAULT.vault.azure.net)")
            vault_url = f"https://{parts.netloc}"
        else:
            raise _fail(f"not an Azure Key Vault URL: {url!r} (azure://VAULT or https://VAULT.vault.azure.net)")
        config: dict[str, Any] = {"vaultUrl": vault_url}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in _KEYS or key == "vaultUrl":
                raise _fail(f"store URL {url!r}: unknown parameter {key!r}")
            config[key] = value
        if os.environ.get(ACCESS_TOKEN_ENV) and "authType" not in config:
            config["authType"] = "accessToken"
        return config

    def validate_config(self, config: Mapping[str, Any]) -> None:
        AzureConfig.parse(config)

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        """servicePrincipal with a client secret/certificate, or a given token, is the store's own;
        default, workloadIdentity and managedIdentity are the process's identity."""
        auth = str(config.get("authType") or "default").lower()
        own = ((auth == "serviceprincipal" and bool(credentials & {"clientSecret", "clientCertificate"}))
               or (auth == "accesstoken" and "accessToken" in credentials))
        destinations = [f for f in ("vaultUrl",) if isinstance(config.get(f), str) and not _official_host(config[f])]
        authority = config.get("authorityHost")
        if authority and urlsplit(str(authority)).hostname not in WELL_KNOWN_AUTHORITIES:
            destinations.append("authorityHost")
        return CredentialUse(
            ambient=None if own else (f"authType {config.get('authType') or 'default'} without secretRef "
                                      "credentials: the controller's managed / workload identity"),
            local_files=("caCert",) if config.get("caCert") else (),
            destinations=tuple(destinations),
        )

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
                verify_challenge_resource=cfg.endpoint is None, **pipeline_options(limiter, **transport),
            )
        except (ValueError, NotImplementedError) as exc:
            raise _fail(f"cannot open {cfg.vault_url}: {exc}") from exc
        return AzureKeyVaultClient(
            api, vault_url=cfg.vault_url, names=NameCodec(cfg.name_encoding),
            purge_on_delete=cfg.purge_on_delete, settings=settings, max_workers=cfg.max_concurrency,
            limited_in_pipeline=True,
        )


factory = AzureKeyVaultFactory()
