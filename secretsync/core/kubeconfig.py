"""Open a Kubernetes API client the way kubectl does: kubeconfig context, else in-cluster.

Why one place: scan, migrate and audit all take ``--kubeconfig`` / ``--context`` and need the
context's default namespace; one loader keeps them agreeing on precedence and on errors
(a named context that does not exist is an error, never a silent fall back to another one).
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidConfig

SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def incluster_namespace() -> str:
    """The pod's namespace when running in a cluster, else ``default``."""
    try:
        with open(SA_NAMESPACE_FILE, encoding="utf-8") as fh:
            return fh.read().strip() or "default"
    except OSError:
        return "default"


def open_api_client(kubeconfig: str | None, context: str | None, *, operation: str = "kube") -> tuple[Any, str]:
    """An ApiClient for the kubeconfig context and that context's namespace.

    Without a kubeconfig (none given, none at ``~/.kube/config``) and without ``--context``,
    falls back to the in-cluster service-account config. Raises InvalidConfig naming what is
    wrong; the message never includes credentials.
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        if context:
            active = next((c for c in contexts if c.get("name") == context), None)
            if active is None:
                raise InvalidConfig(f"no context {context!r} in the kubeconfig", operation=operation)
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
        api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        return api, namespace
    except (ConfigException, OSError, TypeError) as exc:
        if kubeconfig is None and context is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except ConfigException:
                pass
            else:
                return client.ApiClient(), incluster_namespace()
        raise InvalidConfig(f"cannot load kubeconfig: {type(exc).__name__}: {exc}", operation=operation) from None
