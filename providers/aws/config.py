"""The AWS store config: parsed from ``aws://REGION[/PREFIX][?key=value...]`` or a SecretStore spec.

Why one validated dataclass: the CLI (URL), the controller (SecretStore ``spec.provider.aws``)
and the migrator all produce the same mapping, and every mistake must come back as an
:class:`~secretsync.core.errors.InvalidConfig` that names the field, before any AWS call.

Config keys: ``region``, ``prefix``, ``endpoint``, ``role``, ``recoveryWindowDays``, ``profile``,
and ``service`` (ESO's field: only ``SecretsManager`` is served; an ESO SecretStore copied
over keeps it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from secretsync.core.contract import CredentialUse
from secretsync.core.errors import InvalidConfig

PROVIDER = "aws"

KEYS = ("region", "prefix", "endpoint", "role", "recoveryWindowDays", "profile", "service")
#: ESO's ``service`` values; only Secrets Manager is served here.
SERVICES = ("SecretsManager", "ParameterStore")
DEFAULT_RECOVERY_WINDOW_DAYS = 7
#: AWS accepts a recovery window of 7 to 30 days.
RECOVERY_WINDOW_RANGE = (7, 30)

#: us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, ap-southeast-5, il-central-1 ...
_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)*-\d{1,2}$")
#: What AWS allows in a secret name: ASCII letters, digits and /_+=.@- (1-512 chars).
_NAME_CHARS = re.compile(r"^[A-Za-z0-9/_+=.@-]+$")
MAX_NAME_LENGTH = 512
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


@dataclass(frozen=True, slots=True)
class AwsConfig:
    """A validated AWS store config. ``region=None`` means boto3's chain (AWS_REGION, profile)."""

    region: str | None = None
    prefix: str = ""
    endpoint: str | None = None
    role: str | None = None
    recovery_window_days: int = DEFAULT_RECOVERY_WINDOW_DAYS
    profile: str | None = None

    def wire_name(self, name: str) -> str:
        """The secret's name on AWS: ``PREFIX/name`` (names are relative to the prefix)."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def local_name(self, wire: str) -> str | None:
        """The relative name of a wire name, or None when it lies outside the prefix."""
        if not self.prefix:
            return wire
        head = self.prefix + "/"
        return wire[len(head):] if wire.startswith(head) and len(wire) > len(head) else None


def _fail(field: str, why: str) -> InvalidConfig:
    return InvalidConfig(f"aws store config field {field!r}: {why}", provider=PROVIDER, operation="config")


def _has_dot_segment(path: str) -> bool:
    """A '.' or '..' segment: meaningless to AWS, but a path-traversal attempt everywhere else."""
    return any(seg in (".", "..") for seg in path.split("/"))


def _optional_text(config: Mapping[str, Any], field: str) -> str | None:
    """A present optional string field: a non-empty string without control characters."""
    if field not in config or config[field] is None:
        return None
    value = config[field]
    if not isinstance(value, str):
        raise _fail(field, f"must be a string, not {type(value).__name__}")
    if not value.strip():
        raise _fail(field, "must not be empty (leave it out to use the default)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _fail(field, "contains a control character")
    return value


def config_from_url(url: str) -> dict[str, Any]:
    """``aws://us-east-1/team/app?endpoint=http://127.0.0.1:5000&recoveryWindowDays=7``."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidConfig(f"aws store URL {url!r} does not parse: {exc}", provider=PROVIDER,
                            operation="config") from None
    if parts.scheme.lower() not in ("aws", "awssm"):
        raise InvalidConfig(f"not an aws:// store URL: {url!r}", provider=PROVIDER, operation="config")
    config: dict[str, Any] = {}
    if parts.netloc:
        config["region"] = unquote(parts.netloc)
    prefix = unquote(parts.path).strip("/")
    if prefix:
        config["prefix"] = prefix
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in KEYS or key in ("region", "prefix"):
            raise InvalidConfig(
                f"aws store URL {url!r}: unknown query parameter {key!r} "
                f"(known: endpoint, role, recoveryWindowDays, profile)",
                provider=PROVIDER, operation="config",
            )
        config[key] = value
    return config


