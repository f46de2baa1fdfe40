"""Test tiers by folder: unit (no servers), integration (real servers), e2e (CLI/controller).

Server fixtures live in ``tests/harness/``; each starts its server once per session on a
free loopback port, and only when a test asks for it, so ``pytest tests/unit`` needs none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.harness.backends",
    "tests.harness.kube",
    "tests.harness.aws",
    "tests.harness.vault",
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


@pytest.fixture
def canary() -> str:
    return CANARY


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED
