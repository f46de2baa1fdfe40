"""Scanning files: where values stand (paths, lines, containers), formats, suppression, bad input."""

from __future__ import annotations

import base64
import json
import os
import textwrap
from pathlib import Path

import pytest

from secretsync.migrator.findings import Finding
from secretsync.scan import ScanOptions, scan_objects, scan_paths, split_path

PW = "Xq7-pw-" + "u3Vt9"  # a password-ish value, not credential-shaped
TOKEN = "gh" + "p_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def findings(root: Path, **opts: object) -> list[Finding]:
    result = scan_paths([root], ScanOptions(**opts))  # type: ignore[arg-type]
    return [d.finding for d in result.detections]


def by_key(found: list[Finding]) -> dict[str, Finding]:
    return {f.key: f for f in found}


POD_SPECS = {
    "Deployment": ("apps/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec", "      "),
    "StatefulSet": ("apps/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec", "      "),
    "DaemonSet": ("apps/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec", "      "),
    "ReplicaSet": ("apps/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec", "      "),
    "ReplicationController": ("v1", "spec:\n  template:\n    spec:\n", "spec.template.spec", "      "),
    "Job": ("batch/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec", "      "),
    "CronJob": ("batch/v1", "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n",
                "spec.jobTemplate.spec.template.spec", "          "),
    "Pod": ("v1", "spec:\n", "spec", "  "),
    "PodTemplate": ("v1", "template:\n  spec:\n", "template.spec", "    "),
}


@pytest.mark.parametrize("kind", sorted(POD_SPECS))
def test_env_values_in_every_workload_kind(tmp_path: Path, kind: str) -> None:
    api, head, spec_path, ind = POD_SPECS[kind]
    body = (f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: w\n  namespace: ns\n{head}"
            f"{ind}initContainers:\n{ind}- name: init\n{ind}  env:\n{ind}  - name: DB_PASSWORD\n"
            f"{ind}    value: {PW}\n"
            f"{ind}containers:\n{ind}- name: app\n{ind}  env:\n{ind}  - name: DB_USER\n{ind}    value: app\n"
            f"{ind}  - name: MYSQL_ROOT_PASSWORD\n{ind}    value: \"{PW}\"\n"
            f"{ind}ephemeralContainers:\n{ind}- name: debug\n{ind}  env:\n{ind}  - name: API_TOKEN\n"
            f"{ind}    value: {PW}\n")
    (tmp_path / "w.yaml").write_text(body)
    found = findings(tmp_path)
    lines = body.splitlines()
    assert {f.path for f in found} == {
        f"{spec_path}.initContainers[0].env[0].value",
        f"{spec_path}.containers[0].env[1].value",
        f"{spec_path}.ephemeralContainers[0].env[0].value",
    }
    for f in found:
        assert f.resource == f"{kind}/ns/w" and f.location == "env" and f.file == "w.yaml"
        assert PW in lines[f.line - 1]  # the line where the value stands
        assert f.container in ("init", "app", "debug")
        assert f.preview == "***" or f.preview.endswith("***")


def test_secret_key_refs_and_references_are_not_findings(tmp_path: Path) -> None:
    write(tmp_path, "d.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: d}
        spec:
          template:
            spec:
              volumes:
              - name: tls
                secret: {secretName: app-tls}
              containers:
              - name: app
                envFrom:
                - secretRef: {name: app-env}
                env:
                - name: DB_PASSWORD
                  valueFrom:
                    secretKeyRef: {name: db, key: password}
                - name: URL
                  value: postgres://app:$(DB_PASSWORD)@db/app
                - name: TOKEN_FILE
                  value: /var/run/secrets/token
    """)
    assert findings(tmp_path) == []


def test_command_and_args_flags(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: p}}
        spec:
          containers:
          - name: app
            command: [server, --db-password={PW}]
            args:
            - --api-token
            - {PW}
            - -p
            - "8080"
            - -Dspring.datasource.password={PW}
            - --password-file=/etc/pw
          - name: client
            command:
            - sh
            - -c
            - |
              mysqladmin ping
              mysql -h db -uroot -p{PW} -e 'select 1'
              curl -u admin:{PW} https://api
    """)
    found = findings(tmp_path)
    got = {(f.container, f.path, f.key) for f in found}
    assert got == {
        ("app", "spec.containers[0].command[1]", "db-password"),
        ("app", "spec.containers[0].args[1]", "api-token"),
        ("app", "spec.containers[0].args[4]", "spring.datasource.password"),
        ("client", "spec.containers[1].command[2]", "password"),
        ("client", "spec.containers[1].command[2]", "u"),
    }
    text = (tmp_path / "p.yaml").read_text().splitlines()
    for f in found:
        assert f.location == "arg"
        assert PW in text[f.line - 1]


