"""Detection on manifests in the style of popular charts and apps that the detectors were not
written against: bitnami-style values, Grafana, Keycloak, Spring Boot, Alertmanager, Argo CD,
registry and TLS Secrets, CronJobs, init containers, JSON manifests, kustomize overlays, Helm
templates, connection strings, cloud keys and many decoys that must stay clean."""

from __future__ import annotations

import base64
import datetime
import json
import textwrap
from pathlib import Path

import pytest

from secretsync.scan import scan_paths

# Credential-shaped values are built at runtime (no literal keys in the repo).
AWS_ID = "AKIA" + "T4RZ2K7PLM9QWX3B"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzq3Rt5Lk8W"
SLACK_HOOK = "https://hooks.slack.com/services/" + "T0ABCDEFG/B0HIJKLMN/q8w9e7r6t5y4u3i2o1p0aZxC"


def _pem_pair() -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime.datetime(2024, 1, 1))
            .not_valid_after(datetime.datetime(2030, 1, 1)).sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _indent(text: str, n: int) -> str:
    return textwrap.indent(text.strip("\n"), " " * n)


def _tree(tmp_path: Path) -> dict[str, str]:
    pem, crt = _pem_pair()
    docker = json.dumps({"auths": {"harbor.mycorp.io": {"auth": _b64("robot$ci:Zx9Qw8Er7Ty6")}}})
    files = {
        # bitnami postgresql / redis / mariadb values (the last one kept outside its chart)
        "postgresql/Chart.yaml": "apiVersion: v2\nname: postgresql\nversion: 13.2.24\n",
        "postgresql/values.yaml": """
            global:
              postgresql:
                auth: {postgresPassword: "", username: "", password: "", existingSecret: ""}
            image: {registry: docker.io, repository: bitnami/postgresql, tag: 16.1.0-debian-11-r15, digest: ""}
            auth:
              enablePostgresUser: true
              postgresPassword: "Sup3rS3cretPg!"
              username: app
              password: "appuserpw2024"
              replicationUsername: repl_user
              replicationPassword: "r3pl1cat1on"
              existingSecret: ""
              secretKeys:
                adminPasswordKey: postgres-password
                userPasswordKey: password
              usePasswordFiles: false
            primary:
              extendedConfiguration: |
                max_connections = 200
            """,
        "redis/values.yaml": """
            auth:
              enabled: true
              password: "r3d1sPassw0rd"
              existingSecret: ""
              existingSecretPasswordKey: password
              passwordSecretKey: password
            master:
              configuration: |-
                maxmemory-policy allkeys-lru
                requirepass hunter2redis
            """,
        "envs/mariadb-values.yaml": """
            auth:
              rootPassword: "MariaRootPw#1"
              username: bn_user
              password: "mariadbUserPass"
              forcePassword: false
            """,
        # Grafana, Keycloak, WordPress, RabbitMQ
        "apps/grafana.yaml": """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: grafana, namespace: monitoring}
            spec:
              template:
                spec:
                  containers:
                  - name: grafana
                    image: grafana/grafana:10.2.3
                    env:
                    - {name: GF_SECURITY_ADMIN_USER, value: admin}
                    - {name: GF_SECURITY_ADMIN_PASSWORD, value: "grafanaAdm1n!"}
                    - {name: GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET, value: 9f8e7d6c5b4a39281706f5e4d3c2b1a0}
                    - {name: GF_SERVER_ROOT_URL, value: "https://grafana.mycorp.io/"}
                    - {name: GF_USERS_ALLOW_SIGN_UP, value: "false"}
                    - {name: GF_PATHS_PROVISIONING, value: /etc/grafana/provisioning}
                    - {name: GF_INSTALL_PLUGINS, value: "grafana-piechart-panel,grafana-clock-panel"}
            """,
        "apps/keycloak.yaml": """
            apiVersion: apps/v1
            kind: StatefulSet
            metadata: {name: keycloak}
            spec:
              template:
                spec:
                  containers:
                  - name: keycloak
                    image: quay.io/keycloak/keycloak:23.0.3
                    args: ["start", "--db-url=jdbc:postgresql://kc-db:5432/keycloak", "--db-password=kcDbP4ss"]
                    env:
                    - {name: KEYCLOAK_ADMIN, value: admin}
                    - {name: KEYCLOAK_ADMIN_PASSWORD, value: Kc4dminPwd}
                    - {name: KC_HTTPS_KEY_STORE_PASSWORD, value: "ks-p4ssword"}
                    - {name: KC_HEALTH_ENABLED, value: true}
                    - {name: JAVA_OPTS_APPEND, value: "-Djgroups.dns.query=keycloak-headless -Xms512m"}
            """,
        "apps/wordpress.yaml": """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: wordpress}
            spec:
              template:
                spec:
                  initContainers:
                  - name: wait-db
                    image: mysql:8
                    command: [sh, -c, "until mysql -h db -p$(WORDPRESS_DB_PASSWORD) -e 'select 1'; do sleep 2; done"]
                  - name: seed
                    image: mysql:8
                    command: ["sh", "-c", "mysql -h db -u root -psecretroot wp < /seed/seed.sql"]
                  containers:
                  - name: wordpress
                    image: wordpress:6.4-apache
                    env:
                    - {name: WORDPRESS_DB_HOST, value: "db:3306"}
                    - {name: WORDPRESS_SECURE_AUTH_SALT, value: "qP4}rT8{vW2]yZ6[bC0(dF3)gH7<jK1>"}
                    - {name: WORDPRESS_DEBUG, value: "0"}
                    - {name: MAX_UPLOAD, value: 64}
                    - {name: ENABLE_CACHE, value: yes}
                    - {name: RABBITMQ_ERLANG_COOKIE, value: SWQOKODSQALRPCLNMEQG}
            """,
        # Spring Boot, Alertmanager and Prometheus configs in ConfigMaps; an nginx one that is clean
        "config/spring.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: orders-config}
            data:
              application.properties: |
                server.port=8080
                spring.datasource.url=jdbc:postgresql://orders-db:5432/orders
                spring.datasource.password=0rd3rsDbPw
                app.jwt.expiration-ms=86400000
              application.yml: |
                spring:
                  datasource:
                    url: jdbc:mysql://inventory-db:3306/inventory?useSSL=false&user=inv&password=InvPassw0rd
                    password: inv3ntoryPw
                  redis:
                    timeout: 2000ms
            """,
        "config/alertmanager.yaml": f"""
            apiVersion: v1
            kind: ConfigMap
            metadata: {{name: alertmanager-config}}
            data:
              alertmanager.yml: |
                global:
                  resolve_timeout: 5m
                  smtp_smarthost: 'smtp.gmail.com:587'
                  smtp_auth_username: 'alerts@mycorp.io'
                  smtp_auth_password: 'gmailAppPw-abcd'
                  slack_api_url: '{SLACK_HOOK}'
                receivers:
                - name: team
                  webhook_configs:
                  - url: http://alert-relay:9000/hook
            """,
        "config/nginx.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: nginx-conf}
            data:
              nginx.conf: |
                user  nginx;
                worker_processes  auto;
                events { worker_connections  1024; }
                http {
                    ssl_certificate     /etc/nginx/tls/tls.crt;
                    ssl_certificate_key /etc/nginx/tls/tls.key;
                    ssl_password_file   /etc/nginx/ssl_passwords.txt;
                    auth_basic           "Administrator's Area";
                    auth_basic_user_file /etc/nginx/.htpasswd;
                    proxy_set_header Authorization $http_authorization;
                    server { listen 80; location / { proxy_pass http://backend:8080; } }
                }
            """,
        "config/files.yaml": f"""
            apiVersion: v1
            kind: ConfigMap
            metadata: {{name: files}}
            data:
              .netrc: "machine api.mycorp.io login deploy password N3trcPw!"
              .npmrc: |
                registry=https://registry.npmjs.org/
                //npm.mycorp.io/:_authToken=Np9mT0kenXq2Lw8Rz4Vb
              credentials: |
                [default]
                aws_access_key_id = {AWS_ID}
                aws_secret_access_key = {AWS_SECRET}
              sp-key.pem: |
{_indent(pem, 16)}
              sp-cert.pem: |
{_indent(crt, 16)}
            """,
        # Argo CD repository, registry credentials, TLS
        "secrets/argocd.yaml": """
            apiVersion: v1
            kind: Secret
            metadata:
              name: private-repo
              namespace: argocd
              labels: {argocd.argoproj.io/secret-type: repository}
            stringData:
              url: https://github.com/argoproj/private-repo
              password: my-github-pat-value-xyz
            """,
        "secrets/registry-tls.yaml": f"""
            apiVersion: v1
            kind: Secret
            metadata: {{name: regcred}}
            type: kubernetes.io/dockerconfigjson
            data:
              .dockerconfigjson: {_b64(docker)}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {{name: web-tls}}
            type: kubernetes.io/tls
            data:
              tls.crt: {_b64(crt)}
              tls.key: {_b64(pem)}
            """,
        # CronJob flags, AWS keys in env, JSON manifest with connection strings
        "jobs/backup.yaml": f"""
            apiVersion: batch/v1
            kind: CronJob
            metadata: {{name: backup}}
            spec:
              jobTemplate:
                spec:
                  template:
                    spec:
                      containers:
                      - name: dump
                        image: postgres:16
                        args: ["pg_dump --dbname=postgresql://backup:B4ckupPw@db:5432/app > /backup/app.sql"]
                      - name: tool
                        image: mycorp/db-tool:1.2
                        args: ["--db-password=T00lDbPass", "--retention-days=7", "--token-ttl=3600"]
                      - name: tool2
                        image: mycorp/db-tool:1.2
                        args: ["--db-password", "Sp4ceSepPw", "--api-token", "$(API_TOKEN)"]
                      - name: upload
                        image: amazon/aws-cli
                        env:
                        - {{name: AWS_ACCESS_KEY_ID, value: {AWS_ID}}}
                        - {{name: AWS_SECRET_ACCESS_KEY, value: {AWS_SECRET}}}
                        - {{name: AWS_REGION, value: eu-west-1}}
                        - {{name: AWS_ROLE_ARN, value: "arn:aws:iam::123456789012:role/uploader"}}
            """,
        "json/api.json": json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "prod"},
            "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "mycorp/api:2.0", "env": [
                {"name": "DATABASE_URL", "value": "postgres://api:ApiDbPw2024@pg.prod.svc:5432/api?sslmode=require"},
                {"name": "MONGO_URI", "value": "mongodb+srv://mongoUser:M0ng0Pw!x@cluster0.ab1cd.mongodb.net/app"},
                {"name": "JDBC_URL", "value": "jdbc:mysql://mysql:3306/app?user=app&password=JdbcPw99"},
                {"name": "SQLSERVER", "value": "Server=tcp:db,1433;Database=app;User ID=app;Password=MsSqlPw#1"},
                {"name": "WORKERS", "value": 4},
                {"name": "DEBUG", "value": False},
                {"name": "SENTRY_DSN", "value": "https://abcdef0123456789abcdef0123456789@o1.ingest.sentry.io/1"},
            ]}]}}}}, indent=2),
        # kustomize overlay with an env file; a Helm template (references only, plus one literal)
        "kust/base/kustomization.yaml": "resources: [deploy.yaml]\nsecretGenerator:\n- name: app\n  envs: [app.env]\n",
        "kust/base/app.env": "DB_PASSWORD=kustDbPw1\n# comment\nEMPTY=\n",
        "kust/base/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: kapp}\n",
        "kust/prod/kustomization.yaml": "namespace: prod\nresources: [../base]\nsecretGenerator:\n"
                                        "- name: app\n  behavior: merge\n  envs: [prod.env]\n",
        "kust/prod/prod.env": "DB_PASSWORD=prodKustPw\n",
        "chart/Chart.yaml": "apiVersion: v2\nname: myapp\nversion: 0.1.0\n",
        "chart/templates/deployment.yaml": """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {{ include "myapp.fullname" . }}
            spec:
              template:
                metadata:
                  annotations:
                    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
                spec:
                  containers:
                    - name: {{ .Chart.Name }}
                      image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
                      env:
                        - name: DB_PASSWORD
                          value: {{ .Values.db.password | quote }}
                        {{- if .Values.extraEnv }}
                        {{- toYaml .Values.extraEnv | nindent 12 }}
                        {{- end }}
                        - name: HARDCODED_SECRET
                          value: "hc-s3cr3t-in-template"
            """,
        "chart/templates/secret.yaml": """
            apiVersion: v1
            kind: Secret
            metadata:
              name: {{ include "myapp.fullname" . }}
            data:
              password: {{ .Values.db.password | b64enc | quote }}
            """,
    }
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n") if not rel.endswith((".json", ".env")) else text)
    return files


