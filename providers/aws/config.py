"""The AWS store config: parsed from ``aws://REGION[/PREFIX][?key=value...]`` or a SecretStore block.

Why one validated dataclass: the CLI (URL), the controller (SecretStore ``spec.provider.aws``)
and the migrator all produce the same mapping, and every mistake must come back as an
:class:`~secretsync.core.errors.InvalidConfig` that names the field, before any AWS call.

A SecretStore block comes in two dialects (:func:`read_block`), both read into one canonical
config plus the credentials the controller resolves:

* secretsync's own: ``{region, prefix?, role?, endpoint?, recoveryWindowDays?, profile?,
  secretRef?: {accessKeyID, secretAccessKey, sessionToken?}, serviceAccountRef?}``;
* External Secrets Operator's ``aws`` block as written: ``service``, ``region``, ``role``,
  ``externalID``, ``sessionTags``, ``transitiveTagKeys``, ``additionalRoles``, ``prefix``,
  ``auth.secretRef.{accessKeyIDSecretRef,secretAccessKeySecretRef,sessionTokenSecretRef}``,
  ``auth.jwt.serviceAccountRef`` and ``secretsManager``. ESO requires ``service``, so a block
  with ``service`` (and no field only secretsync has) or any field only ESO has is read as ESO's.

Canonical keys: ``region``, ``service`` (SecretsManager | ParameterStore), ``prefix`` (joined
as ``PREFIX/name``), ``namePrefix`` (ESO's ``prefix``: prepended as written), ``endpoint``,
``role``, ``externalID``, ``sessionTags``, ``transitiveTagKeys``, ``additionalRoles``,
``recoveryWindowDays``, ``forceDeleteWithoutRecovery``, ``profile``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from secretsync.core.contract import (
    CredentialSource,
    CredentialUse,
    StoreBlock,
    generic_store_block,
    secret_source,
    token_source,
)
from secretsync.core.errors import InvalidConfig

from .names import MAX_NAME_LENGTH, NAME_CHARS, PROVIDER, SSM_NAME_CHARS, has_dot_segment

__all__ = ["PROVIDER", "AwsConfig", "config_from_url", "credential_use", "parse_config", "read_block", "store_block",
           "validate_config"]

SECRETS_MANAGER = "SecretsManager"
PARAMETER_STORE = "ParameterStore"
#: ESO's ``service`` values.
SERVICES = (SECRETS_MANAGER, PARAMETER_STORE)
KEYS = ("region", "prefix", "endpoint", "role", "recoveryWindowDays", "profile", "service", "namePrefix",
        "externalID", "sessionTags", "transitiveTagKeys", "additionalRoles", "forceDeleteWithoutRecovery")
#: Keys of secretsync's own block (the rest of KEYS are what ESO's block is read into).
OWN_KEYS = ("region", "prefix", "endpoint", "role", "recoveryWindowDays", "profile", "service")
DEFAULT_RECOVERY_WINDOW_DAYS = 7
#: AWS accepts a recovery window of 7 to 30 days.
RECOVERY_WINDOW_RANGE = (7, 30)
#: The audience AWS STS expects of a web identity token (what EKS puts in IRSA tokens).
STS_AUDIENCE = "sts.amazonaws.com"
#: Where IRSA keeps the role a ServiceAccount's token is exchanged for (ESO reads it too).
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
#: The credential that annotation is passed under.
WEB_IDENTITY_ROLE = "webIdentityRole"

#: us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, ap-southeast-5, il-central-1 ...
_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)*-\d{1,2}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
#: sts:ExternalId: 2-1224 characters of [\w+=,.@:/-].
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
#: Session tag keys (1-128) and values (0-256): letters, digits, spaces and _.:/=+-@.
_TAG_KEY = re.compile(r"^[\w .:/=+@-]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w .:/=+@-]{0,256}$")
#: AWS takes at most 50 session tags.
MAX_SESSION_TAGS = 50


@dataclass(frozen=True, slots=True)
class AwsConfig:
    """A validated AWS store config. ``region=None`` means boto3's chain (AWS_REGION, profile)."""

    region: str | None = None
    prefix: str = ""
    endpoint: str | None = None
    role: str | None = None
    recovery_window_days: int = DEFAULT_RECOVERY_WINDOW_DAYS
    profile: str | None = None
    service: str = SECRETS_MANAGER
    #: ESO's prefix: prepended to every name as written (``team-`` + ``db``).
    name_prefix: str = ""
    external_id: str | None = None
    session_tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    #: Roles assumed in turn before ``role`` (ESO's role chaining).
    additional_roles: tuple[str, ...] = ()
    #: Deletes skip the recovery window (ESO's secretsManager.forceDeleteWithoutRecovery).
    force_delete: bool = False

    @property
    def head(self) -> str:
        """What goes before a relative name on the wire."""
        if self.prefix:
            return f"/{self.prefix}/" if self.service == PARAMETER_STORE else f"{self.prefix}/"
        return self.name_prefix

    def wire_name(self, name: str) -> str:
        """The secret's name on AWS: ``PREFIX/name`` (names are relative to the prefix)."""
        return self.head + name

    def local_name(self, wire: str) -> str | None:
        """The relative name of a wire name, or None when it lies outside the prefix."""
        head = self.head
        if not head:
            return wire
        return wire[len(head):] if wire.startswith(head) and len(wire) > len(head) else None


