"""What the root command passes down: kube connection options and the output format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CliContext:
    kubeconfig: str | None = None
    kube_context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