EXPECTED = {
    ("postgresql/values.yaml", "postgresPassword"), ("postgresql/values.yaml", "password"),
    ("postgresql/values.yaml", "replicationPassword"),
    ("redis/values.yaml", "password"), ("redis/values.yaml", "requirepass"),
    ("envs/mariadb-values.yaml", "rootPassword"), ("envs/mariadb-values.yaml", "password"),
    ("apps/grafana.yaml", "GF_SECURITY_ADMIN_PASSWORD"), ("apps/grafana.yaml", "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"),
    ("apps/keycloak.yaml", "db-password"), ("apps/keycloak.yaml", "KEYCLOAK_ADMIN_PASSWORD"),
    ("apps/keycloak.yaml", "KC_HTTPS_KEY_STORE_PASSWORD"),
    ("apps/wordpress.yaml", "password"),  # mysql -psecretroot
    ("apps/wordpress.yaml", "WORDPRESS_SECURE_AUTH_SALT"), ("apps/wordpress.yaml", "RABBITMQ_ERLANG_COOKIE"),
    ("config/spring.yaml", "spring.datasource.password"), ("config/spring.yaml", "url"),
    ("config/spring.yaml", "password"),
    ("config/alertmanager.yaml", "smtp_auth_password"), ("config/alertmanager.yaml", "slack_api_url"),
    ("config/files.yaml", "password"), ("config/files.yaml", "_authToken"),
    ("config/files.yaml", "aws_access_key_id"), ("config/files.yaml", "aws_secret_access_key"),
    ("config/files.yaml", "sp-key.pem"),
    ("secrets/argocd.yaml", "password"), ("secrets/argocd.yaml", "url"),
    ("secrets/registry-tls.yaml", ".dockerconfigjson"), ("secrets/registry-tls.yaml", "tls.key"),
    ("jobs/backup.yaml", "args[0]"), ("jobs/backup.yaml", "db-password"),
    ("jobs/backup.yaml", "AWS_ACCESS_KEY_ID"), ("jobs/backup.yaml", "AWS_SECRET_ACCESS_KEY"),
    ("json/api.json", "DATABASE_URL"), ("json/api.json", "MONGO_URI"), ("json/api.json", "JDBC_URL"),
    ("json/api.json", "SQLSERVER"),
    ("kust/base/app.env", "DB_PASSWORD"), ("kust/prod/prod.env", "DB_PASSWORD"),
    ("chart/templates/deployment.yaml", "HARDCODED_SECRET"),
}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    root = tmp_path_factory.mktemp("realworld")
    _tree(root)
    result = scan_paths([root])
    assert result.errors == []
    return {(f.file or "", f.key) for f in result.findings}


