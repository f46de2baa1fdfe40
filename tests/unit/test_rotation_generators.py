"""SecretRotation: its spec is checked up front, and every generator makes what it promises."""

from __future__ import annotations

import json
import string
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from secretsync.api.models import PASSWORD_SYMBOLS, Generator, InvalidSpec, PasswordGenerator, parse_secret_rotation
from secretsync.controller.generators import generate, password


def _rotation(**spec: Any) -> dict[str, Any]:
    body = {"secretStoreRef": {"name": "aws"}, "remoteKey": "app/db", "generator": {"uuid": {}}, "interval": "720h"}
    body.update(spec)
    return {"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretRotation",
            "metadata": {"name": "db", "namespace": "shop"}, "spec": body}


def test_a_valid_rotation_parses_with_defaults() -> None:
    rot = parse_secret_rotation(_rotation(generator={"password": {"length": 40, "exclude": "'\""}}))
    assert rot.spec.interval == 720 * 3600
    assert rot.spec.grace_period == 86400
    assert rot.spec.generator.password == PasswordGenerator(length=40, exclude="'\"")


@pytest.mark.parametrize(("spec", "message"), [
    ({"generator": {}}, "spec.generator: set exactly one of"),
    ({"generator": {"uuid": {}, "ed25519": {}}}, "spec.generator: set exactly one of"),
    ({"interval": None}, "set exactly one of interval, schedule"),
    ({"schedule": "0 3 * * 0"}, "set exactly one of interval, schedule"),
    ({"interval": None, "schedule": "every sunday"}, "spec.schedule: must have five fields"),
    ({"interval": None, "schedule": "61 3 * * 0"}, "spec.schedule: not a valid cron expression"),
    ({"interval": "10s"}, "spec.interval: must be at least 1m"),
    ({"generator": {"rsa": {"bits": 1024}}}, "spec.generator.rsa.bits: must be >= 2048"),
    ({"generator": {"password": {"length": 12, "lowercase": False, "uppercase": False, "digits": False,
                                 "symbols": False}}}, "enable at least one of"),
    ({"hook": {"webhook": {"url": "http://plain.example/hook"}}}, "spec.hook.webhook.url: must be an https:// URL"),
])
def test_bad_specs_name_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_secret_rotation(_rotation(**spec))
    assert "SecretRotation/shop/db" in str(err.value)
    assert message in str(err.value)


def test_passwords_follow_the_policy() -> None:
    policy = PasswordGenerator(length=24, symbols=True, exclude="0O1lI" + PASSWORD_SYMBOLS[:5])
    seen = set()
    for _ in range(200):
        pw = password(policy).reveal_text()
        seen.add(pw)
        assert len(pw) == 24
        assert not set(pw) & set(policy.exclude)
        for cls in (string.ascii_lowercase, string.ascii_uppercase, string.digits, PASSWORD_SYMBOLS[5:]):
            assert set(pw) & set(cls), (cls, "class missing")
    assert len(seen) == 200


def test_digits_only_pin_and_an_exclusion_that_empties_a_class_is_refused() -> None:
    pin = password(PasswordGenerator(length=8, lowercase=False, uppercase=False, symbols=False)).reveal_text()
    assert pin.isdigit() and len(pin) == 8
    with pytest.raises(Exception, match="exclude leaves an enabled character class empty"):
        password(PasswordGenerator(length=8, lowercase=False, uppercase=False, symbols=False,
                                   exclude=string.digits))


def test_random_bytes_uuid_and_key_pairs() -> None:
    from secretsync.api.models import ECDSAGenerator, EmptyGenerator, RandomBytesGenerator, RSAGenerator

    assert len(generate(Generator(random_bytes=RandomBytesGenerator(16, "raw"))).reveal()) == 16
    assert len(generate(Generator(random_bytes=RandomBytesGenerator(16, "hex"))).reveal_text()) == 32
    uuid.UUID(generate(Generator(uuid=EmptyGenerator())).reveal_text())
    for gen, cls in ((Generator(rsa=RSAGenerator(2048)), rsa.RSAPrivateKey),
                     (Generator(ecdsa=ECDSAGenerator("P-384")), ec.EllipticCurvePrivateKey),
                     (Generator(ed25519=EmptyGenerator()), ed25519.Ed25519PrivateKey)):
        doc = json.loads(generate(gen).reveal_text())
        key = serialization.load_pem_private_key(doc["privateKey"].encode(), None)
        assert isinstance(key, cls)
        pub = serialization.load_pem_public_key(doc["publicKey"].encode())
        assert pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_generated_value_never_shows_in_a_repr() -> None:
    value = generate(Generator(password=PasswordGenerator()))
    assert value.reveal_text() not in repr(value) + str(value) + f"{value}"


