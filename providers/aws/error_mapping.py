"""Map every botocore/boto3 exception into the core error tree, at the boundary.

Why by error *code* and not exception class: boto3 builds its service exception classes
at runtime per client, so the stable thing to branch on is ``Error.Code`` (plus the HTTP
status for codes we do not know). Transport failures arrive as botocore's own exception
classes (EndpointConnectionError, timeouts, credential errors) and are mapped by class.

Messages keep AWS's error code and a trimmed message (they name the operation, never a
value); a message that happens to contain the value being written is masked anyway.
"""

from __future__ import annotations

import re

from botocore import exceptions as bex

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
from secretsync.core.values import MASK

from .config import PROVIDER

#: Throttled without a Retry-After header: AWS's SDKs back off about this long first.
DEFAULT_RETRY_AFTER = 1.0
_MAX_MESSAGE = 300

_NOT_FOUND = {"ResourceNotFoundException"}
_PERMISSION = {"AccessDeniedException", "AccessDenied", "DecryptionFailure", "EncryptionFailure",
               "KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException"}
_AUTH = {"UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch",
         "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "MissingAuthenticationToken",
         "IncompleteSignature", "AuthFailure", "InvalidAccessKeyId", "RequestExpired",
         "NotAuthorized", "MissingAuthenticationTokenException"}
_THROTTLE = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
             "ThrottledException", "SlowDown", "PriorRequestNotComplete", "LimitExceededException"}
_UNAVAILABLE = {"InternalServiceError", "InternalServiceErrorException", "InternalFailure",
                "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
                "RequestTimeout", "RequestTimeoutException"}
_INVALID = {"ValidationException", "InvalidParameterException", "InvalidParameterValue",
            "InvalidParameterValueException", "InvalidParameterCombination", "MissingParameter",
            "InvalidNextTokenException", "MalformedPolicyDocumentException", "SerializationException",
            "InvalidQueryParameter", "MalformedQueryString", "UnknownOperationException",
            "OptInRequired"}
_CONFLICT = {"ResourceExistsException", "PreconditionNotMetException", "ConflictException"}

_XML_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,500})</Message>")

_BY_CODE: dict[str, type[ProviderError]] = {
    **dict.fromkeys(_NOT_FOUND, NotFound),
    **dict.fromkeys(_PERMISSION, PermissionDenied),
    **dict.fromkeys(_AUTH, AuthenticationFailed),
    **dict.fromkeys(_UNAVAILABLE, Unavailable),
    **dict.fromkeys(_INVALID, InvalidConfig),
    **dict.fromkeys(_CONFLICT, Conflict),
}

_TRANSPORT = (bex.ConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError,
              bex.ConnectionClosedError, bex.HTTPClientError)
_CREDENTIALS = (bex.NoCredentialsError, bex.PartialCredentialsError, bex.CredentialRetrievalError,
                bex.NoAuthTokenError, bex.TokenRetrievalError, bex.SSOError, bex.RefreshWithMFAUnsupportedError,
                bex.MetadataRetrievalError)
_CONFIG = (bex.ParamValidationError, bex.NoRegionError, bex.ProfileNotFound, bex.InvalidRegionError,
           bex.InvalidEndpointConfigurationError, bex.UnknownEndpointError, bex.InvalidConfigError,
           bex.ConfigParseError, bex.ConfigNotFound, bex.InvalidEndpointDiscoveryConfigurationError)


def _code_and_message(exc: bex.ClientError) -> tuple[str, str]:
    """``Error.Code`` and ``Error.Message``, recovering them from an XML body botocore left raw.

    A JSON-protocol client that gets an XML error (an AWS-compatible endpoint, a proxy, or
    moto's IAM check) reports the HTTP status as the code and the whole body as the message.
    """
    error = exc.response.get("Error", {}) or {}
    code, message = str(error.get("Code", "") or ""), str(error.get("Message", "") or "")
    if (not code or code.isdigit()) and "<Code>" in message:
        found = _XML_CODE.search(message)
        if found:
            text = _XML_MESSAGE.search(message)
            return found.group(1).strip(), (text.group(1).strip() if text else "")
    return code, message