def test_flags_inside_env_values(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: p}}
        spec:
          containers:
          - name: app
            env:
            - name: JAVA_OPTS
              value: -Xmx1g -Dspring.datasource.password={PW} -Dserver.port=80
    """)
    [f] = findings(tmp_path)
    assert (f.key, f.subkey, f.location, f.line) == ("JAVA_OPTS", "spring.datasource.password", "env", 9)


def test_configmap_values_and_embedded_files(tmp_path: Path) -> None:
    write(tmp_path, "cm.yaml", f"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: cm, namespace: ns}}
        data:
          LOG_LEVEL: debug
          SMTP_PASSWORD: "{PW}"
          application.properties: |
            server.port=8080
            spring.datasource.username=app
            spring.datasource.password={PW}
          app.env: |
            export API_TOKEN="{PW}"
            HOST=db
          config.json: |
            {{"db": {{"host": "x", "password": "{PW}"}}}}
          config.yaml: |
            auth:
              token: {PW}
              tokenFile: /etc/token
          my.cnf: |
            [client]
            user = root
            password = {PW}
          web.config: |
            <configuration><appSettings>
              <add key="DbPassword" value="{PW}" />
            </appSettings></configuration>
          redis.conf: |
            port 6379
            requirepass {PW}
          nginx.conf: |
            location / {{
              proxy_set_header Authorization "Bearer {TOKEN}";
            }}
    """)
    found = findings(tmp_path)
    text = (tmp_path / "cm.yaml").read_text().splitlines()
    got = {(f.path, f.subkey, f.location) for f in found}
    assert got == {
        ("data.SMTP_PASSWORD", None, "configmap"),
        ('data["application.properties"]', "spring.datasource.password", "configmap-embedded"),
        ('data["app.env"]', "API_TOKEN", "configmap-embedded"),
        ('data["config.json"]', "db.password", "configmap-embedded"),
        ('data["config.yaml"]', "auth.token", "configmap-embedded"),
        ('data["my.cnf"]', "client.password", "configmap-embedded"),
        ('data["web.config"]', "DbPassword", "configmap-embedded"),
        ('data["redis.conf"]', "requirepass", "configmap-embedded"),
        ('data["nginx.conf"]', "github-token#1", "configmap-embedded"),
    }
    for f in found:
        assert f.resource == "ConfigMap/ns/cm"
        assert PW in text[f.line - 1] or TOKEN in text[f.line - 1], f


def test_secret_objects_every_value_but_certificates(tmp_path: Path) -> None:
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    key = "-----BEGIN RSA PRIV" + "ATE KEY-----\n" + "\n".join(["QUJD" * 16] * 4) + "\n-----END RSA PRIVATE KEY-----\n"
    cert = "-----BEGIN CERTIFICATE-----\nMIIB" + "QUJD" * 10 + "\n-----END CERTIFICATE-----\n"
    write(tmp_path, "s.yaml", f"""
        apiVersion: v1
        kind: Secret
        metadata: {{name: s, namespace: ns}}
        type: kubernetes.io/tls
        data:
          tls.crt: {b64(cert)}
          tls.key: {b64(key)}
          ca.crt: {b64(cert)}
          username: {b64("admin")}
          empty: ""
          keystore.jks: {base64.b64encode(bytes(range(256))).decode()}
          broken: not*base64
        stringData:
          password: {PW}
          ref: ${{DB_PASSWORD}}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {{name: sa-token}}
        type: kubernetes.io/service-account-token
    """)
    result = scan_paths([tmp_path])
    got = {d.finding.path: d for d in result.detections}
    assert set(got) == {'data["tls.key"]', "data.username", 'data["keystore.jks"]', "data.broken",
                        "stringData.password"}
    assert got['data["tls.key"]'].finding.rule == "private-key"
    assert got["data.username"].value.reveal() == b"admin"  # decoded: what the migrator moves
    assert got['data["keystore.jks"]'].value.reveal() == bytes(range(256))
    assert got["stringData.password"].finding.rule == "secret-object"
    assert got["stringData.password"].finding.location == "secret"
    assert [e.path for e in result.errors] == ["data.broken"]
    assert "base64" in result.errors[0].message and result.errors[0].resource == "Secret/ns/s"


