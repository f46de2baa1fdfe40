"""import-eso: ESO manifests in, secretsync manifests out, and an exact list of what did not convert."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from secretsync.api.eso import convert_text, dump_documents
from secretsync.api.gotemplate import translate
from secretsync.api.models import KINDS, parse_object
from secretsync.api.template import TemplateEngine
from secretsync.cli.main import cli
from secretsync.core.values import SecretValue

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "eso-examples"
ISSUE = re.compile(r"^cannot convert: (?P<file>[^:]+): (?:line \d+: .+|[A-Za-z]+/[^ ]+: .+)$")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The root command configures logging (levels, handlers); undo it for the tests after us."""
    root = logging.getLogger()
    ours = logging.getLogger("secretsync")
    saved = (list(root.handlers), root.level, ours.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    ours.setLevel(saved[2])


def _examples() -> list[Path]:
    if not SHARED.is_dir():
        return []
    return sorted(SHARED.glob("*.yaml"))


def test_generator_ref_is_reported_with_object_and_field() -> None:
    text = """
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: x}
spec:
  secretStoreRef: {name: s, kind: SecretStore}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: p}
  data:
  - secretKey: a
    remoteRef: {key: k}
"""
    result = convert_text(text)
    assert result.issues == [
        "ExternalSecret/default/x: spec.dataFrom[0].sourceRef.generatorRef: generators are not supported"]


def test_a_clean_external_secret_converts_to_a_parseable_one() -> None:
    text = """
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db, namespace: app, uid: abc, resourceVersion: "12"}
spec:
  refreshInterval: 1h0m0s
  secretStoreRef: {name: aws, kind: ClusterSecretStore}
  target:
    name: db-secret
    creationPolicy: Owner
    template:
      engineVersion: v2
      type: kubernetes.io/basic-auth
      data:
        username: "{{ .user | toString }}"
        password: '{{ .pw | b64dec }}'
        dsn: 'postgres://{{ .user }}:{{ index . "pw-raw" }}@db'
  data:
  - secretKey: user
    remoteRef: {key: prod/db, property: user, conversionStrategy: Default, decodingStrategy: None}
  - secretKey: pw
    remoteRef: {key: prod/db, property: password}
  - secretKey: pw-raw
    remoteRef: {key: prod/db, property: raw}
  dataFrom:
  - extract: {key: prod/shared}
    rewrite:
    - regexp: {source: "^(.*)$", target: "shared-$1"}
status:
  refreshTime: "2019-08-12T12:33:02Z"
"""
    result = convert_text(text)
    assert result.ok, result.issues
    (doc,) = result.documents
    assert doc["apiVersion"] == "secretsync.io/v1alpha1"
    assert doc["metadata"] == {"name": "db", "namespace": "app"}  # uid/resourceVersion dropped
    es = parse_object(doc)
    assert es.spec.refresh_interval == 3600  # type: ignore[union-attr]
    # the translated templates render as ESO's did
    engine = TemplateEngine()
    values = {"user": SecretValue("u"), "pw": SecretValue("cHc="), "pw-raw": SecretValue("raw")}
    out = engine.render_target(es, values)  # type: ignore[arg-type]
    assert {k: v.reveal() for k, v in out.items()} == {"username": b"u", "password": b"pw",
                                                      "dsn": b"postgres://u:raw@db"}


def test_unknown_fields_never_vanish_silently() -> None:
    text = """
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: x, namespace: n}
spec:
  secretStoreRef: {name: s}
  data:
  - secretKey: a
    remoteRef: {key: k, someNewField: 1}
  futureField: true
"""
    result = convert_text(text)
    assert sorted(result.issues) == [
        "ExternalSecret/n/x: spec.data[0].remoteRef.someNewField: no equivalent in secretsync (field not converted)",
        "ExternalSecret/n/x: spec.futureField: no equivalent in secretsync (field not converted)",
    ]
    # the object is still printed, with its problems as comments above it
    dumped = dump_documents(result)
    assert dumped.startswith("# cannot convert: ExternalSecret/n/x: spec.")


def test_stores_convert_to_provider_config_plus_credential_refs() -> None:
    text = """
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: aws, namespace: app}
spec:
  provider:
    aws:
      service: SecretsManager
      region: eu-central-1
      role: arn:aws:iam::123456789012:role/reader
      auth:
        secretRef:
          accessKeyIDSecretRef: {name: awssm, key: id}
          secretAccessKeySecretRef: {name: awssm, key: secret}
---
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {name: vault}
spec:
  conditions:
  - namespaceSelector: {matchLabels: {team: a}}
  provider:
    vault:
      server: https://vault.example:8200
      path: kv
      version: v1
      auth:
        kubernetes:
          mountPath: k8s
          role: reader
          serviceAccountRef: {name: reader, namespace: secretsync}
"""
    result = convert_text(text)
    assert result.ok, result.issues
    aws, vault = result.documents
    # The blocks stay as ESO writes them: each provider reads its own ESO dialect.
    assert aws["spec"]["provider"] == yaml.safe_load(text.split("---")[0])["spec"]["provider"]
    assert vault["spec"]["provider"] == yaml.safe_load(text.split("---")[1])["spec"]["provider"]
    parsed = parse_object(aws, default_namespace="default")
    assert parsed.spec.provider.config["region"] == "eu-central-1"
    assert sorted(s.field for s in parsed.spec.provider.credentials) == [
        "auth.secretRef.accessKeyIDSecretRef", "auth.secretRef.secretAccessKeySecretRef"]
    assert vault["spec"]["conditions"] == [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]


def test_unsupported_auth_is_named_precisely() -> None:
    text = """
apiVersion: external-secrets.io/v1beta1
kind: SecretStore
metadata: {name: s, namespace: n}
spec:
  provider:
    vault:
      server: https://vault.example:8200
      path: kv
      auth:
        iam: {region: eu-central-1}
"""
    (issue,) = convert_text(text).issues
    assert issue.startswith("SecretStore/n/s: spec.provider.vault.auth.iam: ")


def test_a_bracketed_documentation_placeholder_converts_with_a_note() -> None:
    text = """
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: s, namespace: n}
spec:
  provider:
    gcpsm:
      projectID: [PROJECT_ID]
      auth: {secretRef: {secretAccessKeySecretRef: {name: gcp, key: sa.json}}}
"""
    result = convert_text(text)
    assert result.issues == []
    assert result.documents[0]["spec"]["provider"]["gcpsm"]["projectID"] == "PROJECT_ID"
    assert any("spec.provider.gcpsm.projectID: a documentation placeholder" in n for n in result.notes)


def test_duplicate_keys_and_invalid_yaml_are_reported_by_line() -> None:
    dup = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: '1'}\ndata: {x: '2'}\n"
    assert convert_text(dup).issues == ["line 5: duplicate key 'data': the earlier value is ignored (fix the source)"]
    bad = "apiVersion: v1\nkind: X\nmetadata:\n  name: \"a\" b\n"
    (issue,) = convert_text(bad).issues
    assert issue.startswith("line 4: not valid YAML")


