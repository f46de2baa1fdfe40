"""SARIF 2.1.0 output, for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

Each result carries the rule, a message naming the resource, path and key (never the value or
even the preview), the file and line, and ``partialFingerprints`` so dashboards track a finding
across commits. Findings from a cluster have no file: they get a logical location instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from secretsync import __version__

from .detectors import RULES
from .findings import Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
_LEVEL = {"high": "error", "medium": "warning", "low": "note"}


def _artifact(file: str) -> dict[str, str]:
    """A relative path is relative to the scanned root (%SRCROOT%); an absolute one is a file: URI."""
    path = PurePosixPath(file)
    if path.is_absolute():
        return {"uri": Path(file).as_uri()}
    return {"uri": quote(path.as_posix()), "uriBaseId": "%SRCROOT%"}


def to_sarif(findings: Sequence[Finding], *, errors: Sequence[Any] = ()) -> dict[str, Any]:
    """A SARIF log with one run. ``errors`` become tool execution notifications."""
    used = sorted({f.rule for f in findings})
    rule_index = {rule: i for i, rule in enumerate(used)}
    rules = []
    for rule in used:
        info = RULES.get(rule)
        rules.append({
            "id": rule,
            "name": (info.name if info else rule).title().replace(" ", "").replace("/", ""),
            "shortDescription": {"text": info.name if info else rule},
            "fullDescription": {"text": info.description if info else rule},
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["security", "secrets"]},
        })
    results = []
    for f in findings:
        where = f"{f.resource} {f.path}" + (f" ({f.subkey})" if f.subkey else "")
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": rule_index[f.rule],
            "level": _LEVEL.get(f.confidence, "warning"),
            "message": {"text": f"Plaintext secret '{f.key}' in {where} [{f.location}, {f.confidence} confidence]"},
            "partialFingerprints": {"secretsyncFingerprint/v1": f.fingerprint},
            "properties": {
                "resource": f.resource, "path": f.path, "key": f.key, "location": f.location,
                "confidence": f.confidence, "container": f.container, "subkey": f.subkey,
                "source": f.source, "document": f.document,
            },
        }
        if f.file is not None:
            region: dict[str, Any] = {"startLine": f.line or 1}
            result["locations"] = [{
                "physicalLocation": {
                    "artifactLocation": _artifact(f.file),
                    "region": region,
                },
                "logicalLocations": [{"name": f.resource, "fullyQualifiedName": f"{f.resource}#{f.path}",
                                      "kind": "resource"}],
            }]
        else:
            result["locations"] = [{
                "logicalLocations": [{"name": f.resource, "fullyQualifiedName": f"{f.resource}#{f.path}",
                                      "kind": "resource"}],
            }]
        results.append(result)
    notifications = [
        {"level": "warning", "message": {"text": str(e)}, "descriptor": {"id": "scan-error"}} for e in errors
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "secretsync",
                "semanticVersion": __version__.split("+")[0],
                "informationUri": "https://github.com/secretsync/secretsync",
                "rules": rules,
            }},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    }
