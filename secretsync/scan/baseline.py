"""Accepted findings, by fingerprint only: ``--write-baseline FILE`` then ``--baseline FILE``.

A baseline holds fingerprints (a hash of file, resource, path, key, sub-key and rule), never a
value, a preview or even a path, so it can be committed next to the manifests it covers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from secretsync.core.errors import InvalidInput

from .findings import Finding

BASELINE_VERSION = 1


class BaselineError(InvalidInput, ValueError):
    """The baseline file is not one we wrote (the message names the file, not its content)."""


def write_baseline(path: Path | str, findings: Iterable[Finding]) -> int:
    """Write the fingerprints of ``findings``; returns how many (duplicates counted once)."""
    fingerprints = sorted({f.fingerprint for f in findings})
    doc: dict[str, Any] = {
        "tool": "secretsync",
        "version": BASELINE_VERSION,
        "generated": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "fingerprints": fingerprints,
    }
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    return len(fingerprints)


def load_baseline(path: Path | str) -> frozenset[str]:
    """The fingerprints in a baseline file; BaselineError if it is not a secretsync baseline."""
    target = Path(path)
    try:
        doc = json.loads(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{target}: cannot read: {exc.strerror or type(exc).__name__}") from None
    except ValueError:
        raise BaselineError(f"{target}: not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("fingerprints"), list):
        raise BaselineError(f"{target}: not a secretsync baseline (no 'fingerprints' list)")
    prints = doc["fingerprints"]
    if not all(isinstance(p, str) for p in prints):
        raise BaselineError(f"{target}: 'fingerprints' must be a list of strings")
    return frozenset(prints)
