"""Secrets Manager change notices from an SQS queue fed by an EventBridge rule.

The documented wiring (docs/events.md): an EventBridge rule on ``source: aws.secretsmanager``
(CloudTrail management events: PutSecretValue, UpdateSecret, UpdateSecretVersionStage,
RotateSecret, RotationSucceeded, DeleteSecret, RestoreSecret...) targets an SQS queue; the
controller long-polls that queue with the *store's own* session (same credentials, role
and endpoint rules as the store's client), so a feed reaches nothing the store could not.

A message names a secret by name or ARN, never carries its value. An ARN's name is the part
after ``:secret:`` minus the six-character suffix AWS appends; both the ARN and the name are
reported, and the controller keeps only the names its ExternalSecrets use. A message that
does not parse is acknowledged and counted (never logged: bodies are not ours to print), so
one malformed message cannot wedge the queue.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, cast

from botocore.config import Config as BotoConfig

from secretsync.core.changes import ChangeNotice
from secretsync.core.errors import InvalidConfig, ProviderError, Unavailable
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..calls import provider_call
from .auth import build_session
from .config import PROVIDER, AwsConfig, parse_config
from .errors import mapper
from .sdk import botocore_config, instrument

log = logging.getLogger(__name__)

#: SQS's longest long-poll.
MAX_WAIT = 20
#: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, or any http(s) URL (local endpoints, VPC endpoints).
_QUEUE_URL = re.compile(r"^https?://[^/\s]+/\d{1,12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")


class SqsAPI(Protocol):
    """The two SQS calls the feed makes (sqs:ReceiveMessage, sqs:DeleteMessage)."""

    def receive_message(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def delete_message_batch(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def close(self) -> None: ...


def validate_queue_url(url: str) -> None:
    if not _QUEUE_URL.match(url or ""):
        raise InvalidConfig(
            f"events.subscription: {url!r} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE)",
            provider=PROVIDER, operation="config")


def names_from_event(event: Mapping[str, Any]) -> set[str]:
    """Secret names (and ARNs) an EventBridge Secrets Manager event is about."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return set()
    found: set[str] = set()
    for block_name in ("requestParameters", "responseElements", "additionalEventData", "serviceEventDetails"):
        block = detail.get(block_name)
        if not isinstance(block, Mapping):
            continue
        for field in ("secretId", "SecretId", "arn", "ARN", "name", "Name"):
            value = block.get(field)
            if isinstance(value, str) and value:
                found.add(value)
    out = set(found)
    for item in found:
        m = _ARN.match(item)
        if m:
            out.add(m.group("name"))
    return out


def _event_time(event: Mapping[str, Any]) -> float | None:
    raw = event.get("time")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse_body(body: str) -> tuple[set[str], float | None]:
    """Names in one SQS message body: an EventBridge event, possibly wrapped by SNS."""
    doc = json.loads(body)
    if isinstance(doc, Mapping) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        doc = json.loads(doc["Message"])
    if not isinstance(doc, Mapping):
        raise ValueError("not an object")
    return names_from_event(doc), _event_time(doc)


class SqsFeed:
    """:class:`~secretsync.core.changes.ChangeFeed` over one SQS queue."""

    def __init__(self, api: SqsAPI, queue_url: str, config: AwsConfig, settings: ClientSettings) -> None:
        self._api = api
        self._queue = queue_url
        self._config = config
        self._settings = settings
        self.malformed = 0

    def _call(self, operation: str, method: Any, deadline: float, **kwargs: Any) -> Mapping[str, Any]:
        """One SQS call through :func:`provider_call`, bounded by ``deadline`` (a long poll's
        wait plus the usual call deadline)."""
        settings = replace(self._settings, timeouts=replace(self._settings.timeouts, total=deadline))
        with provider_call(settings, PROVIDER, operation, mapper, server="SQS"):
            return cast(Mapping[str, Any], method(**kwargs))
        raise AssertionError("unreachable: provider_call raises or the call returned")  # for mypy

    def poll(self, timeout: float) -> Sequence[ChangeNotice]:
        wait = max(0, min(MAX_WAIT, int(timeout)))
        deadline = wait + self._settings.timeouts.call_deadline
        resp = self._call("ReceiveMessage", self._api.receive_message, deadline, QueueUrl=self._queue,
                          MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        messages = resp.get("Messages") or []
        if not isinstance(messages, list):
            raise Unavailable("malformed ReceiveMessage answer", provider=PROVIDER, operation="ReceiveMessage")
        notices: list[ChangeNotice] = []
        receipts: list[dict[str, str]] = []
        for i, msg in enumerate(messages):
            if not isinstance(msg, Mapping):
                continue
            handle = msg.get("ReceiptHandle")
            if isinstance(handle, str):
                receipts.append({"Id": str(i), "ReceiptHandle": handle})
            try:
                names, when = parse_body(str(msg.get("Body") or ""))
            except (ValueError, TypeError):
                self.malformed += 1
                log.warning("sqs feed: a message on the queue is not a Secrets Manager event (ignored; %d so far)",
                            self.malformed)
                continue
            local = {n for n in (self._config.local_name(x) for x in names) if n}
            if local:
                notices.append(ChangeNotice(frozenset(local), "sqs", when))
        if receipts:
            self._call("DeleteMessageBatch", self._api.delete_message_batch, self._settings.timeouts.call_deadline,
                       QueueUrl=self._queue, Entries=receipts)
        return notices

    def close(self) -> None:
        try:
            self._api.close()
        except Exception:  # closing never fails the controller
            log.debug("closing the sqs client failed", exc_info=True)


def open_feed(config: Mapping[str, Any], subscription: str, settings: ClientSettings | None,
              credentials: Mapping[str, SecretValue] | None) -> SqsFeed:
    """An SQS feed with the store's session. The SQS endpoint follows botocore's own rules
    (``AWS_ENDPOINT_URL_SQS`` / ``AWS_ENDPOINT_URL``, controller environment), never a store field."""
    validate_queue_url(subscription)
    cfg = parse_config(config)
    settings = settings or ClientSettings()
    limiter = settings.rate_limit.bucket()
    try:
        session = build_session(cfg, credentials, settings.timeouts, limiter, settings.calls)
        # A long poll holds the socket for up to MAX_WAIT seconds before the answer starts.
        base = botocore_config(settings.timeouts).merge(BotoConfig(read_timeout=MAX_WAIT + settings.timeouts.read))
        client = session.client("sqs", config=base)
    except ProviderError:
        raise
    except Exception as exc:
        error, cause = mapper(exc, "open", None)
        raise error from cause
    instrument(client, limiter)
    return SqsFeed(cast(SqsAPI, client), subscription, cfg, settings)
