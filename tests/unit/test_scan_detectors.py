"""The detectors: every rule fires on its shape, every decoy class stays quiet.

Credential-shaped values are built at run time (``"AK" + "IA" + ...``) so no literal token sits
in the repository.
"""

from __future__ import annotations

import base64
import random
import string

import pytest

from secretsync.scan.detectors import (
    RULES,
    classify_key,
    find_tokens,
    is_placeholder,
    is_reference,
    judge,
)

R = random.Random(7)
ALNUM = string.ascii_letters + string.digits


def rnd(alphabet: str, n: int) -> str:
    return "".join(R.choice(alphabet) for _ in range(n))


def pem(kind: str = "RSA ") -> str:
    body = "\n".join(rnd(ALNUM + "+/", 64) for _ in range(5))
    return f"-----BEGIN {kind}PRIVATE" + f" KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----\n"


def jwt() -> str:
    def enc(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    return enc('{"alg":"HS256","typ":"JWT"}') + "." + enc('{"sub":"1234567890","name":"x"}') + "." + \
        rnd(ALNUM + "_-", 43)


TOKENS: dict[str, list[str]] = {
    "aws-access-key": ["AK" + "IA" + rnd(string.ascii_uppercase + "234567", 16),
                       "AS" + "IA" + rnd(string.ascii_uppercase + "234567", 16)],
    "github-token": ["gh" + "p_" + rnd(ALNUM, 36), "gh" + "o_" + rnd(ALNUM, 36), "gh" + "s_" + rnd(ALNUM, 36),
                     "github" + "_pat_" + rnd(ALNUM, 22) + "_" + rnd(ALNUM, 59)],
    "gitlab-token": ["gl" + "pat-" + rnd(ALNUM + "_-", 20)],
    "slack-token": ["xo" + "xb-" + rnd(string.digits, 11) + "-" + rnd(string.digits, 13) + "-" + rnd(ALNUM, 24),
                    "xo" + "xp-" + rnd(string.digits, 11) + "-" + rnd(ALNUM, 30)],
    "slack-webhook": ["https://hooks.slack.com/services/T" + rnd(string.ascii_uppercase, 8) + "/B" +
                      rnd(string.ascii_uppercase, 10) + "/" + rnd(ALNUM, 24)],
    "stripe-key": ["sk" + "_live_" + rnd(ALNUM, 24), "rk" + "_live_" + rnd(ALNUM, 24)],
    "google-api-key": ["AI" + "za" + rnd(ALNUM + "_-", 35)],
    "sendgrid-key": ["SG." + rnd(ALNUM, 22) + "." + rnd(ALNUM, 43)],
    "twilio-key": ["SK" + rnd("0123456789abcdef", 32), "AC" + rnd("0123456789abcdef", 32)],
    "npm-token": ["np" + "m_" + rnd(ALNUM, 36)],
    "jwt": [jwt()],
    "private-key": [pem(), pem("EC "), pem(""), pem("OPENSSH ")],
    "connection-url": [
        "postgres://app:" + rnd(ALNUM, 16) + "@db:5432/app",
        "mongodb+srv://admin:" + rnd(ALNUM, 16) + "@cluster0.abcde.mongodb.net/db",
        "redis://:" + rnd(ALNUM, 16) + "@redis:6379/0",
        "amqp://user:" + rnd(ALNUM, 16) + "@rabbit:5672/",
        "mysql://root:" + rnd(ALNUM, 16) + "@mysql:3306/shop",
    ],
    "azure-storage-key": ["DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" +
                          base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode() +
                          ";EndpointSuffix=core.windows.net"],
    "huggingface-token": ["hf" + "_" + rnd(string.ascii_letters, 34)],
    "google-oauth-secret": ["GOC" + "SPX-" + rnd(ALNUM, 28)],
    "discord-webhook": ["https://discord.com/api/webhooks/" + rnd(string.digits, 18) + "/" + rnd(ALNUM, 60)],
    "openai-key": ["sk-" + "proj-" + rnd(ALNUM, 48)],
    "anthropic-key": ["sk-" + "ant-api03-" + rnd(ALNUM, 90)],
    "digitalocean-token": ["do" + "p_v1_" + rnd("0123456789abcdef", 64)],
    "shopify-token": ["shp" + "at_" + rnd("0123456789abcdef", 32)],
    "pypi-token": ["py" + "pi-AgEIcHlwaS5vcmc" + rnd(ALNUM, 60)],
    "url-credential": ["https://api.example.io/v1/items?limit=10&access_token=" + rnd(ALNUM, 24)],
    "connection-string": ["Server=tcp:db.example.io,1433;Database=app;User ID=app;Password=" + rnd(ALNUM, 14) +
                          ";Encrypt=true"],
    "auth-header": ["Authorization: Bearer " + rnd(ALNUM, 32)],
    "sql-password": ["CREATE USER app WITH PASSWORD '" + rnd(ALNUM, 14) + "';",
                     "CREATE USER 'wp'@'%' IDENTIFIED BY '" + rnd(ALNUM, 14) + "';"],
    "docker-auth": ['{"auths": {"registry.example.io": {"auth": "' +
                    base64.b64encode(b"robot:" + rnd(ALNUM, 20).encode()).decode() + '"}}}'],
}


@pytest.mark.parametrize(("rule", "value"), [(r, v) for r, vs in TOKENS.items() for v in vs])
def test_known_token_formats_fire_under_any_name(rule: str, value: str) -> None:
    verdict = judge("SOME_SETTING", value)
    assert verdict is not None and verdict.rule == rule
    assert verdict.confidence in ("high", "medium")


def test_every_rule_is_described_and_exercised() -> None:
    exercised = set(TOKENS) | {"keyword-password", "keyword-secret", "keyword-token", "keyword-api-key",
                               "aws-secret-key", "generic-key", "high-entropy", "secret-object"}
    assert exercised == set(RULES)
    verdict = judge("pagerduty_routing_key", rnd(ALNUM, 24))
    assert verdict is not None and verdict.rule == "generic-key"


def test_tokens_are_found_inside_free_text() -> None:
    text = f"line one\nexport KEY={TOKENS['aws-access-key'][0]}\nurl = {TOKENS['connection-url'][0]}\n"
    assert {hit.rule for hit in find_tokens(text)} == {"aws-access-key", "connection-url"}


@pytest.mark.parametrize(("key", "value", "rule"), [
    ("MYSQL_ROOT_PASSWORD", "s3cr3t", "keyword-password"),
    ("password", "admin123", "keyword-password"),
    ("DB_PASS", "hunter2", "keyword-password"),
    ("WSREP_SST_PASSWORD", "sst", "keyword-password"),
    ("keystore_password", "cassandra", "keyword-password"),
    ("rootPassword", "Tr0ub4dor&3", "keyword-password"),
    ("JWT_SECRET", "my-jwt-signing-value", "keyword-secret"),
    ("client_secret", "abc123def456", "keyword-secret"),
    ("DB_CREDENTIALS", "user/pass", "keyword-secret"),
    ("MINIO_SECRET_KEY", "minio123", "keyword-api-key"),
    ("API_KEY", "k3y-value-42", "keyword-api-key"),
    ("azurestorageaccountkey", "c2VjcmV0", "keyword-api-key"),
    ("GITHUB_TOKEN", "some-token-value", "keyword-token"),
    ("auth_token", "0a1b2c3d4e5f", "keyword-token"),
    ("ENCRYPTION_KEY", "Zm9vYmFyYmF6cXV4", "keyword-secret"),
])
def test_keyword_names_make_even_weak_values_findings(key: str, value: str, rule: str) -> None:
    verdict = judge(key, value)
    assert verdict is not None and verdict.rule == rule


def test_aws_secret_key_by_name_and_shape() -> None:
    value = rnd(ALNUM + "/+", 40)
    verdict = judge("AWS_SECRET_ACCESS_KEY", "/" + value[1:])
    assert verdict is not None and verdict.rule == "aws-secret-key"


def test_weak_defaults_are_findings_with_medium_confidence() -> None:
    verdict = judge("MYSQL_PASSWORD", "changeme")
    assert verdict is not None and verdict.confidence == "medium" and verdict.note == "weak-default"


@pytest.mark.parametrize(("key", "value", "forced"), [
    ("password", "foo", False), ("DB_PASSWORD", "bar", False), ("password", "fake_password", False),
    ("MYSQL_ROOT_PASSWORD", "dummy", False), ("API_TOKEN", "foobar", False), ("password", "foo", True),
    ("admin-password", "dummy-password", True),
])
def test_demo_words_under_a_secret_name_are_low_confidence_findings(key: str, value: str, forced: bool) -> None:
    verdict = judge(key, value, forced=forced)
    assert verdict is not None and verdict.confidence == "low" and verdict.note == "demo-value"


def test_soft_placeholders_are_low_confidence_findings() -> None:
    verdict = judge("MYSQL_ROOT_PASSWORD", "yourpassword")
    assert verdict is not None and verdict.confidence == "low"


DECOYS: list[tuple[str, str, str]] = [
    # (class, key, value)
    ("reference", "DB_PASSWORD", "$(DB_PASSWORD)"),
    ("reference", "DB_PASSWORD", "${DB_PASSWORD}"),
    ("reference", "DB_PASSWORD", "${DB_PASSWORD:-default}"),
    ("reference", "password", "{{ .Values.db.password }}"),
    ("reference", "password", "{{ .Values.db.password | b64enc | quote }}"),
    ("reference", "VM_ADMIN_PASSWORD", "${{ VM_ADMIN_PASSWORD }}"),
    ("reference", "API_TOKEN", "<your-token>"),
    ("reference", "password", "vault:secret/data/app#password"),
    ("reference", "password", "ref+vault://secret/app#/password"),
    ("reference", "DB_SECRET", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"),
    ("reference", "DB_SECRET", "projects/p1/secrets/db/versions/latest"),
    ("ciphertext", "password", "ENC[AES256_GCM,data:Zm9vYmFy,iv:abc=,tag:def==,type:str]"),
    ("file-path", "DB_PASSWORD_FILE", "/run/secrets/db_password"),
    ("file-path", "TLS_KEY_PATH", "/etc/tls/tls.key"),
    ("file-path", "SECRETS_DIR", "/var/run/secrets/app"),
    ("file-path", "token", "/var/run/secrets/kubernetes.io/serviceaccount/token"),
    ("file-path", "password", "./secrets/password.txt"),
    ("certificate", "ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB" + rnd(ALNUM, 64) + "\n-----END CERTIFICATE-----"),
    ("public-key", "ssh_key", "ssh-rsa AAAAB3NzaC1yc2E" + rnd(ALNUM, 100) + " user@host"),
    ("public-key", "signing_key", "-----BEGIN PUBLIC KEY-----\n" + rnd(ALNUM, 64) + "\n-----END PUBLIC KEY-----"),
    ("placeholder", "ETCD_INITIAL_CLUSTER_TOKEN", "INSERT_ETCD_INITIAL_CLUSTER_TOKEN"),
    ("placeholder", "API_KEY", "INSERT_API_KEY_HERE"),
    ("placeholder", "GOOGLE_API_KEY", "GOOGLE_API_KEY_VAL"),
    ("placeholder", "serpapi_api_key", "serpapi_api_key"),
    ("placeholder", "API_KEY", "your-api-key-here"),
    ("placeholder", "password", "xxx"),
    ("placeholder", "password", "XXXXXXXX"),
    ("placeholder", "password", "REPLACE_ME"),
    ("placeholder", "password", "TODO"),
    ("placeholder", "password", "example"),
    ("placeholder", "password", "***"),
    ("placeholder", "password", "<password>"),
    ("placeholder", "AWS_ACCESS_KEY_ID", "AK" + "IAIOSFODNN7" + "EXAMPLE"),
    ("placeholder", "AKEYLESS_API_KEY", base64.b64encode(b"dummy-api-key").decode()),
    ("empty", "password", ""),
    ("empty", "password", "   "),
    ("policy-number", "PASSWORD_MIN_LENGTH", "8"),
    ("policy-number", "TOKEN_TTL", "3600"),
    ("policy-number", "min_password_length", "12"),
    ("policy-number", "password_policy", "excellent"),
    ("policy-number", "SESSION_SECRET_ROTATION_DAYS", "30"),
    ("boolean", "PASSWORD_ENABLED", "true"),
    ("boolean", "REQUIRE_TOKEN", "false"),
    ("boolean", "ALLOW_EMPTY_PASSWORD", "yes"),
    ("url", "AUTH_URL", "https://auth.example.io/oauth/token"),
    ("url", "TOKEN_ENDPOINT", "https://login.example.com/oauth2/v2.0/token"),
    ("url", "password_reset_url", "https://app.example.io/reset"),
    ("url", "DATABASE_URL", "postgres://app@db:5432/app"),
    ("url", "DATABASE_URL", "postgres://app:${DB_PASSWORD}@db:5432/app"),
    ("url", "DATABASE_URL", "postgres://user:password@localhost/app"),
    ("digest", "image", "nginx@sha256:" + rnd("0123456789abcdef", 64)),
    ("digest", "GIT_SHA", rnd("0123456789abcdef", 40)),
    ("digest", "checksum/config", rnd("0123456789abcdef", 64)),
    ("digest", "checksum/secret", rnd("0123456789abcdef", 64)),
    ("digest", "TOKEN_SHA256", "sha256:" + rnd("0123456789abcdef", 64)),
    ("image", "SECRET_MANAGER_IMAGE", "registry.example.io/team/secret-manager:v1.2.3"),
    ("hostname", "VAULT_ADDR", "vault.vault.svc.cluster.local"),
    ("hostname", "SECRET_HOST", "secrets.internal.example.io"),
    ("username", "DB_USER", "admin"),
    ("username", "POSTGRES_USER", "postgres"),
    ("username", "MYSQL_USERNAME", "root"),
    ("secret-name", "secretName", "db-credentials"),
    ("secret-name", "existingSecret", "my-release-postgresql"),
    ("secret-name", "ALLOYDB_SECRET_NAME", "ALLOYDB_SECRET_NAME_VAL"),
    ("secret-name", "adminSecretName", "ceph-secret-admin"),
    ("secret-name", "secret", "web-tls-secret"),
    ("secret-name", "credentials", "cloudsql-instance-credentials"),
    ("secret-key-name", "existingSecretPasswordKey", "postgres-password"),
    ("secret-key-name", "passwordKey", "db-password"),
    ("neutral", "labelKey", "asm"),
    ("neutral", "keyspace", "orders"),
    ("neutral", "API_KEY_HEADER", "X-Api-Key"),
    ("neutral", "num_tokens", "256"),
    ("neutral", "max_tokens", "4096"),
    ("neutral", "KEY_ALIAS", "payments-signing"),
    ("neutral", "CACHE_KEY_PREFIX", "orders:v2:"),
    ("neutral", "STRIPE_PUBLISHABLE_KEY", "pk" + "_live_" + rnd(ALNUM, 24)),
    ("neutral", "REQUEST_ID", "3f2b8c1e-9d4a-4c6b-8e2f-1a2b3c4d5e6f"),
    ("neutral", "pod-template-hash", "7d9f8b6c4"),
    ("neutral", "LOG_LEVEL", "info"),
    ("neutral", "sentryDsn", "https://" + rnd("0123456789abcdef", 32) + "@o1.ingest.sentry.io/42"),
]


@pytest.mark.parametrize(("cls", "key", "value"), DECOYS)
def test_decoys_are_not_findings(cls: str, key: str, value: str) -> None:
    assert judge(key, value) is None, cls


@pytest.mark.parametrize(("key", "expected"), [
    ("MYSQL_ROOT_PASSWORD", "password"), ("secretKeyRef", "negative"), ("secretName", "negative"),
    ("existingSecret", "negative"), ("DB_PASSWORD_FILE", "negative"), ("PASSWORD_MIN_LENGTH", "negative"),
    ("SECRET_KEY", "api-key"), ("private_key", "secret"), ("labelKey", "weak"), ("DB_USER", "negative"),
    ("REGION", "neutral"), ("bypass", "neutral"), ("ACCESS_TOKEN", "token"),
])
def test_key_names_are_classified(key: str, expected: str) -> None:
    assert classify_key(key) == expected


def test_entropy_only_under_neutral_names_is_low_confidence() -> None:
    verdict = judge("UPSTREAM_CONFIG", rnd(ALNUM, 40))
    assert verdict is not None and verdict.rule == "high-entropy" and verdict.confidence == "low"
    assert judge("UPSTREAM_CONFIG", rnd(ALNUM, 40), entropy=False) is None


def test_secret_object_values_are_findings_except_placeholders_and_references() -> None:
    assert judge("username", "admin", forced=True) is not None
    assert judge("anything", "1", forced=True) is not None
    assert judge("password", "", forced=True) is None
    assert judge("password", "${DB_PASSWORD}", forced=True) is None
    assert judge("password", "REPLACE_ME", forced=True) is None
    assert judge("tls.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", forced=True) is None


def test_reference_and_placeholder_helpers() -> None:
    assert is_reference("$(FOO)") and is_reference("x-{{ .Values.a }}") and not is_reference("plain")
    assert is_placeholder("INSERT_TOKEN_HERE") and is_placeholder("xxxx") and not is_placeholder("changeme")


def test_fake_documentation_tokens_are_not_findings() -> None:
    assert judge("GITHUB_TOKEN_X", "gh" + "p_" + "x" * 36) is None
    assert judge("SOME", "AK" + "IA" + "X" * 16) is None


def test_placeholder_pems_are_not_findings() -> None:
    pem_placeholder = "-----BEGIN PRIVATE" + " KEY-----\n<your-client-private-key>\n-----END PRIVATE KEY-----\n"
    assert judge("tls.key", pem_placeholder, forced=True) is None
    sa_json = '{"type": "service_account", "private_key": "-----BEGIN PRIVATE' + \
        ' KEY-----\\nA key\\n-----END PRIVATE KEY-----\\n", "client_email": "' + "x" * 80 + '@example.iam"}'
    assert judge("credentials.json", sa_json, forced=True) is None
    assert judge("tls.key", pem(), forced=True) is not None


def test_values_that_name_their_own_field_are_low_confidence() -> None:
    verdict = judge("ClientSecret", "my-service-principal-client-secret", forced=True)
    assert verdict is not None and verdict.confidence == "low"
    verdict = judge("DB_PASSWORD", "password123")
    assert verdict is not None and verdict.confidence != "low"
