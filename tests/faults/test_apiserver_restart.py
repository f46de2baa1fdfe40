"""The kube-apiserver restarts under a running controller (same etcd, same port).

While it is down the provider changes; after it is back a Secret is edited by hand and an
ExternalSecret is created. The controller's watches must resume or relist (the edit is repaired,
the new ExternalSecret synced), every provider change must land (no lost update), each changed
Secret is written once (no duplicate write: counted in the apiserver's audit log), and no
Secret is ever emptied or deleted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest

from secretsync.controller.settings import ScopeSettings
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeApi
from tests.harness.controller import (
    SecretPoller,
    create,
    es_manifest,
    es_ready,
    fast_settings,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube

N = 10
WRITES = {"create", "update", "patch", "delete"}


def _secret_writes(kube: KubeCluster, ns: str, offset: int) -> Counter[tuple[str, str]]:
    """(verb, Secret name) of every successful write to the namespace's Secrets after ``offset``."""
    out: Counter[tuple[str, str]] = Counter()
    with kube.audit_log.open("rb") as f:
        f.seek(offset)
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # a line torn by the restart
            ref = ev.get("objectRef") or {}
            if (ref.get("resource") == "secrets" and ref.get("namespace") == ns and ev.get("verb") in WRITES
                    and ev.get("stage") == "ResponseComplete"
                    and 200 <= (ev.get("responseStatus") or {}).get("code", 0) < 300):
                out[(ev["verb"], ref.get("name", ""))] += 1
    return out


def test_apiserver_restart_mid_sync_loses_nothing_and_writes_once(kube: KubeCluster, api: KubeApi) -> None:
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("fault-api", labels={"secretsync-test": label})
    mem_name = f"restart-{label}"
    mem = open_store(f"memory://{mem_name}")
    names = [f"s{i}" for i in range(N)]
    for i in range(N):
        mem.put(f"k{i}", SecretValue(f"v{i}"))
    create(api, store_manifest("mem", ns, "memory", {"name": mem_name}))
    for i, n in enumerate(names):
        create(api, es_manifest(n, ns, "mem", [("v", f"k{i}")], refresh="1s"))
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings) as ctl, SecretPoller(api, ns, names) as watch:
        for i, n in enumerate(names):
            wait_for(lambda i=i, n=n: secret_data(api, ns, n) == {"v": f"v{i}"}, message=f"{n} synced")
        time.sleep(1.5)  # let the first sync's status writes settle
        offset = kube.audit_log.stat().st_size
        kube.stop_apiserver()
        try:
            changed = names[: N // 2]
            for i in range(N // 2):  # rotated while the controller cannot write
                mem.put(f"k{i}", SecretValue(f"v{i}-rotated"))
            time.sleep(4)  # several refreshes fail against the dead apiserver; watches break
        finally:
            kube.start_apiserver()
        # After the restart: a hand edit (the Secret watch must see it) and a new ExternalSecret
        # (the ExternalSecret watch must see it).
        wait_for(lambda: all(secret_data(api, ns, n) == {"v": f"v{i}-rotated"} for i, n in enumerate(changed)),
                 timeout=30, message="every rotation landed after the restart")
        api.patch(SECRETS, names[-1], {"stringData": {"v": "hand-edited"}}, ns)
        mem.put("late", SecretValue("late-1"))
        create(api, es_manifest("late", ns, "mem", [("v", "late")], refresh="1s"))
        wait_for(lambda: secret_data(api, ns, names[-1]) == {"v": f"v{N - 1}"}, timeout=20,
                 message="drift repaired through the resumed Secret watch")
        wait_for(lambda: secret_data(api, ns, "late") == {"v": "late-1"}, timeout=20,
                 message="ExternalSecret created after the restart synced")
        for n in names:
            wait_for(es_ready(api, ns, n), timeout=20, message=f"{n} Ready")
        time.sleep(3)  # a few more refreshes: nothing may be written again
        assert ctl is not None
    assert watch.emptied == [], "a Secret was emptied or deleted"
    assert [secret_data(api, ns, n) for n in names] == (
        [{"v": f"v{i}-rotated"} for i in range(N // 2)] + [{"v": f"v{i}"} for i in range(N // 2, N)])
    writes = _secret_writes(kube, ns, offset)
    expected = Counter({("update", n): 1 for n in changed})
    expected[("update", names[-1])] = 1  # the drift repair (the hand edit itself was a patch)
    expected[("patch", names[-1])] = 1
    expected[("create", "late")] = 1
    assert writes == expected
