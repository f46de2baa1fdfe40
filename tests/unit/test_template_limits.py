"""A hostile tenant's templates: bounded in memory and time, and no error ever echoes a value."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
import textwrap
import time

import pytest

from secretsync.api.models import InvalidSpec, parse_external_secret
from secretsync.api.template import TemplateEngine, TemplateError
from secretsync.controller.secretwriter import Desired, ManagedSecret, SecretWriter, TargetRefused
from secretsync.core.errors import NotFound, Unavailable
from secretsync.core.values import SecretValue
from secretsync.kube.labels import ADOPT_ANNOTATION
from tests.conftest import CANARY

REF = "ExternalSecret/tenant/attack"


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def _lookup(kind: str, name: str, key: str) -> SecretValue:
    if name == "creds":
        return SecretValue(CANARY)
    raise NotFound(f"{kind} {name} not found", key=key)


def _render(engine: TemplateEngine, source: str, **values: str) -> str:
    sv = {k: SecretValue(v) for k, v in {"password": CANARY, **values}.items()}
    return engine.render(REF, "out", source, sv, _lookup).reveal().decode()


def _forms(value: str) -> list[str]:
    """The value and what templates commonly turn it into: none may appear in an error."""
    return [value, value.upper(), value.lower(), value[3:15], value[::-1], base64.b64encode(value.encode()).decode(),
            json.dumps(value), repr(value)[1:-1][:12], value.replace("-", "")[:12]]


MEMORY_BOMBS = [
    "{{ password.center(10**9) }}",
    "{{ password.ljust(10**8) }}",
    "{{ password.zfill(10**8) }}",
    "{{ password | center(10**8) }}",
    "{{ password * 10**6 }}",
    "{{ [password] * 10**6 | toJson }}",
    "{{ '{:>999999999}'.format(password) }}",
    "{{ '%999999999s' % password }}",
    "{{ '%999999999s' | format(password) }}",
    "{{ ('a' * 1000000).replace('a', password) }}",
    "{{ password | replace('', 'x' * 1000000) }}",
    "{{ ((password ~ '\n') * 10000) | indent(100000) }}",
    "{{ ([password] * 100000) | join(password * 100) }}",
    "{{ (password * 100).join([password] * 100000) }}",
    "{{ password | wordwrap(1, wrapstring='x' * 1000000) }}",
    "{{ ('\t' * 100000).expandtabs(100000) }}",
    "{{ password.translate({97: 'x' * 100000}) }}",
    "{{ (1).to_bytes(10**9, 'big') }}",
    "{{ (10**1000) ** 1000 }}",
    "{{ password | batch(10**6, 'x') | list }}",
    "{{ lipsum(100000) }}",
    "{% set ns = namespace(x=password) %}{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
    "{% set ns = namespace(x=password) %}{% for i in range(64) %}{% set ns.x = ns.x + ns.x %}{% endfor %}x",
    "{% set ns = namespace(x=[password]) %}{% for i in range(64) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}"
    "{{ ns.x | toJson }}",
    "{% set ns = namespace(x=[password]) %}{% for i in range(64) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}"
    "{{ ns | string }}",
    "{% set x %}{% for i in range(100000) %}{{ password * 1000 }}{% endfor %}{% endset %}x",
    "{{ ('a: &a [' ~ (password ~ ',') * 9 ~ ']\nb: &b [' ~ '*a,' * 9 ~ ']\nc: [' ~ '*b,' * 9 ~ ']') | fromYaml "
    "| toJson }}",
]

TIME_BOMBS = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in password * 1000 %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{{ ('-----BEGIN A-----\n' * 50000) | filterPEM('A') }}",
]


@pytest.mark.parametrize("source", MEMORY_BOMBS + TIME_BOMBS)
def test_a_bomb_fails_fast_and_names_only_the_key_and_line(engine: TemplateEngine, source: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(TemplateError) as info:
        _render(engine, source)
    assert time.monotonic() - t0 < 3.0
    message = str(info.value)
    assert message.startswith(f"{REF}: template 'out': ")
    for form in _forms(CANARY):
        assert form not in message


LEAKY = [
    "{{ password | filterPEM(password) }}",
    "{{ filterPEM(password, password) }}",
    "{{ password + 1 }}",
    "{{ values[password] }}",
    "{{ values[password | upper] }}",
    "{{ {}[password[3:15]] }}",
    "{{ values[password | b64enc] }}",
    "{{ values[password[::-1]] }}",
    "{{ password | b64dec | fromJson }}",
    "{{ password | fromJson }}",
    "{{ '%d' % password }}",
    "{{ password ~ 1 + 1 }}",
    "{{ password | pkcs12key }}",
    "{{ password.__class__ }}",
    "{{ 1 + secretKey('creds', 'k') }}",
    "{{ values[secretKey('creds', 'k') | lower] }}",
    "{{ secretKey(secretKey('creds', 'k') | lower, 'k') }}",
    "{{ configMapKey(password | lower, 'k') }}",
    "{{ password.nope }}",
    "{{ dict(a=1)[password] }}",
    "{{ password | round }}",
    "{{ range(password | length, password) }}",
]


@pytest.mark.parametrize("source", LEAKY)
def test_errors_carry_no_value_no_slice_no_transform(engine: TemplateEngine, source: str) -> None:
    with pytest.raises(TemplateError) as info:
        _render(engine, "first line\n" + source)
    message = str(info.value)
    for form in _forms(CANARY):
        assert form not in message, message
    assert "template 'out'" in message and "line 2" in message


def test_an_undefined_name_written_in_the_template_is_named(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError, match=r"template 'out': line 1: 'pasword' is undefined"):
        _render(engine, "{{ pasword }}")


def test_a_lookup_outage_is_retried_and_quotes_no_name(engine: TemplateEngine) -> None:
    def down(kind: str, name: str, key: str) -> str:
        raise Unavailable(f"cannot read Secret {name}")

    with pytest.raises(Unavailable) as info:
        engine.render(REF, "out", "{{ secretKey(password | lower, 'k') }}", {"password": SecretValue(CANARY)}, down)
    assert CANARY.lower() not in str(info.value)


def test_ordinary_templates_still_render(engine: TemplateEngine) -> None:
    assert _render(engine, "{{ password | upper | replace('-', '_') }}") == CANARY.upper().replace("-", "_")
    assert _render(engine, "{% for c in ['a', 'b'] %}{{ c }}{% endfor %}{{ ','.join(['x', 'y']) }}") == "abx,y"
    assert _render(engine, "{{ '%s:%s' | format('u', password) }} {{ '{}@{}'.format('u', 'h') }}") == \
        f"u:{CANARY} u@h"
    assert _render(engine, "{{ 'k: v\n' | indent(2, true) }}{{ ['a', 'b'] | join('-') }}") == "  k: v\na-b"
    assert _render(engine, "{{ secretKey('creds', 'k') }}") == CANARY
    assert _render(engine, "{% set d = password | b64enc | b64dec %}{{ d == password }}") == "True"
    assert _render(engine, "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
                           "{% endfor %}{{ ns.n }} {{ ns | string | length > 0 }}") == "6 True"


def test_a_render_bomb_keeps_peak_memory_bounded() -> None:
    """Peak RSS of a fresh process rendering every memory bomb stays within 64 MiB of its baseline."""
    code = textwrap.dedent(f"""
        import json, resource
        from secretsync.api.template import TemplateEngine, TemplateError
        from secretsync.core.values import SecretValue
        engine = TemplateEngine()
        engine.render("r", "k", "{{{{ password | upper }}}}", {{"password": SecretValue("x")}})
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        refused = 0
        for source in json.loads({json.dumps(json.dumps(MEMORY_BOMBS))}):
            try:
                engine.render("r", "k", source, {{"password": SecretValue("{CANARY}")}})
            except TemplateError:
                refused += 1
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"base_kib": base, "peak_kib": peak, "refused": refused}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"peak RSS growth over {len(MEMORY_BOMBS)} bombs: {(result['peak_kib'] - result['base_kib']) / 1024:.1f} MiB")
    assert result["refused"] == len(MEMORY_BOMBS)
    assert result["peak_kib"] - result["base_kib"] < 64 * 1024, result


