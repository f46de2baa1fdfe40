"""Every public exception secretsync raises is in the one error tree, and drawn in its picture.

A platform team wraps the CLI and the controller: ``except SecretSyncError`` must catch
everything secretsync raises on purpose, and ``secretsync/core/errors.py``'s docstring must
show where each error sits (what it means, whether it retries), so a new public exception
that is neither fails here by name.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import secretsync_providers

import secretsync
from secretsync.core import errors
from secretsync.core.errors import SecretSyncError


def _modules(package: ModuleType) -> list[ModuleType]:
    out = [package]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith("__main__"):
            continue
        out.append(importlib.import_module(info.name))
    return out


def _public_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (secretsync, secretsync_providers):
        for module in _modules(package):
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__
                        and not name.startswith("_")):
                    found[f"{module.__name__}.{name}"] = obj
    return found


def _drawn() -> set[str]:
    """The class names in the ASCII tree of ``core/errors.py``'s docstring."""
    doc = errors.__doc__ or ""
    return {m.group(1) for m in re.finditer(r"[|`+\\-]-+ ?([A-Z][A-Za-z]+)", doc)} | {"SecretSyncError"}


def test_the_walk_finds_the_exceptions_we_know_about() -> None:
    names = {cls.__name__ for cls in _public_exceptions().values()}
    assert {"SecretSyncError", "NotFound", "KubeError", "InvalidSpec", "ApplyError"} <= names


def test_every_public_exception_is_a_secretsync_error() -> None:
    outside = sorted(where for where, cls in _public_exceptions().items() if not issubclass(cls, SecretSyncError))
    assert outside == []


def test_every_public_exception_is_drawn_in_the_tree() -> None:
    drawn = _drawn()
    missing = sorted(where for where, cls in _public_exceptions().items() if cls.__name__ not in drawn)
    assert missing == []


def test_the_tree_draws_no_class_that_does_not_exist() -> None:
    names = {cls.__name__ for cls in _public_exceptions().values()}
    assert _drawn() - names == set()