def _fail(field: str, why: str) -> InvalidConfig:
    return InvalidConfig(f"aws store config field {field!r}: {why}", provider=PROVIDER, operation="config")


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
        if key not in OWN_KEYS or key in ("region", "prefix"):
            raise InvalidConfig(
                f"aws store URL {url!r}: unknown query parameter {key!r} "
                f"(known: endpoint, role, recoveryWindowDays, profile, service)",
                provider=PROVIDER, operation="config",
            )
        config[key] = value
    return config


def _role(config: Mapping[str, Any], field: str, value: Any) -> str:
    if not isinstance(value, str) or not _ROLE_ARN.match(value):
        raise _fail(field, f"{str(value)[:100]!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
    return value


def _string_list(config: Mapping[str, Any], field: str) -> tuple[str, ...]:
    raw = config.get(field)
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple) or not all(isinstance(v, str) and v for v in raw):
        raise _fail(field, "must be a list of non-empty strings")
    return tuple(raw)


def _session_tags(config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    raw = config.get("sessionTags")
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple) or len(raw) > MAX_SESSION_TAGS:
        raise _fail("sessionTags", f"must be a list of at most {MAX_SESSION_TAGS} {{key, value}} objects")
    out: list[tuple[str, str]] = []
    for i, tag in enumerate(raw):
        if not isinstance(tag, Mapping) or not isinstance(tag.get("key"), str) \
                or not isinstance(tag.get("value", ""), str):
            raise _fail(f"sessionTags[{i}]", "must be an object {key, value} of strings")
        key, value = tag["key"], tag.get("value", "")
        if not _TAG_KEY.match(key) or not _TAG_VALUE.match(value):
            raise _fail(f"sessionTags[{i}]", "key (1-128) and value (0-256) may hold letters, digits, spaces "
                                            "and _.:/=+-@")
        out.append((key, value))
    return tuple(out)


def _prefixes(config: Mapping[str, Any], service: str) -> tuple[str, str]:
    """(``prefix`` joined with '/', ``namePrefix`` prepended as written)."""
    prefix = config.get("prefix")
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str):
        raise _fail("prefix", f"must be a string, not {type(prefix).__name__}")
    prefix = prefix.strip("/")
    if prefix and (not NAME_CHARS.match(prefix) or "//" in prefix or len(prefix) >= MAX_NAME_LENGTH):
        raise _fail("prefix", f"{prefix[:80]!r} may only hold ASCII letters, digits and /_+=.@- (no '//')")
    if prefix and has_dot_segment(prefix):
        raise _fail("prefix", f"{prefix!r} has a '.' or '..' segment")
    raw = config.get("namePrefix")
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise _fail("namePrefix", f"must be a string, not {type(raw).__name__}")
    chars = SSM_NAME_CHARS if service == PARAMETER_STORE else NAME_CHARS
    if raw and (not chars.match(raw) or "//" in raw or len(raw) >= MAX_NAME_LENGTH or has_dot_segment(raw)):
        raise _fail("namePrefix", f"{raw[:80]!r} is not the start of a name AWS allows")
    if prefix and raw:
        raise _fail("namePrefix", "set either prefix (joined with '/') or namePrefix (prepended as is)")
    return prefix, raw


