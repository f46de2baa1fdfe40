"""The smallest interface over hvac the adapter needs: one authenticated HTTP request.

Why so small: the KV engines (v1 and v2), the token endpoints and every login method are
plain JSON over HTTP, so one ``request(method, path, body)`` covers all of them. Keeping
hvac behind this single method means one place sets timeouts and TLS, one place counts
and rate-limits calls, and one place maps exceptions (:mod:`.errors`).

Paths are built from already-encoded segments (see :func:`quote_path`): hvac joins the URL
as text, so a name with ``?``, ``#``, ``%`` or a space would otherwise change the request.

Answers are read here, not through hvac's exceptions (see :func:`.errors.error_for_response`):
a 200 whose body is not a JSON object is Unavailable (a truncated or garbled answer must
never read as "no such secret"), and each call is bounded as a whole by
``settings.timeouts.call_deadline`` (a server dripping its answer cannot hold a worker).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import hvac.adapters
import hvac.exceptions as hvac_exc
import requests
from urllib3.util.retry import Retry

from secretsync.core.errors import ProviderError, Unavailable
from secretsync.core.settings import ClientSettings

from ..http_deadline import call_deadline, deadline_http_adapter
from .errors import PROVIDER, error_for_response, json_object, map_error


def quote_path(path: str) -> str:
    """Percent-encode each segment of a Vault path (keeping the slashes between them)."""
    return "/".join(quote(seg, safe="") for seg in path.split("/"))


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
class Endpoint:
    """Where and how to connect: resolved from config and environment by the factory."""

    address: str
    namespace: str | None = None
    #: A CA bundle path, or False to skip verification, or True for the system store.
    verify: str | bool = True


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
        mounted = deadline_http_adapter(max_retries=retry)
        session.mount("http://", mounted)
        session.mount("https://", mounted)
        session.verify = endpoint.verify
        options: dict[str, Any] = {
            "base_uri": endpoint.address.rstrip("/"),
            "namespace": endpoint.namespace,
            "session": session,
            "verify": endpoint.verify,
            "timeout": (settings.timeouts.connect, settings.timeouts.read),
            "allow_redirects": False,
        }
        self._deadline = settings.timeouts.call_deadline
        # RawAdapter: the answer comes back as it is, so this module decides what it means.
        self._adapter = hvac.adapters.RawAdapter(**options)
        # Logins go out without any token (a stale one must not ride along); same session.
        self._anonymous = hvac.adapters.RawAdapter(**options)

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
        with self._settings.calls.call(PROVIDER, operation, self._limiter):
            error: ProviderError | None = None
            cause: BaseException | None = None
            with call_deadline(self._deadline) as scope:
                try:
                    response = adapter.request(method, f"/v1/{path}", raise_exception=False, **kwargs)
                    status, headers, content = response.status_code, response.headers, response.content
                except (hvac_exc.VaultError, requests.exceptions.RequestException) as exc:
                    error, cause = map_error(exc, operation=operation, key=key), exc
                    if scope.expired:
                        error = Unavailable(
                            f"no complete answer within {self._deadline:g}s (the server or a proxy is "
                            "stalling)", provider=PROVIDER, operation=operation, key=key)
            if error is not None:
                raise error from cause
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
