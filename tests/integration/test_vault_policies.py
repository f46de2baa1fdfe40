"""The least-privilege policies printed in docs/providers.md really are enough (and no more):
they are read from the document, applied to OpenBao, and the controller's and migrator's
operations run under them."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from secretsync.core.contract import ListFilter, ValidationStatus
from secretsync.core.errors import NotFound, PermissionDenied
from secretsync.core.values import SecretValue
from tests.harness.vault import OpenBao

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def _policies() -> dict[str, str]:
    text = DOC.read_text()
    blocks = re.findall(r"```hcl\n(.*?)```", text, flags=re.S)
    out = {}
    for block in blocks:
        match = re.match(r"# policy: (\S+)\n", block)
        if match:
            out[match.group(1)] = block
    return out


@pytest.fixture(scope="module")
def tokens(openbao: OpenBao) -> dict[str, str]:
    raw = openbao.raw()
    out = {}
    for name, hcl in _policies().items():
        raw.sys.create_or_update_policy(name=name, policy=hcl)
        out[name] = raw.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"]
    assert set(out) == {"secretsync-controller", "secretsync-migrator"}
    return out


def test_migrator_policy_covers_create_cas_tags_and_soft_delete(openbao: OpenBao, tokens: dict[str, str]) -> None:
    client = openbao.open({"prefix": "apps"}, token=tokens["secretsync-migrator"])
    name = f"mig-{uuid.uuid4().hex[:8]}/db"
    first = client.put(name, SecretValue("v1"), if_absent=True, tags={"managed-by": "secretsync"})
    client.put(name, SecretValue("v2"), expected_version=first.version)
    assert client.describe(name).tags == {"managed-by": "secretsync"}
    assert [m.name for m in client.list(ListFilter(prefix=name.split("/")[0] + "/"))] == [name]
    client.delete(name)
    assert not client.exists(name)
    client.put(name, SecretValue("v3"), if_absent=True)
    assert client.validate().status is ValidationStatus.READY
    with pytest.raises(PermissionDenied):
        client.delete(name, force=True)  # permanent delete is deliberately not granted
    outside = openbao.open({"prefix": "elsewhere"}, token=tokens["secretsync-migrator"])
    with pytest.raises(PermissionDenied):
        outside.put("x", SecretValue("v"))


def test_controller_policy_reads_lists_and_cannot_write(openbao: OpenBao, tokens: dict[str, str]) -> None:
    name = f"ctl-{uuid.uuid4().hex[:8]}/api-key"
    openbao.open({"prefix": "apps"}).put(name, SecretValue("k1"), tags={"team": "web"})
    client = openbao.open({"prefix": "apps"}, token=tokens["secretsync-controller"])
    assert client.kv_version == 2  # detection works under the narrow policy
    assert client.get(name).reveal_text() == "k1"
    assert client.get_versioned(name).version == "1"
    assert client.describe(name).tags == {"team": "web"}
    assert [m.name for m in client.list(ListFilter(prefix=name.split("/")[0] + "/"))] == [name]
    assert client.validate().status is ValidationStatus.READY
    with pytest.raises(NotFound):
        client.get(f"{name}-absent")
    with pytest.raises(PermissionDenied):
        client.put(name, SecretValue("k2"))
    with pytest.raises(PermissionDenied):
        client.delete(name)
