"""The AWS Secrets Manager adapter: the contract's operations as Secrets Manager API calls.

Call budget (each is one ``settings.calls`` entry, named after the AWS API):

* ``get``: 1 GetSecretValue. ``get_many``: 1 BatchGetSecretValue per 20 names.
* ``list``: 1 ListSecrets per page of 100 (metadata carries the AWSCURRENT version id, so
  change detection needs no value reads).
* ``put(if_absent=True)``: 1 CreateSecret (atomic: AWS refuses an existing name).
* ``put``: DescribeSecret + CreateSecret or PutSecretValue (+ Tag/UntagResource when the
  tags change; + RestoreSecret when the name is in its recovery window).
* ``delete``: 1 DeleteSecret (recovery window); ``force=True`` adds a DescribeSecret,
  because AWS answers a forced delete of a missing secret with success and only a
  definite NotFound may tell the caller it was absent.

Compare-and-set is best effort (a DescribeSecret check before PutSecretValue): Secrets
Manager has no conditional write, which the capabilities declare.
"""

from __future__ import annotations

import abc
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from secretsync.core.contract import (
    Capabilities,
    ClientBase,
    Fetched,
    ListFilter,
    PutResult,
    SecretMetadata,
    Validation,
    ValidationStatus,
    chunked,
    extract_property,
)
from secretsync.core.errors import (
    Conflict,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Unavailable,
)
from secretsync.core.ratelimit import TokenBucket
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..calls import provider_call
from .config import PROVIDER, AwsConfig
from .errors import error_for_code, mapper, masking
from .names import SECRET_ARN, check_name
from .sdk import SecretsManagerAPI, instrument

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(
    batch_get=True,
    max_batch=20,
    versions=True,
    tags=True,
    compare_and_set=False,
    binary=True,
    soft_delete=True,
)

#: AWS's limit for SecretString and SecretBinary. Checked locally so the error is clear and
#: arrives before a round trip (and so moto, which does not enforce it, behaves like AWS).
MAX_VALUE_BYTES = 65536
#: BatchGetSecretValue takes at most 20 secret ids per call.
MAX_BATCH = 20
#: ListSecrets returns at most 100 secrets per page.
LIST_PAGE_SIZE = 100
CURRENT_STAGE = "AWSCURRENT"
#: Version ids are ClientRequestTokens: 32-64 characters (UUIDs here). Shorter strings are
#: staging labels (AWSCURRENT, AWSPREVIOUS, custom). ``uuid/ID`` forces an id, as in ESO.
_VERSION_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: What a ListSecrets filter value may contain; anything else is filtered client-side.
_FILTER_VALUE = re.compile(r"^[a-zA-Z0-9 :_@/+=.-]{1,512}$")
#: ``list`` follows at most this many NextTokens (100 secrets a page: 1,000,000 secrets, twice
#: AWS's per-region quota), and never the same token twice: a service (or a fake) that pages
#: forever must not hang a caller.
MAX_LIST_PAGES = 10_000
#: BatchGetSecretValue of 20 ids needs one page, rarely two; more is a paging loop.
MAX_BATCH_PAGES = 20


def malformed(operation: str, key: str | None, what: str) -> Unavailable:
    """A successful answer without the shape AWS gives it: never read as absent or empty."""
    return Unavailable(f"malformed answer from AWS: {what} (truncated, or not the AWS service?)",
                       provider=PROVIDER, operation=operation, key=key)


def call_aws(settings: ClientSettings, operation: str, method: Callable[..., Mapping[str, Any]], key: str | None,
             secret_text: str | None = None, **kwargs: Any) -> Mapping[str, Any]:
    """One AWS API call (``operation`` is the AWS API name) through :func:`provider_call`; the
    rate limiter is applied per HTTP attempt (sdk.instrument). ``secret_text``: the value the
    call sends, masked in any error that echoes it."""
    with provider_call(settings, PROVIDER, operation, masking([secret_text]) if secret_text else mapper,
                       key=key, server="AWS"):
        return method(**kwargs)
    raise AssertionError("unreachable: provider_call raises or the call returned")  # for mypy


