"""Event-driven refresh on the real kube-apiserver: a provider change reaches the Secret in
seconds while the ExternalSecret's refresh interval is an hour.

AWS: the documented wiring, on moto: an EventBridge rule for Secrets Manager events targets
an SQS queue; the test publishes the event EventBridge would (moto does not emit CloudTrail
events itself) and the controller long-polls the queue with the store's own credentials.
The generic signed webhook is driven over HTTP, as a CI job would.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from secretsync.controller.settings import EventSettings, ScopeSettings
from secretsync.controller.webhooks import sign
from secretsync.core.calls import CallRecorder
from secretsync.kube.client import KubeApi
from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, raw_boto3
from tests.harness.controller import (
    create,
    es_manifest,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube

pytest.importorskip("boto3")


@pytest.fixture
def api(kube: KubeCluster) -> Iterator[KubeApi]:
    install_crds(kube)
    a = kube_api(kube)
    yield a
    a.close()


def _boto(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY)


def _store(api: KubeApi, ns: str, endpoint: str, events: dict[str, Any]) -> None:
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-creds", "namespace": ns},
                 "stringData": {"id": ACCESS_KEY, "secret": SECRET_KEY, "hook": "hook-key-of-" + ns}})
    create(api, store_manifest("aws", ns, "aws", {
        "region": REGION,
        "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id"},
                      "secretAccessKey": {"name": "aws-creds", "key": "secret"}}}, events=events))


def _publish(events_client: Any, bus_rule_queue: str, name: str) -> None:
    detail = {"eventSource": "secretsmanager.amazonaws.com", "eventName": "PutSecretValue",
              "requestParameters": {"secretId": name}}
    out = events_client.put_events(Entries=[{"Source": "secretsync.test.secretsmanager",
                                             "DetailType": "AWS API Call via CloudTrail",
                                             "Detail": json.dumps(detail)}])
    assert out["FailedEntryCount"] == 0


def test_a_rotation_reaches_the_secret_in_seconds_with_an_hour_long_interval(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)  # controller environment, not a store field
    sm = raw_boto3(aws_endpoint)
    sqs, events = _boto(aws_endpoint, "sqs"), _boto(aws_endpoint, "events")
    queue = sqs.create_queue(QueueName=f"sm-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="secrets-changed", EventPattern=json.dumps({"source": ["secretsync.test.secretsmanager"]}))
    events.put_targets(Rule="secrets-changed", Targets=[{"Id": "q", "Arn": qarn}])
    prefix = f"ev-{uuid.uuid4().hex[:6]}"
    for i in range(5):
        sm.create_secret(Name=f"{prefix}/k{i}", SecretString=f"v{i}")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("ctl-events", labels={"secretsync-test": label})
    calls = CallRecorder()
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    settings = replace(settings, events=EventSettings(coalesce=0.1, poll_wait=1.0, webhook_port=0,
                                                      webhook_host="127.0.0.1"))
    _store(api, ns, aws_endpoint, {"subscription": queue,
                                   "webhook": {"secretRef": {"name": "aws-creds", "key": "hook"}}})
    for i in range(5):
        create(api, es_manifest(f"s{i}", ns, "aws", [("v", f"{prefix}/k{i}")], refresh="1h"))
    with running_controller(kube, settings, calls) as ctl:
        for i in range(5):
            wait_for(lambda i=i: secret_data(api, ns, f"s{i}") == {"v": f"v{i}"}, message=f"s{i} synced")
        wait_for(lambda: ctl.routing.hub.feeds(), message="feed running")
        time.sleep(1.5)  # the feed's first long poll is under way
        calls.reset()

        # 1. EventBridge -> SQS -> targeted read of exactly that key.
        sm.put_secret_value(SecretId=f"{prefix}/k2", SecretString="rotated")
        t0 = time.monotonic()
        _publish(events, queue, f"{prefix}/k2")
        wait_for(lambda: secret_data(api, ns, "s2") == {"v": "rotated"}, timeout=10, message="event applied")
        latency = time.monotonic() - t0
        assert latency < 5, latency
        reads = {op: n for (p, op, _), n in calls.snapshot().items()
                 if p == "aws" and op not in ("ReceiveMessage", "DeleteMessageBatch")}
        assert sum(reads.values()) <= 2, reads  # one batched read (no listing, no other key)
        assert secret_data(api, ns, "s1") == {"v": "v1"}
        # The notice-to-Secret latency is measured (and carries no name or value).
        metrics = ctl.metrics.render().decode()
        count = next(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith("secretsync_change_notice_to_secret_seconds_count"))
        assert count >= 1
        assert "rotated" not in metrics and prefix not in metrics

        # 2. An event for a key nobody uses costs no read.
        calls.reset()
        _publish(events, queue, "someone-else/secret")
        time.sleep(2.5)
        assert not [op for (p, op, _), _ in calls.snapshot().items()
                    if p == "aws" and op not in ("ReceiveMessage", "DeleteMessageBatch")], calls.snapshot()

        # 3. The generic signed webhook (a CI job that just rotated k4).
        assert ctl.routing.server is not None
        sm.put_secret_value(SecretId=f"{prefix}/k4", SecretString="from-ci")
        body = json.dumps({"keys": [f"{prefix}/k4"]}).encode()
        ts = str(int(time.time()))
        url = f"http://127.0.0.1:{ctl.routing.server.port}/v1/secretstores/{ns}/aws"
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "X-Secretsync-Timestamp": ts, "X-Secretsync-Signature": sign(f"hook-key-of-{ns}".encode(), ts, body),
            "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 202
        wait_for(lambda: secret_data(api, ns, "s4") == {"v": "from-ci"}, timeout=10, message="webhook applied")
        # The same request again is a replay.
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 409

        # 4. Event Grid's delivery over HTTP: the handshake, then a Key Vault event (the receiver
        # is provider-neutral; the event names the secret in data.ObjectName).
        grid = f"http://127.0.0.1:{ctl.routing.server.port}/v1/eventgrid/secretstores/{ns}/aws?code=hook-key-of-{ns}"

        def post(body: object, event_type: str) -> tuple[int, bytes]:
            r = urllib.request.Request(grid, data=json.dumps(body).encode(), method="POST",
                                       headers={"aeg-event-type": event_type, "Content-Type": "application/json"})
            with urllib.request.urlopen(r, timeout=5) as resp:
                return resp.status, resp.read()

        status, out = post([{"id": "v", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                             "data": {"validationCode": "code-123"}}], "SubscriptionValidation")
        assert status == 200 and json.loads(out) == {"validationResponse": "code-123"}
        sm.put_secret_value(SecretId=f"{prefix}/k3", SecretString="from-event-grid")
        status, _ = post([{"id": "e", "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
                           "subject": f"{prefix}/k3", "data": {"ObjectName": f"{prefix}/k3"}}], "Notification")
        assert status == 200
        wait_for(lambda: secret_data(api, ns, "s3") == {"v": "from-event-grid"}, timeout=10,
                 message="event grid applied")

