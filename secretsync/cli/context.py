"""What the root command passes down: kube connection options and provider client settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from secretsync.core.settings import ClientSettings, RateLimitSettings, TimeoutSettings


@dataclass(frozen=True, slots=True)
class CliContext:
    kubeconfig: str | None = None
    kube_context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    #: Provider client settings every command uses to open stores (timeouts, rate limit).
    client_settings: ClientSettings = field(default_factory=ClientSettings)


def current() -> CliContext:
    """The root context of the running command (defaults when run outside the root group)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(CliContext) if ctx is not None else None
    return obj if obj is not None else CliContext()


def client_settings(rate: float | None, burst: int, timeout: float) -> ClientSettings:
    return ClientSettings(
        timeouts=TimeoutSettings(connect=min(timeout, 10.0), read=timeout),
        rate_limit=RateLimitSettings(rate=rate, burst=burst),
    )