def parse_config(config: Mapping[str, Any]) -> AwsConfig:
    """Validate a canonical config mapping, raising InvalidConfig that names the offending field."""
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise _fail(unknown[0], f"unknown field (known: {', '.join(OWN_KEYS)})")

    region = _optional_text(config, "region")
    if region is not None and not _REGION.match(region):
        raise _fail("region", f"{region!r} is not an AWS region name like 'us-east-1'")

    service = config.get("service")
    if service is None:
        service = SECRETS_MANAGER
    if service not in SERVICES:
        raise _fail("service", f"{str(service)[:80]!r} is not one of {', '.join(SERVICES)}")

    prefix, name_prefix = _prefixes(config, service)

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
    if role is not None:
        _role(config, "role", role)
    additional = tuple(_role(config, f"additionalRoles[{i}]", r)
                       for i, r in enumerate(_string_list(config, "additionalRoles")))
    external_id = _optional_text(config, "externalID")
    if external_id is not None and not _EXTERNAL_ID.match(external_id):
        raise _fail("externalID", "must be 2-1224 characters of letters, digits and _+=,.@:/-")
    tags = _session_tags(config)
    transitive = _string_list(config, "transitiveTagKeys")
    if (external_id or tags or transitive or additional) and not role:
        raise _fail("role", "required when externalID, sessionTags, transitiveTagKeys or additionalRoles is set "
                            "(they are arguments of sts:AssumeRole)")

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
    force = config.get("forceDeleteWithoutRecovery", False)
    if not isinstance(force, bool):
        raise _fail("forceDeleteWithoutRecovery", "must be true or false")

    profile = _optional_text(config, "profile")

    return AwsConfig(
        region=region, prefix=prefix, endpoint=endpoint, role=role,
        recovery_window_days=window, profile=profile, service=service, name_prefix=name_prefix,
        external_id=external_id, session_tags=tags, transitive_tag_keys=transitive,
        additional_roles=additional, force_delete=force,
    )


# -- SecretStore blocks -------------------------------------------------------------------------

#: Fields only ESO's block has.
_ESO_ONLY = frozenset({"auth", "secretsManager", "externalID", "sessionTags", "transitiveTagKeys", "additionalRoles"})
#: Fields only secretsync's block has.
_OWN_ONLY = frozenset({"secretRef", "serviceAccountRef", "recoveryWindowDays", "profile"})
#: ESO's fields that map one to one onto canonical keys.
_ESO_PLAIN = {"service": "service", "region": "region", "role": "role", "externalID": "externalID",
              "sessionTags": "sessionTags", "transitiveTagKeys": "transitiveTagKeys",
              "additionalRoles": "additionalRoles", "prefix": "namePrefix",
              # secretsync's extension: where the AWS API is (moto, a VPC endpoint).
              "endpoint": "endpoint"}
_ESO_STATIC = (("accessKeyIDSecretRef", "accessKeyID"), ("secretAccessKeySecretRef", "secretAccessKey"),
               ("sessionTokenSecretRef", "sessionToken"))


def is_eso_block(block: Mapping[str, Any]) -> bool:
    """ESO's dialect: a field only ESO has, or ESO's required ``service`` without any field only
    secretsync has (secretsync's blocks accepted ``service`` before they accepted ESO's)."""
    keys = set(block)
    return bool(keys & _ESO_ONLY) or ("service" in keys and not keys & _OWN_ONLY)


