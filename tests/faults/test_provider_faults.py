"""The controller while the provider is down or throttling: moto behind the fault proxy.

Short intervals (1-2 s refresh, breaker capped at 2 s) so that "several refresh intervals and
the breaker" fit in seconds. The Secrets are watched the whole time: an outage or a throttle
must never change or delete one (only a definite NotFound may).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from secretsync.controller.runtime import ES_RES, SS_RES
from secretsync.controller.settings import CircuitSettings, ScopeSettings
from secretsync.core.settings import TimeoutSettings
from secretsync.kube.client import KubeApi
from tests.harness.aws import MotoServer, raw_boto3
from tests.harness.controller import (
    SecretPoller,
    create,
    es_manifest,
    es_ready,
    fast_settings,
    ready_condition,
    running_controller,
    secret_data,
    wait_for,
)
from tests.harness.faultproxy import Fault, FaultProxy, status
from tests.harness.kube import KubeCluster
from tests.harness.workloads import aws_store

pytestmark = pytest.mark.kube

N = 8
MAX_OPEN = 2.0


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    moto_server.reset()
    with FaultProxy(("127.0.0.1", moto_server.port), http=True) as p:
        yield p


def _settings(label: str) -> Any:
    s = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    # Short provider timeouts: a black-holed call fails in seconds, as it would with the
    # defaults in tens of seconds.
    return replace(s, provider=replace(s.provider, timeouts=TimeoutSettings(connect=1.0, read=2.0, sdk_retries=1),
                                       circuit=CircuitSettings(failures=2, open_for=0.5, max_open=MAX_OPEN)))


def _all_not_ready(api: KubeApi, ns: str, names: list[str]) -> list[dict[str, Any]] | None:
    conds = [ready_condition(api, ES_RES, ns, n) for n in names]
    return [c for c in conds if c] if all(c and c["status"] == "False" for c in conds) else None


def test_provider_outage_changes_nothing_and_recovers_within_a_refresh(
        kube: KubeCluster, api: KubeApi, moto_server: MotoServer, proxy: FaultProxy) -> None:
    sm = raw_boto3(moto_server.endpoint)  # out-of-band writes go around the proxy
    prefix = f"out-{uuid.uuid4().hex[:6]}/"
    for i in range(N):
        sm.create_secret(Name=f"{prefix}k{i}", SecretString=f"v{i}")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("fault-out", labels={"secretsync-test": label})
    aws_store(api, ns, proxy.url())
    refresh = 2.0
    names = [f"s{i}" for i in range(N)]
    for i, name in enumerate(names):
        create(api, es_manifest(name, ns, "aws", [("v", f"{prefix}k{i}")], refresh=f"{refresh:g}s"))
    with running_controller(kube, _settings(label)):
        for i, name in enumerate(names):
            wait_for(lambda i=i, n=name: secret_data(api, ns, n) == {"v": f"v{i}"}, message=f"{name} synced")
        for fault in (Fault("reset"), Fault("blackhole"), status(500)):
            with SecretPoller(api, ns, names) as watcher:
                with proxy.outage(fault):
                    # Several refreshes and breaker openings, with the value rotated meanwhile.
                    sm.put_secret_value(SecretId=f"{prefix}k0", SecretString=f"rotated-{fault.kind}")
                    # A black-holed call takes its whole deadline (5 s here), and the store's
                    # cycles queue behind one another until the breaker opens: allow for that.
                    cond = wait_for(es_ready(api, ns, "s0", "False"), timeout=40,
                                    message=f"Ready=False during the {fault.kind} outage")
                    time.sleep(4 * refresh)
                    # Every ExternalSecret says so (a black-holed one may still be waiting out
                    # its call's deadline behind the store's cycle lock: give it that long).
                    conds = wait_for(lambda: _all_not_ready(api, ns, names), timeout=30,
                                     message=f"every ExternalSecret Ready=False ({fault.kind})")
                    store = ready_condition(api, SS_RES, ns, "aws")
                    healed_at = time.monotonic()
                assert watcher.changes == [], f"{fault.kind}: a Secret changed during the outage"
            assert cond["reason"] and cond["reason"] != "SecretSynced"
            assert {c["reason"] for c in conds if c} <= {cond["reason"], "StoreUnavailable", "ProviderUnavailable",
                                                         "Unavailable", "Throttled"}, conds
            assert store and store["status"] == "False", store
            wait_for(lambda f=fault: secret_data(api, ns, "s0") == {"v": f"rotated-{f.kind}"},
                     timeout=refresh + MAX_OPEN * 1.2 + 3, message=f"recovery after the {fault.kind} outage")
            recovered = time.monotonic() - healed_at
            assert recovered <= refresh + MAX_OPEN * 1.2 + 2, recovered
            for n in names:
                wait_for(es_ready(api, ns, n), timeout=refresh * 3, message=f"{n} Ready again")
            assert [secret_data(api, ns, n) for n in names[1:]] == [{"v": f"v{i}"} for i in range(1, N)]


def test_throttle_storm_never_exceeds_the_store_rate_and_converges(
        kube: KubeCluster, api: KubeApi, moto_server: MotoServer, proxy: FaultProxy) -> None:
    sm = raw_boto3(moto_server.endpoint)
    prefix = f"thr-{uuid.uuid4().hex[:6]}/"
    for i in range(N):
        sm.create_secret(Name=f"{prefix}k{i}", SecretString=f"v{i}")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("fault-thr", labels={"secretsync-test": label})
    rate, burst = 3.0, 2
    aws_store(api, ns, proxy.url(), rateLimit={"rate": rate, "burst": burst})
    names = [f"s{i}" for i in range(N)]
    for i, name in enumerate(names):
        create(api, es_manifest(name, ns, "aws", [("v", f"{prefix}k{i}")], refresh="1s"))
    with running_controller(kube, _settings(label)):
        for i, name in enumerate(names):
            wait_for(lambda i=i, n=name: secret_data(api, ns, n) == {"v": f"v{i}"}, message=f"{name} synced")
        with SecretPoller(api, ns, names) as watcher:
            storm_start = time.monotonic()
            proxy.request_fault(status(429, retry_after=1))
            for i in range(N):
                sm.put_secret_value(SecretId=f"{prefix}k{i}", SecretString=f"after-{i}")
            time.sleep(8)
            proxy.heal()
            storm_end = time.monotonic()
            assert watcher.changes == [], "a Secret changed while every read was throttled"
        for i, name in enumerate(names):
            wait_for(lambda i=i, n=name: secret_data(api, ns, n) == {"v": f"after-{i}"}, timeout=15,
                     message=f"{name} converged after the storm")
    seen = proxy.requests(storm_start)
    storm = [r for r in seen if r.at <= storm_end]
    assert storm and all(r.answered == 429 for r in storm)
    # The configured rate holds at the wire, in any window, through the storm and the catch-up.
    for window in (1.0, 3.0):
        assert proxy.max_in_window(window, since=storm_start) <= rate * window + burst, (window, len(seen))
    # Backoff: the storm costs fewer calls than the rate would allow (the breaker pauses the
    # store between probes), spaced unevenly (jitter). On failure the message lists the calls'
    # times since the storm began (quiet runs make 9-12 calls in the 8 s).
    assert len(storm) <= 0.75 * rate * (storm_end - storm_start), [round(r.at - storm_start, 2) for r in storm]
    gaps = {round(b.at - a.at, 2) for a, b in itertools.pairwise(storm)}
    assert len(gaps) > 1, gaps
