"""Store URL and config for Vault/OpenBao, and the environment fallbacks the ``vault`` CLI uses.

URL form (documented in docs/providers.md)::

    vault://[HOST[:PORT]]/MOUNT[?tls=false&prefix=P&kvVersion=2&namespace=NS&auth=approle&role=R]

* ``HOST:PORT`` given: ``https://HOST:PORT`` (``?tls=false`` for plain ``http://``).
* no host (``vault:///secret``): the address comes from ``VAULT_ADDR`` (or ``BAO_ADDR``), a
  full URL, exactly as the ``vault``/``bao`` CLIs read it.
* the URL path is the mount (it may contain slashes, e.g. ``team-a/kv``); ``prefix`` is a
  folder inside the mount that every name is relative to.

Config mapping (camelCase, like a SecretStore spec): ``address``, ``mount``, ``prefix``,
``kvVersion`` (1 or 2; detected when absent), ``namespace``, ``caCert``, ``tlsSkipVerify``,
``auth`` (``method`` token|kubernetes|approle|jwt, ``mountPath``, ``role``, ``roleId``).
Secret material (token, secret id, JWT) never sits in the config: it comes from
``credentials``, else the process's environment or files. Which files is the process's
configuration too (``SECRETSYNC_VAULT_SA_TOKEN_PATH``, ``SECRETSYNC_VAULT_JWT_PATH``, see
:mod:`.auth`), never a store field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from secretsync.core.contract import CredentialUse
from secretsync.core.errors import InvalidConfig

from .errors import PROVIDER
from .transport import Endpoint

SCHEMES = ("vault", "openbao", "bao")
AUTH_METHODS = ("token", "kubernetes", "approle", "jwt")
DEFAULT_MOUNT = "secret"
#: Where a pod's projected service-account token lives.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

_URL_QUERY_KEYS = {"tls", "prefix", "kvVersion", "namespace", "auth", "role", "authMount"}
_CONFIG_KEYS = {"address", "mount", "prefix", "kvVersion", "namespace", "caCert", "tlsSkipVerify", "auth"}
_AUTH_KEYS = {"method", "mountPath", "role", "roleId"}
_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}


def _invalid(message: str) -> InvalidConfig:
    return InvalidConfig(message, provider=PROVIDER, operation="config")


def config_from_url(url: str) -> dict[str, Any]:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise _invalid(f"store URL {url!r} does not parse: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise _invalid(f"not a vault:// URL: {url!r}")
    query: dict[str, str] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k not in _URL_QUERY_KEYS:
            raise _invalid(f"store URL {url!r}: unknown query parameter {k!r} "
                           f"(known: {', '.join(sorted(_URL_QUERY_KEYS))})")
        query[k] = v
    config: dict[str, Any] = {}
    if parts.netloc:
        tls = query.get("tls", "true").lower()
        if tls not in _TRUE | _FALSE:
            raise _invalid(f"store URL {url!r}: tls must be true or false")
        scheme = "http" if tls in _FALSE else "https"
        config["address"] = f"{scheme}://{parts.netloc}"
    elif "tls" in query:
        raise _invalid(f"store URL {url!r}: tls= needs a HOST:PORT (VAULT_ADDR carries its own scheme)")
    mount = unquote(parts.path).strip("/")
    config["mount"] = mount or DEFAULT_MOUNT
    if query.get("prefix"):
        config["prefix"] = query["prefix"]
    if "kvVersion" in query:
        config["kvVersion"] = query["kvVersion"]
    if query.get("namespace"):
        config["namespace"] = query["namespace"]
    if query.get("auth") or query.get("role") or query.get("authMount"):
        auth: dict[str, Any] = {"method": query.get("auth") or "token"}
        if query.get("role"):
            auth["role"] = query["role"]
        if query.get("authMount"):
            auth["mountPath"] = query["authMount"]
        config["auth"] = auth
    return config


def kv_version(config: Mapping[str, Any]) -> int | None:
    raw = config.get("kvVersion")
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        version = int(raw)
    except (TypeError, ValueError):
        raise _invalid("vault store config field 'kvVersion' must be 1 or 2") from None
    if version not in (1, 2):
        raise _invalid("vault store config field 'kvVersion' must be 1 or 2")
    return version


def _is_url(address: Any) -> bool:
    if not isinstance(address, str) or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in address):
        return False
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 - an out-of-range or non-numeric port raises
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _has_control(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def _check_path(value: Any, field: str, *, allow_empty: bool) -> None:
    if not isinstance(value, str):
        raise _invalid(f"vault store config field {field!r} must be a string")
    stripped = value.strip("/")
    if not stripped and not allow_empty:
        raise _invalid(f"vault store config field {field!r} must not be empty")
    if stripped and any(seg in ("", ".", "..") for seg in stripped.split("/")):
        raise _invalid(f"vault store config field {field!r} has an empty, '.' or '..' segment")
    if _has_control(value) or len(value) > 1024:
        raise _invalid(f"vault store config field {field!r} has a control character or is over 1024 characters")


def validate_config(config: Mapping[str, Any]) -> None:
    """Raise InvalidConfig naming the field; environment is not consulted here."""
    if not isinstance(config, Mapping):
        raise _invalid("vault store config must be a mapping")
    unknown = set(config) - _CONFIG_KEYS
    if unknown:
        raise _invalid(f"vault store config has unknown field(s) {sorted(unknown)} "
                       f"(known: {', '.join(sorted(_CONFIG_KEYS))})")
    address = config.get("address")
    if address is not None and not _is_url(address):
        raise _invalid("vault store config field 'address' must be a URL like https://vault.example:8200")
    _check_path(config.get("mount", DEFAULT_MOUNT), "mount", allow_empty=False)
    if config.get("prefix") is not None:
        _check_path(config["prefix"], "prefix", allow_empty=True)
    kv_version(config)
    for field in ("namespace", "caCert"):
        if config.get(field) is not None and not isinstance(config[field], str):
            raise _invalid(f"vault store config field {field!r} must be a string")
        if isinstance(config.get(field), str) and _has_control(config[field]):
            raise _invalid(f"vault store config field {field!r} contains a control character")
    if config.get("namespace"):
        _check_path(config["namespace"], "namespace", allow_empty=True)
    if config.get("tlsSkipVerify") is not None and not isinstance(config["tlsSkipVerify"], bool):
        raise _invalid("vault store config field 'tlsSkipVerify' must be true or false")
    auth = config.get("auth")
    if auth is None:
        return
    if not isinstance(auth, Mapping):
        raise _invalid("vault store config field 'auth' must be a mapping")
    unknown = set(auth) - _AUTH_KEYS
    if unknown:
        raise _invalid(f"vault store config field 'auth' has unknown field(s) {sorted(unknown)}")
    method = auth.get("method", "token")
    if method not in AUTH_METHODS:
        raise _invalid(f"vault store config field 'auth.method' must be one of {', '.join(AUTH_METHODS)}")
    for field in _AUTH_KEYS - {"method"}:
        if auth.get(field) is not None and not isinstance(auth[field], str):
            raise _invalid(f"vault store config field 'auth.{field}' must be a string")
    if method in ("kubernetes", "jwt") and not auth.get("role"):
        raise _invalid(f"vault store config field 'auth.role' is required for {method} auth")
    if auth.get("mountPath") is not None:
        _check_path(auth["mountPath"], "auth.mountPath", allow_empty=False)


def credential_use(config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
    """What a store draws on beyond its credentials (mirrors :func:`.auth.authenticator`).

    ``address`` always names a server the store's author chose (Vault has no official
    host), so it is a destination; without it the process's ``VAULT_ADDR`` applies.
    """
    auth: Mapping[str, Any] = config.get("auth") or {}
    method = auth.get("method", "token")
    ambient: str | None = None
    if method == "token" and "token" not in credentials:
        ambient = "auth.method token without secretRef.token: VAULT_TOKEN / ~/.vault-token of the controller"
    elif method == "approle" and not ("secretId" in credentials
                                      and ("roleId" in credentials or auth.get("roleId"))):
        ambient = "auth.method approle without secretRef.secretId (and roleId): VAULT_ROLE_ID / VAULT_SECRET_ID"
    elif method in ("kubernetes", "jwt") and "jwt" not in credentials:
        ambient = (f"auth.method {method} without serviceAccountRef or secretRef.jwt: the controller's own "
                   "ServiceAccount token")
    return CredentialUse(
        ambient=ambient,
        local_files=("caCert",) if config.get("caCert") else (),
        destinations=("address",) if config.get("address") else (),
    )


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``VAULT_<name>`` or else ``BAO_<name>`` (OpenBao's spelling), empty meaning unset."""
    environ = os.environ if environ is None else environ
    return environ.get(f"VAULT_{name}") or environ.get(f"BAO_{name}") or None


def endpoint(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Endpoint:
    """Where to connect: config first, then VAULT_*/BAO_* like the CLIs."""
    address = config.get("address") or env("ADDR", environ)
    if not address:
        raise _invalid("no Vault address: put HOST:PORT in the store URL (vault://HOST:PORT/MOUNT), "
                       "set config field 'address', or set VAULT_ADDR / BAO_ADDR")
    if not _is_url(address):
        raise _invalid("VAULT_ADDR / BAO_ADDR must be a URL like https://vault.example:8200")
    namespace = config.get("namespace") or env("NAMESPACE", environ)
    verify: str | bool = True
    skip = config.get("tlsSkipVerify")
    if skip is None:
        skip = (env("SKIP_VERIFY", environ) or "").lower() in _TRUE
    ca_cert = config.get("caCert") or env("CACERT", environ)
    if skip:
        verify = False
    elif ca_cert:
        if not Path(ca_cert).is_file():
            raise _invalid(f"CA certificate file {ca_cert!r} (caCert / VAULT_CACERT) does not exist")
        verify = ca_cert
    return Endpoint(address=address.rstrip("/"), namespace=namespace or None, verify=verify)
