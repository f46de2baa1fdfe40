"""The ``kubernetes`` SecretStore block (ESO's dialect) -> canonical config and credentials.

ESO's block::

    kubernetes:
      remoteNamespace: NS                      # default "default"
      server:
        url: https://HOST:PORT                 # default: this cluster (controller configuration)
        caBundle: BASE64-PEM
        caProvider: {type: Secret|ConfigMap, name, key, namespace?}
      auth:
        serviceAccount: {name, namespace?, audiences?}  # a TokenRequest: that SA's RBAC applies
        token: {bearerToken: {name, key, namespace?}}

``auth.cert`` and ``authRef`` (a kubeconfig in a Secret) are refused naming the field.

Why no ambient identity at all: the controller's own token can read every Secret it
manages, so a store that used it would hand one tenant the others' Secrets. A store must
bring an identity; the API server then limits it to what that identity may read.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from secretsync.core.contract import (
    CredentialSource,
    CredentialUse,
    StoreBlock,
    ca_provider_source,
    secret_source,
    token_source,
)
from secretsync.core.errors import InvalidConfig

PROVIDER = "kubernetes"
#: Credential names handed to ``open``.
TOKEN = "token"
CA_BUNDLE = "caBundle"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KNOWN = {"remoteNamespace", "server", "auth", "authRef"}


def store_block(block: Mapping[str, Any]) -> StoreBlock:
    problems: list[str] = []
    creds: list[CredentialSource] = []
    config: dict[str, Any] = {"remoteNamespace": block.get("remoteNamespace") or "default"}
    for key in block:
        if key not in _KNOWN:
            problems.append(f"{key}: unknown field (known: {', '.join(sorted(_KNOWN))})")
    if not isinstance(config["remoteNamespace"], str) or not _NAMESPACE.match(config["remoteNamespace"]):
        problems.append("remoteNamespace: must be a namespace name")
    if block.get("authRef") is not None:
        problems.append("authRef: a kubeconfig in a Secret is not supported; use auth.serviceAccount or "
                        "auth.token")
    server = block.get("server") or {}
    if not isinstance(server, Mapping):
        problems.append("server: must be an object {url?, caBundle?, caProvider?}")
        server = {}
    url = server.get("url")
    if url is not None:
        if not isinstance(url, str) or not url.startswith("https://"):
            problems.append("server.url: must be an https:// URL")
        else:
            config["url"] = url.rstrip("/")
    if server.get("caBundle") is not None:
        try:
            config["caBundle"] = base64.b64decode(str(server["caBundle"]), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            problems.append("server.caBundle: must be a base64-encoded PEM bundle")
    if server.get("caProvider") is not None:
        try:
            creds.append(ca_provider_source(CA_BUNDLE, server["caProvider"], "server.caProvider"))
        except InvalidConfig as exc:
            problems.append(str(exc.args[0]))
    auth = block.get("auth")
    if not isinstance(auth, Mapping) or not auth:
        problems.append("auth: required: auth.serviceAccount or auth.token (the store's own identity; the "
                        "controller's is never used)")
    else:
        try:
            creds.extend(_auth(auth))
        except InvalidConfig as exc:
            problems.append(str(exc.args[0]))
    if problems:
        raise InvalidConfig("\n".join(problems))
    return StoreBlock(config, tuple(creds))


def _auth(auth: Mapping[str, Any]) -> list[CredentialSource]:
    if auth.get("cert") is not None:
        raise InvalidConfig("auth.cert: client certificates are not supported; use auth.serviceAccount or "
                            "auth.token")
    if auth.get("serviceAccount") is not None:
        return [token_source(TOKEN, auth["serviceAccount"], "auth.serviceAccount")]
    token = auth.get("token")
    if isinstance(token, Mapping) and token.get("bearerToken") is not None:
        return [secret_source(TOKEN, token["bearerToken"], "auth.token.bearerToken")]
    raise InvalidConfig("auth: set serviceAccount or token.bearerToken")


def parse_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical config (what store_block produced, or a URL): checked again at open."""
    unknown = sorted(set(config) - {"remoteNamespace", "url", "caBundle"})
    if unknown:
        raise InvalidConfig(f"kubernetes store config field {unknown[0]!r}: unknown field", provider=PROVIDER)
    ns = config.get("remoteNamespace", "default")
    if not isinstance(ns, str) or not _NAMESPACE.match(ns):
        raise InvalidConfig("kubernetes store config field 'remoteNamespace': must be a namespace name",
                            provider=PROVIDER)
    return {"remoteNamespace": ns, "url": config.get("url"), "caBundle": config.get("caBundle")}


def config_from_url(url: str) -> dict[str, Any]:
    """``kubernetes://NAMESPACE``: Secrets of that namespace in this cluster."""
    rest = url.split("://", 1)[-1].strip("/")
    return {"remoteNamespace": rest or "default"}


def credential_use(config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
    """Never ambient: without a token, open() refuses. ``server.url`` is a destination (the
    store's own token goes there, which is the store author's to decide)."""
    return CredentialUse(ambient=None if TOKEN in credentials else "auth: no token (required)",
                         destinations=("server.url",) if config.get("url") else ())


def validate_config(config: Mapping[str, Any]) -> None:
    """Raise InvalidConfig naming the offending canonical field."""
    parse_config(config)