# -- the rotation itself, on the in-process memory store ---------------------------------------
class _Api:
    """Records status patches (the rotation's only Kubernetes write besides Events)."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, **_: Any) -> None:
        self.patches.append(body)


def _manager(api: _Api, store_name: str, *, hook_fails: bool = False) -> Any:
    import threading

    from secretsync.api.models import parse_secret_store
    from secretsync.controller.events import EventRecorder
    from secretsync.controller.rotation import HookFailed, RotationManager
    from secretsync.controller.settings import WatchSettings
    from secretsync.core.registry import open_store

    store = parse_secret_store({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretStore",
                                "metadata": {"name": "mem", "namespace": "shop"},
                                "spec": {"provider": {"memory": {"name": store_name}}}})
    client = open_store(f"memory://{store_name}")
    calls: list[dict[str, Any]] = []

    def webhook(hook: Any, payload: Any) -> None:
        calls.append(dict(payload))
        if hook_fails:
            raise HookFailed("webhook answered HTTP 500")

    mgr = RotationManager(api, namespaces=[None], watch=WatchSettings(), events=EventRecorder(api),  # type: ignore[arg-type]
                          leading=threading.Event(), find_store=lambda ref, ns: store,
                          open_client=lambda st, ns: client, namespace_labels=lambda ns: {},
                          in_scope=lambda ns: True, webhook=webhook)
    return mgr, client, calls


def test_dual_credentials_expose_current_and_previous_until_the_grace_period_ends() -> None:
    from datetime import UTC, datetime, timedelta

    from secretsync.api.models import SecretRotationStatus
    from secretsync.core.values import SecretValue

    api = _Api()
    mgr, client, _ = _manager(api, f"dual-{uuid.uuid4().hex[:6]}")
    client.put("app/db", SecretValue("old-password"))
    rot = parse_secret_rotation(_rotation(remoteKey="app/db", dualCredentials=True, gracePeriod="1h",
                                          secretStoreRef={"name": "mem"}))
    now = datetime.now(UTC).replace(microsecond=0)
    mgr.rotate(rot, SecretRotationStatus(), now)
    doc = json.loads(client.get("app/db").reveal_text())
    assert doc["previous"] == "old-password" and uuid.UUID(doc["current"])
    status = api.patches[-1]["status"]
    assert status["previousExpires"] == (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # A second rotation keeps only one previous: the value that was current.
    mgr.rotate(rot, SecretRotationStatus(), now)
    doc2 = json.loads(client.get("app/db").reveal_text())
    assert doc2["previous"] == doc["current"]
    # The grace period is over: {current} only.
    mgr.rotate(rot, SecretRotationStatus(previous_expires=status["previousExpires"]), now, end_grace_only=True)
    assert json.loads(client.get("app/db").reveal_text()) == {"current": doc2["current"]}
    assert "old-password" not in json.dumps(api.patches)


def test_a_failing_hook_writes_nothing() -> None:
    from datetime import UTC, datetime

    from secretsync.api.models import SecretRotationStatus
    from secretsync.controller.rotation import HookFailed
    from secretsync.core.values import SecretValue

    api = _Api()
    mgr, client, calls = _manager(api, f"hook-{uuid.uuid4().hex[:6]}", hook_fails=True)
    client.put("app/db", SecretValue("old-password"))
    before = client.describe("app/db").version
    rot = parse_secret_rotation(_rotation(remoteKey="app/db", secretStoreRef={"name": "mem"},
                                          hook={"webhook": {"url": "https://db-admin.example/rotate"}}))
    with pytest.raises(HookFailed):
        mgr.rotate(rot, SecretRotationStatus(), datetime.now(UTC))
    assert calls and calls[0]["previous"] == "old-password"
    assert client.describe("app/db").version == before
    assert client.get("app/db").reveal_text() == "old-password"
    assert not api.patches


def test_rotations_fall_due_by_interval_or_cron() -> None:
    from datetime import UTC, datetime, timedelta

    from secretsync.api.models import SecretRotationStatus
    from secretsync.controller.rotation import Record, RotationManager

    created = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    obj = _rotation()
    obj["metadata"]["creationTimestamp"] = "2026-12-01T10:00:00Z"
    rec = Record(obj)
    last = SecretRotationStatus(last_rotation_time="2026-12-01T10:00:00Z")
    assert not RotationManager._due(rec, last, created + timedelta(hours=719))
    assert RotationManager._due(rec, last, created + timedelta(hours=720))
    cron = dict(obj, spec={**obj["spec"], "interval": None, "schedule": "0 3 * * *"})
    rec = Record(cron)
    assert not RotationManager._due(rec, last, datetime(2026, 12, 2, 2, 59, tzinfo=UTC))
    assert RotationManager._due(rec, last, datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
