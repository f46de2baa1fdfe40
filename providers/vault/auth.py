"""Vault/OpenBao authentication: token, kubernetes, approle, jwt, cert, userpass and ldap, with renewal.

Why a session object: a controller keeps one client for days, longer than any token's TTL.
:class:`TokenSession` learns the token's lease (from the login response, or one
``lookup-self`` for a static token), renews it with ``renew-self`` once two thirds of the
lease has passed, and logs in again when renewal fails or the lease hits its max TTL (for
the login methods; a static token cannot be replaced).

Vault answers a request made with an invalid or expired token with the same ``403
permission denied`` as a request the policy forbids. :meth:`TokenSession.on_forbidden`
tells them apart with ``lookup-self``: if the token cannot even look itself up it is not a
valid token, which is :class:`AuthenticationFailed`, not :class:`PermissionDenied`.

Secret material (token, secret id, JWT) is held as :class:`SecretValue` and revealed only
into the request that needs it.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secretsync.core.errors import (
    AuthenticationFailed,
    InvalidConfig,
    PermissionDenied,
    ProviderError,
    TemporaryError,
)
from secretsync.core.values import SecretValue

from .config import SERVICE_ACCOUNT_TOKEN, env
from .errors import PROVIDER
from .names import quote_path
from .sdk import Transport

log = logging.getLogger(__name__)

#: Controller configuration (the process's environment, never a store field): the files the
#: kubernetes and jwt methods read when the store supplies no ``jwt`` credential. A store
#: field here would let its author have any file of the controller posted to a Vault of
#: their choice.
SA_TOKEN_PATH_ENV = "SECRETSYNC_VAULT_SA_TOKEN_PATH"
JWT_PATH_ENV = "SECRETSYNC_VAULT_JWT_PATH"

#: Renew once this fraction of the lease has passed (Vault Agent uses about 2/3 too).
RENEW_FRACTION = 2 / 3


def _auth_failed(message: str) -> AuthenticationFailed:
    return AuthenticationFailed(message, provider=PROVIDER, operation="login")


@dataclass(frozen=True, slots=True)
class Login:
    token: SecretValue
    #: Lease in seconds (0: never expires); None: unknown, look the token up.
    lease: float | None
    renewable: bool = False


class Authenticator(abc.ABC):
    """Obtains a token. ``can_relogin``: a fresh token can be had at any time."""

    method: str = ""
    can_relogin: bool = True

    @abc.abstractmethod
    def login(self, transport: Transport) -> Login: ...


class TokenAuth(Authenticator):
    """A static token: credentials ``token``, else VAULT_TOKEN / BAO_TOKEN, else ~/.vault-token."""

    method = "token"
    can_relogin = False

    def __init__(self, token: SecretValue | None) -> None:
        self._token = token

    @classmethod
    def from_sources(cls, credentials: Mapping[str, SecretValue], environ: Mapping[str, str] | None = None,
                     home: Path | None = None) -> TokenAuth:
        if credentials.get("token"):
            return cls(credentials["token"])
        from_env = env("TOKEN", environ)
        if from_env:
            return cls(SecretValue(from_env))
        token_file = (home or Path.home()) / ".vault-token"
        try:
            text = token_file.read_text().strip()
        except OSError:
            text = ""
        return cls(SecretValue(text) if text else None)

    def login(self, transport: Transport) -> Login:
        if self._token is None:
            raise _auth_failed("no Vault token: pass credentials 'token', set VAULT_TOKEN / BAO_TOKEN, "
                               "or write ~/.vault-token")
        return Login(self._token, None)


class _LoginAuth(Authenticator):
    """A method that posts to ``auth/<mountPath>/login`` and gets a token back."""

    def __init__(self, mount_path: str) -> None:
        self.mount_path = mount_path.strip("/")

    @abc.abstractmethod
    def _body(self) -> dict[str, Any]: ...

    def login_path(self) -> str:
        return f"auth/{quote_path(self.mount_path)}/login"

    def login(self, transport: Transport) -> Login:
        body = self._body()
        try:
            response = transport.request("POST", self.login_path(), operation="login", body=body,
                                         authenticated=False)
        except InvalidConfig as exc:
            if "no such mount" in str(exc):
                raise InvalidConfig(f"no {self.method} auth method is mounted at auth/{self.mount_path}",
                                    provider=PROVIDER, operation="login") from exc
            raise _auth_failed(f"{self.method} login at auth/{self.mount_path} was rejected: "
                               f"{error_detail(exc)}") from exc
        except PermissionDenied as exc:
            # Vault also answers 403 for a login path where nothing is mounted.
            raise _auth_failed(f"{self.method} login at auth/{self.mount_path} was rejected "
                               f"(wrong credentials or role, or no {self.method} auth method mounted "
                               "there)") from exc
        auth = (response or {}).get("auth") or {}
        token = auth.get("client_token")
        if not isinstance(token, str) or not token:
            raise _auth_failed(f"{self.method} login at auth/{self.mount_path} returned no token")
        return Login(SecretValue(token), float(auth.get("lease_duration") or 0),
                     bool(auth.get("renewable")))


def error_detail(exc: ProviderError) -> str:
    """An error's message without its ``provider/operation:`` head."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def _read_file(path: str, what: str) -> SecretValue:
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise _auth_failed(f"cannot read the {what} file {path}: {exc.strerror}") from None
    if not text:
        raise _auth_failed(f"the {what} file {path} is empty")
    return SecretValue(text)


