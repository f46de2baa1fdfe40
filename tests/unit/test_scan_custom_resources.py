"""Custom resources get the same care as Deployments and ConfigMaps.

Written as a data-platform team would find it: the same password in a Deployment env is found,
so it must be found in a RayCluster's worker env, a JobSet's job template, an Argo Workflow
step, a Kafka Connect connector's ``config`` and a Strimzi ``sasl.jaas.config``. CRs that name
secrets rather than hold them (ExternalSecret, cert-manager) stay quiet.
"""

from __future__ import annotations

import textwrap

import pytest

from secretsync.scan import scan_text

PW = "Rk8-cr-" + "pw-" + "u3Vt9"
JAAS = "org.apache.kafka.common.security.plain.PlainLoginModule required"


def found(text: str) -> dict[str, tuple[str, str | None, int | None]]:
    result = scan_text(textwrap.dedent(text).lstrip("\n"), "cr.yaml")
    assert result.errors == []
    return {f.path: (f.rule, f.container, f.line) for f in result.findings}


def test_env_in_every_pod_template_of_a_raycluster() -> None:
    got = found(f"""
        apiVersion: ray.io/v1
        kind: RayCluster
        metadata: {{name: rc}}
        spec:
          headGroupSpec:
            template:
              spec:
                containers:
                - name: head
                  env:
                  - {{name: DB_PASSWORD, value: {PW}}}
          workerGroupSpecs:
          - groupName: gpu
            template:
              spec:
                initContainers:
                - name: init
                  args: ["--password={PW}"]
                containers:
                - name: worker
                  env:
                  - {{name: API_TOKEN, value: {PW}}}
        """)
    assert got == {
        "spec.headGroupSpec.template.spec.containers[0].env[0].value": ("keyword-password", "head", 11),
        "spec.workerGroupSpecs[0].template.spec.initContainers[0].args[0]": ("keyword-password", "init", 18),
        "spec.workerGroupSpecs[0].template.spec.containers[0].env[0].value": ("keyword-token", "worker", 22),
    }


def test_jobset_and_argo_workflow_containers() -> None:
    got = found(f"""
        apiVersion: jobset.x-k8s.io/v1alpha2
        kind: JobSet
        metadata: {{name: js}}
        spec:
          replicatedJobs:
          - name: workers
            template:
              spec:
                template:
                  spec:
                    containers:
                    - name: w
                      env:
                      - {{name: MYSQL_PASSWORD, value: {PW}}}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {{generateName: wf-}}
        spec:
          templates:
          - name: main
            container:
              image: alpine
              env:
              - {{name: API_SECRET, value: {PW}}}
          - name: script
            script:
              image: python
              command: [python]
              args: ["--db-password", "{PW}"]
              source: print(1)
        """)
    assert set(got) == {
        "spec.replicatedJobs[0].template.spec.template.spec.containers[0].env[0].value",
        "spec.templates[0].container.env[0].value",
        "spec.templates[1].script.args[1]",
    }


def test_keyword_rules_apply_to_kafka_connect_and_strimzi_specs() -> None:
    got = found(f"""
        apiVersion: kafka.strimzi.io/v1beta2
        kind: KafkaConnector
        metadata: {{name: sink}}
        spec:
          class: io.confluent.connect.jdbc.JdbcSinkConnector
          tasksMax: 2
          config:
            connection.url: jdbc:postgresql://db:5432/app
            connection.user: app
            connection.password: {PW}
            topics: orders
        ---
        apiVersion: kafka.strimzi.io/v1beta2
        kind: KafkaConnect
        metadata: {{name: connect}}
        spec:
          config:
            sasl.jaas.config: {JAAS} username="app" password="{PW}";
            sasl.mechanism: PLAIN
        """)
    assert set(got) == {"spec.config[\"connection.password\"]", "spec.config[\"sasl.jaas.config\"]"}
    assert got["spec.config[\"connection.password\"]"][2] == 10


def test_demo_words_in_a_custom_resource_are_reported_low_like_anywhere_else() -> None:
    result = scan_text("apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaConnector\nmetadata: {name: c}\n"
                       "spec:\n  config:\n    database.password: foo\n", "cr.yaml")
    assert [(f.confidence, f.extra.get("note")) for f in result.findings] == [("low", "demo-value")]


@pytest.mark.parametrize("body", [
    "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: e}\nspec:\n"
    "  secretStoreRef: {name: vault, kind: SecretStore}\n  data:\n  - secretKey: password\n"
    "    remoteRef: {key: app/db, property: password}\n",
    "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec:\n  secretName: web-tls\n"
    "  keystores:\n    pkcs12:\n      create: true\n      passwordSecretRef: {name: pkcs12-pass, key: password}\n",
    "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\nspec:\n  endpoints:\n"
    "  - port: http\n    basicAuth:\n      password: {name: mon-auth, key: password}\n",
])
def test_custom_resources_that_name_secrets_are_not_findings(body: str) -> None:
    assert scan_text(body, "cr.yaml").findings == []
