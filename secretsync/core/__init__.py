"""The shared core: the value type, the error tree, the provider contract and registry.

Everything the migrator, the controller and the audit share lives here, and none of it
imports a cloud SDK.
"""

from .calls import CallRecorder
from .contract import (
    Access,
    Capabilities,
    ClientBase,
    CredentialUse,
    DescribesCredentialUse,
    Fetched,
    ListFilter,
    ProviderFactory,
    PutResult,
    SecretMetadata,
    SecretsClient,
    Validation,
    ValidationStatus,
    chunked,
    extract_property,
    read_current,
    write_version,
)
from .errors import (
    AuthenticationFailed,
    Conflict,
    InvalidConfig,
    InvalidInput,
    NotFound,
    PermanentError,
    PermissionDenied,
    ProviderError,
    SecretSyncError,
    TemporaryError,
    Throttled,
    Unavailable,
    is_definitely_absent,
)
from .registry import StoreSpec, get_factory, open_store, parse_store_url, providers
from .settings import ClientSettings, RateLimitSettings, TimeoutSettings
from .values import SecretValue

__all__ = [
    "Access",
    "AuthenticationFailed",
    "CallRecorder",
    "Capabilities",
    "ClientBase",
    "ClientSettings",
    "Conflict",
    "CredentialUse",
    "DescribesCredentialUse",
    "Fetched",
    "InvalidConfig",
    "InvalidInput",
    "ListFilter",
    "NotFound",
    "PermanentError",
    "PermissionDenied",
    "ProviderError",
    "ProviderFactory",
    "PutResult",
    "RateLimitSettings",
    "SecretMetadata",
    "SecretSyncError",
    "SecretValue",
    "SecretsClient",
    "StoreSpec",
    "TemporaryError",
    "Throttled",
    "TimeoutSettings",
    "Unavailable",
    "Validation",
    "ValidationStatus",
    "chunked",
    "extract_property",
    "get_factory",
    "is_definitely_absent",
    "open_store",
    "parse_store_url",
    "providers",
    "read_current",
    "write_version",
]
