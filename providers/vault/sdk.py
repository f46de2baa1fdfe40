"""The smallest interface over hvac the adapter needs: one authenticated HTTP request.

Why so small: the KV engines (v1 and v2), the token endpoints and every login method are
plain JSON over HTTP, so one ``request(method, path, body)`` covers all of them. Keeping
hvac behind this single method means one place sets timeouts and TLS (a CA given as data, a client
certificate for mutual TLS and ``cert`` auth), and every call goes through the shared
:func:`~secretsync_providers.calls.provider_call` (count, rate limit, deadline, mapping by
:func:`.errors.mapper`).

Paths are built from already-encoded segments (see :func:`.names.quote_path`): hvac joins the URL
as text, so a name with ``?``, ``#``, ``%`` or a space would otherwise change the request.

Answers are read here, not through hvac's exceptions (see :func:`.errors.error_for_response`):
a 200 whose body is not a JSON object is Unavailable (a truncated or garbled answer must
never read as "no such secret"), and each call is bounded as a whole by
``settings.timeouts.call_deadline`` (a server dripping its answer cannot hold a worker).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import hvac.adapters
import requests
from urllib3.util.retry import Retry

from secretsync.core.errors import InvalidConfig, Unavailable
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..calls import provider_call
from ..http_deadline import deadline_http_adapter
from ..tls import pinned_context
from .errors import PROVIDER, error_for_response, json_object, mapper


class Transport(Protocol):
    """What the client and the authenticators use: one JSON request, errors already mapped."""

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        key: str | None = None,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> dict[str, Any] | None: ...

    def set_token(self, token: str | None) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ClientCert:
    """A PEM certificate (chain) and its PEM private key, presented in the TLS handshake."""

    cert: SecretValue
    key: SecretValue

    def __repr__(self) -> str:
        return "ClientCert(<redacted>)"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect: resolved from config, credentials and environment by the factory."""

    address: str
    namespace: str | None = None
    #: A CA bundle path, or False to skip verification, or True for the system store.
    verify: str | bool = True
    #: CA certificates as PEM data (``caBundle``, ``caProvider``): with a ``verify`` path, the only trust.
    ca_pem: str | None = None
    #: Mutual TLS (``tls.certSecretRef``/``keySecretRef``, or ``cert`` auth's certificate).
    client_cert: ClientCert | None = None
    #: Namespace of the login requests when it differs from ``namespace`` (ESO ``auth.namespace``).
    auth_namespace: str | None = None
    #: Extra headers on every request (``X-Vault-Inconsistent`` for ``forwardInconsistent``).
    headers: tuple[tuple[str, str], ...] = ()


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext | None:
    """The TLS context for CA data and a client certificate, or None when neither is given.

    Why a context and not ``requests``' ``verify=``/``cert=`` paths: those take files, and
    these come from Kubernetes Secrets (ConfigMaps) as data. The key is loaded through a
    private temporary file that is removed at once (Python's ssl loads a key only from a
    path), so it never outlives this call on disk.
    """
    if endpoint.ca_pem is None and endpoint.client_cert is None:
        return None
    ca_file = endpoint.verify if isinstance(endpoint.verify, str) else None
    if endpoint.verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif endpoint.ca_pem is not None or ca_file is not None:
        # The store's CAs (and the controller's caCert file) are the whole trust (ESO's rule).
        ctx = pinned_context(endpoint.ca_pem, ca_file=ca_file, provider=PROVIDER,
                             field="caBundle / caProvider / caCert")
    else:
        ctx = ssl.create_default_context()
    if endpoint.client_cert is not None:
        with tempfile.TemporaryDirectory(prefix="secretsync-vault-tls-") as tmp:
            cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            for path, value in ((cert_path, endpoint.client_cert.cert), (key_path, endpoint.client_cert.key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(value.reveal())
            try:
                ctx.load_cert_chain(cert_path, key_path)
            except (ssl.SSLError, ValueError):
                raise InvalidConfig("the client certificate and key (tls / auth.cert) are not a matching PEM "
                                    "certificate and private key", provider=PROVIDER, operation="config") from None
    return ctx


class HvacTransport:
    """:class:`Transport` on hvac's JSON adapter, with bounded timeouts and few SDK retries."""

    def __init__(self, endpoint: Endpoint, settings: ClientSettings) -> None:
        self._settings = settings
        self._limiter = settings.rate_limit.bucket()
        session = requests.Session()
        # Retry only failed *connections* (nothing was sent); we retry everything else above.
        # No status retries and no sleeping on Retry-After here: a 429/503 comes back at once as
        # Throttled/Unavailable with the server's delay, and the caller decides.
        retry = Retry(total=settings.timeouts.sdk_retries, connect=settings.timeouts.sdk_retries,
                      read=0, status=0, other=0, redirect=0, backoff_factor=0.1,
                      status_forcelist=(), respect_retry_after_header=False, raise_on_status=False)
        context = ssl_context(endpoint)
        mounted = deadline_http_adapter(max_retries=retry)
        if context is not None:
            mounted.init_poolmanager(mounted._pool_connections, mounted._pool_maxsize,
                                     block=mounted._pool_block, ssl_context=context)
        session.mount("http://", mounted)
        session.mount("https://", mounted)
        session.headers.update(dict(endpoint.headers))
        # With a context, it decides what is trusted: requests still loads its bundle (certifi or
        # REQUESTS_CA_BUNDLE) into it on each connection, which a pinned context ignores.
        verify: str | bool = endpoint.verify if context is None else endpoint.verify is not False
        # The environment's proxies (HTTPS_PROXY / NO_PROXY for this address) and CA bundle
        # (REQUESTS_CA_BUNDLE when verify is True), read once: requests reads them on every
        # request, scanning the whole environment each time (a pod has one variable per
        # Service in its namespace): 0.3 ms of CPU per read here, 10k reads at a cold start.
        env = session.merge_environment_settings(endpoint.address, {}, None, verify, None)
        session.trust_env = False
        session.proxies.update(env.get("proxies") or {})
        verify = env.get("verify", verify)
        session.verify = verify
        options: dict[str, Any] = {
            "base_uri": endpoint.address.rstrip("/"),
            "namespace": endpoint.namespace,
            "session": session,
            "verify": verify,
            "timeout": (settings.timeouts.connect, settings.timeouts.read),
            "allow_redirects": False,
        }
        # RawAdapter: the answer comes back as it is, so this module decides what it means.
        self._adapter = hvac.adapters.RawAdapter(**options)
        # Logins go out without any token (a stale one must not ride along); same session, and
        # in the auth method's own namespace when the store names one.
        self._anonymous = hvac.adapters.RawAdapter(
            **{**options, "namespace": endpoint.auth_namespace or endpoint.namespace})

    def set_token(self, token: str | None) -> None:
        self._adapter.token = token

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        key: str | None = None,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> dict[str, Any] | None:
        """Send one request to ``/v1/<path>``; the JSON body on 200, None on 204."""
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json"] = dict(body)
        if params:
            kwargs["params"] = dict(params)
        adapter = self._adapter if authenticated else self._anonymous
        with provider_call(self._settings, PROVIDER, operation, mapper, key=key, limiter=self._limiter,
                           server="the vault"):
            response = adapter.request(method, f"/v1/{path}", raise_exception=False, **kwargs)
            status, headers, content = response.status_code, response.headers, response.content
        if status == 204:
            return None
        if 200 <= status < 300:
            doc = json_object(content)
            if doc is None and content.strip():
                raise Unavailable(f"malformed answer: HTTP {status} whose body is not a JSON object "
                                  "(truncated, or not from Vault)", provider=PROVIDER,
                                  operation=operation, key=key, code=str(status))
            return doc
        raise error_for_response(status, headers, content, operation=operation, key=key,
                                 values=_strings(body))

    def close(self) -> None:
        self._adapter.close()


def _strings(body: Mapping[str, Any] | None) -> list[str]:
    """Every string in a request body (a value, a login secret): error text must not repeat them."""
    out: list[str] = []
    todo: list[Any] = [body]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping):
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
    return out
