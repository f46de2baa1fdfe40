"""Generate the CustomResourceDefinitions from the models (the one source of truth).

Why generated: a hand-written CRD drifts from the parser the first time someone adds a
field to one and forgets the other. Here the OpenAPI schema is derived from the same
``Annotated[..., Wire(...)]`` field declarations :mod:`.fields` decodes with, and
``deploy/crds/`` is written by ``secretsync crds -o deploy/crds``; a unit test regenerates
it and fails on any difference, so CI catches drift.

The schemas are *structural* (every node has a ``type``; ``x-kubernetes-preserve-unknown-fields``
only on the open provider config blocks) and use only what apiextensions.k8s.io/v1 offered
in Kubernetes 1.20: no ``x-kubernetes-validations`` (CEL), so cross-field rules ("exactly one
provider") are enforced by the parser and reported in status instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, get_args, get_origin

import yaml

from .fields import FieldInfo, Wire, encode_value, fields_of, is_open_mapping, unwrap_optional
from .models import (
    GROUP,
    KIND_CLUSTER_EXTERNAL_SECRET,
    KIND_CLUSTER_SECRET_STORE,
    KIND_EXTERNAL_SECRET,
    KIND_SECRET_ROTATION,
    KIND_SECRET_STORE,
    KINDS,
    NAMESPACED,
    PLURALS,
    VERSION,
    ClusterExternalSecretSpec,
    ClusterExternalSecretStatus,
    ExternalSecretSpec,
    ExternalSecretStatus,
    SecretRotationSpec,
    SecretRotationStatus,
    SecretStoreSpec,
    SecretStoreStatus,
)

#: Short names differ from ESO's (es, ss, css, ces) on purpose: during a migration both
#: operators are installed, and shared short names would make ``kubectl get es`` ambiguous.
SHORT_NAMES: Mapping[str, list[str]] = {
    KIND_SECRET_STORE: ["ssstore"],
    KIND_CLUSTER_SECRET_STORE: ["sscstore"],
    KIND_EXTERNAL_SECRET: ["sses"],
    KIND_CLUSTER_EXTERNAL_SECRET: ["ssces"],
    KIND_SECRET_ROTATION: ["ssrot"],
}
#: ``kubectl get secretsync`` lists every object of ours.
CATEGORIES = ["secretsync"]

_DESCRIPTIONS: Mapping[str, str] = {
    KIND_SECRET_STORE: "SecretStore says where secrets live (one provider) and how to authenticate; "
    "usable by ExternalSecrets of its own namespace.",
    KIND_CLUSTER_SECRET_STORE: "ClusterSecretStore is a SecretStore usable from many namespaces, "
    "restricted by spec.conditions.",
    KIND_EXTERNAL_SECRET: "ExternalSecret projects remote secrets from a store into a Kubernetes Secret "
    "and keeps it up to date.",
    KIND_CLUSTER_EXTERNAL_SECRET: "ClusterExternalSecret creates the same ExternalSecret in every "
    "selected namespace.",
    KIND_SECRET_ROTATION: "SecretRotation generates a new value on a schedule and writes it to a store as "
    "a new version, after an optional hook applied it to the target system.",
}

_SPEC_STATUS: Mapping[str, tuple[type, type]] = {
    KIND_SECRET_STORE: (SecretStoreSpec, SecretStoreStatus),
    KIND_CLUSTER_SECRET_STORE: (SecretStoreSpec, SecretStoreStatus),
    KIND_EXTERNAL_SECRET: (ExternalSecretSpec, ExternalSecretStatus),
    KIND_CLUSTER_EXTERNAL_SECRET: (ClusterExternalSecretSpec, ClusterExternalSecretStatus),
    KIND_SECRET_ROTATION: (SecretRotationSpec, SecretRotationStatus),
}

_READY_REASON = '.status.conditions[?(@.type=="Ready")].reason'
_READY_STATUS = '.status.conditions[?(@.type=="Ready")].status'
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _printer_columns(kind: str) -> list[dict[str, Any]]:
    if kind in (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE):
        return [
            _AGE,
            {"name": "Status", "type": "string", "jsonPath": _READY_REASON},
            {"name": "Capabilities", "type": "string", "jsonPath": ".status.capabilities.access"},
            {"name": "Ready", "type": "string", "jsonPath": _READY_STATUS},
        ]
    if kind == KIND_EXTERNAL_SECRET:
        return [
            {"name": "Store", "type": "string", "jsonPath": ".spec.secretStoreRef.name"},
            {"name": "Refresh Interval", "type": "string", "jsonPath": ".spec.refreshInterval"},
            {"name": "Status", "type": "string", "jsonPath": _READY_REASON},
            {"name": "Ready", "type": "string", "jsonPath": _READY_STATUS},
            _AGE,
        ]
    if kind == KIND_SECRET_ROTATION:
        return [
            {"name": "Store", "type": "string", "jsonPath": ".spec.secretStoreRef.name"},
            {"name": "Key", "type": "string", "jsonPath": ".spec.remoteKey"},
            {"name": "Last Rotation", "type": "string", "jsonPath": ".status.lastRotationTime"},
            {"name": "Ready", "type": "string", "jsonPath": _READY_STATUS},
            _AGE,
        ]
    return [
        {"name": "Store", "type": "string", "jsonPath": ".spec.externalSecretSpec.secretStoreRef.name"},
        {"name": "Refresh Interval", "type": "string", "jsonPath": ".spec.refreshTime"},
        {"name": "Ready", "type": "string", "jsonPath": _READY_STATUS},
        _AGE,
    ]


def _scalar(tp: Any, wire: Wire | None) -> dict[str, Any]:
    out: dict[str, Any]
    if tp is str:
        out = {"type": "string"}
        if wire is not None:
            if wire.enum:
                out["enum"] = list(wire.enum)
            if wire.pattern:
                out["pattern"] = f"^(?:{wire.pattern})$"
            if wire.max_length is not None:
                out["maxLength"] = wire.max_length
    elif tp is bool:
        out = {"type": "boolean"}
    elif tp is int:
        out = {"type": "integer", "format": "int64"}
    elif tp is float:
        out = {"type": "number"}
    else:
        raise TypeError(f"no schema for {tp!r}")
    if wire is not None and wire.minimum is not None and tp in (int, float):
        out["minimum"] = int(wire.minimum) if tp is int else wire.minimum
    return out


def type_schema(tp: Any, wire: Wire | None = None) -> dict[str, Any]:
    """The structural schema of one model type."""
    if wire is not None and wire.codec is not None:
        return dict(wire.codec.schema)
    tp, _ = unwrap_optional(tp)
    if dataclasses.is_dataclass(tp):
        return object_schema(tp)
    origin = get_origin(tp)
    if origin is tuple:
        item_tp = get_args(tp)[0]
        item_wire = wire if wire is not None and (wire.enum or wire.pattern) else None
        return {"type": "array", "items": type_schema(item_tp, item_wire)}
    if origin is Mapping:
        if is_open_mapping(tp):
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return {"type": "object", "additionalProperties": type_schema(get_args(tp)[1])}
    return _scalar(tp, wire)


def _field_schema(fi: FieldInfo) -> dict[str, Any]:
    schema = type_schema(fi.tp, fi.wire)
    out: dict[str, Any] = {"description": fi.wire.doc, **schema}
    if fi.wire.schema_default and not fi.required and fi.default is not None:
        out["default"] = encode_value(fi.tp, fi.default, fi.wire)
    return out


def object_schema(cls: Any) -> dict[str, Any]:
    """The structural schema of a model dataclass: one property per wire field."""
    custom = getattr(cls, "__wire_schema__", None)
    if custom is not None:  # a model whose schema another party declares (ProviderSpec: the providers)
        declared: dict[str, Any] = custom()
        return declared
    infos = fields_of(cls)
    out: dict[str, Any] = {
        "type": "object",
        "properties": {fi.wire.name: _field_schema(fi) for fi in infos},
    }
    required = [fi.wire.name for fi in infos if fi.required]
    if required:
        out["required"] = required
    return out


def crd(kind: str) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    plural = PLURALS[kind]
    spec_cls, status_cls = _SPEC_STATUS[kind]
    root = {
        "type": "object",
        "description": _DESCRIPTIONS[kind],
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"description": "Desired state.", **object_schema(spec_cls)},
            "status": {"description": "Observed state, written by the controller.", **object_schema(status_cls)},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "secretsync", "app.kubernetes.io/part-of": "secretsync"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(SHORT_NAMES[kind]),
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced" if NAMESPACED[kind] else "Cluster",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(kind),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(k) for k in KINDS]


def crd_filename(kind: str) -> str:
    """``secretsync.io_externalsecrets.yaml`` (controller-gen's naming)."""
    return f"{GROUP}_{PLURALS[kind]}.yaml"


_HEADER = "# Generated by `secretsync crds -o deploy/crds` from secretsync/api/models.py. Do not edit.\n"


def to_yaml(obj: Mapping[str, Any]) -> str:
    """Stable YAML (key order kept, wide lines) so regenerating gives byte-identical files."""
    return _HEADER + yaml.safe_dump(dict(obj), sort_keys=False, width=120, allow_unicode=True)


def rendered_crds() -> dict[str, str]:
    """file name -> YAML text, for every CRD."""
    return {crd_filename(k): to_yaml(crd(k)) for k in KINDS}
