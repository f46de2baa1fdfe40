"""Change notices: "these remote keys changed", pushed by a provider instead of polled for.

Polling trades provider calls for latency; a notice lets the controller read exactly the
keys that changed, seconds after the change, while the listing cycle stays as the safety
net (a lost notice is caught by the next cycle). So a notice carries *names only*, never a
value and never a version the controller would trust: it only says where to look.

Two shapes of source exist, and both end in the same :class:`ChangeNotice`:

* **pulled feeds** a provider opens with the store's own credentials (AWS: an SQS queue fed
  by EventBridge; GCP: a Pub/Sub subscription fed by Secret Manager notifications). A
  provider offers one by implementing :class:`ChangeFeedFactory` next to its
  :class:`~secretsync.core.contract.ProviderFactory`; the controller long-polls it.
* **pushed webhooks** the controller serves (Azure Event Grid, or any signed sender such as
  a CI job that just rotated a key); those are parsed in the controller, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .settings import ClientSettings
from .values import SecretValue


@dataclass(frozen=True, slots=True)
class ChangeNotice:
    """Remote key names that changed, as the store names them (no value, no version)."""

    names: frozenset[str]
    #: Where the notice came from (``sqs``, ``pubsub``, ``eventgrid``, ``webhook``): metrics label.
    source: str
    #: Provider-side time of the change (epoch seconds) when the notice says it, for latency.
    changed_at: float | None = None


@runtime_checkable
class ChangeFeed(Protocol):
    """A pulled source of notices for one store. Used by one thread at a time."""

    def poll(self, timeout: float) -> Sequence[ChangeNotice]:
        """Wait up to ``timeout`` seconds for notices and acknowledge what it returns.

        Returns an empty sequence when nothing arrived. Raises a
        :class:`~secretsync.core.errors.ProviderError` when the feed cannot be read; the
        caller backs off and tries again (notices are an accelerator: the polling cycle
        still runs).
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class ChangeFeedFactory(Protocol):
    """Implemented by a provider factory that can open a pulled change feed."""

    def validate_feed(self, subscription: str) -> None:
        """Raise InvalidConfig when ``subscription`` is not a feed name this provider reads."""
        ...

    def open_feed(
        self,
        config: Mapping[str, Any],
        subscription: str,
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> ChangeFeed:
        """Open the feed named ``subscription`` with the same config and credentials as the
        store's client, so a feed reaches nothing the store could not."""
        ...
