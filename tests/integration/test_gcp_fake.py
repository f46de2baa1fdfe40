"""The fake Secret Manager keeps the documented semantics, checked through the real SDK client.

These pin what the adapter relies on, so the fake cannot drift into being convenient.
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from google.cloud.secretmanager_v1 import types

from tests.fakes.gcp_secretmanager import sdk_client
from tests.harness.gcp import PROJECT

PARENT = f"projects/{PROJECT}"
AUTO = types.Replication(automatic=types.Replication.Automatic())


@pytest.fixture
def sdk(gcp_server):
    c = sdk_client(gcp_server.address, gcp_server.token)
    yield c
    c.transport.close()


def make(sdk, secret_id: str, *values: bytes, labels: dict[str, str] | None = None):
    secret = sdk.create_secret(parent=PARENT, secret_id=secret_id,
                               secret=types.Secret(replication=AUTO, labels=labels or {}))
    for value in values:
        sdk.add_secret_version(parent=secret.name, payload=types.SecretPayload(data=value))
    return secret


def test_names_come_back_with_the_project_number(sdk, gcp_server):
    secret = make(sdk, "s", b"v")
    assert secret.name == f"projects/{gcp_server.projects[PROJECT]}/secrets/s"
    assert sdk.access_secret_version(name=f"{PARENT}/secrets/s/versions/latest").name.endswith("/versions/1")


def test_create_rules(sdk):
    make(sdk, "dup")
    with pytest.raises(gexc.AlreadyExists):
        make(sdk, "dup")
    with pytest.raises(gexc.InvalidArgument):
        make(sdk, "has.dot")
    with pytest.raises(gexc.InvalidArgument):
        make(sdk, "x" * 256)
    with pytest.raises(gexc.InvalidArgument, match="replication"):
        sdk.create_secret(parent=PARENT, secret_id="norep", secret=types.Secret())
    with pytest.raises(gexc.InvalidArgument, match="replication"):
        sdk.create_secret(parent=f"{PARENT}/locations/us-east1", secret_id="reg", secret=types.Secret(replication=AUTO))
    with pytest.raises(gexc.InvalidArgument):
        make(sdk, "badlabel", labels={"Env": "x"})


def test_payload_limit_and_checksum(sdk):
    secret = make(sdk, "p")
    sdk.add_secret_version(parent=secret.name, payload=types.SecretPayload(data=b"x" * 65536))
    with pytest.raises(gexc.InvalidArgument):
        sdk.add_secret_version(parent=secret.name, payload=types.SecretPayload(data=b"x" * 65537))
    with pytest.raises(gexc.InvalidArgument, match=r"(?i)checksum"):
        sdk.add_secret_version(parent=secret.name, payload=types.SecretPayload(data=b"a", data_crc32c=1))
    version = sdk.get_secret_version(name=f"{secret.name}/versions/1")
    assert version.client_specified_payload_checksum is False


def test_etags_are_quoted_per_resource_and_checked(sdk):
    secret = make(sdk, "e", b"v1")
    assert secret.etag.startswith('"') and secret.etag.endswith('"')
    version = sdk.get_secret_version(name=f"{secret.name}/versions/1")
    sdk.disable_secret_version(request={"name": version.name, "etag": version.etag})
    assert sdk.get_secret(name=secret.name).etag == secret.etag  # a version change leaves the secret etag
    with pytest.raises(gexc.FailedPrecondition):
        sdk.enable_secret_version(request={"name": version.name, "etag": version.etag})  # stale
    updated = sdk.update_secret(secret=types.Secret(name=secret.name, labels={"a": "b"}, etag=secret.etag),
                                update_mask={"paths": ["labels"]})
    assert updated.etag != secret.etag
    with pytest.raises(gexc.FailedPrecondition):
        sdk.update_secret(secret=types.Secret(name=secret.name, labels={"a": "c"}, etag=secret.etag),
                          update_mask={"paths": ["labels"]})
    with pytest.raises(gexc.FailedPrecondition):
        sdk.delete_secret(request={"name": secret.name, "etag": secret.etag})
    sdk.delete_secret(request={"name": secret.name, "etag": updated.etag})


def test_update_needs_a_mask_of_mutable_fields(sdk):
    secret = make(sdk, "u")
    with pytest.raises(gexc.InvalidArgument):
        sdk.update_secret(secret=types.Secret(name=secret.name, labels={"a": "b"}), update_mask={"paths": []})
    with pytest.raises(gexc.InvalidArgument):
        sdk.update_secret(secret=types.Secret(name=secret.name), update_mask={"paths": ["replication"]})


def test_latest_is_the_newest_version_whatever_its_state(sdk):
    secret = make(sdk, "l", b"v1", b"v2")
    sdk.disable_secret_version(name=f"{secret.name}/versions/2")
    with pytest.raises(gexc.FailedPrecondition, match="DISABLED"):
        sdk.access_secret_version(name=f"{secret.name}/versions/latest")
    sdk.destroy_secret_version(name=f"{secret.name}/versions/2")
    with pytest.raises(gexc.FailedPrecondition, match="DESTROYED"):
        sdk.access_secret_version(name=f"{secret.name}/versions/2")
    with pytest.raises(gexc.FailedPrecondition):
        sdk.enable_secret_version(name=f"{secret.name}/versions/2")
    enabled = list(sdk.list_secret_versions(request={"parent": secret.name, "filter": "state:ENABLED"}))
    assert [v.name.rsplit("/", 1)[-1] for v in enabled] == ["1"]
    with pytest.raises(gexc.NotFound):
        sdk.access_secret_version(name=f"{secret.name}/versions/3")
    empty = make(sdk, "empty")
    with pytest.raises(gexc.NotFound):
        sdk.access_secret_version(name=f"{empty.name}/versions/latest")


def test_version_aliases_resolve(sdk):
    secret = make(sdk, "al", b"v1", b"v2")
    sdk.update_secret(secret=types.Secret(name=secret.name, version_aliases={"stable": 1}),
                      update_mask={"paths": ["version_aliases"]})
    assert sdk.access_secret_version(name=f"{secret.name}/versions/stable").payload.data == b"v1"


def test_list_filters_paging_and_total_size(sdk):
    for i in range(5):
        make(sdk, f"app-{i}", labels={"team": "a" if i % 2 else "b"})
    make(sdk, "other")
    first = sdk.list_secrets(request={"parent": PARENT, "page_size": 2})
    assert first.total_size == 6 and len(first.secrets) == 2 and first.next_page_token
    assert [s.name.rsplit("/", 1)[-1] for s in first.secrets] == ["other", "app-4"]  # newest first
    with pytest.raises(gexc.InvalidArgument):  # a token is bound to its query
        sdk.list_secrets(request={"parent": PARENT, "page_size": 2, "page_token": first.next_page_token,
                                  "filter": "name:app"})

    def ids(flt: str) -> set[str]:
        return {s.name.rsplit("/", 1)[-1] for s in sdk.list_secrets(request={"parent": PARENT, "filter": flt})}

    assert ids("name:app") == {f"app-{i}" for i in range(5)}
    assert ids("labels.team=a") == {"app-1", "app-3"}
    assert ids("labels.team:*") == {f"app-{i}" for i in range(5)}
    assert ids("name:app AND NOT labels.team=a") == {"app-0", "app-2", "app-4"}
    assert ids("name:app-1 OR name:other") == {"app-1", "other"}
    assert ids('name:"app-*4"') == {"app-4"}
    assert ids("replication.automatic:*") == ids("")
    assert sdk.list_secrets(request={"parent": PARENT, "filter": "name:app"}).total_size == 0
    with pytest.raises(gexc.InvalidArgument):
        ids("colour=red")


def test_unknown_project_and_denied_permission(sdk, gcp_server):
    with pytest.raises(gexc.PermissionDenied):
        list(sdk.list_secrets(parent="projects/not-mine"))
    make(sdk, "d", b"v")
    gcp_server.deny("secretmanager.versions.access")
    with pytest.raises(gexc.PermissionDenied, match=r"secretmanager\.versions\.access"):
        sdk.access_secret_version(name=f"{PARENT}/secrets/d/versions/1")
    # Permission is checked before existence (AIP-131): no probing for names.
    with pytest.raises(gexc.PermissionDenied):
        sdk.access_secret_version(name=f"{PARENT}/secrets/absent/versions/1")
    assert sdk.get_secret(name=f"{PARENT}/secrets/d").name.endswith("/d")