def test_every_plaintext_secret_in_popular_chart_and_app_shapes_is_found(scanned: set[tuple[str, str]]) -> None:
    assert EXPECTED - scanned == set()


def test_nothing_else_is_flagged(scanned: set[tuple[str, str]]) -> None:
    # The decoys in the same files: usernames, URLs without credentials, numbers, booleans,
    # durations, paths, key names inside Secrets, $(VAR) references, Helm templates, certificates,
    # Sentry DSNs, role ARNs, the whole nginx.conf and the Spring jwt expiration in ms.
    assert scanned - EXPECTED == set()


DECOYS = {
    "ACCESS_TOKEN_TTL": "3600", "REFRESH_TOKEN_TTL": "24h", "PASSWORD_MIN_LENGTH": "12",
    "DB_SECRET_NAME": "db-credentials", "TLS_KEY_PATH": "/etc/tls/tls.key", "JWT_PUBLIC_KEY_PATH": "/keys/jwt.pub",
    "REQUEST_ID": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "GIT_COMMIT": "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "BUILD_SHA": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "OAUTH_REDIRECT_URL": "https://app.mycorp.io/oauth/callback", "TOKEN_ENDPOINT": "https://login.mycorp.io/token",
    "API_KEY_HEADER": "X-Api-Key", "SECRET_STORE": "vault", "SECRETS_MOUNT": "/var/run/secrets",
    "JWT_ALGORITHM": "RS256", "PASSWORD_HASH_ROUNDS": "10", "SESSION_COOKIE_NAME": "sid",
    "KUBERNETES_SERVICE_HOST": "10.96.0.1", "CACHE_KEY_PREFIX": "myapp", "AUTH_MODE": "oidc",
    "TOKEN_AUDIENCE": "api://default", "SIGNING_KEY_ID": "key-2024-01", "ENCRYPTION_KEY_ROTATION_DAYS": "90",
    "SECRET_KEY_BASE_FILE": "/run/secrets/skb", "AUTH_TOKEN_EXPIRY": "15m", "FEATURE_FLAGS": "new-ui,beta-search",
    "MAX_TOKENS": "4096", "KEY_SIZE": "2048", "PASSWORD_POLICY": "strong", "VAULT_ADDR": "https://vault:8200",
    "TOKEN_REVIEWER": "system:serviceaccount:kube-system:token-reviewer", "SECRET_VERSION": "latest",
    "TOKEN_LIMIT": "100000", "PASSWORD_HASHER": "argon2", "SECRET_ROTATION_SCHEDULE": "0 0 * * 0",
    "POSTGRES_PASSWORD_FILE": "/run/secrets/pg", "MYSQL_ALLOW_EMPTY_PASSWORD": "yes",
    "GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}", "API_KEY_ENABLED": "false", "SECRET_KEY_REF": "app-secrets",
    "SESSION_TIMEOUT": "1800", "TLS_CIPHERS": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
    "IMAGE": "ghcr.io/mycorp/app@sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4",
    "CONTENT_HASH": "d41d8cd98f00b204e9800998ecf8427e", "KEY_VAULT_NAME": "kv-prod-weu",
    "GOOGLE_CLIENT_ID": "1234567890-abcdefghijklmnopqrstuvwxyz123456.apps.googleusercontent.com",
    "SSH_KNOWN_HOSTS": "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "NODE_OPTIONS": "--max-old-space-size=4096", "DATABASE_URL": "postgres://db.mycorp.io:5432/app",
    "JAVA_TOOL_OPTIONS": "-XX:MaxRAMPercentage=75 -Djavax.net.ssl.trustStore=/certs/truststore.jks",
}


