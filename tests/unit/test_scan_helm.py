"""Helm charts: the template pass parses Bitnami-style templates, and charts are rendered by Helm.

Written as a team scanning a monorepo of charts would: ``labels: {{- include ... | nindent 4 }}``
followed by more keys is how most charts open a mapping, so such a template must be read (not
skipped with an error pointing at line 1); and a value whose *name* says nothing
(``bootstrap.initial``) but which the chart puts into a Secret is found by rendering the chart
with Helm's own engine and reported at its ``values.yaml`` line.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from secretsync.manifests import helm
from secretsync.manifests.documents import parse_yaml_stream
from secretsync.scan import ScanOptions, scan_paths, scan_text

REAL = Path(__file__).resolve().parents[3] / "shared" / "real-manifests"
BITNAMI = REAL / "bitnami-charts" / "bitnami"
PW = "Hn4-helm-" + "pw-" + "u3Vt9"

needs_helm = pytest.mark.skipif(not helm.available(), reason="Helm engine not installed (pip install .[helm])")
needs_bitnami = pytest.mark.skipif(not BITNAMI.is_dir(), reason="../shared/real-manifests/bitnami-charts is absent")

BITNAMI_STYLE = textwrap.dedent(f"""\
    {{{{- if .Values.enabled }}}}
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{{{ template "app.fullname" . }}}}
      labels: {{{{- include "common.labels.standard" ( dict "context" $ ) | nindent 4 }}}}
        app.kubernetes.io/component: api
      {{{{- if .Values.commonAnnotations }}}}
      annotations: {{{{- include "common.tplvalues.render" ( dict "value" .Values.ann ) | nindent 4 }}}}
      {{{{- end }}}}
    spec:
      selector:
        matchLabels: {{{{- include "common.labels.matchLabels" . | nindent 6 }}}}
          app.kubernetes.io/component: api
      template:
        spec:
          containers:
          - name: api
            env:
            - name: ADMIN_PASSWORD
              value: {PW}
            {{{{- if .Values.extraEnvVars }}}}
            {{{{- include "common.tplvalues.render" (dict "value" .Values.extraEnvVars "context" $) | nindent 12 }}}}
            {{{{- end }}}}
    {{{{- end }}}}
    """)


def test_a_bitnami_style_template_is_parsed_and_its_literal_found_at_its_line() -> None:
    result = scan_text(BITNAMI_STYLE, "templates/deployment.yaml")
    assert result.errors == []
    [finding] = result.findings
    assert finding.key == "ADMIN_PASSWORD" and finding.line == 21 and finding.extra.get("templated")


def test_a_template_that_stays_broken_is_reported_at_its_own_line() -> None:
    text = ("{{- if .Values.x }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n   c: d\n"
            "{{- end }}\n")
    stream = parse_yaml_stream(text)
    assert stream.documents == []
    assert "line 8" in stream.problems[0], stream.problems  # not "line 1", where the raw text fails


@needs_bitnami
def test_every_bitnami_template_is_read_but_one_with_both_branches_of_an_if() -> None:
    failed = []
    for path in sorted(BITNAMI.glob("*/templates/**/*.yaml")):
        if parse_yaml_stream(path.read_text()).problems:
            failed.append(path.relative_to(BITNAMI).as_posix())
    assert failed == ["redis/templates/networkpolicy.yaml"]


def _chart(root: Path) -> Path:
    """A chart with a library dependency kept beside it (as bitnami/charts keeps ``common``)."""
    lib = root / "libs"
    (lib / "templates").mkdir(parents=True)
    (lib / "Chart.yaml").write_text("apiVersion: v2\nname: libs\nversion: 1.0.0\ntype: library\n")
    (lib / "templates" / "_names.tpl").write_text('{{- define "libs.name" -}}{{ .Release.Name }}-app{{- end -}}\n')
    app = root / "app"
    (app / "templates").mkdir(parents=True)
    (app / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n"
                                    "- name: libs\n  version: 1.x.x\n  repository: oci://registry.example/charts\n")
    (app / "values.yaml").write_text(f"image: app:1\nbootstrap:\n  user: admin\n  initial: {PW}\n"
                                     "generated: {}\n")
    (app / "templates" / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ include \"libs.name\" . }}\n"
        "  labels: {{- include \"libs.labels\" . | nindent 4 }}\n    tier: api\n"
        "stringData:\n  admin-password: {{ .Values.bootstrap.initial | quote }}\n"
        "  session-key: {{ randAlphaNum 24 | quote }}\n")
    (lib / "templates" / "_labels.tpl").write_text('{{- define "libs.labels" -}}\napp: x\n{{- end -}}\n')
    return app


@needs_helm
def test_a_chart_is_rendered_and_a_value_that_becomes_a_secret_is_reported_at_its_values_line(
        tmp_path: Path) -> None:
    _chart(tmp_path)
    result = scan_paths([tmp_path])
    assert [e for e in result.errors if "render" in e.message] == []
    rendered = [f for f in result.findings if "rendered" in f.extra]
    assert [(f.file, f.line, f.path, f.location) for f in rendered] == [
        ("app/values.yaml", 4, "bootstrap.initial", "helm-values")]
    assert "Secret/" in rendered[0].extra["rendered"]
    # the generated session key is Helm's, not the tree's: nothing to migrate
    assert not any("session" in (f.path or "") for f in result.findings)
    assert scan_paths([tmp_path], ScanOptions(render_charts=False)).findings == [
        f for f in result.findings if "rendered" not in f.extra]


@needs_helm
def test_a_missing_dependency_is_named_and_the_text_pass_still_runs(tmp_path: Path) -> None:
    app = _chart(tmp_path)
    shutil.rmtree(tmp_path / "libs")
    result = scan_paths([app])
    [problem] = [e for e in result.errors if "dependency" in e.message]
    assert problem.file == "Chart.yaml" and "'libs'" in problem.message and "scanned as text" in problem.message


@needs_helm
@needs_bitnami
def test_bitnami_charts_render_with_their_common_library_kept_beside_them(tmp_path: Path) -> None:
    for name in ("redis", "common"):
        shutil.copytree(BITNAMI / name, tmp_path / name)
    result = scan_paths([tmp_path])
    assert [e for e in result.errors if "render" in e.message] == []
