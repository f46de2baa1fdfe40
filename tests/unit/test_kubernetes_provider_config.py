"""The kubernetes provider's block and answers, as a hostile tenant or a broken proxy gives them."""

from __future__ import annotations

import json

import pytest
from secretsync_providers.kubernetes.errors import map_error
from secretsync_providers.kubernetes.sdk import ApiStatus

from secretsync.api.models import API_VERSION, InvalidSpec, parse_secret_store
from secretsync.core.errors import AuthenticationFailed, InvalidConfig, NotFound, PermissionDenied, Unavailable


def _store(block: dict[str, object]) -> dict[str, object]:
    return {"apiVersion": API_VERSION, "kind": "SecretStore", "metadata": {"name": "s", "namespace": "team"},
            "spec": {"provider": {"kubernetes": block}}}


@pytest.mark.parametrize(("block", "field"), [
    ({"remoteNamespace": "x"}, "spec.provider.kubernetes.auth"),
    ({"auth": {"cert": {"clientCert": {"name": "c", "key": "k"}}}}, "spec.provider.kubernetes.auth.cert"),
    ({"authRef": {"name": "kubeconfig", "key": "k"}, "auth": {"serviceAccount": {"name": "sa"}}},
     "spec.provider.kubernetes.authRef"),
    ({"server": {"url": "http://evil.example"}, "auth": {"serviceAccount": {"name": "sa"}}},
     "spec.provider.kubernetes.server.url"),
    ({"server": {"caProvider": {"type": "Vault", "name": "x", "key": "k"}}, "auth": {"serviceAccount": {"name": "a"}}},
     "spec.provider.kubernetes.server.caProvider.type"),
    ({"auth": {"token": {"bearerToken": {"name": "t", "key": "k", "namespace": "kube-system"}}}},
     "spec.provider.kubernetes.auth.token.bearerToken.namespace"),
])
def test_a_bad_kubernetes_block_is_refused_naming_the_field(block: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_secret_store(_store(block))
    assert field in str(info.value)


def _status(code: int, reason: str, kind: str | None = "secrets") -> ApiStatus:
    body = {"kind": "Status", "reason": reason, **({"details": {"kind": kind}} if kind else {})}
    return ApiStatus(code, json.dumps(body).encode(), None)


def test_only_a_status_about_a_secret_is_not_found() -> None:
    assert isinstance(map_error(_status(404, "NotFound"), "get", "k")[0], NotFound)
    assert isinstance(map_error(_status(404, "NotFound", kind=None), "get", "k")[0], InvalidConfig)
    assert isinstance(map_error(ApiStatus(404, b"<html>proxy</html>", None), "get", "k")[0], InvalidConfig)
    assert isinstance(map_error(_status(403, "Forbidden"), "get", "k")[0], PermissionDenied)
    assert isinstance(map_error(_status(401, "Unauthorized"), "get", "k")[0], AuthenticationFailed)
    assert isinstance(map_error(ApiStatus(503, b"", None), "get", "k")[0], Unavailable)
    assert isinstance(map_error(ConnectionResetError(), "get", "k")[0], Unavailable)
