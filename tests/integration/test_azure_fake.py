"""The fake vault answers as the documented Key Vault REST API does (so adapter tests
against it mean something): challenge, paging, name/size rules, soft-delete states."""

from __future__ import annotations

import pytest

pytest.importorskip("azure.keyvault.secrets")

import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.fakes.azure_keyvault import FakeKeyVault
from tests.harness.azure import sdk_client


def test_an_unauthenticated_request_gets_the_bearer_challenge(fake_keyvault: FakeKeyVault) -> None:
    response = requests.get(f"{fake_keyvault.url}/secrets?api-version=7.5", verify=str(fake_keyvault.ca_path),
                            timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{fake_keyvault.tenant}", '
        'resource="https://vault.azure.net"'
    )
    bad = requests.get(f"{fake_keyvault.url}/secrets?api-version=7.5", verify=str(fake_keyvault.ca_path),
                       headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "Unauthorized"


def test_requests_need_a_known_api_version(fake_keyvault: FakeKeyVault) -> None:
    response = requests.get(f"{fake_keyvault.url}/secrets", verify=str(fake_keyvault.ca_path),
                            headers={"Authorization": f"Bearer {fake_keyvault.token}"}, timeout=5)
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadParameter"


def test_lists_page_through_next_links_with_maxresults(fake_keyvault: FakeKeyVault) -> None:
    raw = sdk_client(fake_keyvault)
    for i in range(23):
        raw.set_secret(f"p{i:02d}", "x")
    pages = [list(p) for p in raw.list_properties_of_secrets(max_page_size=10).by_page()]
    assert [len(p) for p in pages] == [10, 10, 3]
    assert all(item.version is None for page in pages for item in page)  # list ids carry no version
    raw.set_secret("p00", "y")
    versions = list(raw.list_properties_of_secret_versions("p00"))
    assert len(versions) == 2 and all(v.version for v in versions)
    with pytest.raises(HttpResponseError) as info:
        list(raw.list_properties_of_secrets(max_page_size=26))
    assert info.value.status_code == 400


@pytest.mark.parametrize("name", ["a_b", "a.b", "a" * 128, "é"])
def test_names_outside_the_service_rules_are_bad_parameters(fake_keyvault: FakeKeyVault, name: str) -> None:
    with pytest.raises(HttpResponseError) as info:
        sdk_client(fake_keyvault).set_secret(name, "v")
    assert info.value.status_code == 400 and info.value.error.code == "BadParameter"  # type: ignore[union-attr]


def test_values_over_25_kib_and_more_than_15_tags_are_bad_parameters(fake_keyvault: FakeKeyVault) -> None:
    raw = sdk_client(fake_keyvault)
    raw.set_secret("fits", "x" * 25600)
    with pytest.raises(HttpResponseError) as info:
        raw.set_secret("toolong", "x" * 25601)
    assert info.value.status_code == 400
    with pytest.raises(HttpResponseError) as info:
        raw.set_secret("tags", "v", tags={f"t{i}": "v" for i in range(16)})
    assert info.value.status_code == 400


def test_names_are_case_insensitive(fake_keyvault: FakeKeyVault) -> None:
    raw = sdk_client(fake_keyvault)
    raw.set_secret("MySecret", "v1")
    raw.set_secret("mysecret", "v2")
    assert raw.get_secret("MYSECRET").value == "v2"
    assert fake_keyvault.raw_names() == ["MySecret"]


def test_a_soft_deleted_name_is_reserved_until_recovered_or_purged(fake_keyvault: FakeKeyVault) -> None:
    raw = sdk_client(fake_keyvault)
    raw.set_secret("gone", "v")
    deleted = raw.begin_delete_secret("gone").result()
    assert deleted.recovery_id and deleted.scheduled_purge_date
    with pytest.raises(ResourceNotFoundError):
        raw.get_secret("gone")
    with pytest.raises(ResourceExistsError) as info:
        raw.set_secret("gone", "again")
    assert info.value.status_code == 409
    assert "ObjectIsDeletedButRecoverable" in info.value.response.text()  # type: ignore[union-attr]
    assert [d.name for d in raw.list_deleted_secrets()] == ["gone"]
    raw.begin_recover_deleted_secret("gone").wait()
    assert raw.get_secret("gone").value == "v"
    raw.begin_delete_secret("gone").wait()
    raw.purge_deleted_secret("gone")
    with pytest.raises(ResourceNotFoundError):
        raw.get_deleted_secret("gone")
    raw.set_secret("gone", "fresh")
