"""Credentials for Key Vault: the azure-identity chain, one explicit mode, or a fixed token.

Why explicit modes next to ``default``: ``DefaultAzureCredential`` tries seven sources in
turn and its failure message lists them all; in a cluster the operator usually knows the
one that should work (Workload Identity, a managed identity, or a service principal from
a Kubernetes Secret) and wants its error, fast. ``accessToken`` takes a bearer token that
was fetched elsewhere (``az account get-access-token --resource https://vault.azure.net``)
and is also how the tests authenticate against the fake vault.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, TokenCredential

from secretsync.core.calls import CallRecorder
from secretsync.core.errors import InvalidConfig
from secretsync.core.ratelimit import TokenBucket
from secretsync.core.values import SecretValue

AuthType = Literal["default", "workloadIdentity", "managedIdentity", "servicePrincipal", "accessToken"]
AUTH_TYPES: tuple[AuthType, ...] = (
    "default", "workloadIdentity", "managedIdentity", "servicePrincipal", "accessToken",
)

#: The credential holding a store's own ServiceAccount token (ESO's ``serviceAccountRef``),
#: presented to Entra ID as a client assertion (workload identity federation).
FEDERATED_TOKEN = "federatedToken"
#: Environment variable holding a bearer token for ``authType: accessToken``.
ACCESS_TOKEN_ENV = "SECRETSYNC_AZURE_ACCESS_TOKEN"
#: Entra ID hosts MSAL knows (public, China, US Government clouds).
WELL_KNOWN_AUTHORITIES = frozenset({"login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us"})
#: Tenant and client ids: GUIDs, or tenant domain names / "organizations".
ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$")
#: Lifetime assumed for a fixed token (the SDK asks again five minutes before it ends).
_STATIC_TOKEN_LIFETIME_S = 3600


class StaticTokenCredential:
    """A ``TokenCredential`` that always answers with one bearer token.

    This is azure-core's documented extension point (any object with ``get_token``), not a
    stand-in for an SDK class: the SDK's challenge policy calls it like any credential.
    """

    def __init__(self, token: SecretValue) -> None:
        self._token = token

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token.reveal_text(), int(time.time()) + _STATIC_TOKEN_LIFETIME_S)

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "StaticTokenCredential(***)"


class CountedCredential:
    """Wraps an azure-identity credential so each token request is rate limited and counted
    (``azure/get_token``) like any other backend call of the store.

    The SDK's bearer policy caches the token and asks again only near its expiry, so this
    counts (about) the real requests to Entra ID / the managed identity endpoint.
    """

    def __init__(self, inner: TokenCredential, calls: CallRecorder, limiter: TokenBucket | None) -> None:
        self._inner = inner
        self._calls = calls
        self._limiter = limiter

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        with self._calls.call("azure", "get_token", self._limiter):
            return self._inner.get_token(*scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae,
                                         **kwargs)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"CountedCredential({type(self._inner).__name__})"


def _secret(credentials: Mapping[str, SecretValue] | None, key: str) -> SecretValue | None:
    value = (credentials or {}).get(key)
    return value if value else None


def build_credential(
    auth_type: AuthType,
    *,
    tenant_id: str | None,
    client_id: str | None,
    authority_host: str | None,
    credentials: Mapping[str, SecretValue] | None,
    transport: Mapping[str, Any],
) -> TokenCredential:
    """The credential for ``auth_type``; raises InvalidConfig naming what is missing.

    ``transport`` carries the same timeouts / TLS settings as the vault client, so a token
    request cannot hang longer than a vault call.
    """
    from azure import identity  # imported here: only the modes that need it pay for it

    common: dict[str, Any] = dict(transport)
    # azure-identity reads AZURE_AUTHORITY_HOST itself; named here so an unknown host (the
    # process's own configuration) gets the same treatment as the field.
    authority_host = authority_host or os.environ.get("AZURE_AUTHORITY_HOST") or None
    if authority_host:
        common["authority"] = authority_host
        if urlsplit(authority_host).hostname not in WELL_KNOWN_AUTHORITIES:
            # Azure Stack Hub / private clouds: MSAL cannot look such a host up in the
            # public instance metadata, so discovery (and authority validation) is off.
            common["disable_instance_discovery"] = True

    def invalid(message: str) -> InvalidConfig:
        return InvalidConfig(message, provider="azure", operation="open")

    # ESO's authSecretRef.clientId / tenantId, or the ServiceAccount's workload identity
    # annotations: credentials of the store, taking the place of the literal fields.
    for name in ("clientId", "tenantId"):
        value = _secret(credentials, name)
        if value is not None and not ID.match(value.reveal_text().strip()):
            raise invalid(f"credential {name!r} is not a GUID or a domain name")
    from_store = {n: v.reveal_text().strip() for n in ("clientId", "tenantId")
                  if (v := _secret(credentials, n)) is not None}
    client_id = from_store.get("clientId", client_id)
    tenant_id = from_store.get("tenantId", tenant_id)
    try:
        if auth_type == "accessToken":
            token = _secret(credentials, "accessToken")
            if token is None and os.environ.get(ACCESS_TOKEN_ENV):
                token = SecretValue(os.environ[ACCESS_TOKEN_ENV])
            if token is None:
                raise invalid(f"authType accessToken needs credentials.accessToken or ${ACCESS_TOKEN_ENV}")
            return StaticTokenCredential(token)
        if auth_type == "servicePrincipal":
            if not tenant_id:
                raise invalid("authType servicePrincipal needs config field 'tenantId'")
            if not client_id:
                raise invalid("authType servicePrincipal needs config field 'clientId'")
            secret = _secret(credentials, "clientSecret")
            cert = _secret(credentials, "clientCertificate")
            if secret is not None:
                return identity.ClientSecretCredential(tenant_id, client_id, secret.reveal_text(), **common)
            if cert is not None:
                password = _secret(credentials, "clientCertificatePassword")
                return identity.CertificateCredential(
                    tenant_id, client_id, certificate_data=cert.reveal(),
                    password=password.reveal() if password else None, **common,
                )
            raise invalid("authType servicePrincipal needs credentials 'clientSecret' or 'clientCertificate'")
        federated = _secret(credentials, FEDERATED_TOKEN)
        if auth_type == "workloadIdentity" and federated is not None:
            # The store's own ServiceAccount token (TokenRequest, audience api://AzureADTokenExchange),
            # sent as client_assertion; the authority is the process's (AZURE_AUTHORITY_HOST or the
            # cloud's), never a host a namespaced store names.
            if not tenant_id or not client_id:
                raise invalid("authType WorkloadIdentity with serviceAccountRef needs a client id and a tenant id "
                              "(tenantId / authSecretRef, or the ServiceAccount annotations "
                              "azure.workload.identity/client-id and azure.workload.identity/tenant-id)")
            return identity.ClientAssertionCredential(tenant_id, client_id, lambda: federated.reveal_text(),
                                                      **common)
        if auth_type == "workloadIdentity":
            # The Azure Workload Identity webhook injects these into pods whose service
            # account is labelled azure.workload.identity/use=true.
            missing = [
                what for what, present in (
                    ("config field 'tenantId' or $AZURE_TENANT_ID", tenant_id or os.environ.get("AZURE_TENANT_ID")),
                    ("config field 'clientId' or $AZURE_CLIENT_ID", client_id or os.environ.get("AZURE_CLIENT_ID")),
                    ("$AZURE_FEDERATED_TOKEN_FILE", os.environ.get("AZURE_FEDERATED_TOKEN_FILE")),
                ) if not present
            ]
            if missing:
                raise invalid(
                    f"authType workloadIdentity needs {', '.join(missing)} (the Workload Identity webhook "
                    "sets them when the service account is labelled azure.workload.identity/use=true)"
                )
            return identity.WorkloadIdentityCredential(tenant_id=tenant_id, client_id=client_id, **common)
        if auth_type == "managedIdentity":
            return identity.ManagedIdentityCredential(client_id=client_id, **transport)
        kwargs: dict[str, Any] = dict(common)
        if client_id:
            kwargs["managed_identity_client_id"] = client_id
            kwargs["workload_identity_client_id"] = client_id
        if tenant_id:
            kwargs["workload_identity_tenant_id"] = tenant_id
            kwargs["additionally_allowed_tenants"] = [tenant_id]
        return identity.DefaultAzureCredential(**kwargs)
    except InvalidConfig:
        raise
    except (ValueError, TypeError) as exc:
        # azure-identity says which settings are missing (e.g. AZURE_FEDERATED_TOKEN_FILE);
        # a certificate that does not parse lands here too. Neither message holds a secret.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise invalid(f"authType {auth_type}: {first}") from exc