class AppRoleAuth(_LoginAuth):
    """role_id + secret_id (credentials ``roleId``/``secretId``, config, or VAULT_ROLE_ID/VAULT_SECRET_ID)."""

    method = "approle"

    def __init__(self, mount_path: str, role_id: SecretValue | None, secret_id: SecretValue | None) -> None:
        super().__init__(mount_path)
        self._role_id = role_id
        self._secret_id = secret_id

    def _body(self) -> dict[str, Any]:
        if self._role_id is None:
            raise _auth_failed("approle auth needs a role id: credentials 'roleId', config 'auth.roleId' "
                               "or VAULT_ROLE_ID")
        body = {"role_id": self._role_id.reveal_text()}
        if self._secret_id is not None:
            body["secret_id"] = self._secret_id.reveal_text()
        return body


class JwtAuth(_LoginAuth):
    """role + a JWT: credentials ``jwt``, else read from a file at every login (tokens rotate)."""

    method = "jwt"
    file_kind = "JWT"

    def __init__(self, mount_path: str, role: str | None, jwt: SecretValue | None, jwt_path: str | None) -> None:
        super().__init__(mount_path)
        self.role = role
        self._jwt = jwt
        self._jwt_path = jwt_path

    def _body(self) -> dict[str, Any]:
        if self._jwt is not None:
            jwt = self._jwt
        elif self._jwt_path:
            jwt = _read_file(self._jwt_path, self.file_kind)
        else:
            raise _auth_failed(f"{self.method} auth needs a JWT: credentials 'jwt' (serviceAccountRef or "
                               f"secretRef.jwt) or ${JWT_PATH_ENV}")
        return {**({"role": self.role} if self.role else {}), "jwt": jwt.reveal_text()}


class CertAuth(_LoginAuth):
    """TLS certificate auth: the client certificate is presented in the handshake (set up by
    :func:`.sdk.ssl_context` from credentials ``clientCert``/``clientKey``); the login names
    the cert role when the store gives one, else Vault matches any role trusting the cert."""

    method = "cert"

    def __init__(self, mount_path: str, role: str | None, has_cert: bool) -> None:
        super().__init__(mount_path)
        self.role = role
        self._has_cert = has_cert

    def _body(self) -> dict[str, Any]:
        if not self._has_cert:
            raise _auth_failed("cert auth needs a client certificate and key: credentials 'clientCert' and "
                               "'clientKey' (auth.cert.clientCert and auth.cert.secretRef)")
        return {"name": self.role} if self.role else {}


class PasswordAuth(_LoginAuth):
    """userpass and ldap: ``auth/<mountPath>/login/<username>`` with the password in the body."""

    def __init__(self, method: str, mount_path: str, username: str, password: SecretValue | None) -> None:
        super().__init__(mount_path)
        self.method = method
        self.username = username
        self._password = password

    def login_path(self) -> str:
        return f"{super().login_path()}/{quote_path(self.username)}"

    def _body(self) -> dict[str, Any]:
        if self._password is None:
            raise _auth_failed(f"{self.method} auth needs a password: credentials 'password' "
                               f"(auth.{'userPass' if self.method == 'userpass' else 'ldap'}.secretRef)")
        return {"password": self._password.reveal_text()}


class KubernetesAuth(JwtAuth):
    """role + the pod's service-account token, re-read at every login (projected tokens rotate)."""

    method = "kubernetes"
    file_kind = "service-account token"


