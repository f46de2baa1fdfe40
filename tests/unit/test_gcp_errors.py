"""Every google-api-core, google-auth and raw gRPC error maps into the core error tree
(real exception objects, no mocks), and store URLs/configs are validated naming the field."""

from __future__ import annotations

import json

import grpc
import pytest

pytest.importorskip("google.cloud.secretmanager_v1")

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.rpc import error_details_pb2
from secretsync_providers.gcp import factory
from secretsync_providers.gcp.auth import connection_spec
from secretsync_providers.gcp.errors import map_error

from secretsync.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Unavailable,
)
from secretsync.core.values import SecretValue


@pytest.mark.parametrize(("exc", "expected"), [
    (gexc.NotFound("Secret [projects/1/secrets/x] not found."), NotFound),
    (gexc.PermissionDenied("Permission 'secretmanager.versions.access' denied"), PermissionDenied),
    (gexc.Forbidden("forbidden"), PermissionDenied),
    (gexc.Unauthenticated("Request had invalid authentication credentials."), AuthenticationFailed),
    (gexc.Unauthorized("401"), AuthenticationFailed),
    (gexc.ResourceExhausted("Quota exceeded"), Throttled),
    (gexc.TooManyRequests("429"), Throttled),
    (gexc.ServiceUnavailable("unavailable"), Unavailable),
    (gexc.DeadlineExceeded("Deadline Exceeded"), Unavailable),
    (gexc.InternalServerError("internal"), Unavailable),
    (gexc.Unknown("unknown"), Unavailable),
    (gexc.BadGateway("502"), Unavailable),
    (gexc.RetryError("Timeout of 60.0s exceeded", cause=None), Unavailable),
    (gexc.InvalidArgument("Secret id is invalid"), InvalidConfig),
    (gexc.OutOfRange("out of range"), InvalidConfig),
    (gexc.MethodNotImplemented("unimplemented"), InvalidConfig),
    (gexc.AlreadyExists("Secret [x] already exists."), Conflict),
    (gexc.Aborted("aborted"), Conflict),
    (gexc.FailedPrecondition("etag does not match"), Conflict),
    (auth_exc.DefaultCredentialsError("Could not automatically determine credentials"), AuthenticationFailed),
    (auth_exc.RefreshError("invalid_grant: Token has been expired or revoked."), AuthenticationFailed),
    (auth_exc.TransportError("connection refused"), Unavailable),
    (ConnectionResetError("reset"), Unavailable),
])
def test_sdk_errors_map_onto_the_error_tree(exc: BaseException, expected: type[ProviderError]) -> None:
    mapped = map_error(exc, operation="AccessSecretVersion", key="team/db")
    assert type(mapped) is expected
    assert (mapped.provider, mapped.operation, mapped.key) == ("gcp", "AccessSecretVersion", "team/db")


def test_version_state_preconditions_distinguish_disabled_from_destroyed() -> None:
    destroyed = gexc.FailedPrecondition("Secret Version [projects/1/secrets/x/versions/2] is in DESTROYED state.")
    disabled = gexc.FailedPrecondition("Secret Version [projects/1/secrets/x/versions/2] is in DISABLED state.")
    assert isinstance(map_error(destroyed, operation="get", precondition="version-state"), NotFound)
    assert isinstance(map_error(disabled, operation="get", precondition="version-state"), Conflict)
    assert isinstance(map_error(destroyed, operation="put"), Conflict)  # an etag precondition elsewhere


def test_retry_info_becomes_retry_after() -> None:
    info = error_details_pb2.RetryInfo()
    info.retry_delay.seconds = 7
    info.retry_delay.nanos = 250_000_000
    mapped = map_error(gexc.ResourceExhausted("quota", details=[info]), operation="ListSecrets")
    assert isinstance(mapped, Throttled)
    assert mapped.retry_after == pytest.approx(7.25)


def test_a_token_plugin_failure_is_authentication_not_an_outage() -> None:
    exc = gexc.ServiceUnavailable("Getting metadata from plugin failed with error: RefreshError('invalid_grant')")
    assert isinstance(map_error(exc, operation="GetSecret"), AuthenticationFailed)


class _RawRpcError(grpc.RpcError):
    """What a bare gRPC stub raises (a real grpc.RpcError subclass, as grpc's own _InactiveRpcError)."""

    def __init__(self, code: grpc.StatusCode, details: str = "raw") -> None:
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(("code", "expected"), [
    (grpc.StatusCode.NOT_FOUND, NotFound),
    (grpc.StatusCode.UNAVAILABLE, Unavailable),
    (grpc.StatusCode.UNAUTHENTICATED, AuthenticationFailed),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, Throttled),
    (grpc.StatusCode.CANCELLED, Unavailable),
])
def test_raw_grpc_errors_are_mapped_too(code: grpc.StatusCode, expected: type[ProviderError]) -> None:
    exc = _RawRpcError(code, "Secret [projects/1/secrets/x] not found." if code is grpc.StatusCode.NOT_FOUND
                       else "raw")
    assert type(map_error(exc, operation="x")) is expected


@pytest.mark.parametrize("message", [
    "Location europe-nowhere1 is not found or access is unauthorized.",
    "Project 'projects/nope' not found.",
    "not found",
    "",
])
def test_a_not_found_that_is_not_about_a_secret_never_reads_as_absent(message: str) -> None:
    for exc in (gexc.NotFound(message), _RawRpcError(grpc.StatusCode.NOT_FOUND, message)):
        mapped = map_error(exc, operation="AccessSecretVersion", key="team/db")
        assert type(mapped) is InvalidConfig, (message, mapped)