def parse_config(config: Mapping[str, Any]) -> AwsConfig:
    """Validate a config mapping, raising InvalidConfig that names the offending field."""
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise _fail(unknown[0], f"unknown field (known: {', '.join(KEYS)})")

    region = _optional_text(config, "region")
    if region is not None and not _REGION.match(region):
        raise _fail("region", f"{region!r} is not an AWS region name like 'us-east-1'")

    prefix = config.get("prefix")
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str):
        raise _fail("prefix", f"must be a string, not {type(prefix).__name__}")
    prefix = prefix.strip("/")
    if prefix and (not _NAME_CHARS.match(prefix) or "//" in prefix or len(prefix) >= MAX_NAME_LENGTH):
        raise _fail("prefix", f"{prefix[:80]!r} may only hold ASCII letters, digits and /_+=.@- (no '//')")
    if prefix and _has_dot_segment(prefix):
        raise _fail("prefix", f"{prefix!r} has a '.' or '..' segment")

    endpoint = _optional_text(config, "endpoint")
    if endpoint is not None:
        try:
            ep = urlsplit(endpoint)
            ep.port  # noqa: B018 - parsing the port is the check (out of range, not a number)
        except ValueError as exc:
            raise _fail("endpoint", f"{endpoint!r} is not a valid URL ({exc})") from None
        if ep.scheme not in ("http", "https") or not ep.hostname:
            raise _fail("endpoint", f"{endpoint!r} is not an http(s) URL")

    role = _optional_text(config, "role")
    if role is not None and not _ROLE_ARN.match(role):
        raise _fail("role", f"{role!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")

    raw_window = config.get("recoveryWindowDays", DEFAULT_RECOVERY_WINDOW_DAYS)
    try:
        if isinstance(raw_window, bool):
            raise ValueError
        window = int(raw_window)
    except (TypeError, ValueError):
        raise _fail("recoveryWindowDays", f"{raw_window!r} is not a whole number of days") from None
    low, high = RECOVERY_WINDOW_RANGE
    if not low <= window <= high:
        raise _fail("recoveryWindowDays", f"{window} is outside AWS's range {low}-{high} days")

    profile = _optional_text(config, "profile")

    service = config.get("service")
    if service is not None and service != "SecretsManager":
        if service == "ParameterStore":
            raise _fail("service", "ParameterStore is not supported; only SecretsManager (the default) is")
        raise _fail("service", f"{service!r} is not one of {', '.join(SERVICES)}")

    return AwsConfig(
        region=region, prefix=prefix, endpoint=endpoint, role=role,
        recovery_window_days=window, profile=profile,
    )


#: Credentials that authenticate a store without the process's own identity.
STATIC_KEYS = frozenset({"accessKeyID", "secretAccessKey"})


def credential_use(config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
    """What a store draws on beyond its credentials (mirrors :func:`.sdk.build_session`).

    Static keys, or a ServiceAccount token (``jwt``) exchanged for ``role``, are the store's
    own; anything else is boto3's default chain, i.e. the process's identity, and ``role`` is
    then assumed *with* that identity. ``profile`` names a section of the process's AWS files.
    """
    own = credentials >= STATIC_KEYS or ("jwt" in credentials and "accessKeyID" not in credentials)
    ambient = None
    if not own:
        ambient = ("no secretRef.accessKeyID/secretAccessKey and no serviceAccountRef: boto3's default "
                   "credential chain (environment, IRSA, instance metadata)")
        if config.get("profile"):
            ambient = "field 'profile': a profile of the process's AWS config files"
    return CredentialUse(
        ambient=ambient,
        local_files=("profile",) if config.get("profile") else (),
        destinations=("endpoint",) if config.get("endpoint") else (),
    )


#: A full secret ARN (any partition, region and account: cross-account reads name the ARN).
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]{1,512}$")
#: Names AWS itself gives secrets it manages: RDS/Redshift master passwords are ``rds!...``.
_MANAGED_NAME_CHARS = re.compile(r"^[A-Za-z0-9/_+=.@!-]+$")


def check_name(config: AwsConfig, name: str, operation: str, *, read: bool = False) -> str:
    """The wire name (SecretId) for ``name``, or InvalidConfig naming the secret when AWS would refuse it.

    ``read``: names only reads may use are accepted too: a full ARN (sent as is, without the
    prefix: the way to read another account's secret) and the ``!`` of AWS-managed secrets
    (``rds!db-...``). A leading ``/`` is an ordinary character of AWS names (``/prod/db``).
    """
    if not isinstance(name, str) or not name or name.endswith("/"):
        raise InvalidConfig("invalid secret name", provider=PROVIDER, operation=operation, key=str(name))
    if read and SECRET_ARN.match(name):
        return name
    wire = config.wire_name(name)
    chars = _MANAGED_NAME_CHARS if read else _NAME_CHARS
    if not chars.match(name) or "//" in wire or len(wire) > MAX_NAME_LENGTH:
        raise InvalidConfig(
            "invalid secret name: AWS allows 1-512 ASCII letters, digits and /_+=.@- (with the prefix), or a "
            "secret ARN",
            provider=PROVIDER, operation=operation, key=name,
        )
    if _has_dot_segment(name):
        raise InvalidConfig("invalid secret name: a '.' or '..' segment", provider=PROVIDER,
                            operation=operation, key=name)
    return wire
