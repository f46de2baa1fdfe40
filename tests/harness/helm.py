"""The Helm chart in deploy/helm/secretsync, rendered and linted by Helm's own engine.

``helm-python-sdk`` (pinned in the test extra) ships Helm v4's Go SDK as a shared library, so
the tests see exactly what ``helm template`` / ``helm install`` would produce, with Helm's
template functions, its values schema validation and its ``fail`` guards, and no ``helm``
binary or network. A library (no fixtures): the unit tests of the chart, the integration test
that runs the controller as the chart's ServiceAccount, and ``--write`` for deploy/manifests use it.

    .venv/bin/python -m tests.harness.helm --write     # regenerate deploy/manifests/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "secretsync"
MANIFESTS = REPO / "deploy" / "manifests"
RELEASE_NAME = "secretsync"
RELEASE_NAMESPACE = "secretsync"

#: deploy/manifests/<dir>/secretsync.yaml: the chart rendered with these values.
MANIFEST_VARIANTS: dict[str, dict[str, Any]] = {
    "cluster-wide": {},
    "namespaced": {"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": ["app"]}},
}

#: The order ``kubectl apply -f`` needs (Helm's install order, for the kinds this chart renders).
INSTALL_ORDER = ["Namespace", "CustomResourceDefinition", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount",
                 "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment",
                 "ServiceMonitor"]


def _install_rank(doc: dict[str, Any]) -> int:
    """Helm's install order; kinds it does not list (a PrometheusRule, say) go last, as in Helm."""
    kind = doc["kind"]
    return INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)


def render(values: dict[str, Any] | None = None, *, name: str = RELEASE_NAME, namespace: str = RELEASE_NAMESPACE,
           kube_version: str | None = None, api_versions: list[str] | None = None) -> list[dict[str, Any]]:
    """The chart's objects as Helm renders them (NOTES.txt left out), in template order.

    Without ``kube_version``/``api_versions`` this is an offline render (``helm template``):
    Helm then assumes its built-in default Kubernetes version and API list. With them, it is
    what ``helm install`` computes from a live cluster's version and discovery; the Python
    wrapper's ``Chart.render`` does not forward these two options, so the call goes to the
    library's ``helm_render`` with them (the same C entry point ``Chart.render`` uses).
    Raises ``helm_python.HelmValuesError`` (schema) or ``HelmRenderError`` (a ``fail`` guard).
    """
    import helm_python
    from helm_python import _native

    opts: dict[str, Any] = {"name": name, "namespace": namespace}
    if kube_version is not None:
        opts["kube_version"] = kube_version
    if api_versions is not None:
        opts["api_versions"] = api_versions
    with helm_python.Chart.load(CHART) as chart:
        rendered: dict[str, str] = json.loads(_native.call_string(
            "helm_render", chart._raw(), None if values is None else json.dumps(values), json.dumps(opts)))
    docs: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(rendered[path]) if d]
    return docs


def lint(values: dict[str, Any] | None = None, *, kube_version: str | None = None) -> list[str]:
    """``helm lint --strict``: the warnings and errors (an empty list when the chart passes)."""
    import helm_python

    report = helm_python.lint(CHART, values, strict=True, namespace=RELEASE_NAMESPACE, kube_version=kube_version)
    return [f"{m['path']}: {m['error'].strip()}" for m in report.get("messages") or [] if m.get("severity", 0) >= 2]


def chart_crds() -> dict[str, str]:
    """The chart's crds/ folder: file name -> text (what Helm installs before the templates)."""
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        return {c["filename"].rsplit("/", 1)[-1]: c["data"] for c in chart.crds}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def manifest_files() -> dict[str, str]:
    """deploy/manifests/<variant>/secretsync.yaml -> its content: the namespaces, then the chart."""
    out: dict[str, str] = {}
    for variant, values in MANIFEST_VARIANTS.items():
        served = values.get("controller", {}).get("watchNamespaces", [])
        namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                      for ns in dict.fromkeys([RELEASE_NAMESPACE, *served])]
        docs = sorted([*namespaces, *render(values or None)], key=_install_rank)
        header = (f"# deploy/helm/secretsync rendered by Helm with {json.dumps(values or 'the default values')}\n"
                  f"# (release {RELEASE_NAME!r} in namespace {RELEASE_NAMESPACE!r}) by tests/harness/helm.py --write.\n"
                  "# kubectl apply -k . installs it with the CRDs (see kustomization.yaml).\n")
        out[f"{variant}/secretsync.yaml"] = header + "---\n".join(
            yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)
    return out


if __name__ == "__main__":
    if "--write" in sys.argv:
        for rel, text in manifest_files().items():
            path = MANIFESTS / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