def error_code(exc: BaseException) -> str:
    """AWS's ``Error.Code`` of a ClientError ("" for anything else)."""
    return _code_and_message(exc)[0] if isinstance(exc, bex.ClientError) else ""


def error_message(exc: BaseException) -> str:
    return _code_and_message(exc)[1] if isinstance(exc, bex.ClientError) else str(exc)


def is_marked_for_deletion(exc: BaseException) -> bool:
    """AWS's way of saying "this secret is in its recovery window" (InvalidRequestException)."""
    return error_code(exc) == "InvalidRequestException" and _mentions_deletion(error_message(exc))


def _mentions_deletion(message: str) -> bool:
    text = message.lower()
    return "deletion" in text or "marked deleted" in text


def _retry_after(exc: bex.ClientError) -> float | None:
    """Seconds from a Retry-After header (AWS rarely sends one; None when absent)."""
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    raw = headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _clean(text: str, secret_text: str | None) -> str:
    """Trim an SDK message and mask the value being written if the message echoes it."""
    if secret_text and len(secret_text) >= 4 and secret_text in text:
        text = text.replace(secret_text, MASK)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def error_for_code(
    code: str,
    message: str,
    operation: str,
    key: str | None = None,
    *,
    status: int = 0,
    retry_after: float | None = None,
) -> ProviderError:
    """The contract error for an AWS error code (also used for BatchGetSecretValue's Errors)."""
    message = _clean(message, None)
    msg = f"{code}: {message}" if code else message
    if code in _THROTTLE or status == 429:
        return Throttled(msg, retry_after=DEFAULT_RETRY_AFTER if retry_after is None else retry_after,
                         provider=PROVIDER, operation=operation, key=key)
    if code == "InvalidRequestException" and _mentions_deletion(message):
        return NotFound(f"secret is scheduled for deletion ({msg})", provider=PROVIDER, operation=operation, key=key)
    cls = _BY_CODE.get(code)
    if cls is None:
        if code == "InvalidRequestException":
            cls = InvalidConfig
        elif status == 401:
            cls = AuthenticationFailed
        elif status == 403:
            cls = PermissionDenied
        elif status >= 500 or status == 0:
            cls = Unavailable
        else:
            cls = InvalidConfig
    return cls(msg, provider=PROVIDER, operation=operation, key=key)


def map_error(
    exc: BaseException,
    operation: str,
    key: str | None = None,
    *,
    secret_text: str | None = None,
) -> ProviderError:
    """The contract error for an SDK exception (the caller raises it ``from exc``).

    ``secret_text``: the value being written, if any, so an echo of it is masked.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, bex.ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_for_code(error_code(exc), _clean(error_message(exc), secret_text), operation, key,
                              status=status, retry_after=_retry_after(exc))
    detail = _clean(str(exc), secret_text)
    cls: type[ProviderError]
    if isinstance(exc, _CREDENTIALS):
        cls, text = AuthenticationFailed, (
            f"AWS credentials unavailable or rejected: {detail} "
            "(set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, IRSA or Pod Identity)"
        )
    elif isinstance(exc, _TRANSPORT):
        cls, text = Unavailable, f"cannot reach AWS: {detail}"
    elif isinstance(exc, _CONFIG):
        cls, text = InvalidConfig, detail
    elif isinstance(exc, bex.BotoCoreError | OSError | TimeoutError):
        cls, text = Unavailable, f"{type(exc).__name__}: {detail}"
    elif isinstance(exc, ValueError):
        # botocore raises ValueError for a malformed endpoint URL and similar local input.
        cls, text = InvalidConfig, detail
    else:
        cls, text = Unavailable, f"unexpected {type(exc).__name__} from the AWS SDK"
    return cls(text, provider=PROVIDER, operation=operation, key=key)