def test_not_found_about_a_secret_or_its_version_is_not_found() -> None:
    for message in ("Secret [projects/1/secrets/x] not found or has no versions.",
                    "Secret Version [projects/1/secrets/x/versions/3] not found."):
        assert type(map_error(gexc.NotFound(message), operation="AccessSecretVersion")) is NotFound


def test_an_echoed_payload_is_masked_in_the_message_and_the_cause() -> None:
    import traceback

    from secretsync_providers.gcp.errors import mapper

    value = SecretValue("canary-gcp-echo-Zq8w")
    exc = gexc.InvalidArgument("payload canary-gcp-echo-Zq8w is refused")
    mapped, cause = mapper(values=[value])(exc, "AddSecretVersion", None)
    try:
        raise mapped from cause
    except InvalidConfig as raised:
        text = "".join(traceback.format_exception(raised))
    assert "canary-gcp-echo" not in text and "***" in text
    assert "google.api_core.exceptions.InvalidArgument" in text


# -- URLs and config -------------------------------------------------------------------------
def test_url_gives_project_and_optional_location() -> None:
    assert factory.config_from_url("gcp://my-project") == {"project": "my-project"}
    assert factory.config_from_url("gcp://my-project?location=europe-west1") == {
        "project": "my-project", "location": "europe-west1"}
    assert factory.config_from_url("gcp://my-project/team/a/") == {"project": "my-project", "prefix": "team/a"}


@pytest.mark.parametrize(("url", "needle"), [
    ("gcp://", "needs a project"),
    ("gcp://my-project?region=x", "unknown parameter 'region'"),
])
def test_bad_urls_name_what_is_wrong(url: str, needle: str) -> None:
    with pytest.raises(InvalidConfig, match=needle):
        factory.config_from_url(url)


@pytest.mark.parametrize(("config", "field"), [
    ({}, "'project'"),
    ({"project": "My_Project"}, "'project'"),
    ({"project": "my-project", "location": "Europe West"}, "'location'"),
    ({"project": "my-project", "insecureEndpoint": "127.0.0.1:8085"}, "'insecureEndpoint'"),
    ({"project": "my-project", "projectID": "x"}, "projectID"),
])
def test_bad_configs_name_the_field(config: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidConfig, match=field):
        factory.validate_config(config)


def test_valid_configs_pass() -> None:
    for config in ({"project": "my-project"}, {"project": "123456789012"},
                   {"project": "example.com:my-project", "location": "us-central1"}):
        factory.validate_config(config)


def test_insecure_endpoint_is_used_only_when_explicitly_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSYNC_GCP_INSECURE_ENDPOINT", raising=False)
    monkeypatch.delenv("SECRETSYNC_GCP_ACCESS_TOKEN", raising=False)
    spec = connection_spec({"project": "p"}, None)
    assert spec.insecure_endpoint is None and spec.access_token is None
    monkeypatch.setenv("SECRETSYNC_GCP_INSECURE_ENDPOINT", "127.0.0.1:9")
    monkeypatch.setenv("SECRETSYNC_GCP_ACCESS_TOKEN", "ya29-Zq8w-token")
    spec = connection_spec({"project": "p"}, None)
    assert spec.insecure_endpoint == "127.0.0.1:9"
    assert spec.access_token == SecretValue("ya29-Zq8w-token")
    assert "Zq8w" not in repr(spec)


def test_location_selects_the_regional_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSYNC_GCP_INSECURE_ENDPOINT", raising=False)
    spec = connection_spec({"project": "p", "location": "europe-west1"}, None)
    assert spec.endpoint == "secretmanager.europe-west1.rep.googleapis.com"


def test_unknown_credential_keys_are_refused() -> None:
    with pytest.raises(InvalidConfig, match="password"):
        connection_spec({"project": "p"}, {"password": SecretValue("x")})


def test_a_bad_service_account_key_is_invalid_config_when_the_store_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSYNC_GCP_INSECURE_ENDPOINT", raising=False)
    with pytest.raises(InvalidConfig, match="serviceAccountKey"):
        factory.open({"project": "my-project"}, None, {"serviceAccountKey": SecretValue("not json")})


@pytest.mark.parametrize("kind", ["external_account", "impersonated_service_account", "authorized_user",
                                  "external_account_authorized_user", None])
def test_only_service_account_key_json_is_accepted(monkeypatch: pytest.MonkeyPatch, kind: str | None) -> None:
    """An external_account JSON would make the controller read credential_source.file and post it
    to a token URL of the key author's choice: refused, naming the credential, before any call."""
    monkeypatch.delenv("SECRETSYNC_GCP_INSECURE_ENDPOINT", raising=False)
    key = {"type": kind, "audience": "//iam.googleapis.com/x", "token_url": "http://127.0.0.1:9/token",
           "credential_source": {"file": "/var/run/secrets/kubernetes.io/serviceaccount/token"}}
    with pytest.raises(InvalidConfig, match=r"serviceAccountKey.*only a 'service_account' key"):
        factory.open({"project": "my-project"}, None, {"serviceAccountKey": SecretValue(json.dumps(key))})


def test_missing_default_credentials_are_authentication_failed(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: object) -> None:
    for var in ("SECRETSYNC_GCP_INSECURE_ENDPOINT", "SECRETSYNC_GCP_ACCESS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
                "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    client = factory.open({"project": "my-project"})
    with pytest.raises(AuthenticationFailed):
        client.get("x")
    assert client.validate().status.value == "Error"
    client.close()
