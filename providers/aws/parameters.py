"""The SSM Parameter Store adapter (ESO's ``service: ParameterStore``).

Why a second client rather than a mode of :class:`~.client.AwsClient`: Parameter Store has its
own API (GetParameter, GetParameters, DescribeParameters, PutParameter...), names (paths with a
leading ``/``), versions (integers) and labels, limits (values of 4 KB, 8 KB on the Advanced
tier; text only) and no soft delete. What the two share (the session, the per-call wrapper,
the error mapping, paging guards) is imported, not copied.

Call budget (each is one ``settings.calls`` entry, named after the AWS API):

* ``get``: 1 GetParameter (SecureString decrypted). ``version``: a version number or a label,
  sent as SSM's ``NAME:VERSION`` / ``NAME:LABEL`` selector.
* ``get_many``: 1 GetParameters per 10 names (names AWS lists as InvalidParameters do not exist).
* ``list``: 1 DescribeParameters per page of 50, filtered server-side by the name's start
  (metadata carries the version, so change detection needs no value reads; values are never
  listed). ``get_by_path``: GetParametersByPath, 10 values a page.
* ``put``: DescribeParameters + PutParameter (SecureString; Tags on create, or
  List/Add/RemoveTagsFromResource when the tags of an existing parameter change).
* ``delete``: 1 DeleteParameter (Parameter Store has no recovery window).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from secretsync.core.contract import (
    Capabilities,
    Fetched,
    ListFilter,
    PutResult,
    SecretMetadata,
    chunked,
    extract_property,
)
from secretsync.core.errors import Conflict, InvalidConfig, NotFound, ProviderError, Unavailable
from secretsync.core.values import SecretValue

from .client import AwsClientBase, aws_tags, malformed
from .config import PROVIDER
from .names import SSM_NAME_CHARS, check_parameter_name
from .sdk import ParameterStoreAPI

#: Advanced-tier parameters hold 8 KB; standard ones 4 KB (put picks the tier by size).
MAX_VALUE_BYTES = 8192
STANDARD_MAX_BYTES = 4096
CAPABILITIES = Capabilities(
    batch_get=True,
    max_batch=10,
    versions=True,
    tags=False,  # DescribeParameters does not return tags
    compare_and_set=False,
    binary=False,
    soft_delete=False,
    max_value_bytes=MAX_VALUE_BYTES,
    find_path_is_folder=True,
)
#: GetParameters takes at most 10 names.
MAX_BATCH = 10
#: DescribeParameters returns at most 50 per page; GetParametersByPath 10.
LIST_PAGE_SIZE = 50
PATH_PAGE_SIZE = 10
MAX_LIST_PAGES = 100_000
#: A version number, or a label (letters, digits, '.', '-', '_'; 1-100 characters).
_SELECTOR = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def _meta(name: str, entry: Mapping[str, Any]) -> SecretMetadata:
    updated = entry.get("LastModifiedDate")
    version = entry.get("Version")
    return SecretMetadata(name=name, version=str(version) if version is not None else None,
                          updated=updated if isinstance(updated, datetime) else None)


class ParameterStoreClient(AwsClientBase):
    """A client for one Parameter Store store (region + prefix)."""

    _api: ParameterStoreAPI

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def _wire(self, name: str, operation: str) -> str:
        return check_parameter_name(self.config, name, operation)

    # -- reads ----------------------------------------------------------------------------
    @staticmethod
    def _value(entry: Any, operation: str, name: str) -> tuple[SecretValue, str | None]:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("Value"), str):
            raise malformed(operation, name, "no Parameter.Value in a successful read")
        version = entry.get("Version")
        return SecretValue(entry["Value"]), (str(version) if version is not None else None)

    def _read(self, name: str, version: str | None) -> tuple[SecretValue, str | None]:
        wire = self._wire(name, "GetParameter")
        if version is not None:
            if not _SELECTOR.match(version):
                raise InvalidConfig("invalid version: a Parameter Store version number or label",
                                    provider=PROVIDER, operation="GetParameter", key=name)
            wire = f"{wire}:{version}"
        response = self._invoke("GetParameter", self._api.get_parameter, name, Name=wire, WithDecryption=True)
        return self._value(response.get("Parameter"), "GetParameter", name)

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        value, _ = self._read(name, version)
        return extract_property(value, prop, name=name, provider=PROVIDER)

    def get_versioned(self, name: str) -> Fetched:
        value, version = self._read(name, None)
        return Fetched(value, version)

    def get_many(self, names: Sequence[str]) -> dict[str, Fetched | ProviderError]:
        """GetParameters, 10 names a call; a name AWS lists as invalid does not exist."""
        out: dict[str, Fetched | ProviderError] = {}
        by_wire: dict[str, str] = {}
        for name in dict.fromkeys(names):
            try:
                by_wire[self._wire(name, "GetParameters")] = name
            except InvalidConfig as exc:
                out[name] = exc
        for batch in chunked(by_wire, MAX_BATCH):
            response = self._invoke("GetParameters", self._api.get_parameters, None, Names=batch, WithDecryption=True)
            found, invalid = response.get("Parameters"), response.get("InvalidParameters", [])
            if not isinstance(found, list) or not isinstance(invalid, list):
                raise malformed("GetParameters", None, "no Parameters list in a successful answer")
            for entry in found:
                asked = by_wire.get(str(entry.get("Name") if isinstance(entry, Mapping) else ""))
                if asked is not None:
                    value, version = self._value(entry, "GetParameters", asked)
                    out[asked] = Fetched(value, version)
            for wire in invalid:
                asked = by_wire.get(str(wire))
                if asked is not None:  # a name that passed our check: AWS's "no such parameter"
                    out[asked] = NotFound("parameter not found", provider=PROVIDER, operation="GetParameters",
                                          key=asked, code="ParameterNotFound")
            for wire in batch:
                out.setdefault(by_wire[wire], Unavailable("missing from the GetParameters response",
                                                          provider=PROVIDER, operation="GetParameters",
                                                          key=by_wire[wire]))
        return {name: out[name] for name in dict.fromkeys(names)}

    def _describe(self, filters: list[dict[str, Any]], max_results: int = LIST_PAGE_SIZE,
                  pages: int = MAX_LIST_PAGES) -> Iterator[Mapping[str, Any]]:
        """DescribeParameters entries, page by page (AWS may send empty pages with a NextToken)."""
        args: dict[str, Any] = {"MaxResults": max_results, **({"ParameterFilters": filters} if filters else {})}
        for entries in self._pages("DescribeParameters", self._api.describe_parameters, args, "Parameters", pages):
            for entry in entries:
                if not isinstance(entry, Mapping) or not isinstance(entry.get("Name"), str):
                    raise malformed("DescribeParameters", None, "an entry that is not an object with a Name")
                yield entry

    def _describe_raw(self, name: str, wire: str) -> Mapping[str, Any] | None:
        for entry in self._describe([{"Key": "Name", "Option": "Equals", "Values": [wire]}]):
            if entry["Name"] == wire:
                return entry
        return None

    def describe(self, name: str) -> SecretMetadata:
        entry = self._describe_raw(name, self._wire(name, "DescribeParameters"))
        if entry is None:
            raise NotFound("parameter not found", provider=PROVIDER, operation="DescribeParameters", key=name)
        return _meta(name, entry)

    def _start_filter(self, flt: ListFilter) -> list[dict[str, Any]]:
        start = self.config.head + (flt.prefix or "")
        if start and SSM_NAME_CHARS.match(start):
            return [{"Key": "Name", "Option": "BeginsWith", "Values": [start]}]
        if self.config.head:
            return [{"Key": "Name", "Option": "BeginsWith", "Values": [self.config.head]}]
        return []

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        flt = flt or ListFilter()
        for entry in self._describe(self._start_filter(flt)):
            name = self.config.local_name(str(entry["Name"]))
            if name is None:
                continue
            meta = _meta(name, entry)
            if flt.matches(meta):
                yield meta

    def get_by_path(self, path: str, *, recursive: bool = True) -> dict[str, Fetched]:
        """Every parameter under ``path`` (relative to the store's prefix) with its value:
        GetParametersByPath, ESO's way of serving ``find.path`` on Parameter Store."""
        wire = self.config.wire_name(path.strip("/")) if path.strip("/") else (self.config.head or "/")
        wire = "/" + wire.strip("/") if wire.strip("/") else "/"
        out: dict[str, Fetched] = {}
        args = {"Path": wire, "Recursive": recursive, "WithDecryption": True, "MaxResults": PATH_PAGE_SIZE}
        for entries in self._pages("GetParametersByPath", self._api.get_parameters_by_path, args, "Parameters",
                                   MAX_LIST_PAGES):
            for entry in entries:
                local = self.config.local_name(str(entry.get("Name") if isinstance(entry, Mapping) else ""))
                if local is not None:
                    value, version = self._value(entry, "GetParametersByPath", local)
                    out[local] = Fetched(value, version)
        return out

    # -- writes ---------------------------------------------------------------------------
    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
    ) -> PutResult:
        """A SecureString parameter (a new version when it exists)."""
        wire = self._wire(name, "PutParameter")
        if not value.is_text or not value or len(value) > MAX_VALUE_BYTES:
            raise InvalidConfig(
                f"Parameter Store stores text of 1 to {MAX_VALUE_BYTES} bytes (this value: "
                f"{len(value)} bytes{'' if value.is_text else ', not text'})",
                provider=PROVIDER, operation="PutParameter", key=name)
        text = value.reveal_text()
        state = None if if_absent and expected_version is None else self._describe_raw(name, wire)
        if state is not None and if_absent:
            raise Conflict("parameter already exists", provider=PROVIDER, operation="PutParameter", key=name)
        if expected_version is not None and (str(state.get("Version")) if state else None) != expected_version:
            raise Conflict("version changed (compare-and-set failed)", provider=PROVIDER,
                           operation="PutParameter", key=name)
        args: dict[str, Any] = {"Name": wire, "Value": text, "Type": "SecureString"}
        if len(value) > STANDARD_MAX_BYTES:
            args["Tier"] = "Advanced"
        if state is None:
            try:
                create = dict(args, Overwrite=False, **({"Tags": aws_tags(tags)} if tags else {}))
                response = self._invoke("PutParameter", self._api.put_parameter, name, text, **create)
                return PutResult(name, _version(response))
            except Conflict as exc:
                if if_absent or exc.code != "ParameterAlreadyExists":
                    raise
                # Created by someone else between our describe and put: add a version.
        response = self._invoke("PutParameter", self._api.put_parameter, name, text, Overwrite=True, **args)
        if tags is not None:
            self._sync_tags(name, wire, tags)
        return PutResult(name, _version(response))

    def _sync_tags(self, name: str, wire: str, desired: Mapping[str, str]) -> None:
        """Make the parameter's tags exactly ``desired`` (put's tags replace, as in every store)."""
        listed = self._invoke("ListTagsForResource", self._api.list_tags_for_resource, name,
                            ResourceType="Parameter", ResourceId=wire)
        current = {str(t["Key"]): str(t.get("Value", "")) for t in listed.get("TagList") or ()}
        removed = [k for k in current if k not in desired]
        changed = {k: v for k, v in desired.items() if current.get(k) != v}
        if removed:
            self._invoke("RemoveTagsFromResource", self._api.remove_tags_from_resource, name,
                       ResourceType="Parameter", ResourceId=wire, TagKeys=removed)
        if changed:
            self._invoke("AddTagsToResource", self._api.add_tags_to_resource, name,
                       ResourceType="Parameter", ResourceId=wire, Tags=aws_tags(changed))

    def delete(self, name: str, *, force: bool = False) -> None:
        """DeleteParameter: immediate (Parameter Store keeps no recovery window); NotFound when absent."""
        self._invoke("DeleteParameter", self._api.delete_parameter, name, Name=self._wire(name, "DeleteParameter"))

    # -- health ---------------------------------------------------------------------------
    def _probe(self) -> None:
        """One DescribeParameters call of one result."""
        args: dict[str, Any] = {"MaxResults": 1}
        filters = self._start_filter(ListFilter())
        if filters:
            args["ParameterFilters"] = filters
        self._invoke("DescribeParameters", self._api.describe_parameters, None, **args)


def _version(response: Mapping[str, Any]) -> str | None:
    version = response.get("Version")
    return str(version) if version is not None else None