def test_list_kinds_keep_document_paths(tmp_path: Path) -> None:
    write(tmp_path, "l.yaml", f"""
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {{name: a}}
          data: {{REDIS_PASSWORD: "{PW}"}}
        - apiVersion: v1
          kind: Secret
          metadata: {{name: b}}
          stringData: {{token: "{PW}"}}
        ---
        apiVersion: v1
        kind: SecretList
        items:
        - metadata: {{name: c}}
          stringData: {{token: "{PW}"}}
    """)
    got = {(f.resource, f.path, f.document) for f in findings(tmp_path)}
    assert got == {("ConfigMap//a", "items[0].data.REDIS_PASSWORD", 0),
                   ("Secret//b", "items[1].stringData.token", 0),
                   ("Secret//c", "items[0].stringData.token", 1)}


def test_json_manifests(tmp_path: Path) -> None:
    write(tmp_path, "j.json", f"""
        {{
          "apiVersion": "v1",
          "kind": "Pod",
          "metadata": {{"name": "j"}},
          "spec": {{"containers": [{{"name": "c", "env": [
            {{"name": "DB_USER", "value": "app"}},
            {{"name": "DB_PASSWORD", "value": "{PW}"}}
          ]}}]}}
        }}
    """)
    [f] = findings(tmp_path)
    assert (f.path, f.line, f.file) == ("spec.containers[0].env[1].value", 7, "j.json")


def test_helm_values(tmp_path: Path) -> None:
    write(tmp_path, "chart/Chart.yaml", "apiVersion: v2\nname: shop\nversion: 1.0.0\n")
    write(tmp_path, "chart/values-prod.yaml", f"""
        image: {{repository: shop, tag: v1}}
        postgresql:
          auth:
            existingSecret: ""
            password: "{PW}"
            secretKeys: {{adminPasswordKey: postgres-password}}
        extraEnv:
        - name: API_TOKEN
          value: {PW}
        ingress:
          tls: [{{secretName: shop-tls}}]
    """)
    write(tmp_path, "other/values.yaml", f"smtp:\n  password: {PW}\n")
    # no Chart.yaml, but named like a values file (helm -f values-dev.yaml): still values
    write(tmp_path, "other/values-dev.yaml", f"smtp:\n  password: {PW}\n")
    write(tmp_path, "other/settings.yaml", f"smtp:\n  password: {PW}\n")  # neither an object nor values
    got = {(f.file, f.path, f.key, f.line, f.resource) for f in findings(tmp_path)}
    assert got == {
        ("chart/values-prod.yaml", "postgresql.auth.password", "password", 5, "HelmValues//shop"),
        ("chart/values-prod.yaml", "extraEnv[0].value", "API_TOKEN", 9, "HelmValues//shop"),
        ("other/values.yaml", "smtp.password", "password", 2, "HelmValues//other"),
        ("other/values-dev.yaml", "smtp.password", "password", 2, "HelmValues//other"),
    }


def test_helm_templates_are_scanned_tolerantly(tmp_path: Path) -> None:
    write(tmp_path, "chart/Chart.yaml", "apiVersion: v2\nname: c\nversion: 1.0.0\n")
    write(tmp_path, "chart/templates/secret.yaml", f"""
        {{{{- if .Values.create }}}}
        apiVersion: v1
        kind: Secret
        metadata:
          name: {{{{ include "c.fullname" . }}}}
          labels:
            {{{{- include "c.labels" . | nindent 4 }}}}
        stringData:
          password: {{{{ .Values.password | quote }}}}
          literal: "{PW}"
        {{{{- end }}}}
    """)
    result = scan_paths([tmp_path])
    assert not result.errors
    [d] = result.detections
    assert (d.finding.path, d.finding.line, d.finding.extra.get("templated")) == ("stringData.literal", 10, True)
    assert d.finding.resource == "Secret//{{ }}"


