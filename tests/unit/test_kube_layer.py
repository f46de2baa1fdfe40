"""The one Kubernetes layer: only it spells API paths, and its table and errors hold together.

Written as the next engineer adding a kind (or a job that lists one) would trip over it: a
path typed by hand outside ``secretsync/kube`` fails here by file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from secretsync.core.errors import AuthenticationFailed, SecretSyncError, Unavailable
from secretsync.kube import crds, kinds
from secretsync.kube.client import KubeError, as_job_error
from secretsync.kube.podspec import POD_SPEC_PATHS

REPO = Path(__file__).resolve().parents[2]
_API_PATH = re.compile(r"""["'`]/apis?/""")


def test_only_the_kube_layer_spells_api_paths() -> None:
    found = []
    for top in ("secretsync", "providers"):
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith("secretsync/kube/"):
                continue
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _API_PATH.search(line) and not line.lstrip().startswith("#"):
                    found.append(f"{rel}:{no}: {line.strip()}")
    assert found == [], "build paths with secretsync.kube.kinds.Resource.path()"


def test_cronjob_falls_back_to_batch_v1beta1_as_kubernetes_1_20_serves_it() -> None:
    paths = [r.path("team") for r in kinds.CRONJOBS.versions()]
    assert paths == ["/apis/batch/v1/namespaces/team/cronjobs", "/apis/batch/v1beta1/namespaces/team/cronjobs"]
    assert kinds.CRONJOBS.versions()[1].api_version == "batch/v1beta1"


def test_every_kind_that_runs_pods_says_where_its_pod_spec_is() -> None:
    assert all(r.pod_spec for r in kinds.POD_KINDS)
    assert POD_SPEC_PATHS["CronJob"] == ("spec", "jobTemplate", "spec", "template", "spec")
    assert POD_SPEC_PATHS["Pod"] == ("spec",)


def test_cluster_scoped_kinds_never_get_a_namespace_in_their_path() -> None:
    shared = crds.CLUSTER_SECRET_STORES.path("team", "shared")
    assert shared == "/apis/secretsync.io/v1alpha1/clustersecretstores/shared"
    assert kinds.SECRETS.path("a/b", "c d") == "/api/v1/namespaces/a%2Fb/secrets/c%20d"


@pytest.mark.parametrize(("status", "expected", "exit_code"), [
    (0, Unavailable, 5), (401, AuthenticationFailed, 4), (403, KubeError, 1), (404, KubeError, 1)])
def test_a_cli_job_reports_a_failed_call_with_the_exit_code_of_its_meaning(
        status: int, expected: type[SecretSyncError], exit_code: int) -> None:
    exc = KubeError(status, "Reason", "ConnectionRefusedError" if not status else "message", method="GET",
                    path="/api/v1/secrets")
    out = as_job_error(exc, operation="scan", host="https://k8s.example:6443")
    assert isinstance(out, expected) and isinstance(out, SecretSyncError)
    assert out.exit_code == exit_code
    if status == 0:
        assert "cannot reach the Kubernetes API server at https://k8s.example:6443" in str(out)
