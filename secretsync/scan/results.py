"""What a scan takes (:class:`ScanOptions`) and gives back (:class:`ScanResult`, :class:`ScanError`).

Kept apart from the engine so that the migrator and the CLI can type against these without
importing the parsers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from secretsync.manifests.tree import SKIP_DIRS

from .findings import Confidence, Detection, Finding

#: Default limit on one file's size: manifests are small; a 50 MB "YAML" is a dump or a mistake.
DEFAULT_MAX_FILE_SIZE = 5 * 1024 * 1024

_CONFIDENCE_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2}


def confidence_at_least(value: str, floor: str) -> bool:
    """Whether confidence ``value`` is at or above ``floor`` (low < medium < high)."""
    return _CONFIDENCE_RANK.get(value, 0) >= _CONFIDENCE_RANK.get(floor, 0)


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """Knobs of one scan. The defaults are what ``secretsync scan`` uses."""

    #: Files larger than this are reported as a ScanError and skipped.
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    #: Findings below this confidence are dropped.
    min_confidence: Confidence = "low"
    #: Honour ``# secretsync:ignore`` comments.
    inline_ignore: bool = True
    #: Fingerprints accepted earlier (``--baseline``): findings with these are suppressed.
    baseline: frozenset[str] = frozenset()
    #: Report long random-looking values under neutral names (rule ``high-entropy``).
    entropy: bool = True
    #: File name endings looked at when walking a directory.
    extensions: tuple[str, ...] = (".yaml", ".yml", ".json")
    #: Directory names never walked into.
    exclude_dirs: frozenset[str] = SKIP_DIRS
    #: Upper bound on values visited per document (guards against YAML alias bombs).
    max_nodes_per_document: int = 200_000
    #: Render each Helm chart (a folder with ``Chart.yaml``) with the Helm engine, when installed,
    #: and report values that end up secret at their ``values.yaml`` line.
    render_charts: bool = True


@dataclass(frozen=True, slots=True)
class ScanError:
    """A file, object or field the scan could not read; the scan went on without it.

    Messages name the file and, where known, the object and field; never a value.
    """

    file: str | None
    message: str
    resource: str | None = None
    path: str | None = None
    #: A file (or a document of one) was not read at all, so its secrets, if any, are not in
    #: the result: ``scan`` and ``audit`` exit with ``secretsync.manifests.EXIT_INCOMPLETE`` then.
    unread: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "message": self.message, "resource": self.resource, "path": self.path,
                "unread": self.unread}

    def __str__(self) -> str:
        where = self.file or "<cluster>"
        if self.resource:
            where += f" {self.resource}"
        if self.path:
            where += f" {self.path}"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class ScanResult:
    """Detections (finding + masked value) and the errors met on the way."""

    detections: list[Detection] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    #: Findings dropped by an inline ignore comment or the baseline.
    suppressed: int = 0
    files_scanned: int = 0
    bytes_scanned: int = 0
    objects_scanned: int = 0

    @property
    def unread(self) -> int:
        """How many files or documents were not read (counted, and named in ``errors``)."""
        return sum(1 for e in self.errors if e.unread)

    @property
    def findings(self) -> list[Finding]:
        """The findings alone (no values), in scan order."""
        return [d.finding for d in self.detections]

    def extend(self, other: ScanResult) -> None:
        self.detections.extend(other.detections)
        self.errors.extend(other.errors)
        self.suppressed += other.suppressed
        self.files_scanned += other.files_scanned
        self.bytes_scanned += other.bytes_scanned
        self.objects_scanned += other.objects_scanned
