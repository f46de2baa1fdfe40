"""Deployments for the rollout and rotation tests: build one that reads Secret keys, read its restarts.

The test apiserver runs no deployment controller: a restart shows as the pod template changing
(``metadata.generation`` moves) with our ``rollout.secretsync.io/<secret>`` annotation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from secretsync.kube.client import KubeApi, Resource
from secretsync.kube.consumers import STAMP_PREFIX
from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY
from tests.harness.controller import create, store_manifest

DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")


def deployment(api: KubeApi, ns: str, name: str, *, env: Sequence[tuple[str, str]] = (),
               env_from: Sequence[str] = (), annotations: Mapping[str, str] | None = None) -> None:
    """Create a Deployment whose container reads ``env`` (Secret, key) pairs and ``env_from`` Secrets."""
    container: dict[str, Any] = {"name": "app", "image": "busybox"}
    if env:
        container["env"] = [{"name": f"V{i}", "valueFrom": {"secretKeyRef": {"name": s, "key": k}}}
                            for i, (s, k) in enumerate(env)]
    if env_from:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in env_from]
    md: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations:
        md["annotations"] = dict(annotations)
    api.create(DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": md,
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}, ns)


def restart_state(api: KubeApi, ns: str, name: str) -> tuple[int, dict[str, str]]:
    """(generation, our pod-template annotations) of a Deployment."""
    obj = api.get(DEPLOYMENTS, name, ns)
    ann = ((obj["spec"]["template"].get("metadata") or {}).get("annotations") or {})
    return int(obj["metadata"]["generation"]), {k: v for k, v in ann.items() if k.startswith(STAMP_PREFIX)}


def aws_store(api: KubeApi, ns: str, endpoint: str, **spec: Any) -> None:
    """A SecretStore ``aws`` on moto (``spec``: more store fields, e.g. rateLimit), credentials
    from a Secret of the namespace."""
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-creds", "namespace": ns},
                 "stringData": {"id": ACCESS_KEY, "secret": SECRET_KEY}})
    create(api, store_manifest("aws", ns, "aws", {
        "region": REGION, "endpoint": endpoint,
        "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id"},
                      "secretAccessKey": {"name": "aws-creds", "key": "secret"}}}, **spec))
