"""``secretsync scan``: find plaintext secrets in manifests, Helm values, kustomizations and clusters.

The small public surface the CLI and the migrator use::

    result = scan_paths(["deploy/"])            # or scan_objects(live_objects)
    for detection in result.detections:         # Finding + masked SecretValue
        detection.finding.fingerprint           # stable across runs: file|resource|path|key|subkey|rule

See :mod:`.detectors` for what counts as a secret and why.
"""

from .baseline import BaselineError, load_baseline, write_baseline
from .detectors import RULES, Rule, judge
from .formats import path_join, split_path
from .results import ScanError, ScanOptions, ScanResult
from .sarif import to_sarif
from .scanner import scan_objects, scan_paths, scan_text

__all__ = [
    "RULES",
    "BaselineError",
    "Rule",
    "ScanError",
    "ScanOptions",
    "ScanResult",
    "judge",
    "load_baseline",
    "path_join",
    "scan_objects",
    "scan_paths",
    "scan_text",
    "split_path",
    "to_sarif",
    "write_baseline",
]