def _es(template: dict[str, object]) -> object:
    return parse_external_secret({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "attack", "namespace": "tenant"},
        "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "t", "remoteRef": {"key": "k"}}],
                 "target": {"template": template}},
    })


@pytest.mark.parametrize("template, field", [
    ({"type": "kubernetes.io/service-account-token"}, "spec.target.template.type"),
    ({"type": "bootstrap.kubernetes.io/token"}, "spec.target.template.type"),
    ({"type": "Opaque", "metadata": {"annotations": {"kubernetes.io/service-account.name": "default"}}},
     "spec.target.template.metadata.annotations"),
])
def test_templates_cannot_make_privileged_secret_types(template: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec, match=field.replace(".", r"\.")):
        _es(template)


def test_ordinary_secret_types_are_accepted() -> None:
    _es({"type": "kubernetes.io/tls"})
    _es({"type": "kubernetes.io/dockerconfigjson"})


class _SecretsApi:
    """Just enough of KubeApi for SecretWriter: GET returns the one Secret; any write is a failure."""

    def __init__(self, secret: dict[str, object]) -> None:
        self.secret = secret
        self.writes: list[str] = []

    def get(self, res: object, name: str, namespace: str | None = None) -> dict[str, object]:
        return copy.deepcopy(self.secret)

    def replace(self, *args: object, **kwargs: object) -> dict[str, object]:
        self.writes.append("replace")
        raise AssertionError("wrote into a privileged Secret")

    def create(self, *args: object, **kwargs: object) -> dict[str, object]:
        self.writes.append("create")
        raise AssertionError("created over a privileged Secret")

    def request(self, *args: object, **kwargs: object) -> dict[str, object]:
        self.writes.append("request")
        raise AssertionError("wrote into a privileged Secret")

    def delete(self, *args: object, **kwargs: object) -> None:
        self.writes.append("delete")
        raise AssertionError("deleted a privileged Secret")


