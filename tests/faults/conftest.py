"""The fault suite's fixtures: a KubeApi on the session cluster with our CRDs installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from secretsync.kube.client import KubeApi
from tests.harness.controller import install_crds, kube_api
from tests.harness.kube import KubeCluster


@pytest.fixture
def api(kube: KubeCluster) -> Iterator[KubeApi]:
    install_crds(kube)
    a = kube_api(kube)
    yield a
    a.close()
