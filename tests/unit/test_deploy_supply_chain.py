"""What goes into the image and the test environment is pinned, licensed and no more than asked for.

Read as a security reviewer would read the files (no docker daemon in CI): the Dockerfile's
bases are pinned by digest, only the requested provider SDKs are installed, the runtime layer
has no package installer, the dependency set CI installs is locked, and the license is there.
"""

from __future__ import annotations

import re
import tomllib

from tests.harness.helm import REPO

DOCKERFILE = (REPO / "deploy" / "Dockerfile").read_text()
CONSTRAINTS = REPO / "constraints.txt"


def _stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]


def test_every_base_image_is_pinned_by_digest() -> None:
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(froms) == 2
    for image in froms:
        assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", image), image


def test_only_the_providers_asked_for_are_installed() -> None:
    build = _stages()[0]
    match = re.search(r"^ARG PROVIDERS=(\S+)$", build, re.M)
    assert match
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(match.group(1).split(",")) == {"aws", "gcp", "azure", "vault"} <= set(extras)
    assert '".${PROVIDERS:+[$PROVIDERS]}"' in build  # empty PROVIDERS: the embedded stores only
    assert "-c constraints.txt" in build


def test_runtime_layer_has_no_package_installer_and_runs_as_non_root() -> None:
    runtime = _stages()[-1]
    assert "pip install" not in runtime
    assert re.search(r"pip uninstall -y -q pip setuptools wheel", runtime)
    assert "uninstall -y -q pip" in _stages()[0]  # and none in the copied venv
    assert re.search(r"^USER 65532:65532$", runtime, re.M)
    assert 'ENTRYPOINT ["secretsync"]' in runtime


def test_license_is_the_apache_2_text_the_metadata_declares() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_constraints_lock_every_exact_pin_of_pyproject() -> None:
    """A `==` pin in pyproject and a different version in the lock would never install."""
    locked = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            locked[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [r for reqs in [meta["dependencies"], *meta["optional-dependencies"].values()] for r in reqs if "==" in r]
    assert pins
    for req in pins:
        name, _, version = req.partition("==")
        key = re.sub(r"\[.*\]", "", name).strip().lower()
        assert locked.get(key) == version.strip(), (req, locked.get(key))


def test_ci_installs_with_the_lock() -> None:
    script = (REPO / "scripts" / "test").read_text()
    assert re.search(r"pip install -q -c constraints\.txt -e '\.\[dev\]'", script)