@pytest.mark.parametrize("secret_type", ["kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"])
@pytest.mark.parametrize("target", [
    {"name": "tok", "creationPolicy": "Merge"},
    {"name": "tok", "creationPolicy": "Owner"},
    {"name": "tok", "creationPolicy": "Orphan"},
])
@pytest.mark.parametrize("adopt", [False, True])
def test_no_write_path_writes_into_a_privileged_secret(secret_type: str, target: dict[str, object],
                                                       adopt: bool) -> None:
    """Merge (per-key ownership), update and adoption all refuse with SecretTypeNotAllowed;
    the message names the Secret and its type, never a value."""
    canary = "privileged-canary-value"
    ann = {"kubernetes.io/service-account.name": "default", **({ADOPT_ANNOTATION: "true"} if adopt else {})}
    api = _SecretsApi({"apiVersion": "v1", "kind": "Secret", "type": secret_type,
                       "metadata": {"name": "tok", "namespace": "tenant", "resourceVersion": "1",
                                    "annotations": ann},
                       "data": {"token": base64.b64encode(b"cluster-token").decode()}})
    es = parse_external_secret({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "attack", "namespace": "tenant", "uid": "u1"},
        "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "ca.crt", "remoteRef": {"key": "k"}}],
                 "target": target},
    })
    # A Secret the writer believes it manages, so Owner/Orphan go to the update path.
    def cached(ns: str, name: str) -> ManagedSecret:
        return ManagedSecret(namespace=ns, name=name, uid="s1", resource_version="1", owner="attack", hash="x",
                             matches=False, merged=False)

    writer = SecretWriter(api, b"k" * 32, cached)  # type: ignore[arg-type]
    with pytest.raises(TargetRefused) as info:
        writer.apply(es, Desired({"ca.crt": SecretValue(canary)}))
    assert info.value.reason == "SecretTypeNotAllowed"
    assert canary not in info.value.message and "cluster-token" not in info.value.message
    assert api.writes == []


