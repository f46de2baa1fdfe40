"""A finding: where a plaintext secret stands, never what it is.

Shared by the scanner (which produces findings) and the planner (which turns each one
into a provider key, an ExternalSecret and a workload change). The value itself travels
beside the finding as a :class:`~secretsync.core.values.SecretValue` in a
:class:`Detection`, and is never serialised with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from secretsync.core.values import SecretValue

#: Where in a Kubernetes object the value stands.
LocationKind = Literal[
    "env",                # containers[].env[].value
    "arg",                # containers[].command/args flag (--password=...)
    "configmap",          # ConfigMap data[key] as a whole
    "configmap-embedded",  # one entry inside a file held in ConfigMap data (properties/.env/JSON/YAML/INI)
    "secret",             # Secret data/stringData[key]
    "helm-values",        # a Helm values file leaf
    "kustomize-literal",  # secretGenerator/configMapGenerator literals
    "kustomize-envfile",  # secretGenerator/configMapGenerator envs/files entry
    "field",              # any other field of an object: a custom resource's spec, an annotation
]

Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One plaintext secret's location. Serialisable; holds no value."""

    #: File relative to the scanned directory (or as given), or None for a live object.
    file: str | None
    #: 1-based line where the value stands (None for live objects).
    line: int | None
    #: ``Kind/namespace/name`` (namespace may be empty for cluster-scoped or unknown).
    resource: str
    #: JSON path of the field, e.g. ``spec.template.spec.containers[0].env[2].value``.
    path: str
    #: The key the value is known by (env var name, data key, flag name, values path leaf).
    key: str
    #: Which detector rule fired (e.g. ``aws-access-key``, ``keyword-password``, ``secret-object``).
    rule: str
    confidence: Confidence
    location: LocationKind
    #: Redacted preview: at most a short prefix plus ``***`` (never enough to use the value).
    preview: str = "***"
    #: Container name for env/arg findings.
    container: str | None = None
    #: Sub-key inside an embedded file (``configmap-embedded``), e.g. ``db.password``.
    subkey: str | None = None
    #: "manifest" or "cluster".
    source: Literal["manifest", "cluster"] = "manifest"
    #: Document index within a multi-document file (0-based).
    document: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Stable id from the location (not the value), for baselines and journals."""
        raw = "|".join(
            str(x) for x in (self.file, self.resource, self.path, self.key, self.subkey, self.rule)
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["fingerprint"] = self.fingerprint
        return doc


@dataclass(frozen=True, slots=True)
class Detection:
    """A finding with its value, in memory only (the value is masked in every repr)."""

    finding: Finding
    value: SecretValue


def redact(value: str) -> str:
    """A preview that never reveals enough to use: first 2 chars of long values, then ***."""
    if len(value) >= 12:
        return value[:2] + "***"
    return "***"
