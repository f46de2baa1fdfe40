"""The versioned key/value model both embedded providers share.

Why shared: ``memory`` keeps it in a dict; ``file`` keeps the same structure encrypted on
disk. One implementation of versions, tags, only-if-absent and compare-and-set means the
two behave identically, and identically to the cloud backends in the conformance suite.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from secretsync.core.contract import ListFilter, PutResult, SecretMetadata
from secretsync.core.errors import Conflict, InvalidConfig, NotFound
from secretsync.core.values import SecretValue

#: Names: anything printable but no leading/trailing slash, no '.' or '..' segment, <= 512 chars.
_NAME = re.compile(r"^(?!/)(?!.*//)(?!.*/$)[^\x00-\x1f]{1,512}$")


def check_name(name: str, provider: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or {".", ".."} & set(name.split("/")):
        raise InvalidConfig("invalid secret name", provider=provider, operation="name", key=str(name))


@dataclass
class Version:
    id: str
    created: datetime
    data: bytes


@dataclass
class Entry:
    versions: list[Version] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def current(self) -> Version:
        return self.versions[-1]

    def meta(self, name: str) -> SecretMetadata:
        cur = self.current
        return SecretMetadata(name=name, version=cur.id, updated=cur.created, tags=dict(self.tags))


class VersionedStore:
    """Not thread-safe by itself: callers hold their own lock (memory) or file lock (file)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.entries: dict[str, Entry] = {}

    def _entry(self, name: str, op: str) -> Entry:
        entry = self.entries.get(name)
        if entry is None:
            # A name no store could hold is a caller's mistake, not a definite "absent".
            check_name(name, self.provider)
            raise NotFound("secret not found", provider=self.provider, operation=op, key=name)
        return entry

    def get(self, name: str, version: str | None) -> tuple[SecretValue, str]:
        entry = self._entry(name, "get")
        if version is None:
            return SecretValue(entry.current.data), entry.current.id
        for v in entry.versions:
            if v.id == version:
                return SecretValue(v.data), v.id
        raise NotFound(f"version {version!r} not found", provider=self.provider, operation="get", key=name)

    def describe(self, name: str) -> SecretMetadata:
        return self._entry(name, "describe").meta(name)

    def list(self, flt: ListFilter) -> Iterator[SecretMetadata]:
        for name in sorted(self.entries):
            meta = self.entries[name].meta(name)
            if flt.matches(meta):
                yield meta

    def put(
        self,
        name: str,
        value: SecretValue,
        tags: Mapping[str, str] | None,
        if_absent: bool,
        expected_version: str | None,
    ) -> PutResult:
        check_name(name, self.provider)
        entry = self.entries.get(name)
        if entry is not None and if_absent:
            raise Conflict("secret already exists", provider=self.provider, operation="put", key=name)
        if expected_version is not None:
            current = entry.current.id if entry else None
            if current != expected_version:
                raise Conflict("version changed (compare-and-set failed)",
                               provider=self.provider, operation="put", key=name)
        if entry is None:
            entry = self.entries[name] = Entry()
        new_id = str(int(entry.current.id) + 1) if entry.versions else "1"
        entry.versions.append(Version(new_id, datetime.now(UTC), value.reveal()))
        if tags is not None:
            entry.tags = dict(tags)
        return PutResult(name, new_id)

    def delete(self, name: str) -> None:
        self._entry(name, "delete")
        del self.entries[name]

    # -- serialisation for the file provider (the caller encrypts it) -------------------
    def to_doc(self) -> dict[str, Any]:
        return {
            name: {
                "tags": e.tags,
                "versions": [
                    {"id": v.id, "created": v.created.isoformat(), "data": base64.b64encode(v.data).decode()}
                    for v in e.versions
                ],
            }
            for name, e in self.entries.items()
        }

    @classmethod
    def from_doc(cls, provider: str, doc: Mapping[str, Any]) -> VersionedStore:
        store = cls(provider)
        for name, raw in doc.items():
            store.entries[name] = Entry(
                versions=[
                    Version(v["id"], datetime.fromisoformat(v["created"]), base64.b64decode(v["data"]))
                    for v in raw["versions"]
                ],
                tags=dict(raw.get("tags") or {}),
            )
        return store
