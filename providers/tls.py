"""Trust for a store that names its own CA: that CA alone, whatever the HTTP stack adds later.

Why one place: ESO's rule is that a store's ``caBundle`` / ``caProvider`` (and a CA file the
controller configures) *replaces* the trust store; it is not added to it. Python's and the
HTTP libraries' defaults work against that twice over: ``ssl.create_default_context`` loads the
system's roots unless it is given a CA up front, and ``requests`` then loads certifi's bundle (or
``REQUESTS_CA_BUNDLE``) into whatever context it is handed, on every connection. A store pinned to
a private CA would so also accept any publicly trusted certificate for its address. The context
made here is sealed once built: later loads of CA locations or default roots are ignored, so no
layer between here and the socket can widen the trust.
"""

from __future__ import annotations

import ssl
from typing import Any

from secretsync.core.errors import InvalidConfig


class _PinnedContext(ssl.SSLContext):
    """An ``SSLContext`` whose set of trusted CAs cannot grow once :meth:`seal` is called."""

    _sealed = False

    def seal(self) -> None:
        self._sealed = True

    def load_verify_locations(self, cafile: Any = None, capath: Any = None, cadata: Any = None) -> None:
        if not self._sealed:
            super().load_verify_locations(cafile, capath, cadata)

    def load_default_certs(self, purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH) -> None:
        if not self._sealed:
            super().load_default_certs(purpose)

    def set_default_verify_paths(self) -> None:
        if not self._sealed:
            super().set_default_verify_paths()


def pinned_context(ca_pem: str | None = None, *, ca_file: str | None = None, provider: str,
                   field: str) -> ssl.SSLContext:
    """A client TLS context that verifies the server against exactly these CAs (PEM data and/or a
    PEM file) and checks its host name; nothing from the system or certifi is ever added.

    ``field`` names where the CA came from, for the error when it holds no valid certificate.
    """
    if not ca_pem and not ca_file:
        raise ValueError("pinned_context needs a CA")
    ctx = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        if ca_pem:
            ctx.load_verify_locations(cadata=ca_pem)
    except (ssl.SSLError, ValueError, OSError):
        raise InvalidConfig(f"the CA bundle ({field}) holds no valid PEM certificate", provider=provider,
                            operation="config") from None
    ctx.seal()
    return ctx


#: What :func:`handshake_failure` answers.
UNTRUSTED, CLIENT_CERT_REQUIRED, OTHER_TLS = "untrusted", "client-certificate-required", "tls"


def handshake_failure(exc: BaseException) -> str | None:
    """What a failed TLS handshake, as an HTTP stack reports it, was: :data:`UNTRUSTED` (the server's
    certificate does not chain to the trusted CAs, or is not for that host), :data:`CLIENT_CERT_REQUIRED`,
    :data:`OTHER_TLS`; None when ``exc`` is no TLS failure. Why here: requests and urllib3 wrap
    the ``ssl`` error (``reason``, causes, args) differently, and every provider must tell a
    certificate its store does not trust (a configuration error) from an outage."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    tls = False
    while todo and len(seen) < 12:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        text = str(item).upper()
        if isinstance(item, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            return UNTRUSTED
        if "CERTIFICATE_REQUIRED" in text or "CERTIFICATE REQUIRED" in text:
            return CLIENT_CERT_REQUIRED
        tls = tls or isinstance(item, ssl.SSLError) or type(item).__name__ == "SSLError"
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__, *item.args])
    return OTHER_TLS if tls else None
