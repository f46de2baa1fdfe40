"""Secret Manager change notices from a Pub/Sub subscription.

Secret Manager publishes to the topics named in a secret's ``topics`` on every change
(``SECRET_VERSION_ADD``, ``SECRET_VERSION_ENABLE``/``DISABLE``/``DESTROY``, ``SECRET_UPDATE``,
``SECRET_DELETE``, ``SECRET_ROTATE``...), with the secret's resource name in the ``secretId``
attribute. The controller pulls a subscription of that topic with the store's own
credentials (the same ones its Secret Manager client uses), acknowledges what it pulled, and
turns each ``secretId`` into the store's name for that secret (prefix and id escaping
undone by the provider's own naming rules). The payload (the Secret or SecretVersion
resource as JSON) is never read: it holds no value, but nothing here needs it either.

``PUBSUB_EMULATOR_HOST`` (controller environment) points the client at the emulator, as the
Pub/Sub library does itself; it is never a store field.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from secretsync.core.changes import ChangeNotice
from secretsync.core.errors import InvalidConfig, ProviderError
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..calls import provider_call
from ..http_deadline import call_deadline
from .auth import _google_credentials, connection_spec
from .errors import mapper
from .names import decode_secret_id

log = logging.getLogger(__name__)

PROVIDER = "gcp"
_SUBSCRIPTION = re.compile(r"^projects/[^/\s]+/subscriptions/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")
_SECRET = re.compile(r"^projects/[^/]+/(?:locations/[^/]+/)?secrets/(?P<id>[A-Za-z0-9_-]+)$")
#: The longest a synchronous pull waits before answering empty.
MAX_WAIT = 20.0


def validate_subscription(name: str) -> None:
    if not _SUBSCRIPTION.match(name or ""):
        raise InvalidConfig(
            f"events.subscription: {name!r} is not a Pub/Sub subscription (projects/PROJECT/subscriptions/NAME)",
            provider=PROVIDER, operation="config")


def secret_name(resource: str, prefix: str) -> str | None:
    """The store's name for ``projects/P/secrets/ID`` (None: not a secret, or outside the prefix)."""
    m = _SECRET.match(resource or "")
    if not m:
        return None
    full = decode_secret_id(m.group("id"))
    prefix = prefix.strip("/")
    if not prefix:
        return full
    head = prefix + "/"
    return full[len(head):] if full.startswith(head) and len(full) > len(head) else None


class PubSubFeed:
    """:class:`~secretsync.core.changes.ChangeFeed` over one Pub/Sub subscription."""

    def __init__(self, subscriber: Any, subscription: str, prefix: str, settings: ClientSettings) -> None:
        self._sub = subscriber
        self._name = subscription
        self._prefix = prefix
        self._settings = settings
        self.ignored = 0

    def _call(self, operation: str, fn: Any, timeout: float, request: Mapping[str, Any]) -> Any:
        from google.api_core import exceptions as gexc

        # A pull waits up to ``timeout`` by design: its own deadline is that wait plus the usual one.
        with provider_call(self._settings, PROVIDER, operation, mapper(), limiter=self._settings.rate_limit.bucket(),
                           bounded=False, server="Pub/Sub"), \
                call_deadline(timeout + self._settings.timeouts.call_deadline):
            try:
                return fn(request=dict(request), timeout=timeout)
            except gexc.DeadlineExceeded:
                return None  # nothing arrived within the wait

    def poll(self, timeout: float) -> Sequence[ChangeNotice]:
        wait = max(1.0, min(MAX_WAIT, timeout))
        resp = self._call("Pull", self._sub.pull, wait, {"subscription": self._name, "max_messages": 100})
        received = list(getattr(resp, "received_messages", None) or [])
        notices: list[ChangeNotice] = []
        ack_ids: list[str] = []
        for item in received:
            ack_ids.append(item.ack_id)
            attrs = dict(item.message.attributes or {})
            name = secret_name(str(attrs.get("secretId", "")), self._prefix)
            if name is None:
                self.ignored += 1
                continue
            when = item.message.publish_time.timestamp() if item.message.publish_time else None
            notices.append(ChangeNotice(frozenset({name}), "pubsub", when))
        if ack_ids:
            self._call("Acknowledge", self._sub.acknowledge, self._settings.timeouts.read,
                       {"subscription": self._name, "ack_ids": ack_ids})
        return notices

    def close(self) -> None:
        try:
            self._sub.close()
        except Exception:  # closing never fails the controller
            log.debug("closing the pubsub subscriber failed", exc_info=True)


def open_feed(config: Mapping[str, Any], subscription: str, settings: ClientSettings | None,
              credentials: Mapping[str, SecretValue] | None) -> PubSubFeed:
    """A Pub/Sub pull feed with the credentials the store's Secret Manager client uses."""
    validate_subscription(subscription)
    settings = settings or ClientSettings()
    try:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        if os.environ.get("PUBSUB_EMULATOR_HOST"):
            subscriber = pubsub_v1.SubscriberClient()
        else:
            spec = connection_spec(config, credentials)
            subscriber = pubsub_v1.SubscriberClient(credentials=_google_credentials(spec))
    except ProviderError:
        raise
    except Exception as exc:
        error, cause = mapper()(exc, "open", None)
        raise error from cause
    return PubSubFeed(subscriber, subscription, str(config.get("prefix") or ""), settings)
