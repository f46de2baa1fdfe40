"""Tenants' regexes run on RE2: Go syntax and replacement as in ESO, linear time, clear refusals."""

from __future__ import annotations

import time

import pytest

from secretsync.api.models import InvalidSpec, Rewrite, apply_rewrites, parse_external_secret
from secretsync.core.contract import ListFilter, SecretMetadata

#: Exponential with a backtracking engine on "aaaa...a!"; linear on RE2.
SLOW = "^(a+)+$"
SLOW_NAME = "a" * 40 + "!"


def _es(data_from: list[dict[str, object]]) -> object:
    return parse_external_secret({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "x", "namespace": "tenant"},
        "spec": {"secretStoreRef": {"name": "s"}, "dataFrom": data_from},
    })


def _rewrite(source: str, target: str) -> Rewrite:
    es = _es([{"extract": {"key": "k"}, "rewrite": [{"regexp": {"source": source, "target": target}}]}])
    return es.spec.data_from[0].rewrite[0]  # type: ignore[attr-defined,no-any-return]


def test_catastrophic_patterns_finish_in_linear_time() -> None:
    t0 = time.monotonic()
    assert not ListFilter(name_regex=SLOW).matches(SecretMetadata(name=SLOW_NAME))
    assert apply_rewrites(SLOW_NAME, [_rewrite(SLOW + "|!$", "?")]) == "a" * 40 + "?"
    assert time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("pattern, field", [
    ("(a)\\1", "spec.dataFrom[0].find.name.regexp"),
    ("(?<=a)b", "spec.dataFrom[0].find.name.regexp"),
    ("x" * 5000, "spec.dataFrom[0].find.name.regexp"),
])
def test_patterns_re2_lacks_are_refused_naming_the_field(pattern: str, field: str) -> None:
    with pytest.raises(InvalidSpec, match=field.replace(".", r"\.").replace("[", r"\[")):
        _es([{"find": {"name": {"regexp": pattern}}}])


def test_go_replacement_syntax_as_in_eso() -> None:
    assert apply_rewrites("api-db-1", [_rewrite("^api-(?P<svc>[a-z]+)-(\\d)$", "${svc}_$2")]) == "db_1"
    assert apply_rewrites("a.b", [_rewrite("\\.", "$$")]) == "a$b"
    assert apply_rewrites("key", [_rewrite("^(k)", "$9x")]) == "ey"  # unknown group: empty, as Go