def test_other_objects_pass_through_and_a_pushsecret_generator_is_refused_naming_the_field() -> None:
    text = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa}
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: p, namespace: n}
spec:
  secretStoreRefs: [{name: s}]
  selector: {generatorRef: {kind: Password, name: pw}}
"""
    result = convert_text(text)
    assert result.documents[0] == {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}
    assert result.issues == ["PushSecret/n/p: spec.selector.generatorRef: generators are not supported "
                             "(SecretRotation generates values)"]


@pytest.mark.parametrize(("go", "jinja"), [
    ("{{ .password }}", "{{ password }}"),
    ("{{ .mysecret | toString }}", "{{ mysecret | toString }}"),
    ("{{ .p | b64enc }}{{ .q | b64dec }}", "{{ p | b64enc }}{{ q | b64dec }}"),
    ('{{ index . "best-pokemon" | toString | upper }}', '{{ values["best-pokemon"] | toString | upper }}'),
    ('{{ .p12 | pkcs12certPass "pw" }}', '{{ p12 | pkcs12certPass("pw") }}'),
    ("{{ pkcs12key .p12 }}", "{{ p12 | pkcs12key }}"),
    ('{{ .pem | filterPEM "CERTIFICATE" }}', '{{ pem | filterPEM("CERTIFICATE") }}'),
    ('{{ .url | replace "postgres://" "postgresql://" }}', '{{ url | replace("postgres://", "postgresql://") }}'),
    ('{{ printf "%s:%v" .a .b }}', '{{ "%s:%s" | format(a, b) }}'),
    ("{{ .j | fromJson | toJson }}", "{{ j | fromJson | toJson }}"),
    ('{{ .a | default "x" }}', '{{ a | default("x", true) }}'),
    ("{{- .a -}}", "{{- a -}}"),
    ("{{/* note */}}x", "{# note #}x"),
    ("literal {% not a tag", 'literal {{ "{%" }} not a tag'),
    ("{{ `{{ .x }}` }}", "{{ `{{ x }}` }}"),
])
def test_go_templates_translate_to_jinja(go: str, jinja: str) -> None:
    result = translate(go)
    assert result.problems == []
    assert result.text == jinja


@pytest.mark.parametrize("go", ["{{ if .a }}x{{ end }}", "{{ range .a }}{{ end }}", "{{ $x := .a }}",
                                "{{ now }}", "{{ . }}", '{{ index .m "k" }}', '{{ printf "%q" .a }}'])
def test_untranslatable_templates_are_reported(go: str) -> None:
    assert translate(go).problems


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_every_eso_example_converts_or_names_what_it_cannot(path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["import-eso", str(path)])
    stderr_lines = [ln for ln in res.stderr.splitlines() if ln.startswith("cannot convert: ")]
    assert res.exit_code == (1 if stderr_lines else 0), res.stderr
    for line in stderr_lines:
        assert ISSUE.match(line), line
    eso_objects = 0
    converted = list(yaml.safe_load_all(res.stdout)) if res.stdout.strip() else []
    for doc in converted:
        if doc and doc.get("apiVersion") == "secretsync.io/v1alpha1":
            assert doc["kind"] in KINDS
            eso_objects += 1
            ref_prefix = f"{doc['kind']}/"
            if not any(ref_prefix in ln and doc["metadata"]["name"] in ln for ln in stderr_lines):
                parse_object(doc, default_namespace="default")  # clean ones must parse
    text = path.read_text(encoding="utf-8")
    mentions = len(re.findall(r"^kind: (ExternalSecret|SecretStore|ClusterSecretStore|ClusterExternalSecret"
                              r"|PushSecret|ClusterPushSecret)\s*$", text, re.M))
    # every ESO object is either printed or its failure is reported
    assert eso_objects == mentions or stderr_lines, (path.name, eso_objects, mentions)


EXPECTED_ISSUES = {
    "aws-sm-store.yaml": [],
    "basic-external-secret.yaml": [],
    "vault-token-store.yaml": [],
    "vault-kubernetes-store.yaml": [],
    "gcpsm-external-secret.yaml": [],
    "gcpsm-tls-externalsecret.yaml": [],
    # ESO's own defect: a duplicated dataFrom key (its syncWindows convert as they are).
    "full-external-secret.yaml": ["line 123: duplicate key 'dataFrom'"],
    "aws-sm-external-secret.yaml": [],
    "azkv-external-secret.yaml": [],
    "azkv-datafrom-external-secret.yaml": [],
    "full-pushsecret.yaml": [],
    "full-pushsecret-no-key-no-property.yaml": [],
    "full-pushsecret-no-key-with-property.yaml": [],
    # ESO's example sets both selector.secret and selector.generatorRef (ESO refuses that too).
    "full-cluster-push-secret.yaml": ["spec.pushSecretSpec.selector.generatorRef"],
    # ESO's AWS push options: the AWS store applies them (a store that cannot refuses them by name).
    "aws-sm-push-secret-with-replication.yaml": [],
    # ESO's template snippets elide the store (`# ...`): no item says where to read from.
    "multikey-template-v2-external-secret.yaml": [],
    "pkcs12-template-v2-external-secret.yaml": ["line 17: not valid YAML"],
    "gcpsm-sa-secret-store.yaml": [],
    "azkv-secret-store-spn-secret.yaml": [],
    "cluster-external-secret-fanout.yaml": [],
    "vault-cert-store.yaml": [],
    "full-secret-store.yaml": ["spec.provider: exactly one provider must be set"],
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_ISSUES.items()))
def test_known_examples_report_exactly_these_problems(name: str, expected: list[str]) -> None:
    path = SHARED / name
    if not path.is_file():
        pytest.skip("shared ESO examples not present")
    result = convert_text(path.read_text(encoding="utf-8"), name)
    if not expected:
        assert result.issues == []
        return
    assert len(result.issues) == len(expected), result.issues
    for fragment in expected:
        assert any(fragment in i for i in result.issues), (fragment, result.issues)


def test_examples_folder_is_optional() -> None:
    if not SHARED.is_dir():
        pytest.skip("shared ESO examples not present")
    assert _examples()


def test_output_directory_and_report(tmp_path: Path) -> None:
    src = tmp_path / "es.yaml"
    src.write_text("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: x}\n"
                   "spec:\n  secretStoreRef: {name: s}\n  syncWindows: {kind: allow}\n"
                   "  data: [{secretKey: a, remoteRef: {key: k}}]\n")
    out = tmp_path / "out"
    report = tmp_path / "report.txt"
    res = CliRunner().invoke(cli, ["-n", "team", "import-eso", str(src), "-o", str(out), "--report", str(report)])
    assert res.exit_code == 1
    assert (out / "es.yaml").is_file()
    assert report.read_text().splitlines() == [
        "cannot convert: " + str(src) + ": ExternalSecret/team/x: spec.syncWindows.windows: must list at least "
        "one window"]


def test_sync_windows_convert_as_they_are_and_a_stray_field_is_named() -> None:
    text = ("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: x, namespace: team}\n"
            "spec:\n  secretStoreRef: {name: s}\n  data: [{secretKey: a, remoteRef: {key: k}}]\n"
            "  syncWindows:\n    kind: deny\n    windows:\n"
            "    - {schedule: '0 22 * * 1-5', duration: 10h}\n    - {schedule: '@every 6h', duration: 30m, x: 1}\n")
    result = convert_text(text, "es.yaml")
    assert result.issues == ["ExternalSecret/team/x: spec.syncWindows.windows[1].x: no equivalent in secretsync "
                             "(field not converted)"], result.issues
    assert result.documents[0]["spec"]["syncWindows"] == {"kind": "deny", "windows": [
        {"schedule": "0 22 * * 1-5", "duration": "10h"}, {"schedule": "@every 6h", "duration": "30m"}]}


def test_a_secret_store_on_the_pod_identity_is_converted_with_a_note_that_it_will_be_refused() -> None:
    """ESO lets a namespaced SecretStore use the controller's pod identity; secretsync refuses it on
    purpose (docs/security.md), and import-eso says so for that manifest."""
    text = """