# --------------------------------------------------------------------------- metadata a tenant may not set
@pytest.mark.parametrize("source", ["{{ t | upper }}", "{{ t | capitalize }}", "{{ t.swapcase() }}",
                                    "{{ t | title }}", "{{ t | upper | b64enc }}"])
def test_a_value_in_another_case_is_still_refused_in_metadata(engine: TemplateEngine, source: str) -> None:
    """Labels and annotations are readable by whoever may list Secrets: a fetched value upper-cased
    (or base64 of that) is as much a leak as the value itself."""
    es = _es({"metadata": {"annotations": {"leak": source}}})
    with pytest.raises(TemplateError) as err:
        engine.render_metadata(es, {"t": SecretValue(CANARY)})  # type: ignore[arg-type]
    assert "metadata.annotations.leak" in str(err.value)
    assert not any(form in str(err.value) for form in _forms(CANARY))


def test_a_rendered_metadata_key_may_not_carry_a_value_either(engine: TemplateEngine) -> None:
    es = _es({"templateFrom": [{"target": "Annotations", "literal": "{{ t | lower }}: x"}]})
    with pytest.raises(TemplateError) as err:
        engine.render_metadata(es, {"t": SecretValue(CANARY)})  # type: ignore[arg-type]
    assert not any(form in str(err.value) for form in _forms(CANARY))


CONTROLLER_OWNED = [("annotations", "secretsync.io/external-secret"), ("annotations", "SecretSync.io/adopt"),
                    ("annotations", "merge.secretsync.io/victim-es"), ("annotations", "secretsync.io/Data-Hash"),
                    ("labels", "Rollout.SECRETSYNC.io/x"), ("annotations", "Kubernetes.io/Service-Account.Name"),
                    ("labels", "kubernetes.io/service-account.uid")]


@pytest.mark.parametrize("part, key", CONTROLLER_OWNED)
def test_a_template_may_not_set_controller_owned_metadata_in_any_case(part: str, key: str) -> None:
    """The controller's bookkeeping (owner, hash, merge entries of other ExternalSecrets) and the
    annotations that make Kubernetes mint a token are not a tenant's to set, however spelled."""
    with pytest.raises(InvalidSpec) as err:
        _es({"metadata": {part: {key: "victim"}}})
    assert f"spec.target.template.metadata.{part}[{key!r}]" in str(err.value)


@pytest.mark.parametrize("part, key", CONTROLLER_OWNED)
def test_templatefrom_may_not_set_controller_owned_metadata_either(engine: TemplateEngine, part: str,
                                                                  key: str) -> None:
    """Keys a templateFrom renders are only known at sync time: the same guard holds there."""
    es = _es({"templateFrom": [{"target": part.capitalize(), "literal": f"{key}: victim"}]})
    with pytest.raises(TemplateError) as err:
        engine.render_metadata(es, {"t": SecretValue(CANARY)})  # type: ignore[arg-type]
    assert f"templateFrom(target {part.capitalize()}).{key}" in str(err.value)


def test_ordinary_metadata_next_to_the_guard_still_renders(engine: TemplateEngine) -> None:
    es = _es({"metadata": {"labels": {"app.kubernetes.io/name": "api", "tier": "{{ 'gold' | upper }}"},
                           "annotations": {"reloader.example/hash": "{{ t | sha256sum }}"}}})
    labels, annotations = engine.render_metadata(es, {"t": SecretValue(CANARY)})  # type: ignore[arg-type]
    assert labels == {"app.kubernetes.io/name": "api", "tier": "GOLD"}
    assert len(annotations["reloader.example/hash"]) == 64
