"""The Job hook of a SecretRotation: a Job applies the new value before the provider switches.

Many target systems (a database's user table, an LDAP bind, a vendor console) have no HTTPS
endpoint to call, but a container can change them. So a SecretRotation may name a
``PodTemplate`` of its own namespace; the controller then:

1. creates a Job from it (``restartPolicy: Never``, ``backoffLimit`` and an
   ``activeDeadlineSeconds`` of the hook's timeout, so the job controller stops it too),
   owned by the SecretRotation;
2. creates a Secret owned by that Job holding ``value`` (and ``previous``, when there is
   one), mounted read-only at :data:`HOOK_MOUNT` in every container (the kubelet waits for
   the Secret, so creating it after the Job is fine and lets it be owned by the Job);
3. waits (polling; the rotation loop is never blocked) for the Job's ``Complete`` or
   ``Failed`` condition, or the timeout;
4. deletes the Secret in every outcome. Only a Job that *succeeded* lets the rotation write
   the new provider version; failure, timeout or a deleted Job deletes the Job and raises
   :class:`HookFailed`, so the provider and every synced Secret stay as they are.

Why a PodTemplate reference and not an embedded Job spec: the CRD schema stays structural
(no ``x-kubernetes-preserve-unknown-fields``) and the API server validates the template.
The Job runs in the SecretRotation's namespace only, with whatever ServiceAccount the
template names there: a tenant reaches nothing its namespace does not own.

Leftovers of a controller that died mid-hook (a Job and its Secret) carry
:data:`HOOK_LABEL`; the next run of that rotation deletes them before it starts.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from secretsync.api.models import API_VERSION, KIND_SECRET_ROTATION, JobHook, SecretRotation
from secretsync.core.errors import SecretSyncError
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeApi, KubeError, Resource

log = logging.getLogger(__name__)

JOBS = Resource("batch", "v1", "jobs", "Job")
PODTEMPLATES = Resource("", "v1", "podtemplates", "PodTemplate")
#: Where the hook's containers find ``value`` and ``previous``.
HOOK_MOUNT = "/var/run/secretsync/rotation"
#: On the Job and its Secret: the SecretRotation they belong to.
HOOK_LABEL = "secretsync.io/rotation-hook"
_VOLUME = "secretsync-rotation"


class HookFailed(SecretSyncError):
    """The pre-switch hook did not confirm; nothing was written. Message names no value."""

    reason = "HookFailed"


@dataclass
class JobRun:
    """A hook Job in flight: what to look at, and until when."""

    namespace: str
    name: str
    deadline: float
    timeout: float


class JobHookRunner:
    """Starts hook Jobs and tells how they ended; one :class:`JobRun` per rotation in flight."""

    def __init__(self, api: KubeApi, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.clock = clock

    def start(self, rot: SecretRotation, hook: JobHook, value: SecretValue, previous: SecretValue | None) -> JobRun:
        ns = rot.namespace
        self._clean(ns, rot.name)
        try:
            tmpl = self.api.get(PODTEMPLATES, hook.template_name, ns).get("template") or {}
        except KubeError as exc:
            if exc.not_found:
                raise HookFailed(f"spec.hook.job.podTemplateName: PodTemplate {ns}/{hook.template_name} "
                                 "not found") from None
            if exc.status == 403:
                raise HookFailed("spec.hook.job: the controller may not run hook Jobs here "
                                 "(chart: rotation.jobHooks)") from None
            raise
        name = f"{rot.name[:44]}-hook-{secrets.token_hex(4)}"
        labels = {HOOK_LABEL: rot.name[:63]}
        owner = {"apiVersion": API_VERSION, "kind": KIND_SECRET_ROTATION, "name": rot.name,
                 "uid": rot.meta.uid, "controller": True}
        job = self.api.create(JOBS, {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "ownerReferences": [owner] if rot.meta.uid else []},
            "spec": {"backoffLimit": hook.backoff_limit, "activeDeadlineSeconds": max(1, int(hook.timeout)),
                     "template": _pod_template(tmpl, name, labels)}}, ns)
        data = {"value": value}
        if previous is not None:
            data["previous"] = previous
        job_owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name,
                     "uid": (job.get("metadata") or {}).get("uid"), "controller": True}
        try:
            self.api.create(SECRETS, {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [job_owner]},
                "data": {k: v.b64() for k, v in data.items()}}, ns)
        except KubeError:
            self._delete(ns, name)
            raise
        log.info("SecretRotation %s/%s: hook Job %s started", ns, rot.name, name)
        return JobRun(ns, name, self.clock() + hook.timeout, hook.timeout)

    def poll(self, run: JobRun) -> bool:
        """True once the Job succeeded (its Secret is then deleted); False while it runs.

        Raises :class:`HookFailed` when it failed, timed out or vanished (Job and Secret deleted).
        """
        try:
            job = self.api.get(JOBS, run.name, run.namespace)
        except KubeError as exc:
            if not exc.not_found:
                raise
            self._delete(run.namespace, run.name)
            raise HookFailed(f"hook Job {run.name} was deleted before it finished") from None
        outcome = job_outcome(job)
        if outcome == "Complete":
            self._delete_secret(run.namespace, run.name)
            log.info("hook Job %s/%s succeeded", run.namespace, run.name)
            return True
        if outcome == "Failed":
            self._delete(run.namespace, run.name)
            raise HookFailed(f"hook Job {run.name} failed")
        if self.clock() >= run.deadline:
            self._delete(run.namespace, run.name)
            raise HookFailed(f"hook Job {run.name} did not finish within {run.timeout:g}s")
        return False

    def abandon(self, run: JobRun) -> None:
        """The rotation will not use this run (lost leadership, spec gone): remove it."""
        self._delete(run.namespace, run.name)

    # -- cleaning up -------------------------------------------------------------------------
    def _clean(self, ns: str, rotation: str) -> None:
        selector = f"{HOOK_LABEL}={rotation[:63]}"
        for item in self.api.list(JOBS, ns, label_selector=selector).get("items") or []:
            self._delete_job(ns, item["metadata"]["name"])
        for item in self.api.list(SECRETS, ns, label_selector=selector).get("items") or []:
            self._delete_secret(ns, item["metadata"]["name"])

    def _delete(self, ns: str, name: str) -> None:
        self._delete_secret(ns, name)
        self._delete_job(ns, name)

    def _delete_secret(self, ns: str, name: str) -> None:
        try:
            self.api.delete(SECRETS, name, ns)
        except KubeError as exc:
            if not exc.not_found:
                log.warning("hook Secret %s/%s: delete failed: %s", ns, name, exc)

    def _delete_job(self, ns: str, name: str) -> None:
        # Background propagation: the Job's pods go with it (the API's default for Jobs orphans them).
        try:
            self.api.request("DELETE", JOBS.path(ns, name), query={"propagationPolicy": "Background"})
        except KubeError as exc:
            if not exc.not_found:
                log.warning("hook Job %s/%s: delete failed: %s", ns, name, exc)


def job_outcome(job: Mapping[str, Any]) -> str | None:
    """``Complete``, ``Failed`` or None (still running), from the Job's conditions and counts."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
    if int(status.get("succeeded") or 0) >= 1:
        return "Complete"
    backoff = (job.get("spec") or {}).get("backoffLimit")
    if backoff is not None and int(status.get("failed") or 0) > int(backoff):
        return "Failed"
    return None


def _pod_template(tmpl: Mapping[str, Any], secret: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The PodTemplate's pod with the value's Secret mounted in every container, never restarted."""
    pod = copy.deepcopy(dict(tmpl))
    md = pod.setdefault("metadata", {})
    md["labels"] = {**(md.get("labels") or {}), **labels}
    spec = pod.setdefault("spec", {})
    if spec.get("restartPolicy") not in ("Never", "OnFailure"):
        spec["restartPolicy"] = "Never"
    spec["volumes"] = [*(spec.get("volumes") or []),
                       {"name": _VOLUME, "secret": {"secretName": secret, "defaultMode": 0o400}}]
    for kind in ("initContainers", "containers"):
        for c in spec.get(kind) or []:
            c["volumeMounts"] = [*(c.get("volumeMounts") or []),
                                 {"name": _VOLUME, "mountPath": HOOK_MOUNT, "readOnly": True}]
    return pod
