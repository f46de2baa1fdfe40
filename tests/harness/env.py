"""Set process environment variables for a block: how tests reach the fakes.

Why the environment: where the controller sends requests and which files it reads are the
controller's configuration (its environment, flags, Helm values), never store fields, so a
test points the controller at a fake exactly as an operator would configure it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """``environ(NAME="value", OTHER=None)``: set (or, for None, unset) and restore after."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
