"""Where the planner and apply take findings from: :mod:`secretsync.scan.findings`.

The model lives with the scanner that produces it, so ``secretsync.scan`` imports nothing of
the migrator (no cycle: the migrator uses the scan, never the other way round).
"""

from secretsync.scan.findings import Confidence, Detection, Finding, LocationKind, redact

__all__ = ["Confidence", "Detection", "Finding", "LocationKind", "redact"]