class _Problems:
    """Every problem of a block, one per line of one InvalidConfig (ReadsStoreBlocks)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, why: str) -> None:
        self.lines.append(f"{path}: {why}")

    def mapping(self, block: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = block.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.add(path, "must be an object")
            return {}
        return value

    def only(self, block: Mapping[str, Any], path: str, known: frozenset[str] | set[str], hint: str = "") -> None:
        for key in sorted(set(block) - known, key=str):
            where = f"{path}.{key}" if path else str(key)
            self.add(where, hint.format(key=key) if hint else f"unknown field (known: {', '.join(sorted(known))})")


def _eso_auth(auth: Mapping[str, Any], p: _Problems) -> list[CredentialSource]:
    creds: list[CredentialSource] = []
    p.only(auth, "auth", {"secretRef", "jwt"})
    if "secretRef" in auth and "jwt" in auth:
        p.add("auth", "set either secretRef or jwt")
    ref = p.mapping(auth, "secretRef", "auth.secretRef")
    p.only(ref, "auth.secretRef", {e for e, _ in _ESO_STATIC})
    for eso_key, credential in _ESO_STATIC:
        where = f"auth.secretRef.{eso_key}"
        if eso_key in ref:
            try:
                creds.append(secret_source(credential, ref[eso_key], where))
            except InvalidConfig as exc:
                p.lines.append(str(exc.args[0]))
        elif ref and credential != "sessionToken":
            p.add(where, "required with auth.secretRef")
    jwt = p.mapping(auth, "jwt", "auth.jwt")
    p.only(jwt, "auth.jwt", {"serviceAccountRef"})
    if "jwt" in auth and "serviceAccountRef" not in jwt:
        p.add("auth.jwt.serviceAccountRef", "required")
    if "serviceAccountRef" in jwt:
        where = "auth.jwt.serviceAccountRef"
        try:
            # ESO asks for sts.amazonaws.com and the listed audiences on top.
            token = token_source("jwt", jwt["serviceAccountRef"], where)
            token = CredentialSource("jwt", where, "token", token.name, token.namespace,
                                     audiences=tuple(dict.fromkeys((STS_AUDIENCE, *token.audiences))))
            creds.append(token)
            # The role the token is exchanged for is the ServiceAccount's IRSA annotation, as in ESO.
            creds.append(CredentialSource(WEB_IDENTITY_ROLE, where, "annotation", token.name, token.namespace,
                                          key=ROLE_ANNOTATION))
        except InvalidConfig as exc:
            p.lines.append(str(exc.args[0]))
    return creds


def _eso_block(block: Mapping[str, Any]) -> StoreBlock:
    """ESO's ``aws`` block as written -> canonical config + credentials."""
    p = _Problems()
    known = set(_ESO_PLAIN) | {"auth", "secretsManager"}
    p.only(block, "", known, "unknown field in ESO's aws block (known: " + ", ".join(sorted(known)) + ")")
    config: dict[str, Any] = {ours: block[eso] for eso, ours in _ESO_PLAIN.items() if block.get(eso) is not None}
    sm = p.mapping(block, "secretsManager", "secretsManager")
    p.only(sm, "secretsManager", {"forceDeleteWithoutRecovery", "recoveryWindowInDays"})
    if sm.get("forceDeleteWithoutRecovery") and sm.get("recoveryWindowInDays") is not None:
        p.add("secretsManager", "forceDeleteWithoutRecovery and recoveryWindowInDays exclude each other (as in AWS)")
    if sm.get("forceDeleteWithoutRecovery") is not None:
        config["forceDeleteWithoutRecovery"] = sm["forceDeleteWithoutRecovery"]
    if sm.get("recoveryWindowInDays") is not None:
        config["recoveryWindowDays"] = sm["recoveryWindowInDays"]
    if sm and block.get("service") == PARAMETER_STORE:
        p.add("secretsManager", "only applies to service SecretsManager")
    creds = _eso_auth(p.mapping(block, "auth", "auth"), p)
    try:
        parse_config(config)
    except InvalidConfig as exc:
        p.lines.append(_eso_path(str(exc.args[0])))
    if p.lines:
        raise InvalidConfig("\n".join(p.lines))
    return StoreBlock(config, tuple(creds))


def _eso_path(message: str) -> str:
    """A parse_config message ("aws store config field 'x': why") as an ESO field path line."""
    found = re.search(r"aws store config field '([^']+)': (.*)", message, re.DOTALL)
    if not found:
        return message
    field, why = found.groups()
    eso = {"namePrefix": "prefix", "recoveryWindowDays": "secretsManager.recoveryWindowInDays",
           "forceDeleteWithoutRecovery": "secretsManager.forceDeleteWithoutRecovery"}
    return f"{eso.get(field, field)}: {why}"


def read_block(block: Mapping[str, Any]) -> StoreBlock:
    """A SecretStore ``aws`` block in either dialect (see the module docstring)."""
    if is_eso_block(block):
        return _eso_block(block)
    return generic_store_block(block, (STS_AUDIENCE,))


#: Credentials that authenticate a store without the process's own identity.
STATIC_KEYS = frozenset({"accessKeyID", "secretAccessKey"})


def credential_use(config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
    """What a store draws on beyond its credentials (mirrors :func:`.auth.build_session`).

    Static keys, or a ServiceAccount token (``jwt``) exchanged for a role, are the store's
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


def store_block(block: Mapping[str, Any]) -> StoreBlock:
    """The factory's reading of a SecretStore block (either dialect): see :func:`read_block`."""
    return read_block(block)


def validate_config(config: Mapping[str, Any]) -> None:
    """Raise InvalidConfig naming the offending canonical field."""
    parse_config(config)
