"""The GCP change feed against the Pub/Sub emulator (Google Cloud CLI), with the real client.

Secret Manager notifications are published as Secret Manager does: the secret's resource
name in the ``secretId`` attribute, the event type in ``eventType``, the resource JSON as the
payload. The feed must turn exactly those into the store's names, acknowledge what it read,
and say nothing about messages that are not about a secret.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from secretsync.core.registry import get_factory
from tests.harness.ports import free_port, wait_for_port

pubsub = pytest.importorskip("google.cloud.pubsub_v1", reason="google-cloud-pubsub is not installed")

PROJECT = "secretsync-test"


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        pytest.skip("the Pub/Sub emulator needs the Google Cloud CLI (gcloud) and Java on PATH")
    port = free_port()
    data = tempfile.mkdtemp(prefix="pubsub-emulator-")
    proc = subprocess.Popen([gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
                             f"--data-dir={data}", "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        try:
            wait_for_port(port, timeout=90, proc=proc)
        except Exception:
            pytest.skip("the Pub/Sub emulator did not start (is the pubsub-emulator component installed?)")
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(20)
        shutil.rmtree(data, ignore_errors=True)


def _publish(host: str, topic: str, secret_id: str | None, event: str = "SECRET_VERSION_ADD") -> None:
    attrs = {"eventType": event, "dataFormat": "JSON_API_V1"}
    if secret_id is not None:
        attrs["secretId"] = secret_id
    publisher = pubsub.PublisherClient()
    publisher.publish(topic, b'{"name": "ignored"}', **attrs).result(timeout=10)


def test_secret_manager_notifications_name_the_changed_secret(emulator: str, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator)
    topic = f"projects/{PROJECT}/topics/secrets-{int(time.time() * 1000)}"
    sub = topic.replace("/topics/", "/subscriptions/") + "-sub"
    pubsub.PublisherClient().create_topic(name=topic)
    pubsub.SubscriberClient().create_subscription(name=sub, topic=topic)

    factory = get_factory("gcp")
    feed = factory.open_feed({"project": PROJECT, "prefix": "team"}, sub)  # type: ignore[attr-defined]
    try:
        _publish(emulator, topic, f"projects/{PROJECT}/secrets/team_2F_db_2F_password")
        _publish(emulator, topic, f"projects/{PROJECT}/secrets/other_2F_x")  # outside the prefix
        _publish(emulator, topic, None)  # not about a secret
        got: set[str] = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not got:
            for notice in feed.poll(2.0):
                assert notice.source == "pubsub"
                got |= notice.names
        assert got == {"db/password"}
        # Acknowledged: nothing comes back.
        again = [n for _ in range(2) for n in feed.poll(1.0)]
        assert again == []
    finally:
        feed.close()


def test_a_feed_name_that_is_not_a_subscription_is_refused_naming_the_field() -> None:
    from secretsync.core.errors import InvalidConfig

    with pytest.raises(InvalidConfig) as err:
        get_factory("gcp").validate_feed("projects/p/topics/t")  # type: ignore[attr-defined]
    assert "events.subscription" in str(err.value)
