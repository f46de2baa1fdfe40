"""The sandboxed Jinja2 template engine: helpers, target rendering, and what it refuses."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from secretsync.api.models import parse_external_secret
from secretsync.api.template import TemplateEngine, TemplateError
from secretsync.core.errors import NotFound, Unavailable
from secretsync.core.values import SecretValue

REF = "ExternalSecret/app/db"


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def render(engine: TemplateEngine, source: str, lookup=None, **values: str | bytes) -> str:
    sv = {k: SecretValue(v) for k, v in values.items()}
    return engine.render(REF, "out", source, sv, lookup).reveal().decode("utf-8", "surrogateescape")


def _cert_and_key() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert, key


def test_values_are_variables_and_keys_with_dots_are_in_values(engine: TemplateEngine) -> None:
    out = render(engine, 'postgres://{{ user }}:{{ password }}@{{ values["db.host"] }}/x',
                 user="app", password="pw", **{"db.host": "h"})
    assert out == "postgres://app:pw@h/x"


def test_base64_json_and_yaml_helpers(engine: TemplateEngine) -> None:
    assert render(engine, "{{ v | b64enc }}", v="hello") == base64.b64encode(b"hello").decode()
    assert render(engine, "{{ v | b64dec }}", v=base64.b64encode(b"hi").decode()) == "hi"
    assert render(engine, "{{ (v | fromJson).user }}", v=json.dumps({"user": "u"})) == "u"
    assert render(engine, "{{ {'a': v} | toJson }}", v="x") == '{"a":"x"}'
    assert render(engine, "{{ (v | fromYaml).a }}", v="a: 1\n") == "1"
    assert render(engine, "{{ {'a': v} | toYaml }}", v="x") == "a: x"
    assert render(engine, "{{ v | upper }} {{ v | replace('a', 'b') }}", v="aa") == "AA bb"


def test_binary_values_pass_through_unchanged(engine: TemplateEngine) -> None:
    blob = bytes(range(256))
    out = engine.render(REF, "k", "{{ blob }}", {"blob": SecretValue(blob)})
    assert out.reveal() == blob


def test_pkcs12_helpers_extract_key_and_chain(engine: TemplateEngine) -> None:
    cert, key = _cert_and_key()
    archive = pkcs12.serialize_key_and_certificates(b"x", key, cert, None, serialization.NoEncryption())
    locked = pkcs12.serialize_key_and_certificates(
        b"x", key, cert, None, serialization.BestAvailableEncryption(b"pw"))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    assert render(engine, "{{ p | pkcs12cert }}", p=archive) == cert_pem
    key_pem = render(engine, "{{ p | pkcs12key }}", p=archive)
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert render(engine, "{{ p | pkcs12certPass('pw') }}", p=locked) == cert_pem
    # base64 text of an archive (how many stores keep it) works too
    assert render(engine, "{{ p | pkcs12cert }}", p=base64.b64encode(archive)) == cert_pem
    with pytest.raises(TemplateError, match="password is wrong"):
        render(engine, "{{ p | pkcs12certPass('nope') }}", p=locked)
    # and back: PEM -> PKCS#12 (base64, as ESO returns it)
    b64 = render(engine, "{{ pemToPkcs12(c, k) }}", c=cert_pem, k=key_pem)
    again = pkcs12.load_pkcs12(base64.b64decode(b64), None)
    assert again.cert is not None and again.cert.certificate == cert


def test_pem_filters_pick_blocks_by_type(engine: TemplateEngine) -> None:
    cert, key = _cert_and_key()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    bundle = key_pem + cert_pem
    assert render(engine, "{{ b | pemCertificate }}", b=bundle) == cert_pem
    assert render(engine, "{{ b | pemPrivateKey }}", b=bundle) == key_pem
    assert render(engine, "{{ b | filterPEM('CERTIFICATE') }}", b=bundle) == cert_pem


def test_undefined_variable_fails_instead_of_writing_empty(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError, match=r"ExternalSecret/app/db: template 'out': line 1: 'pasword' is undefined"):
        render(engine, "{{ pasword }}", password="x")


def test_syntax_error_names_object_key_and_line(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError, match=r"template 'out': syntax error at line 2"):
        render(engine, "ok\n{{ a ", a="x")


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ v.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ v.__init__.__globals__ }}",
    "{{ [].append(1) }}",
    "{{ 'x' * 100000000 }}",
])
def test_sandbox_blocks_python_internals_mutation_and_memory_bombs(engine: TemplateEngine, source: str) -> None:
    with pytest.raises(TemplateError):
        render(engine, source, v="secret-value-123")


def test_errors_never_contain_values(engine: TemplateEngine) -> None:
    secret = "hunter2-very-secret"
    for source in ("{{ {}[v] }}", "{{ values[v] }}", "{{ v.nope }}", "{{ v | fromJson }}",
                   "{{ v | b64dec | fromJson }}", "{{ '%d' % v }}", "{{ v + 1 }}", "{{ v | pkcs12key }}"):
        with pytest.raises(TemplateError) as info:
            render(engine, source, v=secret)
        assert secret not in str(info.value)
        assert "ExternalSecret/app/db" in str(info.value)


def test_lookups_only_reach_names_in_the_bound_namespace(engine: TemplateEngine) -> None:
    calls: list[tuple[str, str, str]] = []

    def lookup(kind: str, name: str, key: str) -> str:
        calls.append((kind, name, key))
        if name == "missing":
            raise NotFound("no such ConfigMap", key=name)
        return "looked-up"

    assert render(engine, "{{ configMapKey('cfg', 'k') }}", lookup) == "looked-up"
    assert render(engine, "{{ secretKey('s', 'k') }}", lookup) == "looked-up"
    for bad in ("other/cfg", "../cfg", "Cfg"):
        with pytest.raises(TemplateError, match="same namespace"):
            render(engine, f"{{{{ configMapKey('{bad}', 'k') }}}}", lookup)
    with pytest.raises(TemplateError, match="the ConfigMap or its key does not exist"):
        render(engine, "{{ configMapKey('missing', 'k') }}", lookup)
    assert calls == [("ConfigMap", "cfg", "k"), ("Secret", "s", "k"), ("ConfigMap", "missing", "k")]
    with pytest.raises(TemplateError, match="not available"):
        render(engine, "{{ configMapKey('cfg', 'k') }}")


def test_temporary_lookup_failures_propagate_for_retry(engine: TemplateEngine) -> None:
    def lookup(kind: str, name: str, key: str) -> str:
        raise Unavailable("apiserver down")

    with pytest.raises(Unavailable):
        render(engine, "{{ configMapKey('cfg', 'k') }}", lookup)


def _es(template: dict) -> object:
    return parse_external_secret({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "db", "namespace": "app"},
        "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "password", "remoteRef": {"key": "k"}}],
                 "target": {"template": template}},
    })


def test_render_target_replace_merge_and_template_from(engine: TemplateEngine) -> None:
    values = {"password": SecretValue("pw"), "user": SecretValue("u")}
    es = _es({"data": {"dsn": "{{ user }}:{{ password }}"}})
    assert {k: v.reveal() for k, v in engine.render_target(es, values).items()} == {"dsn": b"u:pw"}
    es = _es({"data": {"dsn": "{{ user }}"}, "mergePolicy": "Merge"})
    assert set(engine.render_target(es, values)) == {"dsn", "password", "user"}
    es = _es({"type": "kubernetes.io/basic-auth"})
    assert engine.render_target(es, values) == values
    es = _es({"templateFrom": [{"configMap": {"name": "tmpl", "items": [{"key": "config.yml"}]}}],
              "data": {"extra": "x"}})
    out = engine.render_target(es, values, lambda kind, name, key: "pass: {{ password }}")
    assert {k: v.reveal() for k, v in out.items()} == {"config.yml": b"pass: pw", "extra": b"x"}


def test_output_over_a_secret_size_is_refused(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError, match="larger than"):
        render(engine, "{% for i in range(20000) %}{{ v }}{% endfor %}", v="x" * 100)


# --------------------------------------------------------------------------- templated metadata
def _meta_es(labels: dict[str, str], annotations: dict[str, str] | None = None) -> object:
    return _es({"metadata": {"labels": labels, "annotations": annotations or {}}})


def test_metadata_templates_render_like_esos(engine: TemplateEngine) -> None:
    values = {"password": SecretValue("hunter2-canary")}
    labels, annotations = engine.render_metadata(
        _meta_es({"version": "{{ (password | sha256sum)[:12] }}", "tier": "{{ 'gold' | upper }}", "static": "x"},
                 {"reloader.example/hash": "{{ password | sha256sum }}"}), values)
    assert labels["tier"] == "GOLD" and labels["static"] == "x" and len(labels["version"]) == 12
    assert len(annotations["reloader.example/hash"]) == 64
    assert "hunter2" not in annotations["reloader.example/hash"]


@pytest.mark.parametrize("source", ["{{ password }}", "x-{{ password | upper | lower }}", "{{ tier }}",
                                    "{{ password | b64enc }}", "{{ values['password'] }}"])
def test_metadata_that_would_carry_a_value_is_refused_naming_the_field(engine: TemplateEngine,
                                                                        source: str) -> None:
    values = {"password": SecretValue("hunter2-canary"), "tier": SecretValue("gold")}
    with pytest.raises(TemplateError) as err:
        engine.render_metadata(_meta_es({}, {"leak": source}), values)
    assert "metadata.annotations.leak" in str(err.value)
    assert "hunter2" not in str(err.value) and "aHVudGVy" not in str(err.value)


def test_a_rendered_label_must_be_a_label_value(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError) as err:
        engine.render_metadata(_meta_es({"t": "{{ 'not a label' }}"}), {"tier": SecretValue("gold")})
    assert "metadata.labels.t" in str(err.value) and "label value" in str(err.value)
