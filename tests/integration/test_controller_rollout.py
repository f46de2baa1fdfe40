"""Rotation restarts exactly the workloads that read the rotated keys, once (issue 13).

The test apiserver runs no deployment controller, so a restart is observed where Kubernetes
would see it: the Deployment's pod template changes (``metadata.generation`` moves by one
and the ``rollout.secretsync.io/<secret>`` annotation holds a new hash).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from secretsync.controller import Controller
from secretsync.controller.settings import LeaderSettings, RolloutSettings, ScopeSettings
from secretsync.core.values import SecretValue
from secretsync.kube.client import KubeApi
from tests.harness.aws import raw_boto3
from tests.harness.controller import (
    create,
    es_manifest,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster
from tests.harness.vault import OpenBao, encode
from tests.harness.workloads import aws_store, deployment, restart_state

pytestmark = pytest.mark.kube

STAMP = "rollout.secretsync.io/"


@pytest.fixture
def api(kube: KubeCluster) -> Iterator[KubeApi]:
    install_crds(kube)
    a = kube_api(kube)
    yield a
    a.close()


def _cycles(ctl: Controller) -> int:
    """Change-detection cycles run so far, over every store of the controller."""
    return sum(int(str(v["cycles"])) for v in ctl.store_stats().values())


def _settings(label: str, **rollout: Any) -> Any:
    return fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"),
                         rollout=RolloutSettings(enabled=True, debounce=1.0, **rollout))


def test_aws_rotation_restarts_only_the_readers_of_the_rotated_key_once(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    prefix = f"ro-{uuid.uuid4().hex[:6]}/"
    sm.create_secret(Name=f"{prefix}password", SecretString="pw-1")
    sm.create_secret(Name=f"{prefix}host", SecretString="db.local")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("rollout-aws", labels={"secretsync-test": label})
    aws_store(api, ns, aws_endpoint)
    create(api, es_manifest("db", ns, "aws", [("password", f"{prefix}password"), ("host", f"{prefix}host")],
                            rollout={"policy": "auto"}))
    # The same rotation with rollout left at its default: nothing restarts.
    create(api, es_manifest("quiet", ns, "aws", [("password", f"{prefix}password")]))
    deployment(api, ns, "api", env=[("db", "password")])
    deployment(api, ns, "web", env=[("db", "host")])
    deployment(api, ns, "all-keys", env_from=["db"])
    deployment(api, ns, "reloads-itself", env=[("db", "password")], annotations={"secretsync.io/rollout": "false"})
    deployment(api, ns, "quiet-reader", env=[("quiet", "password")])
    names = ("api", "web", "all-keys", "reloads-itself", "quiet-reader")
    with running_controller(kube, _settings(label)) as ctl:
        wait_for(lambda: secret_data(api, ns, "db") == {"password": "pw-1", "host": "db.local"}, message="synced")
        wait_for(lambda: secret_data(api, ns, "quiet") == {"password": "pw-1"}, message="quiet synced")
        before = {n: restart_state(api, ns, n) for n in names}
        assert all(not stamps for _, stamps in before.values()), "first sync restarted something"
        # AWS rotation: a new version becomes AWSCURRENT.
        sm.put_secret_value(SecretId=f"{prefix}password", SecretString="pw-2")
        wait_for(lambda: secret_data(api, ns, "db") == {"password": "pw-2", "host": "db.local"}, timeout=10,
                 message="rotation synced")
        wait_for(lambda: restart_state(api, ns, "api")[0] == before["api"][0] + 1, timeout=10, message="api restarted")
        wait_for(lambda: restart_state(api, ns, "all-keys")[0] == before["all-keys"][0] + 1, timeout=10,
                 message="envFrom reader restarted")
        # Several more refresh cycles: no second restart, and the others never restart.
        wait_for(lambda: secret_data(api, ns, "quiet") == {"password": "pw-2"}, message="quiet rotated")
        cycles = _cycles(ctl)
        wait_for(lambda: _cycles(ctl) >= cycles + 3, timeout=15, message="three more cycles")
        after = {n: restart_state(api, ns, n) for n in names}
        assert after["api"][0] == before["api"][0] + 1
        assert list(after["api"][1]) == [STAMP + "db"]
        assert after["all-keys"][0] == before["all-keys"][0] + 1
        for n in ("web", "reloads-itself", "quiet-reader"):
            assert after[n] == before[n], n
        assert ctl.rollout is not None
        assert ctl.rollout.restarts.labels("Deployment")._value.get() == 2
        assert "pw-" not in str(after)


def _bao_es(name: str, ns: str, path: str, **spec: Any) -> dict[str, Any]:
    es = es_manifest(name, ns, "bao", refresh="1s", **spec)
    es["spec"]["data"] = [{"secretKey": "password", "remoteRef": {"key": path, "property": "password"}},
                          {"secretKey": "user", "remoteRef": {"key": path, "property": "user"}}]
    return es


def _bao_store(api: KubeApi, ns: str, openbao: OpenBao) -> None:
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bao-token", "namespace": ns},
                 "stringData": {"token": openbao.root_token}})
    create(api, store_manifest("bao", ns, "vault", {
        "address": openbao.address, "mount": "secret", "secretRef": {"token": {"name": "bao-token", "key": "token"}}}))


def _bao_write(openbao: OpenBao, path: str, password: str) -> None:
    openbao.kv2_write(path, encode(SecretValue(f'{{"password":"{password}","user":"app"}}')))


def test_openbao_two_secrets_rotated_together_restart_a_reader_of_both_once(
        kube: KubeCluster, api: KubeApi, openbao: OpenBao) -> None:
    run = uuid.uuid4().hex[:6]
    p1, p2 = f"ro-{run}/one", f"ro-{run}/two"
    _bao_write(openbao, p1, "a-1")
    _bao_write(openbao, p2, "b-1")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("rollout-bao", labels={"secretsync-test": label})
    _bao_store(api, ns, openbao)
    create(api, _bao_es("one", ns, p1, rollout={"policy": "auto"}))
    create(api, _bao_es("two", ns, p2, rollout={"targets": [{"kind": "Deployment", "name": "both"}]}))
    deployment(api, ns, "both", env=[("one", "password"), ("two", "password")])
    deployment(api, ns, "user-only", env=[("one", "user"), ("two", "user")])
    # Namespaced mode: informers per namespace, as with a Role per namespace.
    settings = replace(_settings(label), scope=ScopeSettings(namespaces=(ns,)))
    with running_controller(kube, settings):
        wait_for(lambda: (secret_data(api, ns, "one") or {}).get("password") == "a-1", message="one synced")
        wait_for(lambda: (secret_data(api, ns, "two") or {}).get("password") == "b-1", message="two synced")
        gen0, _ = restart_state(api, ns, "both")
        user0 = restart_state(api, ns, "user-only")
        _bao_write(openbao, p1, "a-2")
        _bao_write(openbao, p2, "b-2")
        wait_for(lambda: (secret_data(api, ns, "one") or {}).get("password") == "a-2", timeout=10, message="one")
        wait_for(lambda: (secret_data(api, ns, "two") or {}).get("password") == "b-2", timeout=10, message="two")
        wait_for(lambda: len(restart_state(api, ns, "both")[1]) == 2, timeout=10, message="both annotations set")
        gen1, stamps1 = restart_state(api, ns, "both")
        assert gen1 == gen0 + 1, "two Secrets rotated within the window must make one restart"
        # A second rotation of one Secret: one more restart, only that Secret's hash moves.
        _bao_write(openbao, p1, "a-3")
        wait_for(lambda: restart_state(api, ns, "both")[0] == gen1 + 1, timeout=10, message="second restart")
        _, stamps2 = restart_state(api, ns, "both")
        assert stamps2[STAMP + "two"] == stamps1[STAMP + "two"]
        assert stamps2[STAMP + "one"] != stamps1[STAMP + "one"]
        assert restart_state(api, ns, "user-only") == user0


def test_controller_restart_and_leader_failover_restart_nothing(
        kube: KubeCluster, api: KubeApi, openbao: OpenBao) -> None:
    run = uuid.uuid4().hex[:6]
    path = f"ro-{run}/db"
    _bao_write(openbao, path, "v-1")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("rollout-ha", labels={"secretsync-test": label})
    _bao_store(api, ns, openbao)
    create(api, _bao_es("db", ns, path, rollout={"policy": "auto"}))
    deployment(api, ns, "api", env=[("db", "password")])
    leader = LeaderSettings(enabled=True, lease_name=f"ro-{run}", lease_namespace=ns, lease_duration=2.0,
                            renew_deadline=1.5, retry_period=0.3)
    settings = replace(_settings(label), leader=leader)
    with running_controller(kube, replace(settings, leader=replace(leader, identity="a"))) as first:
        wait_for(first.leading.is_set, message="first replica leads")
        wait_for(lambda: (secret_data(api, ns, "db") or {}).get("password") == "v-1", message="synced")
        _bao_write(openbao, path, "v-2")
        wait_for(lambda: restart_state(api, ns, "api")[1], timeout=10, message="restart after rotation")
        restarted = restart_state(api, ns, "api")
        with running_controller(kube, replace(settings, leader=replace(leader, identity="b"))) as second:
            assert not second.leading.is_set()
            first.stop()  # releases the Lease: the standby takes over at once
            wait_for(second.leading.is_set, timeout=10, message="failover")
            assert second.rollout is not None
            wait_for(lambda: second.rollout is not None and second.rollout.synced(), message="workloads listed")
            cycles = _cycles(second)
            wait_for(lambda: _cycles(second) >= cycles + 3, timeout=15, message="new leader refreshed")
            assert restart_state(api, ns, "api") == restarted, "failover restarted a workload"
    # A controller started from scratch (restart of the only replica): no restart either.
    with running_controller(kube, replace(settings, leader=replace(leader, identity="c"))) as third:
        wait_for(third.leading.is_set, timeout=10, message="third leads")
        cycles = _cycles(third)
        wait_for(lambda: _cycles(third) >= cycles + 3, timeout=15, message="restarted controller refreshed")
        assert restart_state(api, ns, "api") == restarted, "controller restart restarted a workload"
        # It still restarts on the next real rotation.
        _bao_write(openbao, path, "v-3")
        wait_for(lambda: restart_state(api, ns, "api")[0] == restarted[0] + 1, timeout=10,
                 message="restart by new leader")


def test_namespaced_mode_with_the_charts_role_restarts_readers(kube: KubeCluster, api: KubeApi) -> None:
    """The controller under exactly the Role the chart renders for a namespace (rollout enabled)."""
    from secretsync.core.registry import open_store
    from secretsync.kube.client import Resource
    from tests.harness.helm import by_kind, render

    pytest.importorskip("helm_python", reason="helm-python-sdk (test extra) renders the chart")
    ns = kube.new_namespace("rollout-nsonly")
    docs = render({"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": ["app"]},
                   "rollout": {"enabled": True}})
    (rules,) = [r["rules"] for r in by_kind(docs, "Role")
                if r["metadata"]["namespace"] == "app" and r["metadata"]["name"].endswith("-controller")]
    role = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
    binding = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
    api.create(role, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": "secretsync", "namespace": ns}, "rules": rules}, ns)
    api.create(binding, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                         "metadata": {"name": "secretsync", "namespace": ns},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secretsync"},
                         "subjects": [{"kind": "User", "name": kube.user_name}]}, ns)
    mem = f"nsonly-{uuid.uuid4().hex[:8]}"
    store = open_store(f"memory://{mem}")
    store.put("token", SecretValue("t-1"))
    create(api, store_manifest("mem", ns, "memory", {"name": mem}))
    create(api, es_manifest("tok", ns, "mem", [("token", "token")], rollout={"policy": "auto"}))
    deployment(api, ns, "api", env_from=["tok"])
    user_api = KubeApi(kube.configuration(kube.user_token))
    settings = replace(_settings("unused"), scope=ScopeSettings(namespaces=(ns,)), namespace=ns)
    ctl = Controller(user_api, settings)
    ctl.start()
    try:
        assert ctl.wait_ready(30)
        wait_for(lambda: secret_data(api, ns, "tok") == {"token": "t-1"}, message="synced with the Role")
        gen0 = restart_state(api, ns, "api")[0]
        store.put("token", SecretValue("t-2"))
        wait_for(lambda: restart_state(api, ns, "api")[0] == gen0 + 1, timeout=10, message="restart with the Role")
    finally:
        ctl.stop()
        user_api.close()


class _RestartClock:
    """Watches the namespace's Deployments and timestamps every pod-template change (a restart)."""

    def __init__(self, api: KubeApi, ns: str) -> None:
        from tests.harness.workloads import DEPLOYMENTS

        self.times: dict[str, list[float]] = {}
        listed = api.list(DEPLOYMENTS, ns)
        self._gen = {d["metadata"]["name"]: int(d["metadata"]["generation"]) for d in listed["items"]}
        self._stream = api.watch(DEPLOYMENTS, ns, resource_version=listed["metadata"]["resourceVersion"],
                                 timeout_seconds=120)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import time

        for ev in self._stream:
            md = (ev.get("object") or {}).get("metadata") or {}
            name, gen = md.get("name"), int(md.get("generation") or 0)
            if name in self._gen and gen > self._gen[name]:
                self.times.setdefault(name, []).extend([time.monotonic()] * (gen - self._gen[name]))
                self._gen[name] = gen

    def close(self) -> None:
        self._stream.close()