def test_kustomize_generators(tmp_path: Path) -> None:
    write(tmp_path, "k/db.env", f"# creds\nDB_PASSWORD={PW}\nEMPTY=\n")
    write(tmp_path, "k/app.env", f"DB_HOST=db\nAPI_TOKEN={PW}\n")
    write(tmp_path, "k/certs/tls.key", "-----BEGIN EC PRIV" + "ATE KEY-----\n" + "QUJD" * 20 +
          "\n-----END EC PRIVATE KEY-----\n")
    write(tmp_path, "k/app.properties", f"a=b\nmail.password={PW}\n")
    write(tmp_path, "k/kustomization.yaml", f"""
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namespace: prod
        secretGenerator:
        - name: db
          envs: [db.env]
          literals:
          - password={PW}
          - user=admin
          files:
          - tls.key=certs/tls.key
        configMapGenerator:
        - name: app
          env: app.env
          files: [app.properties]
          literals:
          - LOG_LEVEL=info
          - SMTP_PASSWORD="{PW}"
        - name: missing
          envs: [nope.env, ../../../etc/passwd]
    """)
    result = scan_paths([tmp_path])
    got = {(f.file, f.line, f.resource, f.path, f.key, f.location) for f in (d.finding for d in result.detections)}
    assert got == {
        ("k/db.env", 2, "Secret/prod/db", "secretGenerator[0].envs[0]", "DB_PASSWORD", "kustomize-envfile"),
        ("k/kustomization.yaml", 8, "Secret/prod/db", "secretGenerator[0].literals[0]", "password",
         "kustomize-literal"),
        ("k/kustomization.yaml", 9, "Secret/prod/db", "secretGenerator[0].literals[1]", "user",
         "kustomize-literal"),
        ("k/certs/tls.key", 1, "Secret/prod/db", "secretGenerator[0].files[0]", "tls.key", "kustomize-envfile"),
        ("k/app.env", 2, "ConfigMap/prod/app", "configMapGenerator[0].env", "API_TOKEN", "kustomize-envfile"),
        ("k/app.properties", 2, "ConfigMap/prod/app", "configMapGenerator[0].files[0]", "mail.password",
         "kustomize-envfile"),
        ("k/kustomization.yaml", 18, "ConfigMap/prod/app", "configMapGenerator[0].literals[1]", "SMTP_PASSWORD",
         "kustomize-literal"),
    }
    messages = [str(e) for e in result.errors]
    assert any("nope.env" in m for m in messages)
    assert any("outside the scanned tree" in m for m in messages)


def test_kustomize_inline_patches(tmp_path: Path) -> None:
    write(tmp_path, "kustomization.yaml", f"""
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Component
        patches:
        - patch: |-
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: cart
            spec:
              template:
                spec:
                  containers:
                    - name: server
                      env:
                      - name: DB_PASSWORD
                        value: {PW}
                      - name: ALLOYDB_SECRET_NAME
                        value: ALLOYDB_SECRET_NAME_VAL
    """)
    [f] = findings(tmp_path)
    assert f.path == "patches[0].patch::spec.template.spec.containers[0].env[0].value"
    assert f.line == 16 and f.resource == "Deployment//cart"
    assert split_path(f.path)[-3:] == ["env", 0, "value"]


