"""One command for every benchmark: ``python -m bench [scan|audit|controller|...|soak|all] [-- ARGS]``.

Each benchmark measures its baseline in the same run and prints the ratio, so a number is
never compared with one measured on another day or machine. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from . import audit_bench, controller_bench, events_bench, rotation_bench, scan_bench, soak_bench, template_bench

BENCHES: dict[str, Callable[[list[str]], object]] = {
    "scan": scan_bench.main,
    "audit": audit_bench.main,
    "controller": controller_bench.main,
    "templates": template_bench.main,
    "events": events_bench.main,
    "rotation": rotation_bench.main,
    "soak": soak_bench.main,
}
#: Not in ``all``: the soak runs for half an hour by default.
LONG = {"soak"}


def main(argv: list[str]) -> int:
    which = argv[0] if argv and not argv[0].startswith("-") else "all"
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if which not in (*BENCHES, "all"):
        print(f"usage: python -m bench [{'|'.join(BENCHES)}|all] [-- ARGS]", file=sys.stderr)
        return 2
    names = [b for b in BENCHES if b not in LONG] if which == "all" else [which]
    rc = 0
    for name in names:
        print(f"== bench {name} ==", flush=True)
        result = BENCHES[name](rest)
        if isinstance(result, int):
            rc = max(rc, result)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