apiVersion: external-secrets.io/v1beta1
kind: SecretStore
metadata: {name: s, namespace: n}
spec:
  provider:
    aws: {service: SecretsManager, region: eu-central-1}
---
apiVersion: external-secrets.io/v1beta1
kind: ClusterSecretStore
metadata: {name: c}
spec:
  provider:
    aws: {service: SecretsManager, region: eu-central-1}
"""
    result = convert_text(text)
    assert result.issues == []
    notes = [n for n in result.notes if "differs from ESO on purpose" in n]
    assert len(notes) == 1 and notes[0].startswith("SecretStore/n/s: spec.provider.aws: "), result.notes
    assert "must bring its own credentials" in notes[0]


def test_an_external_secret_fragment_without_a_store_converts_with_a_note_and_names_its_items() -> None:
    text = """
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: template, namespace: n}
spec:
  target: {template: {engineVersion: v2, data: {password: "{{ .mysecret }}"}}}
  data:
  - secretKey: mysecret
    remoteRef: {key: /credentials}
"""
    result = convert_text(text)
    assert result.issues == []
    assert any("spec.data[0].sourceRef.storeRef: names no store" in n for n in result.notes)
    es = parse_object(result.documents[0], default_namespace="n")
    assert es.spec.storeless_items() == ("spec.data[0]",)


def test_at_least_45_of_esos_documented_examples_convert_cleanly_the_rest_are_esos_own_defects() -> None:
    if not SHARED.is_dir():
        pytest.skip("shared ESO examples not present")
    files = sorted(SHARED.glob("*.yaml"))
    failing = sorted(p.name for p in files if convert_text(p.read_text(encoding="utf-8"), p.name).issues)
    # ESO's own defects: invalid YAML, a duplicate key, catalogue stores listing five providers,
    # a ClusterPushSecret selecting both a Secret and a generator.
    defects = {"pkcs12-template-v2-external-secret.yaml", "full-external-secret.yaml", "full-secret-store.yaml",
               "full-cluster-secret-store.yaml", "full-cluster-push-secret.yaml"}
    assert set(failing) <= defects, failing
    assert len(files) - len(failing) >= 45, failing