def test_inline_ignore_comments(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: p}}
        spec:
          containers:
          - name: app
            env:
            - name: A_PASSWORD
              value: {PW}  # secretsync:ignore
            # secretsync:ignore
            - name: B_PASSWORD
              value: {PW}
            - name: C_PASSWORD
              # secretsync:ignore=keyword-password
              value: {PW}
            - name: D_PASSWORD
              # secretsync:ignore=aws-access-key
              value: {PW}
            - name: E_PASSWORD
              value: {PW}
    """)
    result = scan_paths([tmp_path])
    assert {d.finding.key for d in result.detections} == {"D_PASSWORD", "E_PASSWORD"}
    assert result.suppressed == 3
    result = scan_paths([tmp_path], ScanOptions(inline_ignore=False))
    assert len(result.detections) == 5


def test_baseline_and_stable_fingerprints(tmp_path: Path) -> None:
    body = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: a\n    env:\n" \
           f"    - name: DB_PASSWORD\n      value: {PW}\n"
    write(tmp_path, "p.yaml", body)
    first = {f.fingerprint for f in findings(tmp_path)}
    write(tmp_path, "p.yaml", "# a comment that shifts lines\n\n" + body)
    second = {f.fingerprint for f in findings(tmp_path)}
    assert first == second and len(first) == 1
    result = scan_paths([tmp_path], ScanOptions(baseline=frozenset(first)))
    assert result.detections == [] and result.suppressed == 1


def test_min_confidence_filters(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
          "  - name: a\n    env:\n    - name: DB_PASSWORD\n      value: changeme\n")
    assert len(findings(tmp_path)) == 1
    assert findings(tmp_path, min_confidence="high") == []


def test_malformed_resources_are_errors_naming_the_field(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: a}}
        spec:
          containers:
          - name: x
            env: "notalist"
          - "not a container"
          - name: y
            env:
            - "not an env var"
            - name: V
              value: {{nested: map}}
            - name: DB_PASSWORD
              value: {PW}
            command: "not a list"
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: b}}
        spec:
          containers: null
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: c}}
        spec: "nope"
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: d}}
        data: [1, 2]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: e}}
        spec:
          template:
            spec:
              containers: {{not: list}}
    """)
    result = scan_paths([tmp_path])
    assert [d.finding.key for d in result.detections] == ["DB_PASSWORD"]
    paths = {(e.resource, e.path) for e in result.errors}
    assert paths == {
        ("Pod//a", "spec.containers[0].env"),
        ("Pod//a", "spec.containers[1]"),
        ("Pod//a", "spec.containers[2].env[0]"),
        ("Pod//a", "spec.containers[2].env[1].value"),
        ("Pod//a", "spec.containers[2].command"),
        ("Pod//c", "spec"),
        ("ConfigMap//d", "data"),
        ("Deployment//e", "spec.template.spec.containers"),
    }
    assert all(e.file == "bad.yaml" for e in result.errors)


def test_bad_files_are_errors_and_the_scan_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    write(root, "good.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: g}}\ndata: {{DB_PASSWORD: {PW}}}\n")
    write(root, "broken.yaml", "a: [unclosed\n")
    (root / "binary.yaml").write_bytes(b"\x00\x01\x02kind: Secret")
    (root / "latin1.yaml").write_bytes(b"kind: ConfigMap\ndata: {a: caf\xe9}\n")
    write(root, "huge.yaml", "a: " + "x" * 2000 + "\n")
    outside = write(tmp_path, "outside.yaml", "kind: Secret\nstringData: {a: b}\n")
    os.symlink(outside, root / "link.yaml")
    os.symlink(tmp_path, root / "linkdir")
    write(root, "not-yaml.txt", "password=whatever\n")
    result = scan_paths([root], ScanOptions(max_file_size=1000))
    assert [d.finding.file for d in result.detections] == ["good.yaml"]
    errors = {e.file: e.message for e in result.errors}
    assert "malformed YAML" in errors["broken.yaml"]
    assert "binary" in errors["binary.yaml"]
    assert "UTF-8" in errors["latin1.yaml"]
    assert "limit" in errors["huge.yaml"]
    assert "outside the scanned tree" in errors["link.yaml"]
    assert "outside the scanned tree" in errors["linkdir"]
    assert "not-yaml.txt" not in errors


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.yaml", "kind: Secret\n")
    path.chmod(0)
    try:
        result = scan_paths([tmp_path])
    finally:
        path.chmod(0o600)
    assert "cannot read" in result.errors[0].message


def test_values_alias_bomb_is_an_error_not_a_hang(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join(f"*{prev}" for _ in range(10)) + "]")
    write(tmp_path, "values.yaml", "\n".join(lines) + "\n")
    result = scan_paths([tmp_path], ScanOptions(max_nodes_per_document=50_000))
    assert result.errors and "too many values" in result.errors[0].message


def test_a_file_argument_is_reported_as_given(tmp_path: Path) -> None:
    path = write(tmp_path, "sub/p.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: g}}\n"
                 f"data: {{DB_PASSWORD: {PW}}}\n")
    result = scan_paths([str(path)])
    assert result.detections[0].finding.file == str(path)
    assert scan_paths([tmp_path / "missing.yaml"]).errors[0].message == "no such file or directory"


