"""The Azure Key Vault store config: secretsync's dialect and ESO's ``azurekv`` block -> one model.

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
    CredentialSource,
    CredentialUse,
    StoreBlock,
    generic_store_block,
    secret_source,
    token_source,
)
from secretsync.core.errors import InvalidConfig

from .auth import ACCESS_TOKEN_ENV, AUTH_TYPES, FEDERATED_TOKEN, WELL_KNOWN_AUTHORITIES, AuthType
from .auth import ID as _ID
from .names import MODES, Mode

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


def config_from_url(url: str) -> dict[str, Any]:
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


def credential_use(config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
    """servicePrincipal with a client secret/certificate, a given token, or workloadIdentity with
    the store's own ServiceAccount token (ESO's ``serviceAccountRef``) is the store's own; default,
    managedIdentity and workloadIdentity without a ServiceAccount are the process's identity."""
    auth = str(config.get("authType") or "default").lower()
    own = ((auth == "serviceprincipal" and bool(credentials & {"clientSecret", "clientCertificate"}))
           or (auth == "accesstoken" and "accessToken" in credentials)
           or (auth == "workloadidentity" and FEDERATED_TOKEN in credentials))
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


# -- ESO's azurekv block ----------------------------------------------------------------------
#: ESO ``authType`` -> ours.
ESO_AUTH_TYPES = {"ServicePrincipal": "servicePrincipal", "ManagedIdentity": "managedIdentity",
                  "WorkloadIdentity": "workloadIdentity"}
#: ESO ``environmentType`` -> the Entra ID authority of that cloud (what azure-identity calls
#: ``authority``). Vault hosts of each cloud are checked by vaultUrl itself.
ESO_ENVIRONMENTS = {
    "PublicCloud": "https://login.microsoftonline.com",
    "ChinaCloud": "https://login.chinacloudapi.cn",
    "USGovernmentCloud": "https://login.microsoftonline.us",
}
ESO_KEYS = frozenset({"vaultUrl", "tenantId", "authType", "authSecretRef", "serviceAccountRef", "identityId",
                      "environmentType", "customCloudConfig", "useAzureSDK"})
_ESO_ONLY = frozenset({"authSecretRef", "identityId", "environmentType", "customCloudConfig", "useAzureSDK"})
#: ServiceAccount annotations the Azure Workload Identity webhook reads (and ESO with it).
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
#: The audience Entra ID expects on a federated Kubernetes token.
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"


#: secretsync-dialect keys that ESO's block does not have.
_OURS_ONLY = frozenset({"secretRef", "clientId", "authorityHost", "purgeOnDelete", "nameEncoding", "maxConcurrency",
                        "caCert"})


def _is_eso(block: Mapping[str, Any]) -> bool:
    """ESO's block: an ESO-only field, or ESO's PascalCase authType without any secretsync-only field
    (secretsync's dialect takes ``authType`` in any case, so ``ServicePrincipal`` + ``secretRef`` stays ours)."""
    if _ESO_ONLY & set(block):
        return True
    return block.get("authType") in ESO_AUTH_TYPES and not (_OURS_ONLY & set(block))


