"""Load a Kubernetes client configuration the way kubectl does, with the official loader.

Why one place: the controller, scan, migrate, audit and rotate all take ``--kubeconfig`` /
``--context``; one loader keeps them agreeing on precedence and on errors (a named context
that does not exist is an error, never a silent fall back to another one). Authentication,
TLS, proxies and exec plugins stay the ``kubernetes`` package's job: we never re-implement
them.

Two precedences, on purpose: the controller runs in a pod, so it prefers the in-cluster
service account when it is given no kubeconfig (``prefer_incluster``); the CLI runs on a
laptop, so it reads the kubeconfig first and falls back to in-cluster only when there is none.
"""

from __future__ import annotations

import os
from typing import Any

from secretsync.core.errors import InvalidConfig

SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def incluster_namespace() -> str:
    """The pod's namespace when running in a cluster, else ``default``."""
    try:
        with open(SA_NAMESPACE_FILE, encoding="utf-8") as fh:
            return fh.read().strip() or "default"
    except OSError:
        return "default"


def load_configuration(kubeconfig: str | None, context: str | None, *, operation: str = "kube",
                       prefer_incluster: bool = False) -> tuple[Any, str]:
    """A ``kubernetes.client.Configuration`` for the context, and that context's namespace.

    Without a kubeconfig (none given, none at ``~/.kube/config``) and without ``--context``,
    falls back to the in-cluster service-account config. Raises InvalidConfig naming what is
    wrong; the message never includes credentials.
    """
    from kubernetes import config
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException

    cfg = Configuration()
    if prefer_incluster and kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return cfg, incluster_namespace()
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        if context:
            active = next((c for c in contexts if c.get("name") == context), None)
            if active is None:
                raise InvalidConfig(f"no context {context!r} in the kubeconfig", operation=operation)
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
        config.load_kube_config(config_file=kubeconfig, context=context,  # type: ignore[no-untyped-call]
                                client_configuration=cfg)
        return cfg, namespace
    except (ConfigException, OSError, TypeError) as exc:
        if kubeconfig is None and context is None:
            try:
                config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            except ConfigException:
                pass
            else:
                return cfg, incluster_namespace()
        raise InvalidConfig(f"cannot load kubeconfig: {type(exc).__name__}: {exc}", operation=operation) from None
