"""``migrate plan``: turn findings into provider keys, ExternalSecrets and exact edits.

A package because a plan has several reasons to change: the model (:mod:`.model`), one
module per source kind (:mod:`.workload`, :mod:`.configmap`, :mod:`.secret`,
:mod:`.kustomize`, :mod:`.helm`, and :mod:`.overlay` for per-overlay ExternalSecrets and patches),
consumer rewiring (:mod:`.consumers`), what is emitted
(:mod:`.output`, :mod:`.eso` for ``--emit eso``), which findings move (:mod:`.select`), the
invariant check (:mod:`.invariant`) and the document on disk (:mod:`.document`). The deploy-unit
resolver is :mod:`secretsync.manifests.units` (shared with the audit), used by :mod:`secretsync.migrator.resolve`.
:class:`Planner` only dispatches.
"""

from .consumers import MalformedConsumer, consumer_ops_for_configmap
from .document import file_digest, load_plan, read_digest_key, sidecar, write_digest_key
from .model import PLAN_API_VERSION, PLAN_KIND, Plan, PlanOptions
from .output import preview_diffs
from .planner import Planner

__all__ = [
    "PLAN_API_VERSION",
    "PLAN_KIND",
    "MalformedConsumer",
    "Plan",
    "PlanOptions",
    "Planner",
    "consumer_ops_for_configmap",
    "file_digest",
    "load_plan",
    "preview_diffs",
    "read_digest_key",
    "sidecar",
    "write_digest_key",
]