def store_block(block: Mapping[str, Any]) -> StoreBlock:
    """ESO's ``azurekv`` block (told by its fields, see :func:`_is_eso`) or secretsync's own."""
    if not _is_eso(block):
        return generic_store_block(block)
    problems: list[str] = []
    for key in sorted(set(block) - ESO_KEYS):
        problems.append(f"{key}: unknown field of ESO's azurekv block (known: {', '.join(sorted(ESO_KEYS))})")
    config: dict[str, Any] = {}
    if "vaultUrl" in block:
        config["vaultUrl"] = block["vaultUrl"]
    else:
        problems.append("vaultUrl: required (https://VAULT.vault.azure.net)")
    raw_auth = block.get("authType", "ServicePrincipal")
    auth = ESO_AUTH_TYPES.get(raw_auth) if isinstance(raw_auth, str) else None
    if auth is None:
        problems.append(f"authType: {raw_auth!r} is not one of {', '.join(ESO_AUTH_TYPES)}")
        auth = "servicePrincipal"
    config["authType"] = auth
    if block.get("tenantId") is not None:
        config["tenantId"] = block["tenantId"]
    env = block.get("environmentType", "PublicCloud")
    if env in ESO_ENVIRONMENTS:
        if env != "PublicCloud":
            config["authorityHost"] = ESO_ENVIRONMENTS[env]
    elif env == "AzureStackCloud":
        problems.append("environmentType: AzureStackCloud is not supported (its endpoints come from "
                        "customCloudConfig, which names hosts the controller's identity is sent to: "
                        "controller configuration)")
    else:
        problems.append(f"environmentType: {env!r} is not one of {', '.join(ESO_ENVIRONMENTS)}, AzureStackCloud")
    for key in ("customCloudConfig",):
        if block.get(key) is not None:
            problems.append(f"{key}: not supported (it names the hosts the controller's identity is sent to)")
    if block.get("useAzureSDK") not in (None, True, False):
        problems.append("useAzureSDK: must be true or false")
    creds: list[CredentialSource] = []
    refs = block.get("authSecretRef")
    if refs is not None and not isinstance(refs, Mapping):
        problems.append("authSecretRef: must be an object {clientId?, clientSecret?, clientCertificate?, tenantId?}")
        refs = None
    refs = refs or {}
    for key in sorted(set(refs) - {"clientId", "clientSecret", "clientCertificate", "tenantId"}):
        problems.append(f"authSecretRef.{key}: unknown field (known: clientCertificate, clientId, clientSecret, "
                        "tenantId)")
    for key in ("clientId", "tenantId", "clientSecret", "clientCertificate"):
        if refs.get(key) is not None:
            try:
                creds.append(secret_source(key, refs[key], f"authSecretRef.{key}"))
            except InvalidConfig as exc:
                problems.append(str(exc.args[0]))
    identity = block.get("identityId")
    if identity is not None:
        if auth != "managedIdentity":
            problems.append("identityId: only for authType ManagedIdentity")
        elif not isinstance(identity, str) or not _ID.match(identity):
            problems.append("identityId: must be the managed identity's client id (a GUID); a resource id "
                            "(/subscriptions/...) is not supported")
        else:
            config["clientId"] = identity
    if auth == "servicePrincipal" and refs and not ({"clientSecret", "clientCertificate"} & set(refs)):
        problems.append("authSecretRef: ServicePrincipal needs clientSecret or clientCertificate")
    if auth == "servicePrincipal" and refs and "clientId" not in refs:
        problems.append("authSecretRef.clientId: required for ServicePrincipal")
    sa = block.get("serviceAccountRef")
    if sa is not None:
        if auth != "workloadIdentity":
            problems.append("serviceAccountRef: only for authType WorkloadIdentity")
        else:
            try:
                src = token_source(FEDERATED_TOKEN, sa, "serviceAccountRef", (FEDERATION_AUDIENCE,))
            except InvalidConfig as exc:
                problems.append(str(exc.args[0]))
            else:
                creds.append(src)
                # ESO's order: a literal field, then a Secret, then the ServiceAccount's annotation.
                if "clientId" not in refs:
                    creds.append(CredentialSource("clientId", "serviceAccountRef", "annotation", src.name,
                                                  src.namespace, CLIENT_ID_ANNOTATION))
                if "tenantId" not in refs and not block.get("tenantId"):
                    creds.append(CredentialSource("tenantId", "serviceAccountRef", "annotation", src.name,
                                                  src.namespace, TENANT_ID_ANNOTATION))
    if problems:
        raise InvalidConfig("\n".join(problems))
    return StoreBlock(config, tuple(creds))


def validate_config(config: Mapping[str, Any]) -> None:
    """Raise InvalidConfig naming the offending canonical field."""
    AzureConfig.parse(config)
