"""``file://PATH``: a local encrypted store in one file, the embedded default.

Why it exists: a user with no cloud account can run the whole migrator against it, and
the values still never sit in plaintext on disk.

* Authenticated encryption: AES-256-GCM (``cryptography``), the header bound as
  associated data, a fresh nonce per write.
* Key: ``SECRETSYNC_FILE_KEY`` (32 bytes url-safe base64, or any passphrase, stretched
  with scrypt and a per-file salt), else a key file ``PATH.key`` created 0600 on first use.
* Atomic writes (:mod:`secretsync.core.atomicfile`): a temp file of a fixed name in the
  same directory, fsync, ``os.replace``; an exclusive ``flock`` on ``PATH.lock`` serialises
  writers across processes (so compare-and-set holds between two CLI runs). A new key file
  is put in place only once the first store is written (see ``_Key.pending_file``).
* Versions are kept; a corrupted file or a wrong key raises InvalidConfig and the file is
  never overwritten (every write decrypts first).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from secretsync.core.atomicfile import atomic_write, fsync_dir, write_point
from secretsync.core.contract import (
    Capabilities,
    ClientBase,
    CredentialUse,
    Fetched,
    ListFilter,
    NameRules,
    PutResult,
    SecretMetadata,
    SecretsClient,
    extract_property,
)
from secretsync.core.errors import InvalidConfig, NotFound, PermissionDenied, ProviderError, Unavailable
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from .versioned import VersionedStore

FORMAT = "secretsync-file-store"
FORMAT_VERSION = 1
KEY_ENV = "SECRETSYNC_FILE_KEY"

CAPABILITIES = Capabilities(
    batch_get=True, max_batch=1000, versions=True, tags=True, compare_and_set=True, binary=True
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Key:
    """Resolves the encryption key: env (raw key or passphrase) or a 0600 key file."""

    def __init__(self, store_path: Path, key_file: Path | None, env_value: str | None) -> None:
        self.store_path = store_path
        self.key_file = key_file or store_path.with_name(store_path.name + ".key")
        self.env_value = env_value

    @staticmethod
    def _raw_from_text(text: str) -> bytes | None:
        try:
            raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return None
        return raw if len(raw) == 32 else None

    def for_file(self, header: Mapping[str, Any] | None) -> tuple[bytes, dict[str, Any]]:
        """The AES key and the KDF header fields to store (a new salt when header is None)."""
        if self.env_value:
            raw = self._raw_from_text(self.env_value)
            if raw is not None:
                return raw, {"kdf": "none"}
            salt = (
                base64.b64decode(header["salt"])
                if header and header.get("kdf") == "scrypt"
                else secrets.token_bytes(16)
            )
            key = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(self.env_value.encode())
            return key, {"kdf": "scrypt", "salt": _b64(salt)}
        if self.key_file.exists():
            try:
                text = self.key_file.read_text()
            except OSError as exc:
                raise PermissionDenied(f"cannot read key file {self.key_file}: {exc.strerror}",
                                       provider="file") from None
            raw = self._raw_from_text(text)
            if raw is None:
                raise InvalidConfig(f"key file {self.key_file} does not hold a 32-byte base64 key",
                                    provider="file")
            return raw, {"kdf": "none"}
        pending = self.pending_file
        raw = self._raw_from_text(pending.read_text()) if pending.exists() else None
        if raw is not None and header is not None:
            self.promote()  # killed after the first store write, before the key was put in place
            return raw, {"kdf": "none"}
        if header is not None:
            raise InvalidConfig(
                f"store {self.store_path} exists but no key was given: set {KEY_ENV} or restore "
                f"the key file {self.key_file}",
                provider="file",
            )
        if raw is None:
            raw = secrets.token_bytes(32)
            atomic_write(pending, (base64.urlsafe_b64encode(raw).decode("ascii") + "\n").encode(), 0o600)
            write_point("key-pending")
        return raw, {"kdf": "none"}

    @property
    def pending_file(self) -> Path:
        """A new key waits here until the store it encrypts is written.

        Why: a key file means "a store was written with this key" (a store missing beside it
        is an error, never an empty store). Were the key file written first, a kill before the
        store's first write would leave a key file without a store, and no run could tell it
        from a deleted store. Written first under this name, then renamed to the key file
        once the store is durable, every crash point leaves a state a new run completes.
        """
        return self.key_file.with_name(f".{self.key_file.name}.pending")

    def promote(self) -> None:
        """Put a pending key in place (the store it encrypts is written); no-op without one."""
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.pending_file, self.key_file)
            fsync_dir(self.key_file.parent)


class FileClient(ClientBase):
    provider_name = "file"

    def __init__(self, path: Path, key_file: Path | None = None, settings: ClientSettings | None = None):
        super().__init__(settings)
        self.path = path
        self._key = _Key(path, key_file, os.environ.get(KEY_ENV))
        self._lock_path = path.with_name(path.name + ".lock")
        self._thread_lock = threading.RLock()
        self._limiter = self.settings.rate_limit.bucket()

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    # -- file handling ------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        with self._thread_lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise Unavailable(f"cannot open lock file {self._lock_path}: {exc.strerror}",
                                  provider="file") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                yield
            finally:
                os.close(fd)

    def _read(self) -> tuple[VersionedStore, dict[str, Any] | None]:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            default_key = self.path.with_name(self.path.name + ".key")
            if self._key.key_file == default_key and default_key.exists():
                # The key file is written with the store's first write, so this store existed:
                # reading it as empty would make every secret look deleted (and be pruned).
                raise InvalidConfig(
                    f"store {self.path} is missing but its key file {default_key} exists: the store was "
                    "deleted or its volume is not mounted; restore it, or remove the key file to start "
                    "an empty store", provider="file") from None
            return VersionedStore("file"), None
        except OSError as exc:
            raise Unavailable(f"cannot read store {self.path}: {exc.strerror}", provider="file") from None
        try:
            header = json.loads(text)
            if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
                raise ValueError("unknown format")
            nonce = base64.b64decode(header["nonce"])
            ciphertext = base64.b64decode(header["ciphertext"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidConfig(
                f"store {self.path} is not a secretsync file store or is corrupted; it was left as is",
                provider="file",
            ) from None
        key, _ = self._key.for_file(header)
        try:
            plain = AESGCM(key).decrypt(nonce, ciphertext, self._aad(header))
        except InvalidTag:
            raise InvalidConfig(
                f"cannot decrypt store {self.path}: wrong key or corrupted file; it was left as is",
                provider="file",
            ) from None
        return VersionedStore.from_doc("file", json.loads(plain)), header

    @staticmethod
    def _aad(header: Mapping[str, Any]) -> bytes:
        fields = {k: header.get(k) for k in ("format", "version", "cipher", "kdf", "salt")}
        return json.dumps(fields, sort_keys=True).encode()

    def _write(self, store: VersionedStore, old_header: dict[str, Any] | None) -> None:
        key, kdf = self._key.for_file(old_header)
        header: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "cipher": "AES-256-GCM", **kdf}
        nonce = secrets.token_bytes(12)
        plain = json.dumps(store.to_doc(), separators=(",", ":")).encode()
        header["nonce"] = _b64(nonce)
        header["ciphertext"] = _b64(AESGCM(key).encrypt(nonce, plain, self._aad(header)))
        atomic_write(self.path, json.dumps(header).encode(), 0o600)
        if not self._key.env_value and self._key.pending_file.exists():
            write_point("store-written")
            self._key.promote()

    # -- contract -----------------------------------------------------------------------
    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        with self.settings.calls.call("file", "get", self._limiter), self._locked(False):
            value, _ = self._read()[0].get(name, version)
        return extract_property(value, prop, name=name, provider="file")

    def get_versioned(self, name: str) -> Fetched:
        with self.settings.calls.call("file", "get", self._limiter), self._locked(False):
            value, version = self._read()[0].get(name, None)
        return Fetched(value, version)

    def get_many(self, names: Sequence[str]) -> dict[str, Fetched | ProviderError]:
        # One decrypt for the whole batch instead of one per name.
        out: dict[str, Fetched | ProviderError] = {}
        with self.settings.calls.call("file", "get_many", self._limiter), self._locked(False):
            store = self._read()[0]
        for name in dict.fromkeys(names):
            try:
                value, version = store.get(name, None)
                out[name] = Fetched(value, version)
            except NotFound as exc:
                out[name] = exc
        return out

    def describe(self, name: str) -> SecretMetadata:
        with self.settings.calls.call("file", "describe", self._limiter), self._locked(False):
            return self._read()[0].describe(name)

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        with self.settings.calls.call("file", "list", self._limiter), self._locked(False):
            items = list(self._read()[0].list(flt or ListFilter()))
        return iter(items)

    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
    ) -> PutResult:
        with self.settings.calls.call("file", "put", self._limiter), self._locked(True):
            store, header = self._read()
            result = store.put(name, value, tags, if_absent, expected_version)
            self._write(store, header)
            return result

    def delete(self, name: str, *, force: bool = False) -> None:
        with self.settings.calls.call("file", "delete", self._limiter), self._locked(True):
            store, header = self._read()
            store.delete(name)
            self._write(store, header)

    def __repr__(self) -> str:
        return f"<FileClient path={str(self.path)!r}>"


class FileFactory:
    name = "file"
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NameRules(r"A-Za-z0-9/_.@+=:-", 512, True)
    #: The block's description in the SecretStore CRD.
    block_doc = 'Embedded file store (tests, demos, air-gapped): {path}.'
    capabilities = CAPABILITIES

    def config_from_url(self, url: str) -> dict[str, Any]:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise InvalidConfig(f"file:// store URL {url!r} does not parse: {exc}") from None
        if parts.scheme != "file":
            raise InvalidConfig(f"not a file:// URL: {url!r}")
        # file:///abs/path, file://relative/path (netloc is the first segment) and file://~/x
        raw = unquote(parts.netloc + parts.path)
        if not raw:
            raise InvalidConfig("file:// store URL needs a path, e.g. file://./secrets.store")
        return {"path": str(Path(raw).expanduser())}

    def validate_config(self, config: Mapping[str, Any]) -> None:
        unknown = sorted(str(k) for k in config if k not in ("path", "keyFile"))
        if unknown:
            raise InvalidConfig(f"file store config field {unknown[0]!r}: unknown field (known: path, keyFile)")
        path = config.get("path")
        if not isinstance(path, str) or not path.strip():
            raise InvalidConfig("file store config field 'path' must be a non-empty string")
        key_file = config.get("keyFile")
        if key_file is not None and (not isinstance(key_file, str) or not key_file.strip()):
            raise InvalidConfig("file store config field 'keyFile' must be a non-empty string")
        for field, value in (("path", path), ("keyFile", key_file)):
            if value is not None and "\x00" in value:
                raise InvalidConfig(f"file store config field {field!r} contains a NUL character")
        try:
            is_dir = Path(path).is_dir()
        except OSError as exc:
            raise InvalidConfig(f"file store config field 'path': {exc.strerror or exc}") from None
        if is_dir:
            raise InvalidConfig(f"file store config field 'path': {path} is a directory")

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        """The store is a file of this process, opened with the process's key (env or key file)."""
        files = tuple(f for f in ("path", "keyFile") if f in config) or ("path",)
        return CredentialUse(ambient="the file store's key ($SECRETSYNC_FILE_KEY or its key file)",
                             local_files=files)

    def open(
        self,
        config: Mapping[str, Any],
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> SecretsClient:
        self.validate_config(config)
        key_file = config.get("keyFile")
        return FileClient(Path(config["path"]), Path(key_file) if key_file else None, settings)


factory = FileFactory()