def test_live_objects_skip_managed_tokens_and_owned_pods() -> None:
    env = [{"name": "DB_PASSWORD", "value": PW}]
    pod_spec = {"containers": [{"name": "c", "env": env}]}
    objects = [
        {"kind": "Deployment", "metadata": {"name": "d", "namespace": "n", "uid": "u-d"},
         "spec": {"template": {"spec": pod_spec}}},
        {"kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "n", "uid": "u-rs",
                                            "ownerReferences": [{"uid": "u-d", "controller": True}]},
         "spec": {"template": {"spec": pod_spec}}},
        {"kind": "Pod", "metadata": {"name": "p1", "namespace": "n", "uid": "u-p1",
                                     "ownerReferences": [{"uid": "u-rs", "controller": True}]}, "spec": pod_spec},
        {"kind": "Pod", "metadata": {"name": "orphan", "namespace": "n", "uid": "u-p2",
                                     "ownerReferences": [{"uid": "gone", "controller": True}]}, "spec": pod_spec},
        {"kind": "Secret", "metadata": {"name": "mine", "namespace": "n",
                                        "labels": {"app.kubernetes.io/managed-by": "secretsync"}},
         "data": {"k": base64.b64encode(PW.encode()).decode()}},
        {"kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {"name": "t", "namespace": "n"},
         "data": {"token": base64.b64encode(PW.encode()).decode()}},
        {"kind": "Secret", "type": "helm.sh/release.v1", "metadata": {"name": "h", "namespace": "n"},
         "data": {"release": base64.b64encode(PW.encode()).decode()}},
        {"kind": "Secret", "type": "Opaque", "metadata": {"name": "plain", "namespace": "n"},
         "data": {"password": base64.b64encode(PW.encode()).decode()}},
        "not an object",
    ]
    result = scan_objects(objects)  # type: ignore[arg-type]
    got = {(d.finding.resource, d.finding.path) for d in result.detections}
    assert got == {("Deployment/n/d", "spec.template.spec.containers[0].env[0].value"),
                   ("Pod/n/orphan", "spec.containers[0].env[0].value"),
                   ("Secret/n/plain", "data.password")}
    for d in result.detections:
        assert d.finding.source == "cluster" and d.finding.file is None and d.finding.line is None
        assert d.value.reveal() == PW.encode()


