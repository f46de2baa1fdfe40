"""The sync controller: ExternalSecrets -> Kubernetes Secrets, with the fewest provider calls.

Entry points: :class:`Controller` (built with a :class:`KubeApi` and
:class:`ControllerSettings`) and the ``secretsync controller`` command. Design notes and
measured numbers: docs/controller.md and docs/benchmarks.md.
"""

from secretsync.kube.client import KubeApi

from .runtime import Controller
from .settings import ControllerSettings

__all__ = ["Controller", "ControllerSettings", "KubeApi"]
