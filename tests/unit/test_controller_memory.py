"""The controller caps glibc's malloc arenas, unless the operator chose a value."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from secretsync.controller.memory import limit_malloc_arenas

_PROBE = """
import threading
from secretsync.controller.memory import limit_malloc_arenas
ok = limit_malloc_arenas(2)
out = []
ts = [threading.Thread(target=lambda: out.append(len(bytearray(1 << 16)))) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(ok, len(out))
"""


def _run(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the cap is glibc's (mallopt)")
def test_the_cap_is_set_on_glibc_and_threads_still_allocate() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True 8"


def test_an_operators_malloc_arena_max_wins() -> None:
    assert _run({**os.environ, "MALLOC_ARENA_MAX": "4"}) == "False 8"


def test_zero_means_the_c_librarys_default() -> None:
    assert limit_malloc_arenas(0) is False
