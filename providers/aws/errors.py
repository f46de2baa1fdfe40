"""Map every botocore/boto3 exception into the core error tree, at the boundary.

Why by error *code* and not exception class: boto3 builds its service exception classes
at runtime per client, so the stable thing to branch on is ``Error.Code`` (plus the HTTP
status for codes we do not know). Transport failures arrive as botocore's own exception
classes (EndpointConnectionError, timeouts, credential errors) and are mapped by class.

Messages keep AWS's error code and a trimmed message (they name the operation, never a
value); a message that happens to contain the value being written is masked anyway.

What :func:`mapper` hands :func:`providers.calls.provider_call` to chain as ``__cause__`` is
:func:`sanitized_cause`: transport and
credential errors as they are (they hold an endpoint URL at most), and for anything that
carries a response or a request parameter (``ClientError``, ``ParamValidationError``, a
parser error) a twin of the same type holding only the code and the masked message, so
``traceback.format_exception`` of a mapped error can never print a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from botocore import exceptions as bex
from botocore.parsers import ResponseParserError

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
from secretsync.core.redact import mask_values
from secretsync.core.values import SecretValue

from ..calls import Mapper
from .names import PROVIDER

#: Throttled without a Retry-After header: AWS's SDKs back off about this long first.
DEFAULT_RETRY_AFTER = 1.0
_MAX_MESSAGE = 300

_NOT_FOUND = {"ResourceNotFoundException",
              # SSM Parameter Store: the parameter, or the version / label asked for, does not exist.
              "ParameterNotFound", "ParameterVersionNotFound"}
_PERMISSION = {"AccessDeniedException", "AccessDenied", "DecryptionFailure", "EncryptionFailure",
               "KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException"}
_AUTH = {"UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch",
         "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "MissingAuthenticationToken",
         "IncompleteSignature", "AuthFailure", "InvalidAccessKeyId", "RequestExpired",
         "NotAuthorized", "MissingAuthenticationTokenException"}
_THROTTLE = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
             "ThrottledException", "SlowDown", "PriorRequestNotComplete", "LimitExceededException",
             "TooManyUpdates"}
_UNAVAILABLE = {"InternalServerError", "InternalServiceError", "InternalServiceErrorException", "InternalFailure",
                "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
                "RequestTimeout", "RequestTimeoutException"}
_INVALID = {"ValidationException", "InvalidParameterException", "InvalidParameterValue",
            "InvalidParameterValueException", "InvalidParameterCombination", "MissingParameter",
            "InvalidNextTokenException", "MalformedPolicyDocumentException", "SerializationException",
            "InvalidQueryParameter", "MalformedQueryString", "UnknownOperationException",
            "OptInRequired",
            # SSM Parameter Store
            "ParameterPatternMismatchException", "HierarchyLevelLimitExceededException",
            "HierarchyTypeMismatchException", "InvalidKeyId", "UnsupportedParameterType",
            "ParameterLimitExceeded", "ParameterMaxVersionLimitExceeded", "InvalidFilterKey",
            "InvalidFilterOption", "InvalidFilterValue", "InvalidAllowedPatternException",
            "TooManyTagsError", "InvalidResourceId", "InvalidResourceType", "InvalidTier"}
_CONFLICT = {"ResourceExistsException", "PreconditionNotMetException", "ConflictException",
             "ParameterAlreadyExists"}

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


def _clean(text: str, secret_text: str | SecretValue | bytes | None,
           values: Iterable[str | SecretValue | bytes] = ()) -> str:
    """Trim an SDK message and mask the value being written (in any spelling) if it echoes it."""
    text = mask_values(text, [secret_text, *values])
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
    if (not code or code.isdigit()) and status:
        # botocore found no AWS error shape in the body (HTML, plain text, empty): the answer
        # came from something in front of AWS or from an endpoint that is not Secrets Manager.
        # Its body says nothing useful (and may be a whole web page).
        msg = (f"HTTP {status} without an AWS error in the body (a proxy, or an endpoint that is not "
               "Secrets Manager?)")
        code = str(status)
    else:
        msg = f"{code}: {message}" if code else message
    if code in _THROTTLE or status == 429:
        return Throttled(msg, retry_after=DEFAULT_RETRY_AFTER if retry_after is None else retry_after,
                         provider=PROVIDER, operation=operation, key=key, code=code or None)
    if code == "InvalidRequestException" and _mentions_deletion(message):
        return NotFound(f"secret is scheduled for deletion ({msg})", provider=PROVIDER, operation=operation,
                        key=key, code=code)
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
    return cls(msg, provider=PROVIDER, operation=operation, key=key, code=code or None)


def map_error(
    exc: BaseException,
    operation: str,
    key: str | None = None,
    *,
    secret_text: str | SecretValue | bytes | None = None,
    values: Iterable[str | SecretValue | bytes] = (),
) -> ProviderError:
    """The contract error for an SDK exception (the caller raises it ``from`` :func:`sanitized_cause`).

    ``secret_text`` / ``values``: what the call sent (the value being written), so an echo of
    it, in any spelling, is masked.
    """
    values = [secret_text, *values] if secret_text is not None else list(values)
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, bex.ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_for_code(error_code(exc), _clean(error_message(exc), None, values), operation, key,
                              status=status, retry_after=_retry_after(exc))
    detail = _clean(str(exc), None, values)
    cls: type[ProviderError]
    if isinstance(exc, _CREDENTIALS):
        cls, text = AuthenticationFailed, (
            f"AWS credentials unavailable or rejected: {detail} "
            "(set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, IRSA or Pod Identity)"
        )
    elif isinstance(exc, _TRANSPORT):
        cls, text = Unavailable, f"cannot reach AWS: {detail}"
    elif isinstance(exc, ResponseParserError):
        cls, text = Unavailable, "malformed answer from AWS (the response did not parse; truncated?)"
    elif isinstance(exc, bex.ParamValidationError):
        cls, text = InvalidConfig, f"request refused by the SDK's parameter check: {_param_report(exc, values)}"
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


def _param_report(exc: bex.ParamValidationError, values: Iterable[str | SecretValue | bytes | None]) -> str:
    """The parameter check's report with any value it quotes masked (it quotes what it got)."""
    report = str(exc.kwargs.get("report") or exc)
    return _clean(report, None, [v for v in values if v is not None])


