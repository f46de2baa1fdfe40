"""Which findings move: ``--min-confidence``, ``--baseline``, ``--exclude GLOB``, ``--only RULE``.

Why: a scan reports everything it suspects, at a confidence; a migration moves values and
rewires workloads, so the user decides what goes. A finding left out is kept in the plan
with disposition ``skipped`` and the reason, so the plan still accounts for every finding.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..findings import Finding

CONFIDENCE_ORDER = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True, slots=True)
class Selection:
    min_confidence: str = "low"
    #: fingerprints accepted in a scan baseline (``scan --write-baseline``): not moved
    baseline: frozenset[str] = frozenset()
    #: globs over a finding's file (as scanned) or its ``Kind/namespace/name``
    exclude: tuple[str, ...] = ()
    #: rule names; empty: every rule
    only: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.min_confidence not in CONFIDENCE_ORDER:
            raise ValueError(f"--min-confidence must be one of {', '.join(CONFIDENCE_ORDER)}")

    def why_skipped(self, f: Finding) -> str | None:
        """The reason ``f`` stays where it is, or None when it moves."""
        if f.fingerprint in self.baseline:
            return "accepted in the baseline"
        if CONFIDENCE_ORDER.get(f.confidence, 0) < CONFIDENCE_ORDER[self.min_confidence]:
            return f"confidence {f.confidence} is below --min-confidence {self.min_confidence}"
        if self.only and f.rule not in self.only:
            return f"rule {f.rule} is not among --only {','.join(self.only)}"
        for glob in self.exclude:
            if any(fnmatch.fnmatch(x, glob) for x in _names(f)):
                return f"excluded by --exclude {glob}"
        return None


def _names(f: Finding) -> Iterable[str]:
    if f.file:
        yield f.file
        yield f.file.lstrip("./")
    yield f.resource