def next_token(response: Mapping[str, Any], seen: set[str], operation: str, limit: int) -> str | None:
    """The page token to follow, refusing loops and endless paging."""
    token = response.get("NextToken")
    if not token:
        return None
    if not isinstance(token, str) or token in seen:
        raise Unavailable(f"{operation}: AWS sent a NextToken it had sent before (a paging loop)",
                          provider=PROVIDER, operation=operation)
    if len(seen) + 1 >= limit:
        raise Unavailable(f"{operation}: still paging after {limit} pages; giving up",
                          provider=PROVIDER, operation=operation)
    seen.add(token)
    return token


def version_argument(version: str) -> dict[str, str]:
    """GetSecretValue's VersionId or VersionStage for a contract ``version`` string.

    ESO's rule: ``uuid/ID`` is a VersionId, anything else a staging label. A bare string of
    UUID shape (what AWS generates, and what our own ``Fetched.version`` holds) is a
    VersionId too; any other string, however long, stays a label (labels are 1-256
    characters, so guessing by length turned long labels into unknown ids and NotFound).
    """
    if version.startswith("uuid/"):
        return {"VersionId": version[len("uuid/"):]}
    if _VERSION_ID.match(version):
        return {"VersionId": version}
    return {"VersionStage": version}


def current_version(stages: Mapping[str, Sequence[str]] | None) -> str | None:
    """The version id labelled AWSCURRENT in a VersionIdsToStages/SecretVersionsToStages map."""
    for version_id, labels in (stages or {}).items():
        if CURRENT_STAGE in labels:
            return version_id
    return None