def test_special_files_and_dangling_links_are_errors(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")  # reading it would block forever
    os.symlink(tmp_path / "gone.yaml", tmp_path / "dangling.yaml")
    result = scan_paths([tmp_path])
    errors = {e.file: e.message for e in result.errors}
    assert "not a regular file" in errors["pipe.yaml"]
    assert "outside the scanned tree" in errors["dangling.yaml"] or "broken" in errors["dangling.yaml"]


def test_values_shaped_like_popular_charts(tmp_path: Path) -> None:
    """Knobs real charts ship (bitnami, grafana, argo-cd, vault, alertmanager): only the secrets fire."""
    hook = "https://hooks.slack.com/services/T" + "Q4W7E2R9" + "/B" + "K8L3M6N1P5" + "/" + "aB3dE5fG7hJ9kL1mN3pQ5rS7"
    write(tmp_path, "values.yaml", f"""
        global:
          postgresql:
            auth: {{postgresPassword: "", existingSecret: ""}}
        auth:
          enablePostgresUser: true
          username: app
          password: ""
          replicationUsername: repl_user
          secretKeys:
            adminPasswordKey: postgres-password
            userPasswordKey: password
          usePasswordFiles: false
        tls:
          certificatesSecret: ""
          certKeyFilename: tls.key
        grafana:
          adminUser: admin
          adminPassword: prom-operator
          grafana.ini:
            security: {{admin_password: {PW}}}
        ldap:
          bindpw: {PW}
        vault:
          server:
            dev: {{enabled: true, devRootToken: root}}
        podAnnotations:
          vault.hashicorp.com/agent-inject: "true"
          vault.hashicorp.com/agent-inject-secret-db: database/creds/app
          checksum/secret: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
        tolerations:
        - {{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}}
        controller:
          admissionWebhooks:
            certificate: /usr/local/certificates/cert
            key: /usr/local/certificates/key
        alertmanager:
          config:
            global: {{resolve_timeout: 5m, slack_api_url: "{hook}"}}
            receivers:
            - name: pager
              pagerduty_configs:
              - routing_key: 0f1e2d3c4b5a69788796a5b4c3d2e1f0
        jwt:
          publicKey: |
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
            -----END PUBLIC KEY-----
        serviceAccount: {{create: true, name: ""}}
        imagePullSecrets: []
    """)
    got = {(f.path, f.rule) for f in findings(tmp_path)}
    assert got == {
        ("grafana.adminPassword", "keyword-password"),
        ('grafana["grafana.ini"].security.admin_password', "keyword-password"),
        ("ldap.bindpw", "keyword-password"),
        ("vault.server.dev.devRootToken", "keyword-token"),
        ("alertmanager.config.global.slack_api_url", "slack-webhook"),
        ("alertmanager.config.receivers[0].pagerduty_configs[0].routing_key", "generic-key"),
    }


def test_base64_wrapped_material_in_embedded_kubeconfig(tmp_path: Path) -> None:
    cert = "-----BEGIN CERTIFICATE-----\nMIIC" + "QUJD" * 40 + "\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN RSA PRIV" + "ATE KEY-----\n" + "QUJDRGVm" * 30 + "\n-----END RSA PRIVATE KEY-----\n"
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    write(tmp_path, "cm.yaml", f"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: cluster-info, namespace: kube-public}}
        data:
          kubeconfig: |
            apiVersion: v1
            clusters:
            - cluster:
                certificate-authority-data: {b64(cert)}
                server: https://10.0.0.1:6443
              name: ""
            users:
            - name: admin
              user:
                client-certificate-data: {b64(cert)}
                client-key-data: {b64(key)}
    """)
    [f] = findings(tmp_path)
    assert (f.subkey, f.rule, f.line) == ("users[0].user.client-key-data", "private-key", 16)


def test_live_secrets_written_by_controllers_are_skipped() -> None:
    data = {"tls.key": base64.b64encode(b"-----BEGIN EC PRIV" + b"ATE KEY-----\n" + b"QUJD" * 30).decode(),
            "password": base64.b64encode(PW.encode()).decode()}
    objects = [
        {"kind": "Secret", "metadata": {"name": "from-es", "namespace": "n", "ownerReferences": [
            {"kind": "ExternalSecret", "uid": "x", "controller": True}]}, "data": data},
        {"kind": "Secret", "metadata": {"name": "cert", "namespace": "n",
                                        "annotations": {"cert-manager.io/certificate-name": "web"}}, "data": data},
        {"kind": "Secret", "metadata": {"name": "hand-made", "namespace": "n"}, "data": data},
    ]
    result = scan_objects(objects)
    assert {d.finding.resource for d in result.detections} == {"Secret/n/hand-made"}
    # In manifests the same objects are plaintext in git: no skipping.
    assert len(scan_objects(objects, source="manifest").detections) == 6


def test_keys_an_external_secret_merges_into_a_live_secret_are_skipped_and_the_others_scanned() -> None:
    """creationPolicy Merge: the controller writes the listed keys from the provider into a Secret it
    does not own (no managed-by label); those are a synced copy, the Secret's other keys are not."""
    pw = base64.b64encode(PW.encode()).decode()
    other = base64.b64encode(b"Hn4-xQ8s-" + b"left-behind").decode()
    ann = {"merge.secretsync.io/payments": json.dumps({"keys": ["API_KEY"], "labels": [], "annotations": []})}
    objects = [
        {"kind": "Secret", "metadata": {"name": "payments", "namespace": "n", "annotations": ann},
         "data": {"API_KEY": pw, "DB_PASSWORD": other}},
        {"kind": "Secret", "metadata": {"name": "legacy", "namespace": "n",
                                        "annotations": {"secretsync.io/merged-keys": "API_KEY"}},
         "data": {"API_KEY": pw}},
        {"kind": "Secret", "metadata": {"name": "garbled", "namespace": "n",
                                        "annotations": {"merge.secretsync.io/x": "not json"}},
         "data": {"API_KEY": pw}},
    ]
    got = {(d.finding.resource, d.finding.path) for d in scan_objects(objects).detections}
    assert got == {("Secret/n/payments", "data.DB_PASSWORD"), ("Secret/n/garbled", "data.API_KEY")}
    assert len(scan_objects(objects, source="manifest").detections) == 4
