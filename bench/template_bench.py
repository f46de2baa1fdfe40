"""Tenant templates and regexes: what an attack costs the controller, against the unguarded baseline.

Two measurements, each against its baseline in the same run:

* peak RSS of one render of ``{{ password.center(N) }}`` in a fresh process: Jinja's own
  ImmutableSandboxedEnvironment (what secretsync used before) vs our engine, which prices the
  call and refuses it before allocating;
* time of one ``find.name.regexp`` match of ``^(a+)+$`` against a 23-character name: Python's
  backtracking ``re`` vs RE2 (``secretsync.core.regex``).

Run: ``python -m bench templates``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time

from secretsync.core import regex

_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    which, width = sys.argv[1], int(sys.argv[2])
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from secretsync.api.template import TemplateEngine
    from secretsync.core.values import SecretValue
    source = "{{ password.center(%d) }}" % width
    engine = TemplateEngine()
    plain = ImmutableSandboxedEnvironment()
    engine.render("r", "k", "{{ password }}", {"password": SecretValue("x")})
    plain.from_string("{{ password }}").render(password="x")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    try:
        if which == "jinja":
            plain.from_string(source).render(password="s3cr3t")
        else:
            engine.render("r", "k", source, {"password": SecretValue("s3cr3t")})
        outcome = "rendered"
    except Exception as exc:
        outcome = type(exc).__name__
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"grew_mib": (peak - base) / 1024, "seconds": seconds, "outcome": outcome}))
""")


def _render_in_child(which: str, width: int) -> dict[str, float | str]:
    out = subprocess.run([sys.executable, "-c", _CHILD, which, str(width)], capture_output=True, text=True,
                         check=True, timeout=600)
    result: dict[str, float | str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    width = int(argv[0]) if argv else 200_000_000
    base = _render_in_child("jinja", width)
    ours = _render_in_child("secretsync", width)
    print(f"center({width}): jinja sandbox {base['outcome']}, peak RSS +{base['grew_mib']:.1f} MiB in "
          f"{base['seconds']:.2f} s; secretsync {ours['outcome']}, +{ours['grew_mib']:.1f} MiB in "
          f"{ours['seconds'] * 1000:.1f} ms; memory ratio "
          f"{max(float(ours['grew_mib']), 0.1) / max(float(base['grew_mib']), 0.1):.4f}")
    name = "a" * 22 + "!"
    t0 = time.perf_counter()
    assert re.search("^(a+)+$", name) is None
    backtracking = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert not regex.search("^(a+)+$", name)
    linear = time.perf_counter() - t0
    print(f"^(a+)+$ on {len(name)} chars: re {backtracking:.2f} s, RE2 {linear * 1e6:.0f} us: "
          f"ratio 1/{backtracking / max(linear, 1e-9):,.0f}")
    return 0