def _tags_of(entry: Mapping[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in entry.get("Tags") or ()}


def aws_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _meta(name: str, entry: Mapping[str, Any]) -> SecretMetadata:
    """Metadata from a DescribeSecret response or a ListSecrets entry (never a value)."""
    stages = entry.get("VersionIdsToStages") or entry.get("SecretVersionsToStages")
    updated = entry.get("LastChangedDate") or entry.get("CreatedDate")
    return SecretMetadata(
        name=name,
        version=current_version(stages),
        updated=updated if isinstance(updated, datetime) else None,
        tags=_tags_of(entry),
    )


class AwsClientBase(ClientBase):
    """What the Secrets Manager and Parameter Store clients share: the boto3 client and the
    store config, one API call, the health probe, close. Thread-safe: boto3 clients are."""

    provider_name = PROVIDER
    _api: Any

    def __init__(self, api: Any, config: AwsConfig, settings: ClientSettings | None = None,
                 limiter: TokenBucket | None = None) -> None:
        super().__init__(settings)
        self._api = api
        self.config = config
        self._limiter = limiter if limiter is not None else self.settings.rate_limit.bucket()
        # Every HTTP attempt (botocore's retries included) waits for the bucket, and the
        # connection pools obey the call deadline; see sdk.instrument.
        instrument(api, self._limiter)

    def _invoke(self, operation: str, method: Callable[..., Mapping[str, Any]], key: str | None,
                secret_text: str | None = None, **kwargs: Any) -> Mapping[str, Any]:
        return call_aws(self.settings, operation, method, key, secret_text, **kwargs)

    def _pages(self, operation: str, method: Callable[..., Mapping[str, Any]], args: Mapping[str, Any],
               items: str, limit: int) -> Iterator[list[Any]]:
        """Each page's ``items`` list of a paged API, following NextToken (no loops, at most
        ``limit`` pages). AWS always sends the list (``[]`` when nothing matches): a page without
        it is not an empty store but a broken answer, and must not empty anything downstream."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            response = self._invoke(operation, method, None, **(dict(args, NextToken=token) if token else args))
            entries = response.get(items)
            if not isinstance(entries, list):
                raise malformed(operation, None, f"no {items} in a successful {operation}")
            yield entries
            token = next_token(response, seen, operation, limit)
            if not token:
                return

    @abc.abstractmethod
    def _probe(self) -> None:
        """The cheapest call that proves endpoint, credentials and list permission."""

    def validate(self) -> Validation:
        try:
            self._probe()
        except ProviderError as exc:
            return Validation(ValidationStatus.ERROR, str(exc))
        return Validation(ValidationStatus.READY)

    def close(self) -> None:
        try:
            self._api.close()
        except Exception as exc:  # closing never fails a caller
            log.debug("aws: closing the client failed: %s", type(exc).__name__)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} region={self.config.region!r} prefix={self.config.head!r}>"


def _create_options(options: Mapping[str, Any], name: str) -> dict[str, Any]:
    """ESO's AWS push options -> CreateSecret arguments (checked: a wrong type names the option)."""
    unknown = sorted(set(options) - PUT_OPTION_KEYS)
    if unknown:
        raise InvalidConfig(f"{unknown[0]}: not an AWS Secrets Manager push option (known: "
                            f"{', '.join(sorted(PUT_OPTION_KEYS))})", provider=PROVIDER, operation="put", key=name)
    out: dict[str, Any] = {}
    for key, arg in (("kmsKeyID", "KmsKeyId"), ("description", "Description")):
        if options.get(key) is not None:
            if not isinstance(options[key], str):
                raise InvalidConfig(f"{key}: must be a string", provider=PROVIDER, operation="put", key=name)
            out[arg] = options[key]
    regions = options.get("replicationLocations")
    if regions is not None:
        if not isinstance(regions, list | tuple) or not all(isinstance(r, str) and r for r in regions):
            raise InvalidConfig("replicationLocations: must be a list of region names", provider=PROVIDER,
                                operation="put", key=name)
        out["AddReplicaRegions"] = [{"Region": r} for r in regions]
    return out


#: ESO's PushSecretMetadata fields for AWS Secrets Manager that put applies.
PUT_OPTION_KEYS = frozenset({"kmsKeyID", "description", "replicationLocations"})


class AwsClient(AwsClientBase):
    """A client for one Secrets Manager store (region + prefix)."""

    put_option_keys = PUT_OPTION_KEYS

    _api: SecretsManagerAPI

    def __init__(self, api: SecretsManagerAPI, config: AwsConfig, settings: ClientSettings | None = None,
                 limiter: TokenBucket | None = None) -> None:
        super().__init__(api, config, settings, limiter)
        self._batch_denied = False

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def _wire(self, name: str, operation: str) -> str:
        return check_name(self.config, name, operation)

    def _read_id(self, name: str, operation: str) -> str:
        """The SecretId of a read: ARNs and AWS-managed names (``rds!...``) allowed."""
        return check_name(self.config, name, operation, read=True)

    # -- reads ----------------------------------------------------------------------------
    @staticmethod
    def _value(response: Mapping[str, Any], name: str) -> SecretValue:
        text, binary = response.get("SecretString"), response.get("SecretBinary")
        if isinstance(text, str):
            return SecretValue(text)
        if isinstance(binary, bytes | bytearray):
            return SecretValue(bytes(binary))
        raise malformed("GetSecretValue", name, "no SecretString or SecretBinary in a successful read")

    def _get_response(self, name: str, version: str | None) -> Mapping[str, Any]:
        wire = self._read_id(name, "GetSecretValue")
        args: dict[str, Any] = {"SecretId": wire}
        if version:
            args.update(version_argument(version))
        return self._invoke("GetSecretValue", self._api.get_secret_value, name, **args)

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        response = self._get_response(name, version)
        return extract_property(self._value(response, name), prop, name=name, provider=PROVIDER)

    def get_versioned(self, name: str) -> Fetched:
        response = self._get_response(name, None)
        return Fetched(self._value(response, name), response.get("VersionId"))

    def get_many(self, names: Sequence[str]) -> dict[str, Fetched | ProviderError]:
        """BatchGetSecretValue, 20 names a call; per-secret Errors become per-name entries."""
        out: dict[str, Fetched | ProviderError] = {}
        by_wire: dict[str, str] = {}
        by_arn: list[str] = []
        for name in dict.fromkeys(names):
            try:
                wire = self._read_id(name, "BatchGetSecretValue")
            except InvalidConfig as exc:
                out[name] = exc
                continue
            if SECRET_ARN.match(wire):
                by_arn.append(name)  # the batch answers with names, not the ARN asked for
            else:
                by_wire[wire] = name
        out.update(self._get_one_by_one(by_arn))
        for batch in chunked(by_wire, MAX_BATCH):
            if self._batch_denied:
                out.update(self._get_one_by_one([by_wire[w] for w in batch]))
                continue
            try:
                out.update(self._batch(batch, by_wire))
            except PermissionDenied:
                # No secretsmanager:BatchGetSecretValue in the policy: per-secret reads still
                # work with GetSecretValue alone, at 20 calls instead of one.
                log.warning("aws: BatchGetSecretValue denied; falling back to GetSecretValue per secret")
                self._batch_denied = True
                out.update(self._get_one_by_one([by_wire[w] for w in batch]))
        return {name: out[name] for name in dict.fromkeys(names)}

    def _batch(self, batch: list[str], by_wire: Mapping[str, str]) -> dict[str, Fetched | ProviderError]:
        out: dict[str, Fetched | ProviderError] = {}
        token: str | None = None
        seen: set[str] = set()
        while True:
            args: dict[str, Any] = {"SecretIdList": batch}
            if token:
                args["NextToken"] = token
            response = self._invoke("BatchGetSecretValue", self._api.batch_get_secret_value, None, **args)
            if not isinstance(response.get("SecretValues"), list) or not isinstance(
                    response.get("Errors", []), list):
                raise malformed("BatchGetSecretValue", None, "no SecretValues list in a successful answer")
            for item in response.get("SecretValues") or ():
                name = by_wire.get(str(item.get("Name")))
                if name is not None:
                    out[name] = Fetched(self._value(item, name), item.get("VersionId"))
            for err in response.get("Errors") or ():
                name = by_wire.get(str(err.get("SecretId")))
                if name is not None:
                    out[name] = error_for_code(
                        str(err.get("ErrorCode") or ""), str(err.get("Message") or ""),
                        "BatchGetSecretValue", name,
                    )
            token = next_token(response, seen, "BatchGetSecretValue", MAX_BATCH_PAGES)
            if not token:
                break
        for wire in batch:
            name = by_wire[wire]
            if name not in out:
                out[name] = Unavailable("missing from the BatchGetSecretValue response",
                                        provider=PROVIDER, operation="BatchGetSecretValue", key=name)
        return out

    def _get_one_by_one(self, names: Sequence[str]) -> dict[str, Fetched | ProviderError]:
        out: dict[str, Fetched | ProviderError] = {}
        for name in names:
            try:
                out[name] = self.get_versioned(name)
            except (NotFound, PermissionDenied) as exc:
                out[name] = exc
        return out

    def _describe_raw(self, name: str, wire: str) -> Mapping[str, Any] | None:
        """DescribeSecret, or None when the secret does not exist at all."""
        try:
            response = self._invoke("DescribeSecret", self._api.describe_secret, name, SecretId=wire)
        except NotFound as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            raise
        if not isinstance(response.get("ARN") or response.get("Name"), str):
            raise malformed("DescribeSecret", name, "no ARN or Name in a successful DescribeSecret")
        return response

    def describe(self, name: str) -> SecretMetadata:
        wire = self._read_id(name, "DescribeSecret")
        entry = self._describe_raw(name, wire)
        if entry is None or entry.get("DeletedDate"):
            raise NotFound("secret not found" if entry is None else "secret is scheduled for deletion",
                           provider=PROVIDER, operation="DescribeSecret", key=name)
        return _meta(name, entry)

    def _server_filters(self, flt: ListFilter) -> list[dict[str, Any]]:
        """ListSecrets filters for what AWS can filter; ``flt.matches`` re-checks client-side."""
        filters: list[dict[str, Any]] = []
        candidates = [self.config.wire_name(flt.prefix)] if flt.prefix else []
        if self.config.head:
            candidates.append(self.config.head)
        usable = [p for p in candidates if _FILTER_VALUE.match(p)]
        if usable:
            filters.append({"Key": "name", "Values": [usable[0]]})
        # tag-key and tag-value filter independently, so one pair is enough to narrow the
        # list; the exact key=value match happens client-side.
        for key, value in list(flt.tags.items())[:1]:
            if _FILTER_VALUE.match(key):
                filters.append({"Key": "tag-key", "Values": [key]})
            if value and _FILTER_VALUE.match(value):
                filters.append({"Key": "tag-value", "Values": [value]})
        return filters

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        """ListSecrets, one call per page of 100; secrets in their recovery window are left out."""
        flt = flt or ListFilter()
        filters = self._server_filters(flt)
        args: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE, **({"Filters": filters} if filters else {})}
        for entries in self._pages("ListSecrets", self._api.list_secrets, args, "SecretList", MAX_LIST_PAGES):
            for entry in entries:
                if not isinstance(entry, Mapping) or not isinstance(entry.get("Name"), str) or not entry["Name"]:
                    raise malformed("ListSecrets", None, "a SecretList entry that is not an object with a Name")
                if entry.get("DeletedDate"):
                    continue
                name = self.config.local_name(str(entry.get("Name", "")))
                if name is None:
                    continue
                meta = _meta(name, entry)
                if flt.matches(meta):
                    yield meta

    # -- writes ---------------------------------------------------------------------------
    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> PutResult:
        """Create or add a version. ``options`` (ESO's PushSecretMetadata for AWS): ``kmsKeyID``
        and ``description`` on create and update, ``replicationLocations`` (regions) on create."""
        wire = self._wire(name, "PutSecretValue")
        extra = _create_options(options or {}, name)
        if not value or len(value) > MAX_VALUE_BYTES:
            raise InvalidConfig(
                f"the value is {len(value)} bytes; AWS Secrets Manager stores 1 to {MAX_VALUE_BYTES} bytes",
                provider=PROVIDER, operation="PutSecretValue", key=name,
            )
        text = value.reveal_text() if value.is_text else None
        payload: dict[str, Any] = {"SecretString": text} if text is not None else {"SecretBinary": value.reveal()}
        # One token per logical put: botocore's retries resend it, so a retried create or
        # put that already landed on AWS does not add a second version.
        token = str(uuid.uuid4())

        if if_absent and expected_version is None:
            try:
                return self._create(name, wire, token, payload, text, tags, extra)
            except Conflict as exc:
                if exc.code != "ResourceExistsException":
                    raise
                state = self._describe_raw(name, wire)
                if state is not None and not state.get("DeletedDate"):
                    raise Conflict("secret already exists", provider=PROVIDER, operation="CreateSecret",
                                   key=name) from None
            except NotFound as exc:
                # AWS refuses CreateSecret while the name is in its recovery window.
                if exc.code != "InvalidRequestException":  # "marked for deletion" (see error_mapping)
                    raise
                state = self._describe_raw(name, wire)
            if state is None:
                return self._create(name, wire, token, payload, text, tags, extra)
            return self._update(name, wire, state, token, payload, text, tags, extra)

        state = self._describe_raw(name, wire)
        live = state is not None and not state.get("DeletedDate")
        if expected_version is not None or if_absent:
            current = current_version(state.get("VersionIdsToStages")) if live and state else None
            if if_absent and live:
                raise Conflict("secret already exists", provider=PROVIDER, operation="PutSecretValue", key=name)
            if expected_version is not None and current != expected_version:
                raise Conflict("version changed (compare-and-set failed)",
                               provider=PROVIDER, operation="PutSecretValue", key=name)
        if state is None:
            try:
                return self._create(name, wire, token, payload, text, tags, extra)
            except Conflict as exc:
                # Created by someone else between our describe and create: add a version.
                if exc.code != "ResourceExistsException":
                    raise
                state = self._describe_raw(name, wire) or {}
        return self._update(name, wire, state, token, payload, text, tags, extra)

    def _create(
        self,
        name: str,
        wire: str,
        token: str,
        payload: Mapping[str, Any],
        text: str | None,
        tags: Mapping[str, str] | None,
        extra: Mapping[str, Any],
    ) -> PutResult:
        args: dict[str, Any] = {"Name": wire, "ClientRequestToken": token, **payload, **extra}
        if tags:
            args["Tags"] = aws_tags(tags)
        response = self._invoke("CreateSecret", self._api.create_secret, name, text, **args)
        return PutResult(name, response.get("VersionId") or token)

    def _update(
        self,
        name: str,
        wire: str,
        state: Mapping[str, Any],
        token: str,
        payload: Mapping[str, Any],
        text: str | None,
        tags: Mapping[str, str] | None,
        extra: Mapping[str, Any],
    ) -> PutResult:
        """Add a version to an existing secret, restoring it first if it is in its recovery window."""
        if state.get("DeletedDate"):
            self._invoke("RestoreSecret", self._api.restore_secret, name, SecretId=wire)
        update = {k: v for k, v in extra.items() if k in ("KmsKeyId", "Description")
                  and state.get(k) != v}
        if update:  # before the value, so the new version is encrypted with the new key
            self._invoke("UpdateSecret", self._api.update_secret, name, SecretId=wire, **update)
        response = self._invoke("PutSecretValue", self._api.put_secret_value, name, text,
                                SecretId=wire, ClientRequestToken=token, **payload)
        if tags is not None:
            self._sync_tags(name, wire, _tags_of(state), tags)
        return PutResult(name, response.get("VersionId") or token)

    def _sync_tags(self, name: str, wire: str, current: Mapping[str, str], desired: Mapping[str, str]) -> None:
        """Make the secret's tags exactly ``desired`` (put's tags replace, as in every store)."""
        removed = [k for k in current if k not in desired]
        changed = {k: v for k, v in desired.items() if current.get(k) != v}
        if removed:
            self._invoke("UntagResource", self._api.untag_resource, name, SecretId=wire, TagKeys=removed)
        if changed:
            self._invoke("TagResource", self._api.tag_resource, name, SecretId=wire, Tags=aws_tags(changed))

    def delete(self, name: str, *, force: bool = False) -> None:
        """Soft delete with the configured recovery window; ``force`` (or the store's
        ``forceDeleteWithoutRecovery``) deletes at once."""
        wire = self._wire(name, "DeleteSecret")
        if force:
            if self._describe_raw(name, wire) is None:
                raise NotFound("secret not found", provider=PROVIDER, operation="DeleteSecret", key=name)
            self._invoke("DeleteSecret", self._api.delete_secret, name,
                         SecretId=wire, ForceDeleteWithoutRecovery=True)
            return
        if self.config.force_delete:  # ESO's secretsManager.forceDeleteWithoutRecovery
            self.delete(name, force=True)
            return
        self._invoke("DeleteSecret", self._api.delete_secret, name,
                     SecretId=wire, RecoveryWindowInDays=self.config.recovery_window_days)

    # -- health ---------------------------------------------------------------------------
    def _probe(self) -> None:
        """One ListSecrets call of one result."""
        args: dict[str, Any] = {"MaxResults": 1}
        filters = self._server_filters(ListFilter())
        if filters:
            args["Filters"] = filters
        self._invoke("ListSecrets", self._api.list_secrets, None, **args)
