"""Process-wide memory tuning for the long-running controller.

glibc gives each thread that contends for the allocator its own malloc arena (up to eight per
core), and memory freed in one arena is not returned while another thread's objects sit at its
top. The controller runs a worker pool, an informer per resource and a sender for Events, so a
cold start of 10,000 ExternalSecrets left a dozen arenas each holding freed space. Capping the
arenas at two was measured in ``bench/controller_bench.py`` (docs/benchmarks.md, "Controller at
the limit"): a lower peak RSS at the same cold-start time. This is the same cap container images
set with ``MALLOC_ARENA_MAX``; an operator's own ``MALLOC_ARENA_MAX`` always wins.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

#: glibc's ``mallopt`` parameter number for the arena cap (malloc.h).
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; True when the cap was set.

    Nothing happens for ``arenas <= 0``, when ``MALLOC_ARENA_MAX`` is set (glibc read it at
    start), or on a C library other than glibc (musl has one arena anyway). Call it before
    the controller starts its threads: arenas that exist already are kept.
    """
    if arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, ok)
    return ok
