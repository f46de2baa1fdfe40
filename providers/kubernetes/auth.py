"""Where the requests go and with which identity: the store's token, and the CA to trust.

Without ``server.url`` the store reads this cluster: its address and CA are the controller's
configuration (``SECRETSYNC_KUBERNETES_SERVER`` / ``SECRETSYNC_KUBERNETES_CA_FILE``, else the
in-cluster service environment and the pod's CA file), never a store field. The token is
always the store's own (a ServiceAccount TokenRequest or a bearer token from a Secret).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from secretsync.core.errors import InvalidConfig
from secretsync.core.values import SecretValue

from .config import CA_BUNDLE, PROVIDER, TOKEN

_INCLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"


@dataclass(frozen=True, slots=True)
class Target:
    server: str
    token: str
    ca_pem: str | None


def _this_cluster() -> tuple[str, str | None]:
    server = os.environ.get("SECRETSYNC_KUBERNETES_SERVER")
    ca_file = os.environ.get("SECRETSYNC_KUBERNETES_CA_FILE")
    if not server:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise InvalidConfig("server.url: not set, and the controller knows no cluster of its own "
                                "(not in a cluster; SECRETSYNC_KUBERNETES_SERVER unset)", provider=PROVIDER,
                                operation="open")
        server = f"https://{host}:{port}"
        ca_file = ca_file or _INCLUSTER_CA
    ca = None
    if ca_file:
        try:
            with open(ca_file, encoding="ascii") as fh:
                ca = fh.read()
        except OSError as exc:
            raise InvalidConfig(f"the controller's CA file for its cluster cannot be read: {exc.strerror}",
                                provider=PROVIDER, operation="open") from None
    return server, ca


def target(config: Mapping[str, Any], credentials: Mapping[str, SecretValue] | None) -> Target:
    creds = credentials or {}
    token = creds.get(TOKEN)
    if token is None:
        raise InvalidConfig("auth: the store brings no token (auth.serviceAccount or auth.token.bearerToken)",
                            provider=PROVIDER, operation="open")
    given_ca = creds.get(CA_BUNDLE)
    ca = given_ca.reveal_text() if given_ca is not None else config.get("caBundle")
    if config.get("url"):
        server = str(config["url"])
    else:
        server, own_ca = _this_cluster()
        ca = ca or own_ca
    return Target(server, token.reveal_text().strip(), ca)
