"""Change notices from the outside: what a sender, a forger, a replayer and a flood get.

The webhook receiver and the hub are driven the way the network drives them (bytes, headers,
paths); the provider feeds' parsers get the message shapes EventBridge, SNS and Pub/Sub put
on the wire.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from secretsync.api.models import API_VERSION
from secretsync.controller.changefeed import ChangeHub
from secretsync.controller.settings import EventSettings
from secretsync.controller.webhooks import WebhookReceiver, parse_store_path, sign
from secretsync.core.changes import ChangeNotice
from secretsync.core.errors import Unavailable

KEY = b"tenant-a-webhook-key"
STORE = ("SecretStore", "team-a", "vault")


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[tuple[str, str, str], ChangeNotice]] = []

    def __call__(self, sid: tuple[str, str, str], notice: ChangeNotice) -> None:
        self.got.append((sid, notice))


def receiver(now: float = 1_000_000.0, keys: dict | None = None, available: bool = True) -> tuple[
        WebhookReceiver, Sink]:
    sink = Sink()
    table = {STORE: KEY} if keys is None else keys
    r = WebhookReceiver(EventSettings(), table.get, sink, clock=lambda: now, available=lambda: available)
    return r, sink


def signed(body: dict, ts: float = 1_000_000.0, key: bytes = KEY) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    t = str(int(ts))
    return {"X-Secretsync-Timestamp": t, "X-Secretsync-Signature": sign(key, t, raw)}, raw


def test_a_signed_notice_names_the_keys_to_read() -> None:
    r, sink = receiver()
    headers, body = signed({"keys": ["db/password", "api/token"]})
    status, _ = r.handle("/v1/secretstores/team-a/vault", headers, body)
    assert status == 202
    assert sink.got[0][0] == STORE
    assert sink.got[0][1].names == {"db/password", "api/token"}


@pytest.mark.parametrize("tamper", ["body", "key", "store", "no-signature"])
def test_a_forged_notice_is_refused_without_saying_why(tamper: str) -> None:
    r, sink = receiver(keys={STORE: KEY, ("SecretStore", "team-b", "vault"): b"other"})
    headers, body = signed({"keys": ["db/password"]}, key=b"wrong" if tamper == "key" else KEY)
    path = "/v1/secretstores/team-a/vault"
    if tamper == "body":
        body = body.replace(b"db", b"xx")
    if tamper == "store":
        path = "/v1/secretstores/team-b/vault"  # team-a's key does not open team-b's store
    if tamper == "no-signature":
        headers.pop("X-Secretsync-Signature")
    status, out = r.handle(path, headers, body)
    assert status == 401
    assert b"db/password" not in out
    assert sink.got == []


def test_a_store_without_a_webhook_looks_the_same_as_a_bad_signature() -> None:
    r, _ = receiver(keys={})
    headers, body = signed({"keys": ["x"]})
    assert r.handle("/v1/secretstores/team-a/vault", headers, body)[0] == 401


def test_a_replayed_notice_is_refused() -> None:
    r, sink = receiver()
    headers, body = signed({"keys": ["db/password"]})
    assert r.handle("/v1/secretstores/team-a/vault", headers, body)[0] == 202
    assert r.handle("/v1/secretstores/team-a/vault", headers, body)[0] == 409
    assert len(sink.got) == 1


def test_a_notice_signed_long_ago_is_refused() -> None:
    r, sink = receiver(now=1_000_000.0)
    headers, body = signed({"keys": ["db/password"]}, ts=1_000_000.0 - 301)
    assert r.handle("/v1/secretstores/team-a/vault", headers, body)[0] == 401
    assert sink.got == []


def test_a_standby_replica_asks_the_sender_to_retry() -> None:
    r, sink = receiver(available=False)
    headers, body = signed({"keys": ["db/password"]})
    assert r.handle("/v1/secretstores/team-a/vault", headers, body)[0] == 503
    assert sink.got == []


@pytest.mark.parametrize("body", [b"not json", b'{"keys": "x"}', json.dumps({"keys": ["a"] * 1001}).encode()])
def test_a_malformed_signed_body_is_a_clear_400(body: bytes) -> None:
    r, _ = receiver()
    t = "1000000"
    status, _ = r.handle("/v1/secretstores/team-a/vault",
                         {"X-Secretsync-Timestamp": t, "X-Secretsync-Signature": sign(KEY, t, body)}, body)
    assert status == 400


def test_paths_name_one_store() -> None:
    assert parse_store_path("/v1/secretstores/ns/name") == (False, ("SecretStore", "ns", "name"))
    assert parse_store_path("/v1/clustersecretstores/shared") == (False, ("ClusterSecretStore", "", "shared"))
    assert parse_store_path("/v1/eventgrid/secretstores/ns/kv") == (True, ("SecretStore", "ns", "kv"))
    assert parse_store_path("/v1/secretstores/ns") is None
    assert parse_store_path("/metrics") is None


# -- Azure Event Grid --------------------------------------------------------------------------
def test_event_grid_handshake_is_answered_only_with_the_key() -> None:
    r, _ = receiver()
    body = json.dumps([{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                        "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]).encode()
    headers = {"aeg-event-type": "SubscriptionValidation"}
    assert r.handle("/v1/eventgrid/secretstores/team-a/vault", headers, body)[0] == 401
    status, out = r.handle(f"/v1/eventgrid/secretstores/team-a/vault?code={KEY.decode()}", headers, body)
    assert status == 200
    assert json.loads(out) == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}


def test_event_grid_secret_events_name_the_secret() -> None:
    r, sink = receiver()
    events = [
        {"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "subject": "db-password",
         "data": {"ObjectType": "Secret", "ObjectName": "db-password", "VaultName": "kv", "Version": "abc"}},
        {"eventType": "Microsoft.KeyVault.CertificateNewVersionCreated", "data": {"ObjectName": "tls"}},
    ]
    status, _ = r.handle("/v1/eventgrid/secretstores/team-a/vault", {"X-Secretsync-Key": KEY.decode(),
                                                                     "aeg-event-type": "Notification"},
                         json.dumps(events).encode())
    assert status == 200
    assert [n.names for _, n in sink.got] == [frozenset({"db-password"})]


def test_cloud_events_schema_is_understood_too() -> None:
    r, sink = receiver()
    event = {"specversion": "1.0", "type": "Microsoft.KeyVault.SecretNewVersionCreated",
             "data": {"ObjectName": "api-key"}}
    r.handle("/v1/eventgrid/secretstores/team-a/vault", {"X-Secretsync-Key": KEY.decode()},
             json.dumps(event).encode())
    assert sink.got[0][1].names == {"api-key"}


# -- the hub ------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_notices_within_the_window_become_one_read() -> None:
    reads: list[frozenset[str]] = []
    clock = Clock()
    hub = ChangeHub(EventSettings(coalesce=0.5), lambda sid, names, first: reads.append(names), clock=clock)
    hub.submit(STORE, ChangeNotice(frozenset({"a"}), "sqs"))
    hub.submit(STORE, ChangeNotice(frozenset({"a", "b"}), "sqs"))
    assert hub.run_once() == 0  # still inside the window
    clock.t += 0.6
    hub.submit(STORE, ChangeNotice(frozenset({"c"}), "sqs"))
    assert hub.run_once() == 1
    assert reads == [frozenset({"a", "b", "c"})]


def test_a_flood_is_rate_limited_and_nothing_is_dropped() -> None:
    reads: list[frozenset[str]] = []
    hub = ChangeHub(EventSettings(coalesce=0.0, rate=0.001, burst=1), lambda sid, names, first: reads.append(names))
    hub.submit(STORE, ChangeNotice(frozenset({"k0"}), "webhook"))
    assert hub.run_once() == 1
    for i in range(1, 500):
        hub.submit(STORE, ChangeNotice(frozenset({f"k{i}"}), "webhook"))
        hub.run_once()
    assert len(reads) == 1  # the bucket is empty: the rest waits, merged into one pending read
    hub._buckets[STORE] = type(hub._buckets[STORE])(1000.0, 1)  # refill
    assert hub.run_once() == 1
    assert reads[1] == frozenset(f"k{i}" for i in range(1, 500))


def test_a_failing_targeted_read_does_not_stop_the_hub() -> None:
    calls: list[frozenset[str]] = []

    def dispatch(sid: tuple[str, str, str], names: frozenset[str], first: float) -> None:
        calls.append(names)
        if len(calls) == 1:
            raise Unavailable("store down")

    hub = ChangeHub(EventSettings(coalesce=0.0), dispatch)
    hub.submit(STORE, ChangeNotice(frozenset({"a"}), "sqs"))
    hub.run_once()
    hub.submit(STORE, ChangeNotice(frozenset({"b"}), "sqs"))
    hub.run_once()
    assert calls == [frozenset({"a"}), frozenset({"b"})]


def test_a_feed_that_fails_backs_off_and_recovers() -> None:
    reads: list[frozenset[str]] = []
    polls: list[int] = []
    done = threading.Event()

    class Feed:
        def poll(self, timeout: float) -> list[ChangeNotice]:
            polls.append(1)
            if len(polls) <= 2:
                raise Unavailable("queue unreachable")
            if len(polls) == 3:
                return [ChangeNotice(frozenset({"db"}), "sqs")]
            done.set()
            time.sleep(0.05)
            return []

        def close(self) -> None:
            return None

    hub = ChangeHub(EventSettings(coalesce=0.0, retry=0.01, poll_wait=0.1),
                    lambda sid, names, first: reads.append(names))
    hub.start()
    hub.ensure_feed(STORE, "q", Feed, "sqs")
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while not reads and time.monotonic() < deadline:
        time.sleep(0.02)
    hub.stop()
    assert reads == [frozenset({"db"})]


# -- provider message shapes --------------------------------------------------------------------
def test_eventbridge_secrets_manager_events_name_the_secret() -> None:
    pytest.importorskip("boto3")
    from secretsync_providers.aws.events import parse_body

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db/password-AbC123"
    event = {"version": "0", "source": "aws.secretsmanager", "detail-type": "AWS API Call via CloudTrail",
             "time": "2026-12-01T10:00:00Z",
             "detail": {"eventName": "PutSecretValue", "requestParameters": {"secretId": arn}}}
    names, when = parse_body(json.dumps(event))
    assert "prod/db/password" in names and arn in names
    assert when is not None
    wrapped = {"Type": "Notification", "Message": json.dumps(event)}
    assert parse_body(json.dumps(wrapped))[0] == names


def test_pubsub_secret_ids_become_store_names() -> None:
    pytest.importorskip("google.cloud.secretmanager")
    from secretsync_providers.gcp.events import secret_name
    from secretsync_providers.gcp.names import encode_secret_id

    rid = f"projects/p/secrets/{encode_secret_id('team/db/password')}"
    assert secret_name(rid, "") == "team/db/password"
    assert secret_name(rid, "team") == "db/password"
    assert secret_name(rid, "other") is None
    assert secret_name("projects/p/topics/t", "") is None


# -- store specs ----------------------------------------------------------------------------------
def _store(kind: str, ns: str | None, ref: dict) -> dict:
    md = {"name": "s", **({"namespace": ns} if ns else {})}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": md,
            "spec": {"provider": {"memory": {}}, "events": {"webhook": {"secretRef": ref}}}}


def test_a_tenant_store_cannot_take_its_webhook_key_from_another_namespace() -> None:
    from secretsync.api.models import InvalidSpec, parse_secret_store

    with pytest.raises(InvalidSpec) as err:
        parse_secret_store(_store("SecretStore", "team-a", {"name": "k", "key": "k", "namespace": "kube-system"}))
    assert "spec.events.webhook.secretRef.namespace" in str(err.value)
    ok = parse_secret_store(_store("SecretStore", "team-a", {"name": "k", "key": "k"}))
    assert ok.spec.events is not None and ok.spec.events.webhook is not None


def test_a_cluster_store_must_name_where_its_webhook_key_lives() -> None:
    from secretsync.api.models import InvalidSpec, parse_secret_store

    with pytest.raises(InvalidSpec) as err:
        parse_secret_store(_store("ClusterSecretStore", None, {"name": "k", "key": "k"}))
    assert "spec.events.webhook.secretRef.namespace" in str(err.value)
