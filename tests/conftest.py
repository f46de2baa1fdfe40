"""Test tiers by folder: unit (no servers), integration (real servers), e2e (CLI/controller),
faults (real servers under injected faults).

Server fixtures live in ``tests/harness/``; each starts its server once per session on a
free loopback port, and only when a test asks for it, so ``pytest tests/unit`` needs none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsync.cli.logsetup import SDK_LOGGERS

pytest_plugins = [
    "tests.harness.backends",
    "tests.harness.kube",
    "tests.harness.aws",
    "tests.harness.vault",
    "tests.harness.ldap",
    "tests.harness.gcp",
    "tests.harness.azure",
]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

#: A value that must never appear in any log line, repr, error or output but `secret get`.
CANARY = "canary-7f3a9c-DO-NOT-LOG-Zq8w"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
        elif "security" in parts:
            item.add_marker(pytest.mark.security)
        elif "faults" in parts:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging (root handlers, secretsync's level); undo it after each test
    so one test's ``--log-level`` never changes what another test's log capture sees."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ours = {name: logging.getLogger(name).level for name in ("secretsync", *SDK_LOGGERS)}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
    for name, lvl in ours.items():
        logging.getLogger(name).setLevel(lvl)


@pytest.fixture
def canary() -> str:
    return CANARY


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED
