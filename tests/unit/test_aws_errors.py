"""Every botocore exception shape maps into the core error tree (real exception objects, no mocks)."""

from __future__ import annotations

import pytest

pytest.importorskip("botocore")

from botocore import exceptions as bex
from secretsync_providers.aws.errors import error_for_code, is_marked_for_deletion, map_error

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


def client_error(code: str, message: str = "", status: int = 400, headers: dict[str, str] | None = None,
                 operation: str = "GetSecretValue") -> bex.ClientError:
    return bex.ClientError(
        {"Error": {"Code": code, "Message": message},
         "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}}},
        operation,
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ResourceNotFoundException", 400, NotFound),
        ("AccessDeniedException", 400, PermissionDenied),
        ("DecryptionFailure", 400, PermissionDenied),
        ("UnrecognizedClientException", 400, AuthenticationFailed),
        ("InvalidSignatureException", 400, AuthenticationFailed),
        ("ExpiredTokenException", 400, AuthenticationFailed),
        ("ExpiredToken", 400, AuthenticationFailed),
        ("InvalidClientTokenId", 403, AuthenticationFailed),
        ("ThrottlingException", 400, Throttled),
        ("TooManyRequestsException", 429, Throttled),
        ("InternalServiceError", 500, Unavailable),
        ("ServiceUnavailable", 503, Unavailable),
        ("ValidationException", 400, InvalidConfig),
        ("InvalidParameterException", 400, InvalidConfig),
        ("InvalidRequestException", 400, InvalidConfig),
        ("ResourceExistsException", 400, Conflict),
        ("SomethingNew", 502, Unavailable),
        ("SomethingNew", 403, PermissionDenied),
        ("SomethingNew", 401, AuthenticationFailed),
        ("SomethingNew", 400, InvalidConfig),
    ],
)
def test_client_error_codes_map_to_the_contract(code: str, status: int, expected: type[ProviderError]) -> None:
    err = map_error(client_error(code, "msg", status), "GetSecretValue", "app/db")
    assert type(err) is expected
    assert err.provider == "aws" and err.operation == "GetSecretValue" and err.key == "app/db"
    assert code in str(err)


def test_marked_for_deletion_on_get_is_not_found() -> None:
    exc = client_error("InvalidRequestException",
                       "You can't perform this operation on the secret because it was marked for deletion.")
    assert is_marked_for_deletion(exc)
    assert isinstance(map_error(exc, "GetSecretValue", "x"), NotFound)


def test_throttled_carries_retry_after_from_the_header_or_a_default() -> None:
    err = map_error(client_error("ThrottlingException", "slow down", headers={"retry-after": "7"}), "ListSecrets")
    assert isinstance(err, Throttled) and err.retry_after == 7.0 and err.retryable
    err = map_error(client_error("ThrottlingException", "slow down"), "ListSecrets")
    assert isinstance(err, Throttled) and err.retry_after is not None and err.retry_after > 0


def test_xml_error_body_left_raw_by_botocore_is_recovered() -> None:
    body = ("<?xml version='1.0'?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code>"
            "<Message>The security token included in the request is invalid.</Message></Error></Errors>"
            "</ErrorResponse>")
    err = map_error(client_error("403", body, 403), "GetSecretValue")
    assert isinstance(err, AuthenticationFailed)
    assert "<?xml" not in str(err)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (bex.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (bex.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (bex.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (bex.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (bex.NoCredentialsError(), AuthenticationFailed),
        (bex.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), AuthenticationFailed),
        (bex.CredentialRetrievalError(provider="assume-role", error_msg="denied"), AuthenticationFailed),
        (bex.TokenRetrievalError(provider="sso", error_msg="expired"), AuthenticationFailed),
        (bex.NoRegionError(), InvalidConfig),
        (bex.ProfileNotFound(profile="nope"), InvalidConfig),
        (bex.ParamValidationError(report="Invalid length for parameter SecretId"), InvalidConfig),
        (ValueError("Invalid endpoint: not a url"), InvalidConfig),
        (RuntimeError("surprise"), Unavailable),
    ],
)
def test_botocore_exceptions_map_by_class(exc: Exception, expected: type[ProviderError]) -> None:
    err = map_error(exc, "GetSecretValue", "k")
    assert type(err) is expected


def test_transport_failures_are_retryable_and_permanent_ones_are_not() -> None:
    assert map_error(bex.EndpointConnectionError(endpoint_url="http://x"), "ListSecrets").retryable
    assert not map_error(client_error("AccessDeniedException"), "ListSecrets").retryable
    assert not map_error(client_error("ResourceNotFoundException"), "ListSecrets").retryable


def test_a_message_that_echoes_the_written_value_is_masked() -> None:
    secret = "hunter2-very-secret"
    exc = client_error("ValidationException", f"Value '{secret}' at 'secretString' failed to satisfy constraint")
    err = map_error(exc, "PutSecretValue", "k", secret_text=secret)
    assert secret not in str(err) and "***" in str(err)


def test_long_messages_are_trimmed() -> None:
    err = map_error(client_error("ValidationException", "x" * 5000), "PutSecretValue")
    assert len(str(err)) < 500


def test_batch_error_entries_map_like_client_errors() -> None:
    assert isinstance(error_for_code("ResourceNotFoundException", "gone", "BatchGetSecretValue", "a"), NotFound)
    assert isinstance(error_for_code("AccessDeniedException", "no", "BatchGetSecretValue", "a"), PermissionDenied)
    assert isinstance(
        error_for_code("InvalidRequestException", "currently marked deleted", "BatchGetSecretValue", "a"), NotFound
    )


def test_a_parameter_check_that_quotes_the_value_is_masked_in_message_and_cause() -> None:
    import traceback

    from secretsync_providers.aws.errors import sanitized_cause

    secret = "canary-param-check-Zq8w"
    exc = bex.ParamValidationError(report=f"Invalid type for parameter SecretString, value: {secret}")
    err = map_error(exc, "PutSecretValue", "k", secret_text=secret)
    assert isinstance(err, InvalidConfig)
    try:
        raise err from sanitized_cause(exc, err)
    except InvalidConfig as raised:
        text = "".join(traceback.format_exception(raised))
    assert secret not in text and "ParamValidationError" in text


def test_a_status_without_an_aws_error_body_says_so_instead_of_quoting_the_page() -> None:
    err = map_error(client_error("404", "<html><body>" + "x" * 400 + "</body></html>", 404), "GetSecretValue")
    assert isinstance(err, InvalidConfig) and not isinstance(err, NotFound)
    assert "<html>" not in str(err) and "not Secrets Manager" in str(err)