def test_decoys_in_env_configmaps_and_values_stay_clean(tmp_path: Path) -> None:
    env = "".join(f"        - name: {k}\n          value: {json.dumps(v)}\n" for k, v in DECOYS.items())
    (tmp_path / "decoy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: kube-system}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: d\n        image: x\n"
        "        args: [--kubeconfig=/var/lib/kube-proxy/kubeconfig.conf, --hostname-override=$(NODE_NAME),"
        " --token-auth-file=/etc/tokens.csv, --kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key]\n"
        "        env:\n" + env)
    (tmp_path / "decoy-cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n" +
        "".join(f"  {k}: {json.dumps(v)}\n" for k, v in DECOYS.items()))
    (tmp_path / "values.yaml").write_text(
        "auth:\n  existingSecret: my-secret\n  secretKeys: {userPasswordKey: user-password}\n"
        "tls:\n  certFilename: tls.crt\n  certKeyFilename: tls.key\n  existingSecret: redis-tls\n"
        + "".join(f"{k}: {json.dumps(v)}\n" for k, v in DECOYS.items()))
    result = scan_paths([tmp_path])
    assert [(f.file, f.key, f.rule) for f in result.findings] == []


def test_credentials_in_gitops_resources_and_other_fields_are_found(tmp_path: Path) -> None:
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    (tmp_path / "gitops.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata: {{name: pg, namespace: db}}
        spec:
          valuesFrom: [{{kind: Secret, name: pg-values}}]
          values:
            auth: {{postgresPassword: Flux-Inline-Pw1, existingSecret: ""}}
            primary: {{resources: {{limits: {{memory: 1Gi}}}}}}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {{name: app, namespace: argocd}}
        spec:
          source:
            repoURL: https://deploy:{token}@github.com/mycorp/charts.git
            helm:
              valuesObject:
                redis: {{password: Argo-Inline-Pw2}}
                image: {{tag: v1.2.3}}
        ---
        apiVersion: monitoring.coreos.com/v1
        kind: Prometheus
        metadata:
          name: k8s
          annotations: {{notify: "{SLACK_HOOK}", checksum/config: 5f2b1c3d4e5f6a7b8c9d0e1f2a3b4c5d}}
        spec:
          remoteWrite:
          - url: https://prometheus-prod-10.grafana.net/api/prom/push
            basicAuth:
              password: {{name: kubepromsecret, key: password}}
        """))
    got = {(f.resource, f.key, f.location) for f in scan_paths([tmp_path]).findings}
    assert got == {("HelmRelease/db/pg", "postgresPassword", "field"), ("Application/argocd/app", "password", "field"),
                   ("Application/argocd/app", "repoURL", "field"), ("Prometheus//k8s", "notify", "field")}


def test_passwords_in_sql_init_scripts_are_found_and_public_signatures_are_not(tmp_path: Path) -> None:
    (tmp_path / "db.yaml").write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: db-init}
        data:
          init.sql: |
            CREATE DATABASE app;
            CREATE USER app WITH PASSWORD 'Sq1-App-Pw';
            CREATE USER 'wp'@'%' IDENTIFIED BY 'Sq1-Wp-Pw';
            ALTER USER readonly WITH PASSWORD '${READONLY_PASSWORD}';
            GRANT ALL PRIVILEGES ON DATABASE app TO app;
        ---
        apiVersion: batch/v1
        kind: Job
        metadata: {name: grant}
        spec:
          template:
            spec:
              containers:
              - name: psql
                image: postgres:16
                command: [psql, -c, "ALTER USER postgres PASSWORD 'Sq1-Adm1n-Pw'"]
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cluster-info, namespace: kube-public}
        data:
          jws-kubeconfig-abcdef: eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..Xq3k9Zr8Yb2Jc1Lm4Np7Qs0Tv6Wx5Ya3
        """))
    found = {(f.resource, f.line, f.rule) for f in scan_paths([tmp_path]).findings}
    assert found == {("ConfigMap//db-init", 7, "sql-password"), ("ConfigMap//db-init", 8, "sql-password"),
                     ("Job//grant", 21, "sql-password")}


