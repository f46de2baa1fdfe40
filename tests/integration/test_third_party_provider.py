"""A provider registered only through the entry point is a first-class provider.

Written as the author of a third-party provider would: a ``*.dist-info`` with an
``entry_points.txt`` on ``sys.path`` (what ``pip install`` leaves), nothing registered in
secretsync. Its SecretStore block uses its own dialect (``auth.apiKeySecretRef``), its
errors are reported at the path inside its block, and an ExternalSecret syncs through it on
the real kube-apiserver.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from secretsync.api.models import InvalidSpec, parse_secret_store
from secretsync.controller.settings import ScopeSettings
from secretsync.core import registry
from secretsync.core.calls import CallRecorder
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeApi
from secretsync.migrator import naming
from tests.harness import toyprovider
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster


@pytest.fixture
def toy_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What installing a distribution that declares the entry point leaves on sys.path."""
    dist = tmp_path / "secretsync_toy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: secretsync-toy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[secretsync.providers]\ntoy = tests.harness.toyprovider:factory\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._cache.pop("toy", None)
    yield
    registry._cache.pop("toy", None)


def _toy_store(ns: str | None, block: Mapping[str, object], key: str = "toy") -> dict[str, object]:
    return store_manifest("toy", ns, key, block)


def test_a_store_block_of_a_third_party_provider_is_read_by_that_provider(toy_installed: None) -> None:
    block = {"catalog": "c", "auth": {"apiKeySecretRef": {"name": "k", "key": "a"}}}
    ok = parse_secret_store(_toy_store("team", block))
    assert (ok.spec.provider.name, ok.spec.provider.config) == ("toy", {"catalog": "c"})
    assert [(s.credential, s.field, s.name) for s in ok.spec.provider.credentials] == [
        ("apiKey", "auth.apiKeySecretRef", "k")]
    alias = parse_secret_store(_toy_store("team", block, key="toybox"))
    assert alias.spec.provider.name == "toy"
    with pytest.raises(InvalidSpec) as info:
        parse_secret_store(_toy_store("team", {"catalog": "c", "auth": {"apiKeySecretRef": {"name": "k"}}}))
    assert "spec.provider.toy.auth.apiKeySecretRef.key: required" in str(info.value)
    with pytest.raises(InvalidSpec, match=r"spec\.provider\.toy\.auth\.apiKeySecretRef\.namespace: a SecretStore "
                                          r"may only reference Secrets in its own namespace"):
        parse_secret_store(_toy_store("team", {"catalog": "c", "auth": {"apiKeySecretRef": {
            "name": "k", "key": "a", "namespace": "other-team"}}}))


def test_the_migrator_names_keys_by_the_third_party_providers_own_rules(toy_installed: None) -> None:
    # The toy allows only [a-z0-9.] and no '/': the name is made of those, and kept under 64.
    assert naming.sanitize("default/api/db_password", "toy") == "default.api.db.password"
    long = naming.sanitize("x" * 100, "toy")
    assert len(long) <= 64 and set(long) <= set("abcdefghijklmnopqrstuvwxyz0123456789.")


def test_an_unknown_provider_key_is_named_with_the_installed_ones() -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_secret_store(_toy_store("team", {"catalog": "c"}, key="nosuchprovider"))
    text = str(info.value)
    assert "spec.provider.nosuchprovider: no installed provider is named 'nosuchprovider'" in text
    assert "aws" in text and "vault" in text


@pytest.mark.kube
def test_an_external_secret_syncs_through_a_provider_registered_by_entry_point(
        toy_installed: None, kube: KubeCluster) -> None:
    install_crds(kube)
    api: KubeApi = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("toy", labels={"secretsync-test": label})
    catalog = f"cat-{label}"
    toyprovider.catalog(catalog).put("db/password", SecretValue("toy-value-1"), None, False, None)
    api.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "toy-key", "namespace": ns},
                         "data": {"apiKey": base64.b64encode(toyprovider.API_KEY.encode()).decode()}}, ns)
    create(api, _toy_store(ns, {"catalog": catalog, "auth": {"apiKeySecretRef": {"name": "toy-key", "key": "apiKey"}}}))
    create(api, es_manifest("app", ns, "toy", [("password", "db/password")], refresh="1h"))
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    try:
        with running_controller(kube, settings, CallRecorder()):
            cond = wait_for(es_ready(api, ns, "app"), message="ExternalSecret Ready through the toy provider")
            assert cond["reason"] == "SecretSynced"
            assert secret_data(api, ns, "app") == {"password": "toy-value-1"}
    finally:
        api.close()
