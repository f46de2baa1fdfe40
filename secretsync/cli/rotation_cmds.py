"""``secretsync refresh NS/NAME`` and ``secretsync rotate NS/NAME``: ask the controller to act now.

Why annotations rather than doing the work here: the controller is the one writer (it holds
the store credentials, the caches, the leader Lease and the rollout rules). The CLI only
stamps a request on the object, as ``kubectl annotate`` would, and the leader picks it up
from its watch within a second: ``refresh`` sets ``secretsync.io/force-sync`` on an
ExternalSecret (a resync from the provider), ``rotate`` sets ``secretsync.io/rotate-now`` on
a SecretRotation (a new value now, through its hook).
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from secretsync.controller import KubeApi
from secretsync.controller.rotation import ROTATE_NOW_ANNOTATION, SR_RES
from secretsync.controller.runtime import ES_RES
from secretsync.kube.client import KubeError, Resource
from secretsync.kube.labels import FORCE_SYNC_ANNOTATION

from .context import current


def _target(value: str) -> tuple[str, str]:
    ns, sep, name = value.partition("/")
    if not sep:
        ns, name = current().namespace or "default", value
    if not ns or not name or "/" in name:
        raise click.BadParameter(f"{value!r} must be NAMESPACE/NAME (or NAME with -n)", param_hint="TARGET")
    return ns, name


def _request(res: Resource, target: str, annotation: str) -> None:
    ns, name = _target(target)
    ctx = current()
    api = KubeApi.from_config(ctx.kubeconfig, ctx.kube_context)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        api.patch(res, name, {"metadata": {"annotations": {annotation: stamp}}}, ns)
    except KubeError as exc:
        if exc.not_found:
            raise click.ClickException(f"{res.kind} {ns}/{name} not found") from None
        raise click.ClickException(f"cannot annotate {res.kind} {ns}/{name}: {exc.status} {exc.reason}") from None
    finally:
        api.close()
    click.echo(f"{res.kind} {ns}/{name}: requested ({annotation}={stamp})")


@click.command("refresh")
@click.argument("target", metavar="NAMESPACE/NAME")
def refresh(target: str) -> None:
    """Resync an ExternalSecret from the provider now (sets secretsync.io/force-sync)."""
    _request(ES_RES, target, FORCE_SYNC_ANNOTATION)


@click.command("rotate")
@click.argument("target", metavar="NAMESPACE/NAME")
def rotate(target: str) -> None:
    """Rotate a SecretRotation now: new value, hook, new provider version (sets secretsync.io/rotate-now)."""
    _request(SR_RES, target, ROTATE_NOW_ANNOTATION)