def test_chart_values_that_name_secrets_and_their_keys_are_not_secrets() -> None:
    from secretsync.scan.detectors import judge

    for key, value in (("clientSecretKey", "client-secret"), ("apiKeySecret", "api-key-secret"),
                       ("encryptionKeySecret", "enc-key"), ("tokenSecretKey", "token"),
                       ("existingSecretPasswordKey", "password"), ("passwordSecret", "pg-password")):
        assert judge(key, value) is None, key
    for key, value in (("clientSecret", "6Kq9Zt4XwP2mB7nV1cR8yL3sH5jD0fGa"), ("adminPassword", "prom-operator"),
                       ("JWT_SECRET", "my-signing-key")):
        assert judge(key, value) is not None, key


def test_inline_helm_values_in_kustomize_and_flux_keep_their_paths(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "helmCharts:\n- name: postgresql\n  releaseName: pg\n  valuesInline:\n    auth:\n"
        "      postgresPassword: K-Inline-Pw9\n")
    (tmp_path / "hr.yaml").write_text(
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: pg}\nspec:\n  values:\n"
        "    auth: {postgresPassword: Flux-Inline-Pw1}\n")
    got = {(f.file, f.path, f.line, f.location) for f in scan_paths([tmp_path]).findings}
    assert got == {("kustomization.yaml", "helmCharts[0].valuesInline.auth.postgresPassword", 6, "field"),
                   ("hr.yaml", "spec.values.auth.postgresPassword", 6, "field")}