#: Exceptions that hold an endpoint URL at most (no response, no request parameter): kept.
_SAFE_CAUSES = (*_TRANSPORT, *_CREDENTIALS, bex.NoRegionError, bex.ProfileNotFound, bex.EndpointConnectionError)


def sanitized_cause(exc: BaseException, mapped: ProviderError) -> BaseException:
    """What the adapter chains as ``__cause__`` (see the module docstring)."""
    if isinstance(exc, _SAFE_CAUSES):
        return exc
    twin: BaseException
    if isinstance(exc, bex.ClientError):
        metadata = exc.response.get("ResponseMetadata", {}) or {}
        headers = {k: v for k, v in (metadata.get("HTTPHeaders") or {}).items() if k.lower() == "retry-after"}
        response: Any = {
            "Error": {"Code": mapped.code or error_code(exc), "Message": str(mapped)},
            "ResponseMetadata": {"HTTPStatusCode": metadata.get("HTTPStatusCode"), "HTTPHeaders": headers},
        }
        twin = bex.ClientError(response, exc.operation_name)
    elif isinstance(exc, bex.ParamValidationError):
        twin = bex.ParamValidationError(report=str(mapped))
    else:
        twin = RuntimeError(f"{type(exc).__module__}.{type(exc).__name__}: {mapped}")
    return twin.with_traceback(exc.__traceback__)


def masking(values: Iterable[str | SecretValue | bytes | None] = ()) -> Mapper:
    """The mapper :func:`providers.calls.provider_call` takes: :func:`map_error` (masking an
    echo of ``values``, what the call sends) and its :func:`sanitized_cause`."""
    sent = [v for v in values if v is not None]

    def mapper(exc: BaseException, operation: str, key: str | None) -> tuple[ProviderError, BaseException | None]:
        error = map_error(exc, operation, key, values=sent)
        return error, sanitized_cause(exc, error)

    return mapper


#: The mapper of a call that sends no value.
mapper: Mapper = masking()
