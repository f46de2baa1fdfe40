"""The generated CRDs: identical to deploy/crds, structural, 1.20-compatible, and in step with the models."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from secretsync.api.models import KINDS, PLURALS
from secretsync.api.schema import all_crds, crd, rendered_crds
from secretsync.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "deploy" / "crds"


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


def test_deploy_crds_are_exactly_what_the_models_generate() -> None:
    """If this fails, run: secretsync crds -o deploy/crds"""
    expected = rendered_crds()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in CRD_DIR.glob("secretsync.io_*.yaml")}
    assert on_disk == expected


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for key, sub in (node.get("properties") or {}).items():
        out += _walk(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        out += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


def test_schemas_are_structural_and_use_nothing_newer_than_1_20() -> None:
    for obj in all_crds():
        text = yaml.safe_dump(obj)
        assert "x-kubernetes-validations" not in text
        version = obj["spec"]["versions"][0]
        nodes = _walk(version["schema"]["openAPIV3Schema"])
        for path, node in nodes:
            assert "type" in node, f"{obj['metadata']['name']}{path} has no type"
            if node.get("x-kubernetes-preserve-unknown-fields"):
                # only the provider blocks (each provider's, and any provider installed later) keep unknown fields
                blocks = "aws|gcp|gcpsm|azure|azurekv|vault|kubernetes|file|memory"
                assert re.fullmatch(rf"\.spec\.provider(\.({blocks}))?", path), path
            assert not ("properties" in node and "additionalProperties" in node), path
            if "default" in node:
                assert "enum" not in node or node["default"] in node["enum"], path


def test_crd_names_scope_status_and_columns() -> None:
    for kind in KINDS:
        obj = crd(kind)
        spec = obj["spec"]
        assert obj["apiVersion"] == "apiextensions.k8s.io/v1"
        assert obj["metadata"]["name"] == f"{PLURALS[kind]}.secretsync.io"
        assert spec["names"]["kind"] == kind
        assert spec["names"]["categories"] == ["secretsync"]
        # our short names must not collide with ESO's (es, ss, css, ces) during a migration
        assert not set(spec["names"]["shortNames"]) & {"es", "ss", "css", "ces"}
        assert spec["scope"] == ("Namespaced" if kind in ("SecretStore", "ExternalSecret", "SecretRotation")
                                 else "Cluster")
        version = spec["versions"][0]
        assert version["subresources"] == {"status": {}}
        schema_paths = {p for p, _ in _walk(version["schema"]["openAPIV3Schema"])}
        for col in version["additionalPrinterColumns"]:
            path = re.sub(r"\[\?\(.*?\)\]", "[]", col["jsonPath"])
            assert path in schema_paths or path == ".metadata.creationTimestamp", (kind, col)


def test_refresh_interval_and_enums_are_validated_by_the_api_server_too() -> None:
    root = crd("ExternalSecret")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    props = root["properties"]["spec"]["properties"]
    assert re.fullmatch(props["refreshInterval"]["pattern"], "1h30m")
    assert not re.fullmatch(props["refreshInterval"]["pattern"], "1x")
    assert props["target"]["properties"]["creationPolicy"]["enum"] == ["Owner", "Orphan", "Merge", "None"]
    assert props["secretStoreRef"]["required"] == ["name"]


def test_crds_command_prints_and_writes(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(cli, ["crds"])
    assert printed.exit_code == 0, printed.output
    docs = list(yaml.safe_load_all(printed.output))
    assert [d["spec"]["names"]["kind"] for d in docs] == list(KINDS)
    written = runner.invoke(cli, ["crds", "-o", str(tmp_path / "out")])
    assert written.exit_code == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == set(rendered_crds())
