"""Keyed hashes of Secret data, for drift detection without keeping (or publishing) values.

Why keyed: the hash sits in an annotation that anyone allowed to read Secret *metadata*
can see. A plain SHA-256 of a 6-digit PIN is brute-forced in a second; an HMAC under a
per-installation key (kept in a Secret of the controller's namespace) is not. The informer
hashes each managed Secret's data on arrival, compares it with the annotation and then
drops the data: a hand edit shows up as "data does not match", at the cost of one bool.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import struct
from collections.abc import Mapping

from secretsync.kube.client import SECRETS, KubeApi, KubeError

log = logging.getLogger(__name__)

HASH_VERSION = "h1"
KEY_FIELD = "hmac-key"


def canonical(data: Mapping[str, bytes], secret_type: str | None) -> bytes:
    """An unambiguous byte string of (type, sorted key/value pairs): length-prefixed fields."""
    parts = [(secret_type or "").encode()]
    for key in sorted(data):
        parts.append(key.encode())
        parts.append(data[key])
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def data_hash(key: bytes, data: Mapping[str, bytes], secret_type: str | None) -> str:
    mac = hmac.new(key, canonical(data, secret_type), "sha256").hexdigest()
    return f"{HASH_VERSION}:{mac[:48]}"


#: Version of :func:`state_hash` (the data plus every piece of metadata the controller owns).
STATE_VERSION = "h2"


def state_hash(key: bytes, data: Mapping[str, bytes], secret_type: str | None, meta: Mapping[str, str]) -> str:
    """Keyed hash of everything the controller owns in a Secret: data, type and ``meta``
    (owned labels and annotations, the owner reference, immutability, flattened to text).

    Why one hash over all of it: the write path compares this one annotation with what the
    spec wants, so a change that leaves the data alone (a template label, ``immutable``, a
    switch from Owner to Orphan) is written like a data change, and a hand edit of any of
    it is drift.
    """
    head = struct.pack(">II", len(data), len(meta))
    body = canonical(data, secret_type) + canonical({k: v.encode() for k, v in meta.items()}, None)
    mac = hmac.new(key, head + body, "sha256").hexdigest()
    return f"{STATE_VERSION}:{mac[:48]}"


def decode_data(raw: Mapping[str, str] | None) -> dict[str, bytes]:
    """A Secret's base64 ``data`` as bytes (an undecodable entry hashes as its raw text)."""
    out: dict[str, bytes] = {}
    for k, v in (raw or {}).items():
        try:
            out[k] = base64.b64decode(v, validate=True)
        except (ValueError, TypeError):
            out[k] = str(v).encode()
    return out


def load_or_create_key(api: KubeApi, namespace: str, name: str) -> bytes:
    """The installation's HMAC key: read from ``namespace/name``, created on first start.

    Replicas race to create it; the loser reads the winner's key.
    """
    for _ in range(3):
        try:
            secret = api.get(SECRETS, name, namespace)
            raw = (secret.get("data") or {}).get(KEY_FIELD)
            if raw:
                return base64.b64decode(raw)
            raise KubeError(422, "Invalid", f"Secret {namespace}/{name} has no {KEY_FIELD!r} key")
        except KubeError as exc:
            if not exc.not_found:
                raise
        body = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/part-of": "secretsync"}},
            "data": {KEY_FIELD: base64.b64encode(os.urandom(32)).decode()},
        }
        try:
            api.create(SECRETS, body, namespace)
            log.info("created the data-hash key Secret %s/%s", namespace, name)
        except KubeError as exc:
            if not exc.conflict:
                raise
    raise KubeError(409, "Conflict", f"could not read or create Secret {namespace}/{name}")
