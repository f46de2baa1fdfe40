"""``migrate --cluster``: the same plan/apply/rollback on live objects through the API.

Differences from manifest mode, and why:

* Values are read from the live object at apply time (GET), and every write is a PUT with
  the resourceVersion just read: a concurrent edit gets 409, and the item is re-planned on
  the fresh object (same ops, if they still apply and the value there is still the stored
  one) instead of being clobbered.
* Secrets stay where they are: their ExternalSecret uses ``creationPolicy: Merge`` and
  takes over their keys. ConfigMap keys are removed only after every consumer was switched.
* Before the first change, each object's touched fields (``spec``; ``data``; labels and
  annotations of Secrets) are snapshotted into the journal with values replaced by tokens;
  rollback fills them from the provider and puts them back, after checking (by keyed
  digest) that nobody changed the object since the migration.
* "Wait until synced": after creating an ExternalSecret, apply waits (``--sync-timeout``)
  until the controller wrote the target Secret with exactly the stored values. Only then
  are workloads switched.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from secretsync.core.contract import SecretsClient
from secretsync.core.errors import InvalidConfig
from secretsync.core.values import SecretValue
from secretsync.kube.client import KubeApi, KubeError, as_job_error
from secretsync.kube.crds import ALL_BY_KIND
from secretsync.kube.kinds import POD_KINDS, Resource
from secretsync.kube.labels import LAST_APPLIED_ANNOTATION, merge_annotation

from . import objpath
from .apply import ApplyError, ApplyOptions, ApplyReport, StalePlan, Step, store_value, value_digest
from .journal import Journal, StepState, crash_point
from .manifests import Inventory, LocateError, read_field
from .plan import Plan, Planner, PlanOptions
from .restore import RestoreError, check_value_free, fill, template
from .rollback import (
    RollbackError,
    RollbackReport,
    ValueSource,
    delete_created_key,
    keep_created_key,
    sources_restored,
)

log = logging.getLogger("secretsync.migrator")
_T = TypeVar("_T")

#: The kinds ``migrate --cluster`` reads and writes (paths and versions: :mod:`secretsync.kube.kinds`).
_KINDS: frozenset[str] = frozenset({*(r.kind for r in POD_KINDS), "ConfigMap", "Secret", "ExternalSecret",
                                    "SecretStore", "ClusterSecretStore"})
#: Fields of each kind whose state the migration changes (snapshot, compare, restore).
_TOUCHED = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "metadata.labels", "metadata.annotations")}


class Kube:
    """The migrator's view of the one client (:class:`~secretsync.kube.client.KubeApi`): objects by
    kind name, a 404 on ``get``/``delete`` as "absent", an unreachable server as Unavailable."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        self.api, self.default_namespace = KubeApi.for_cli(kubeconfig, context, operation="migrate")

    def close(self) -> None:
        self.api.close()

    def _call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except KubeError as exc:
            if exc.unreachable:
                raise as_job_error(exc, operation="migrate") from exc
            raise

    def resource(self, kind: str) -> Resource:
        if kind not in _KINDS:
            raise InvalidConfig(f"kind {kind} is not supported by migrate --cluster")
        return self._call(lambda: self.api.served(ALL_BY_KIND[kind]))

    def list(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        res = self.resource(kind)
        return self._call(lambda: list(self.api.list_pages(res, namespace)))

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        res = self.resource(kind)
        try:
            out = self._call(lambda: self.api.get(res, name, namespace))
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        out.setdefault("kind", kind)
        return out

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        res = self.resource(obj["kind"])
        return self._call(lambda: self.api.create(res, obj, obj["metadata"].get("namespace")))

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        md = obj["metadata"]
        res = self.resource(obj["kind"])
        return self._call(lambda: self.api.replace(res, md["name"], obj, md.get("namespace")))

    def delete(self, kind: str, namespace: str | None, name: str, uid: str | None = None) -> None:
        res = self.resource(kind)
        try:
            self._call(lambda: self.api.delete(res, name, namespace, uid=uid))
        except KubeError as exc:
            if not exc.not_found:
                raise


def merged_keys(secret: Mapping[str, Any], es_name: str) -> set[str]:
    """The keys of ``secret`` the controller has merged for ExternalSecret ``es_name`` (its
    ``creationPolicy: Merge`` bookkeeping: one annotation per merging ExternalSecret, ``{"keys": [...]}``)."""
    ann = (secret.get("metadata") or {}).get("annotations") or {}
    try:
        doc = json.loads(ann.get(merge_annotation(es_name)) or "{}")
    except ValueError:
        return set()
    keys = doc.get("keys") if isinstance(doc, dict) else None
    return {k for k in keys or () if isinstance(k, str)}


def split_resource(resource: str) -> tuple[str, str, str]:
    kind, ns, name = resource.split("/", 2)
    return kind, ns, name


# -- plan ---------------------------------------------------------------------------------------------
def plan_cluster(kubeconfig: str | None, context: str | None, namespace: str | None, all_namespaces: bool,
                 options: PlanOptions, client: SecretsClient | None) -> Plan:
    """Scan the live objects of one namespace (or all) and plan them."""
    from secretsync.scan import scan_objects
    from secretsync.scan.cluster import list_live_objects

    kube = Kube(kubeconfig, context)
    try:
        ns = None if all_namespaces else (namespace or kube.default_namespace)
        objects, errors = list_live_objects(kube.api, ns)
        protected = store_credentials(kube, ns)
    finally:
        kube.close()
    for err in errors:
        log.warning("%s", err)
    result = scan_objects(objects, source="cluster")
    inv = Inventory.from_objects(objects)
    return Planner(inv, [], options, protected=protected).build(result.detections, client)


def store_credentials(kube: Kube, namespace: str | None) -> dict[str, str]:
    """Secrets that stores read their provider credentials from: moving those into the provider
    would lock the controller out of it, so they stay (as manual items, with this reason)."""
    out: dict[str, str] = {}
    for kind, ns in (("SecretStore", namespace), ("ClusterSecretStore", None)):
        try:
            items = kube.list(kind, ns)
        except KubeError as exc:
            if exc.status in (403, 404):
                continue  # CRDs not installed, or not allowed: nothing to protect we can see
            raise
        for store in items:
            store_ns = (store.get("metadata") or {}).get("namespace")
            for block in ((store.get("spec") or {}).get("provider") or {}).values():
                refs = (block or {}).get("secretRef") or {} if isinstance(block, Mapping) else {}
                for ref in refs.values():
                    if isinstance(ref, Mapping) and ref.get("name"):
                        sns = ref.get("namespace") or store_ns or ""
                        out[f"Secret/{sns}/{ref['name']}"] = (
                            f"credentials of {kind} {store['metadata']['name']}: the controller needs them to reach "
                            "the provider, so they stay in the cluster")
    return out


# -- apply --------------------------------------------------------------------------------------------
def _canonical(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The fields of ``obj`` the migration owns: what is snapshotted, compared and restored."""
    fields = _TOUCHED.get(kind, ("spec",))
    out: dict[str, Any] = {}
    for f in fields:
        if objpath.exists(obj, f):
            out[f] = copy.deepcopy(objpath.get(obj, f))
    ann = ((obj.get("metadata") or {}).get("annotations") or {})
    if LAST_APPLIED_ANNOTATION in ann and "metadata.annotations" not in fields:
        out["lastApplied"] = ann[LAST_APPLIED_ANNOTATION]
    return out


def _put_back(obj: dict[str, Any], kind: str, saved: Mapping[str, Any]) -> None:
    for f in _TOUCHED.get(kind, ("spec",)):
        parent_path, _, last = f.rpartition(".")
        parent = objpath.get(obj, parent_path) if parent_path else obj
        if f in saved:
            parent[last] = copy.deepcopy(saved[f])
        else:
            parent.pop(last, None)
    if "lastApplied" in saved:
        md = obj.setdefault("metadata", {})
        if not md.get("annotations"):
            md["annotations"] = {}
        md["annotations"][LAST_APPLIED_ANNOTATION] = saved["lastApplied"]


class ClusterApply:
    """Apply a cluster plan through the Kubernetes API (see the module docstring for the order)."""

    def __init__(self, plan: Mapping[str, Any], digest_key: bytes, client: SecretsClient, options: ApplyOptions,
                 journal: Journal | None, kubeconfig: str | None, context: str | None) -> None:
        self.plan = plan
        self.key = digest_key
        self.client = client
        self.opt = options
        self.journal = journal
        self.kube = Kube(kubeconfig, context)
        self.report = ApplyReport()
        self._live: dict[str, dict[str, Any]] = {}
        self._values: dict[str, SecretValue] = {}
        #: Groups with a consumer that could not be switched: their plaintext stays.
        self._held: set[str] = set()

    def steps(self) -> list[Step]:
        out: list[Step] = [Step(f"store:{s['id']}", "store", f"store {s['providerKey']}", s)
                           for s in self.plan["secrets"]]
        # Secrets are snapshotted even without ops: the controller's Merge adds its annotation.
        changes = [c for c in self.plan["changes"] if c["ops"] or c["resource"].startswith("Secret/")]
        out += [Step(f"snapshot:{c['resource']}", "snapshot", f"snapshot {c['resource']}", c) for c in changes]
        for no in self.plan["newObjects"]:
            ident = f"{no['kind']}/{no['namespace'] or ''}/{no['name']}"
            out.append(Step(f"create:{ident}", "create", f"create {ident}", no))
        for no in self.plan["newObjects"]:
            if no["kind"] == "ExternalSecret" and self.opt.wait_sync:
                out.append(Step(f"sync:{no['namespace']}/{no['name']}", "sync",
                                f"wait for Secret of {no['namespace']}/{no['name']}", no))
        kind_order = {"consumer": 0, "source": 1}
        ordered = sorted(changes, key=lambda c: (kind_order[c["role"]], c["resource"].startswith("Secret/")))
        out += [Step(f"patch:{c['resource']}", "patch", f"patch {c['resource']}", c) for c in ordered]
        return out

    def run(self, steps: list[Step] | None = None, progress: Callable[[Step], None] | None = None) -> ApplyReport:
        steps = steps if steps is not None else self.steps()
        try:
            for step in steps:
                if self.journal and self.journal.state(step.id).is_done:
                    self.report.skipped += 1
                    if step.kind == "store":
                        self._remember_value(step)
                else:
                    try:
                        getattr(self, f"_{step.kind}")(step)
                    except _ItemConflict as exc:
                        self.report.problems.append(str(exc))
                        if step.kind == "patch" and step.payload["role"] == "consumer":
                            self._held.update(step.payload["groups"])
                if progress:
                    progress(step)
            if self.journal and not self.opt.dry_run and not self.report.problems:
                self.journal.write("complete")
        finally:
            self.kube.close()
        return self.report

    # -- helpers -------------------------------------------------------------------------------
    def live(self, resource: str, fresh: bool = False) -> dict[str, Any]:
        if fresh or resource not in self._live:
            kind, ns, name = split_resource(resource)
            obj = self.kube.get(kind, ns or None, name)
            if obj is None:
                raise StalePlan(f"{resource} is gone; run 'migrate plan' again")
            want = (self.plan.get("objects") or {}).get(resource, {}).get("uid")
            if want and (obj.get("metadata") or {}).get("uid") != want:
                raise StalePlan(f"{resource} was deleted and recreated since the plan; run 'migrate plan' again")
            self._live[resource] = obj
        return self._live[resource]

    def _read_value(self, s: Mapping[str, Any]) -> SecretValue:
        loc = s["source"]
        try:
            return read_field(self.live(loc["resource"]), loc, loc["resource"])
        except LocateError as exc:
            raise StalePlan(f"store:{s['id']}: {exc}; run 'migrate plan' again") from None

    def _remember_value(self, step: Step) -> None:
        st = self.journal.state(step.id) if self.journal else None
        if st and st.done:
            self._values[step.payload["id"]] = self._provider_value(st.done)

    def _provider_value(self, rec: Mapping[str, Any]) -> SecretValue:
        key, version = rec["providerKey"], rec.get("version")
        if version and self.client.capabilities.versions:
            return self.client.get(key, version=version)
        return self.client.get(key)

    # -- steps ---------------------------------------------------------------------------------
    def _store(self, step: Step) -> None:
        s = step.payload
        value = self._read_value(s)
        if self.opt.dry_run:
            self.report.actions.append(f"would store {s['providerKey']}")
            self._values[s["id"]] = value
            return
        store_value(self.journal, step.id, self.client, s["providerKey"], value, self.key, self.opt.overwrite,
                    self.report)
        self._values[s["id"]] = value

    def _snapshot(self, step: Step) -> None:
        resource = step.payload["resource"]
        obj = self.live(resource, fresh=True)
        if self.opt.dry_run:
            return
        assert self.journal is not None
        text = json.dumps(_canonical(obj, obj["kind"]), sort_keys=True)
        saved = template(text, self._values)
        if fill(saved, self._values.__getitem__) != text:
            raise ApplyError(f"{resource}: cannot record a restorable snapshot")
        try:
            check_value_free(saved, self._values, resource)
        except RestoreError as exc:
            raise ApplyError(f"{exc}; stopped before changing anything") from None
        self.journal.begin(step.id, resource=resource, uid=(obj.get("metadata") or {}).get("uid"), saved=saved)
        self.journal.done(step.id, resource=resource)

    def _create(self, step: Step) -> None:
        no = step.payload
        manifest = no["manifest"]
        if self.opt.dry_run:
            self.report.actions.append(f"would create {no['kind']} {no['namespace'] or ''}/{no['name']}")
            return
        assert self.journal is not None
        current = self.kube.get(no["kind"], no["namespace"], no["name"])
        if current is not None:
            if current.get("spec") == manifest.get("spec"):
                if not self.journal.state(step.id).begun:  # it was there before us: never ours to delete
                    self.journal.begin(step.id, kind=no["kind"], namespace=no["namespace"], name=no["name"],
                                       existed=True)
                self.journal.done(step.id, uid=(current.get("metadata") or {}).get("uid"))
                return
            raise ApplyError(f"{no['kind']} {no['namespace']}/{no['name']} already exists with another spec; "
                             "not replacing it (delete it or re-plan with other names)")
        self.journal.begin(step.id, kind=no["kind"], namespace=no["namespace"], name=no["name"], existed=False)
        out = self.kube.create(manifest)
        crash_point()
        self.journal.done(step.id, uid=(out.get("metadata") or {}).get("uid"))
        if no["kind"] == "ExternalSecret":
            self.report.externalsecrets += 1

    def _sync(self, step: Step) -> None:
        """Wait until the controller wrote every key of this ExternalSecret with the stored value."""
        no = step.payload
        if self.opt.dry_run:
            return
        assert self.journal is not None
        group = next(g for g in self.plan["groups"] if g["id"] == no["group"])
        want = {s["secretKey"]: self._values[s["id"]] for s in self.plan["secrets"] if s["id"] in group["secrets"]}
        target = group["externalSecret"]["target"]
        deadline = time.monotonic() + self.opt.sync_timeout
        self.journal.begin(step.id, secret=f"{no['namespace']}/{target}")
        merge = group["externalSecret"].get("creationPolicy") == "Merge"
        while True:
            sec = self.kube.get("Secret", no["namespace"], target)
            data = (sec or {}).get("data") or {}
            # Merge is into the Secret that already holds these values: equal data proves nothing
            # until the controller lists the keys as its own (else a later release could drop them)
            if all(k in data and SecretValue.from_b64(data[k]) == v for k, v in want.items()) and (
                    not merge or set(want) <= merged_keys(sec or {}, no["name"])):
                break
            if time.monotonic() > deadline:
                es = self.kube.get("ExternalSecret", no["namespace"], no["name"]) or {}
                conds = [c for c in (es.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
                why = f" (Ready={conds[0].get('status')}: {conds[0].get('reason')}: {conds[0].get('message')})" \
                    if conds else " (no status: is the secretsync controller running?)"
                raise ApplyError(f"Secret {no['namespace']}/{target} was not synced within {self.opt.sync_timeout:g}s"
                                 f"{why}; nothing was switched to it. Run apply again once it syncs.")
            time.sleep(0.25)
        self.journal.done(step.id)

    def _patch(self, step: Step) -> None:
        chg = step.payload
        resource = chg["resource"]
        kind = resource.split("/", 1)[0]
        ops = chg["ops"]
        if self.opt.dry_run:
            self.report.actions.append(f"would patch {resource}")
            return
        assert self.journal is not None
        held = self._held.intersection(chg["groups"])
        if chg["role"] == "source" and held:
            raise _ItemConflict(f"{resource}: kept as is, because a workload that reads it could not be switched")
        for attempt in range(5):
            obj = self.live(resource, fresh=True)
            if objpath.all_applied(obj, ops):
                self._done_patch(step, obj, kind)
                return
            self._check_values_in_place(resource, obj)
            problems = [p for p in (objpath.check(obj, op) for op in ops) if p]
            if problems:
                raise _ItemConflict(f"{resource} changed since the plan ({problems[0]}); it was not modified. "
                                    "Run 'migrate plan' again for it.")
            new = copy.deepcopy(obj)
            objpath.apply_ops(new, ops)
            new.pop("status", None)
            if not self.journal.state(step.id).begun:
                self.journal.begin(step.id, resource=resource,
                                   resourceVersion=(obj.get("metadata") or {}).get("resourceVersion"))
            try:
                out = self.kube.replace(new)  # carries metadata.resourceVersion: a precondition
            except KubeError as exc:
                if exc.status == 409 and attempt < 4:
                    log.info("%s changed while patching; re-planning the item on the fresh object", resource)
                    continue
                raise
            crash_point()
            self._done_patch(step, out, kind)
            self.report.patched += 1
            return

    def _done_patch(self, step: Step, obj: Mapping[str, Any], kind: str) -> None:
        assert self.journal is not None
        digest = value_digest(self.key, SecretValue(json.dumps(_canonical(obj, kind), sort_keys=True)))
        self.journal.done(step.id, resourceVersion=(obj.get("metadata") or {}).get("resourceVersion"),
                          after=digest)

    def _check_values_in_place(self, resource: str, obj: Mapping[str, Any]) -> None:
        """Every value this object still holds in plaintext must be the one the provider now has."""
        for s in self.plan["secrets"]:
            loc = s["source"]
            if loc.get("resource") != resource or s["id"] not in self._values:
                continue
            try:
                here = read_field(obj, loc, resource)
            except LocateError:
                continue  # already switched (by us, before a crash) or removed
            if here != self._values[s["id"]]:
                raise _ItemConflict(f"{resource}: the value at {loc['path']} changed after it was stored; not "
                                    "switching it. Run 'migrate plan' again for it.")


class _ItemConflict(ApplyError):
    exit_code = 7


# -- rollback -------------------------------------------------------------------------------------------
class ClusterRollback:
    """Put live objects back: consumers and ConfigMaps first, then delete the ExternalSecrets we
    created, then restore the Secrets they had merged into (so no controller re-merges)."""

    def __init__(self, journal: Journal, digest_key: bytes, client: SecretsClient, kubeconfig: str | None,
                 context: str | None, *, delete_created: bool = False, dry_run: bool = False) -> None:
        self.journal = journal
        self.key = digest_key
        self.client = client
        self.kube = Kube(kubeconfig, context)
        self.values = ValueSource(journal, client, digest_key)
        self.delete_created = delete_created
        self.dry_run = dry_run
        self.report = RollbackReport()

    def steps(self) -> list[StepState]:
        applied = [st for st in self.journal.steps("apply") if st.begun]
        patches = [st for st in reversed(applied) if st.step.startswith("patch:")]
        first = [st for st in patches if not st.step.startswith("patch:Secret/")]
        secrets = [st for st in patches if st.step.startswith("patch:Secret/")]
        creates = [st for st in reversed(applied) if st.step.startswith("create:")]
        es = [st for st in creates if st.begun and st.begun.get("kind") == "ExternalSecret"]
        stores = [st for st in creates if st not in es]
        keys = [st for st in applied if st.step.startswith("store:")]
        return first + es + secrets + stores + keys

    def run(self, progress: Callable[[StepState], None] | None = None) -> RollbackReport:
        try:
            for st in self.steps():
                if self.journal.state(st.step, "rollback").is_done:
                    self.report.already += 1
                else:
                    try:
                        self._undo(st)
                    except (RollbackError, KubeError) as exc:
                        self.report.problems.append(str(exc))
                    except RestoreError as exc:
                        self.report.problems.append(f"{st.step}: {exc}")
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a hand-edited journal line
                        self.report.problems.append(f"{st.step}: the journal record is malformed "
                                                    f"({type(exc).__name__}); left as is")
                if progress:
                    progress(st)
            if not self.dry_run:
                self.journal.write("complete", phase="rollback")
        finally:
            self.kube.close()
        return self.report

    def _mark(self, st: StepState) -> None:
        if not self.dry_run:
            self.journal.begin(st.step, "rollback")
            self.journal.done(st.step, "rollback")

    def _undo(self, st: StepState) -> None:
        kind = st.step.split(":", 1)[0]
        if kind == "patch":
            self._restore(st)
        elif kind == "create":
            self._delete_created(st)
        elif kind == "store":
            if self.delete_created and st.done and st.done.get("created"):
                if not sources_restored(self.journal, self.report, self.dry_run):
                    keep_created_key(st.done, self.report)  # a source may still read it: never lose the value
                    return
                delete_created_key(self.client, st.done, self.key, self.dry_run, self.report)
            else:
                self.report.kept_keys += 1
            self._mark(st)

    def _restore(self, st: StepState) -> None:
        resource = st.step.removeprefix("patch:")
        kind, ns, name = split_resource(resource)
        snap = self.journal.state(f"snapshot:{resource}").begun
        if snap is None:
            raise RollbackError(f"{resource}: no snapshot in the journal; cannot restore it")
        saved = json.loads(fill(snap["saved"], self.values))
        for _ in range(5):
            obj = self.kube.get(kind, ns, name)
            if obj is None:
                raise RollbackError(f"{resource} no longer exists; not recreating it")
            if (obj.get("metadata") or {}).get("uid") != snap.get("uid"):
                raise RollbackError(f"{resource} was replaced since the migration; not restoring it")
            current = _canonical(obj, kind)
            if current == saved:
                self.report.already += 1
                self._mark(st)
                return
            after = st.done.get("after") if st.done else None
            digest = value_digest(self.key, SecretValue(json.dumps(current, sort_keys=True)))
            if kind != "Secret" and after and digest != after:
                raise RollbackError(f"{resource} was changed after the migration; not restoring it (restore it "
                                    "by hand from your manifests)")
            if self.dry_run:
                self.report.restored_objects += 1
                return
            _put_back(obj, kind, saved)
            obj.pop("status", None)
            try:
                self.kube.replace(obj)
            except KubeError as exc:
                if exc.status == 409:
                    continue
                raise
            self.report.restored_objects += 1
            self._mark(st)
            return
        raise RollbackError(f"{resource} keeps changing; try rollback again")

    def _delete_created(self, st: StepState) -> None:
        rec = st.begun or {}
        if rec.get("existed") is True:
            self.report.already += 1
            self._mark(st)
            return
        uid = st.done.get("uid") if st.done else None
        if self.dry_run:
            self.report.deleted_objects += 1
            return
        self.kube.delete(str(rec["kind"]), rec.get("namespace"), str(rec["name"]), uid)
        self.report.deleted_objects += 1
        self._mark(st)

