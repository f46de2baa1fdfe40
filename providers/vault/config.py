"""Store URL and config for Vault/OpenBao, and the environment fallbacks the ``vault`` CLI uses.

URL form (documented in docs/providers.md)::

    vault://[HOST[:PORT]]/MOUNT[?tls=false&prefix=P&kvVersion=2&namespace=NS&auth=approle&role=R]

* ``HOST:PORT`` given: ``https://HOST:PORT`` (``?tls=false`` for plain ``http://``).
* no host (``vault:///secret``): the address comes from ``VAULT_ADDR`` (or ``BAO_ADDR``), a
  full URL, exactly as the ``vault``/``bao`` CLIs read it.
* the URL path is the mount (it may contain slashes, e.g. ``team-a/kv``); ``prefix`` is a
  folder inside the mount that every name is relative to.

Canonical config mapping (camelCase, like a SecretStore spec): ``address``, ``mount``,
``prefix``, ``kvVersion`` (1 or 2; detected when absent), ``namespace``, ``caCert`` (a file:
controller configuration), ``caBundle`` (base64 PEM data), ``tlsSkipVerify``,
``forwardInconsistent``, ``readYourWrites``, ``auth`` (``method``
token|kubernetes|approle|jwt|cert|userpass|ldap, ``mountPath``, ``role``, ``roleId``,
``username``, ``namespace``). Secret material (token, secret id, JWT, password, client key)
never sits in the config: it comes from ``credentials`` (:data:`CREDENTIALS`), else the
process's environment or files. Which files is the process's configuration too
(``SECRETSYNC_VAULT_SA_TOKEN_PATH``, ``SECRETSYNC_VAULT_JWT_PATH``, see :mod:`.auth`), never a
store field.

A SecretStore block is read in two dialects (:func:`store_block`): secretsync's own (the
config keys above plus ``secretRef.<credential>`` / ``serviceAccountRef``) and External
Secrets Operator's ``vault`` block as ESO documents it (``server``, ``path``, ``version``,
``auth.tokenSecretRef``, ``auth.kubernetes``...), translated here into the same canonical
config and :class:`~secretsync.core.contract.CredentialSource` records.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from secretsync.core.contract import (
    CredentialSource,
    CredentialUse,
    StoreBlock,
    ca_provider_source,
    generic_store_block,
    secret_source,
    token_source,
)
from secretsync.core.errors import InvalidConfig
from secretsync.core.values import SecretValue

from .errors import PROVIDER
from .sdk import ClientCert, Endpoint

SCHEMES = ("vault", "openbao", "bao")
AUTH_METHODS = ("token", "kubernetes", "approle", "jwt", "cert", "userpass", "ldap")
#: Credential names a store may supply (``secretRef.<name>`` in secretsync's dialect).
CREDENTIALS = ("token", "roleId", "secretId", "jwt", "password", "clientCert", "clientKey", "tlsCert", "tlsKey",
               "caBundle")
DEFAULT_MOUNT = "secret"
#: Where a pod's projected service-account token lives.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

_URL_QUERY_KEYS = {"tls", "prefix", "kvVersion", "namespace", "auth", "role", "authMount"}
_CONFIG_KEYS = {"address", "mount", "prefix", "kvVersion", "namespace", "caCert", "caBundle", "tlsSkipVerify",
                "forwardInconsistent", "readYourWrites", "auth"}
_AUTH_KEYS = {"method", "mountPath", "role", "roleId", "username", "namespace"}
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
    for field in ("namespace", "caCert", "caBundle"):
        if config.get(field) is not None and not isinstance(config[field], str):
            raise _invalid(f"vault store config field {field!r} must be a string")
        if isinstance(config.get(field), str) and _has_control(config[field]):
            raise _invalid(f"vault store config field {field!r} contains a control character")
    if config.get("namespace"):
        _check_path(config["namespace"], "namespace", allow_empty=True)
    for field in ("tlsSkipVerify", "forwardInconsistent", "readYourWrites"):
        if config.get(field) is not None and not isinstance(config[field], bool):
            raise _invalid(f"vault store config field {field!r} must be true or false")
    if config.get("caBundle"):
        ca_pem(config["caBundle"])
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
    if method == "kubernetes" and not auth.get("role"):
        raise _invalid(f"vault store config field 'auth.role' is required for {method} auth")
    if method in ("userpass", "ldap") and not auth.get("username"):
        raise _invalid(f"vault store config field 'auth.username' is required for {method} auth")
    if auth.get("mountPath") is not None:
        _check_path(auth["mountPath"], "auth.mountPath", allow_empty=False)
    if auth.get("username") is not None:
        _check_path(auth["username"], "auth.username", allow_empty=False)
    if auth.get("namespace"):
        _check_path(auth["namespace"], "auth.namespace", allow_empty=True)


def ca_pem(raw: Any) -> str:
    """``caBundle``: base64 of PEM certificates (ESO's form), or the PEM text itself."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text.startswith("-----BEGIN"):
        try:
            text = base64.b64decode(text, validate=True).decode("ascii").strip()
        except (binascii.Error, ValueError):
            text = ""
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise _invalid("vault store config field 'caBundle' must be base64 of PEM certificates (or the PEM text)")
    return text


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
    # cert, userpass and ldap have no fallback: without their credentials the login fails.
    return CredentialUse(
        ambient=ambient,
        local_files=("caCert",) if config.get("caCert") else (),
        destinations=("address",) if config.get("address") else (),
    )


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``VAULT_<name>`` or else ``BAO_<name>`` (OpenBao's spelling), empty meaning unset."""
    environ = os.environ if environ is None else environ
    return environ.get(f"VAULT_{name}") or environ.get(f"BAO_{name}") or None


def endpoint(config: Mapping[str, Any], environ: Mapping[str, str] | None = None,
             credentials: Mapping[str, SecretValue] | None = None) -> Endpoint:
    """Where and how to connect: config and credentials first, then VAULT_*/BAO_* like the CLIs.

    TLS material from credentials: ``caBundle`` (ESO's ``caProvider``), trusted with the
    config's ``caBundle``; the client certificate of ``cert`` auth (``clientCert``/``clientKey``),
    else of mutual TLS (``tlsCert``/``tlsKey``).
    """
    credentials = credentials or {}
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
    cas = [ca_pem(config["caBundle"])] if config.get("caBundle") else []
    if credentials.get("caBundle") is not None:
        cas.append(credentials["caBundle"].reveal_text())
    client_cert = None
    for cert, key in (("clientCert", "clientKey"), ("tlsCert", "tlsKey")):
        if credentials.get(cert) is not None and credentials.get(key) is not None:
            client_cert = ClientCert(credentials[cert], credentials[key])
            break
    auth: Mapping[str, Any] = config.get("auth") or {}
    headers = (("X-Vault-Inconsistent", "forward-active-node"),) if config.get("forwardInconsistent") else ()
    return Endpoint(address=address.rstrip("/"), namespace=namespace or None, verify=verify,
                    ca_pem="\n".join(cas) or None, client_cert=client_cert,
                    auth_namespace=auth.get("namespace") or None, headers=headers)


# -- SecretStore blocks: secretsync's dialect and ESO's ------------------------------------------

#: Top-level fields only ESO's ``vault`` block has: their presence selects that dialect.
ESO_FIELDS = {"server", "path", "version", "caBundle", "caProvider", "tls", "readYourWrites",
              "forwardInconsistent", "namespace", "auth"}
_ESO_ONLY = {"server", "path", "version", "caProvider", "tls"}
#: ESO's auth methods in the order ESO tries them (the first one set is used).
_ESO_AUTH_METHODS = ("tokenSecretRef", "appRole", "kubernetes", "ldap", "userPass", "jwt", "cert")
#: ESO auth methods secretsync does not implement, and why (for the error).
_ESO_UNSUPPORTED = {
    "iam": "AWS IAM auth is not supported (use kubernetes, jwt or appRole)",
    "gcp": "GCP auth is not supported (use kubernetes, jwt or appRole)",
}
#: ESO's TokenRequest audience for ``auth.jwt.kubernetesServiceAccountToken`` when none is given.
ESO_JWT_AUDIENCES = ("vault",)


def is_eso_block(block: Mapping[str, Any]) -> bool:
    """ESO's dialect: it names the server ``server`` (ours: ``address``) or the auth method by key."""
    auth = block.get("auth")
    return bool(_ESO_ONLY & set(block)) or (
        isinstance(auth, Mapping) and "method" not in auth and bool(set(auth) - {"namespace"}))


def store_block(block: Mapping[str, Any]) -> StoreBlock:
    """A SecretStore ``vault`` block as written -> canonical config and its credentials."""
    if not is_eso_block(block):
        return generic_store_block(block)
    return _EsoBlock(block).read()


class _EsoBlock:
    """ESO's ``vault`` block (external-secrets.io VaultProvider), field by field.

    Every problem is collected as ``path: why`` (one per line of the InvalidConfig), so a user
    fixes a block in one pass.
    """

    def __init__(self, block: Mapping[str, Any]) -> None:
        self.block = block
        self.problems: list[str] = []
        self.config: dict[str, Any] = {}
        self.sources: list[CredentialSource] = []

    def read(self) -> StoreBlock:
        b = self.block
        self._unknown(b, "", ESO_FIELDS)
        server = b.get("server")
        if not _is_url(server):
            self.problems.append("server: required, a URL like https://vault.example:8200")
        else:
            self.config["address"] = server
        path = b.get("path")
        if not isinstance(path, str) or not path.strip("/"):
            self.problems.append("path: required by secretsync: the KV mount (ESO's form without it, where "
                                 "each remoteRef key starts with the mount, is not supported)")
        else:
            self.config["mount"] = path.strip("/")
        version = b.get("version", "v2")
        if version not in ("v1", "v2"):
            self.problems.append(f"version: must be v1 or v2 (got {version!r})")
        else:
            self.config["kvVersion"] = int(version[1])
        self._string(b, "namespace", "namespace", "namespace")
        if b.get("caBundle") is not None:
            try:
                ca_pem(b["caBundle"])
                self.config["caBundle"] = b["caBundle"]
            except InvalidConfig:
                self.problems.append("caBundle: must be base64 of PEM certificates")
        if b.get("caProvider") is not None:
            self._ca_provider(b["caProvider"])
        if b.get("tls") is not None:
            self._tls(b["tls"])
        for flag in ("readYourWrites", "forwardInconsistent"):
            if b.get(flag) is not None:
                if isinstance(b[flag], bool):
                    self.config[flag] = b[flag]
                else:
                    self.problems.append(f"{flag}: must be true or false")
        self._auth(b.get("auth"))
        if not self.problems:
            try:
                validate_config(self.config)
            except InvalidConfig as exc:
                self.problems.append(str(exc.args[0]) if exc.args else str(exc))
        if self.problems:
            raise InvalidConfig("\n".join(self.problems))
        return StoreBlock(self.config, tuple(self.sources))

    # -- pieces ------------------------------------------------------------------------------
    def _unknown(self, sel: Mapping[str, Any], where: str, known: set[str]) -> None:
        for k in sorted(set(sel) - known, key=str):
            self.problems.append(f"{where}{k}: unknown or unsupported field (known: {', '.join(sorted(known))})")

    def _string(self, sel: Mapping[str, Any], field: str, where: str, target: str,
                into: dict[str, Any] | None = None, default: str | None = None, required: bool = False) -> None:
        value = sel.get(field, default)
        if value is None:
            if required:
                self.problems.append(f"{where}: required")
            return
        if not isinstance(value, str) or (required and not value):
            self.problems.append(f"{where}: must be a{' non-empty' if required else ''} string")
            return
        (self.config if into is None else into)[target] = value

    def _secret(self, credential: str, sel: Any, where: str) -> None:
        if sel is None:
            self.problems.append(f"{where}: required")
            return
        if isinstance(sel, Mapping):
            self._unknown(sel, f"{where}.", {"name", "key", "namespace"})
        try:
            self.sources.append(secret_source(credential, sel, where))
        except InvalidConfig as exc:
            self.problems.append(str(exc.args[0]))

    def _ca_provider(self, sel: Any) -> None:
        if isinstance(sel, Mapping):
            self._unknown(sel, "caProvider.", {"type", "name", "key", "namespace"})
        try:
            self.sources.append(ca_provider_source("caBundle", sel, "caProvider"))
        except InvalidConfig as exc:
            self.problems.append(str(exc.args[0]))

    def _tls(self, tls: Any) -> None:
        if not isinstance(tls, Mapping):
            self.problems.append("tls: must be an object {certSecretRef, keySecretRef}")
            return
        self._unknown(tls, "tls.", {"certSecretRef", "keySecretRef"})
        self._secret("tlsCert", tls.get("certSecretRef"), "tls.certSecretRef")
        self._secret("tlsKey", tls.get("keySecretRef"), "tls.keySecretRef")

    def _auth(self, auth: Any) -> None:
        if auth is None:
            return  # a static token from the controller's environment: the trust gate decides
        if not isinstance(auth, Mapping):
            self.problems.append("auth: must be an object with one auth method")
            return
        self._unknown(auth, "auth.", {*_ESO_AUTH_METHODS, *_ESO_UNSUPPORTED, "namespace"})
        # ESO tries the methods in this order and logs in with the first one set; so do we.
        methods = [m for m in _ESO_AUTH_METHODS if auth.get(m) is not None]
        if not methods:
            for name, why in _ESO_UNSUPPORTED.items():
                if auth.get(name) is not None:
                    self.problems.append(f"auth.{name}: {why}")
        ours: dict[str, Any] = {}
        self._string(auth, "namespace", "auth.namespace", "namespace", ours)
        if not methods:
            if ours:
                self.config["auth"] = {"method": "token", **ours}
            return
        method = methods[0]
        sel = auth[method]
        where = f"auth.{method}"
        if method == "tokenSecretRef":
            ours["method"] = "token"
            self._secret("token", sel, where)
            self.config["auth"] = ours
            return
        if not isinstance(sel, Mapping):
            self.problems.append(f"{where}: must be an object")
            return
        getattr(self, f"_auth_{method.lower()}")(sel, where, ours)
        self.config["auth"] = ours

    def _auth_approle(self, sel: Mapping[str, Any], where: str, ours: dict[str, Any]) -> None:
        self._unknown(sel, f"{where}.", {"path", "roleId", "roleRef", "secretRef"})
        ours["method"] = "approle"
        self._string(sel, "path", f"{where}.path", "mountPath", ours, default="approle")
        if sel.get("roleRef") is not None:
            self._secret("roleId", sel["roleRef"], f"{where}.roleRef")
        elif sel.get("roleId") is not None:
            self._string(sel, "roleId", f"{where}.roleId", "roleId", ours, required=True)
        else:
            self.problems.append(f"{where}.roleId: roleId or roleRef is required")
        self._secret("secretId", sel.get("secretRef"), f"{where}.secretRef")

    def _auth_kubernetes(self, sel: Mapping[str, Any], where: str, ours: dict[str, Any]) -> None:
        self._unknown(sel, f"{where}.", {"mountPath", "role", "serviceAccountRef", "secretRef"})
        ours["method"] = "kubernetes"
        self._string(sel, "mountPath", f"{where}.mountPath", "mountPath", ours, default="kubernetes")
        self._string(sel, "role", f"{where}.role", "role", ours, required=True)
        # ESO's order: a ServiceAccount token first, else the JWT in a Secret, else the controller's own.
        if sel.get("serviceAccountRef") is not None:
            self._token(sel["serviceAccountRef"], f"{where}.serviceAccountRef", ())
        elif sel.get("secretRef") is not None:
            self._secret("jwt", sel["secretRef"], f"{where}.secretRef")

    def _auth_jwt(self, sel: Mapping[str, Any], where: str, ours: dict[str, Any]) -> None:
        self._unknown(sel, f"{where}.", {"path", "role", "secretRef", "kubernetesServiceAccountToken"})
        ours["method"] = "jwt"
        self._string(sel, "path", f"{where}.path", "mountPath", ours, default="jwt")
        self._string(sel, "role", f"{where}.role", "role", ours)
        ksat = sel.get("kubernetesServiceAccountToken")
        # ESO's order: the JWT in a Secret first, else a TokenRequest.
        if sel.get("secretRef") is not None:
            self._secret("jwt", sel["secretRef"], f"{where}.secretRef")
            if ksat is not None and not isinstance(ksat, Mapping):
                self.problems.append(f"{where}.kubernetesServiceAccountToken: must be an object")
        elif isinstance(ksat, Mapping):
            w = f"{where}.kubernetesServiceAccountToken"
            self._unknown(ksat, f"{w}.", {"serviceAccountRef", "audiences", "expirationSeconds"})
            exp = ksat.get("expirationSeconds")
            if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int) or exp < 600):
                self.problems.append(f"{w}.expirationSeconds: must be an integer of at least 600")
            sa = ksat.get("serviceAccountRef")
            if isinstance(sa, Mapping) and ksat.get("audiences") is not None:
                sa = {**sa, "audiences": ksat["audiences"]}
            self._token(sa, f"{w}.serviceAccountRef", ESO_JWT_AUDIENCES)
        else:
            self.problems.append(f"{where}: secretRef or kubernetesServiceAccountToken is required")

    def _auth_cert(self, sel: Mapping[str, Any], where: str, ours: dict[str, Any]) -> None:
        self._unknown(sel, f"{where}.", {"clientCert", "secretRef"})
        ours["method"] = "cert"
        self._secret("clientCert", sel.get("clientCert"), f"{where}.clientCert")
        self._secret("clientKey", sel.get("secretRef"), f"{where}.secretRef")

    def _password_login(self, method: str, default_path: str, sel: Mapping[str, Any], where: str,
                        ours: dict[str, Any]) -> None:
        self._unknown(sel, f"{where}.", {"path", "username", "secretRef"})
        ours["method"] = method
        self._string(sel, "path", f"{where}.path", "mountPath", ours, default=default_path)
        self._string(sel, "username", f"{where}.username", "username", ours, required=True)
        self._secret("password", sel.get("secretRef"), f"{where}.secretRef")

    def _auth_userpass(self, sel: Mapping[str, Any], where: str, ours: dict[str, Any]) -> None:
        self._password_login("userpass", "userpass", sel, where, ours)

    def _auth_ldap(self, sel: Mapping[str, Any], where: str, ours: dict[str, Any]) -> None:
        self._password_login("ldap", "ldap", sel, where, ours)

    def _token(self, sel: Any, where: str, default_audiences: tuple[str, ...]) -> None:
        if isinstance(sel, Mapping):
            self._unknown(sel, f"{where}.", {"name", "namespace", "audiences"})
        try:
            self.sources.append(token_source("jwt", sel, where, default_audiences))
        except InvalidConfig as exc:
            self.problems.append(str(exc.args[0]))