def test_the_cluster_wide_restart_rate_spreads_a_mass_rotation_and_loses_none(
        kube: KubeCluster, api: KubeApi) -> None:
    import time

    from secretsync.core.registry import open_store

    n, rate, burst = 12, 4.0, 2
    mem = f"rate-{uuid.uuid4().hex[:8]}"
    store = open_store(f"memory://{mem}")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("rollout-rate", labels={"secretsync-test": label})
    create(api, store_manifest("mem", ns, "memory", {"name": mem}))
    for i in range(n):
        store.put(f"app{i}/password", SecretValue("before"))
        create(api, es_manifest(f"s{i}", ns, "mem", [("password", f"app{i}/password")], rollout={"policy": "auto"}))
        deployment(api, ns, f"w{i}", env=[(f"s{i}", "password")])
    with running_controller(kube, _settings(label, rate=rate, burst=burst)):
        for i in range(n):
            wait_for(lambda i=i: secret_data(api, ns, f"s{i}") == {"password": "before"}, message=f"s{i} synced")
        clock = _RestartClock(api, ns)
        try:
            for i in range(n):  # every workload's Secret rotates at once
                store.put(f"app{i}/password", SecretValue("after"))
            wait_for(lambda: len(clock.times) == n, timeout=30, message="every workload restarted")
            time.sleep(1.0)  # a late duplicate would show here
        finally:
            clock.close()
    assert all(len(t) == 1 for t in clock.times.values()), clock.times
    times = sorted(t[0] for t in clock.times.values())
    # No more than the bucket allows in any window (one restart of slack for watch delivery jitter)...
    for i, first in enumerate(times):
        for j in range(i, n):
            assert j - i + 1 <= burst + rate * (times[j] - first) + 1, (i, j, times[j] - first)
    # ...so the whole rotation is spread over at least (n - burst) / rate seconds, not sent at once.
    assert times[-1] - times[0] >= (n - burst - 1) / rate, times[-1] - times[0]