def authenticator(config: Mapping[str, Any], credentials: Mapping[str, SecretValue],
                  environ: Mapping[str, str] | None = None) -> Authenticator:
    """The authenticator the store config asks for; secrets from credentials, then env/files."""
    auth: Mapping[str, Any] = config.get("auth") or {}
    method = auth.get("method", "token")
    mount_path = auth.get("mountPath") or method
    if method == "token":
        return TokenAuth.from_sources(credentials, environ)
    if method == "approle":
        role_id = credentials.get("roleId")
        if role_id is None and (auth.get("roleId") or env("ROLE_ID", environ)):
            role_id = SecretValue(auth.get("roleId") or env("ROLE_ID", environ) or "")
        secret_id = credentials.get("secretId")
        if secret_id is None and env("SECRET_ID", environ):
            secret_id = SecretValue(env("SECRET_ID", environ) or "")
        return AppRoleAuth(mount_path, role_id, secret_id)
    environ = os.environ if environ is None else environ
    if method == "kubernetes":
        return KubernetesAuth(mount_path, auth["role"], credentials.get("jwt"),
                              environ.get(SA_TOKEN_PATH_ENV) or SERVICE_ACCOUNT_TOKEN)
    if method == "jwt":
        return JwtAuth(mount_path, auth.get("role"), credentials.get("jwt"), environ.get(JWT_PATH_ENV))
    if method == "cert":
        return CertAuth(mount_path, auth.get("role"),
                        credentials.get("clientCert") is not None and credentials.get("clientKey") is not None)
    if method in ("userpass", "ldap"):
        return PasswordAuth(method, mount_path, auth["username"], credentials.get("password"))
    raise InvalidConfig(f"unknown auth method {method!r}", provider=PROVIDER, operation="config")


class TokenSession:
    """Holds the current token and keeps it valid: lazy login, renew-self, re-login."""

    def __init__(self, auth: Authenticator, transport: Transport,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.auth = auth
        self._transport = transport
        self._clock = clock
        self._lock = threading.RLock()
        self._has_token = False
        self._renew_at: float | None = None
        self._renewable = False
        self._first_lease = 0.0

    def ensure(self) -> None:
        """Before a request: log in if needed, renew (or re-login) when the lease runs low."""
        with self._lock:
            if not self._has_token:
                self._login()
            elif self._renew_at is not None and self._clock() >= self._renew_at:
                self._refresh()

    def on_forbidden(self, exc: PermissionDenied) -> bool:
        """After a 403: raise AuthenticationFailed if the token is invalid (or log in again and
        return True so the caller retries once); return False for a genuine policy denial."""
        with self._lock:
            try:
                self._transport.request("GET", "auth/token/lookup-self", operation="lookup_self")
            except PermissionDenied as lookup_exc:
                if self.auth.can_relogin:
                    self._login()
                    return True
                raise AuthenticationFailed(
                    "the Vault token is invalid or expired (403, and it cannot look itself up)",
                    provider=PROVIDER, operation=exc.operation, key=exc.key,
                ) from lookup_exc
            return False

    def revoke(self) -> None:
        """Revoke a token this session logged in for (``revoke-self``), best effort.

        Why: every login creates a token that lives until its TTL ends; a controller that
        reopens a store (rotated credentials, a new spec) would otherwise leave one live
        token per reopen. A static token was given to us and is not ours to revoke.
        """
        with self._lock:
            if not self._has_token or not self.auth.can_relogin:
                return
            self._has_token = False
            try:
                self._transport.request("POST", "auth/token/revoke-self", operation="revoke_self", body={})
            except ProviderError as exc:  # the token then expires at its TTL
                log.info("vault: could not revoke the login token on close: %s", exc)

    # -- internals ------------------------------------------------------------------------
    def _login(self) -> None:
        login = self.auth.login(self._transport)
        self._transport.set_token(login.token.reveal_text())
        self._has_token = True
        if login.lease is None:
            self._lookup()
        else:
            self._first_lease = login.lease
            self._schedule(login.lease, login.renewable)

    def _lookup(self) -> None:
        """Learn a static token's remaining TTL; a token that may not look itself up is not renewed."""
        try:
            response = self._transport.request("GET", "auth/token/lookup-self", operation="lookup_self")
        except PermissionDenied:
            self._renew_at = None
            return
        data = (response or {}).get("data") or {}
        ttl = float(data.get("ttl") or 0)
        self._first_lease = ttl
        self._schedule(ttl, bool(data.get("renewable")))

    def _schedule(self, lease: float, renewable: bool) -> None:
        if lease <= 0:
            self._renew_at = None  # never expires (root token, or no TTL)
            return
        self._renewable = renewable
        self._renew_at = self._clock() + lease * RENEW_FRACTION

    def _refresh(self) -> None:
        if self._renewable:
            try:
                response = self._transport.request("POST", "auth/token/renew-self", operation="renew_self",
                                                   body={})
            except ProviderError as exc:
                if not self.auth.can_relogin:
                    if isinstance(exc, TemporaryError) and "max TTL" not in str(exc):
                        raise  # an outage: try renewing again on the next request
                    self._renew_at = None  # cannot renew: use the token until it expires
                    return
            else:
                auth = (response or {}).get("auth") or {}
                lease = float(auth.get("lease_duration") or 0)
                # Near its max TTL a renewal grants less and less: log in afresh instead.
                capped = self.auth.can_relogin and 0 < lease < self._first_lease / 3
                self._schedule(lease, bool(auth.get("renewable")) and not capped)
                return
        if self.auth.can_relogin:
            self._login()
        else:
            self._renew_at = None
