"""SecretRotation on moto: a failing hook changes nothing; a good one rotates, syncs and restarts (issue 13)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from secretsync.api.models import API_VERSION
from secretsync.cli.main import cli
from secretsync.controller.rotation import ROTATE_NOW_ANNOTATION, SR_RES
from secretsync.controller.rotationjob import HOOK_LABEL, JOBS, PODTEMPLATES
from secretsync.controller.runtime import ES_RES
from secretsync.controller.settings import RolloutSettings, RotationSettings, ScopeSettings
from secretsync.kube.client import EVENTS, SECRETS, KubeApi, KubeError
from tests.harness.aws import raw_boto3
from tests.harness.controller import (
    create,
    es_manifest,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    wait_for,
)
from tests.harness.kube import KubeCluster
from tests.harness.workloads import aws_store, deployment, restart_state

pytestmark = pytest.mark.kube


class _Hook:
    """An HTTPS webhook on 127.0.0.1 with a self-signed certificate: /ok applies, /fail refuses."""

    def __init__(self, tmp: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hook")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.ca = cert.public_bytes(serialization.Encoding.PEM).decode()
        (tmp / "hook.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.applied: list[dict[str, Any]] = []
        self.refused = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/ok":
                    hook.applied.append(body)
                    self.send_response(204)
                else:
                    hook.refused += 1
                    self.send_response(500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "hook.pem")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api(kube: KubeCluster) -> Iterator[KubeApi]:
    install_crds(kube)
    a = kube_api(kube)
    yield a
    a.close()


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[_Hook]:
    h = _Hook(tmp_path)
    yield h
    h.server.shutdown()


def _current_version(sm: Any, name: str) -> str:
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    (cur,) = [v["VersionId"] for v in versions if "AWSCURRENT" in v.get("VersionStages", [])]
    return str(cur)


def _ready(api: KubeApi, ns: str, name: str) -> dict[str, Any]:
    try:
        obj = api.get(SR_RES, name, ns)
    except KubeError:
        return {}
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((dict(c) for c in conds if c.get("type") == "Ready"), {})


def test_failing_hook_leaves_provider_and_secret_unchanged_then_rotation_restarts_readers_once(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str, hook: _Hook) -> None:
    sm = raw_boto3(aws_endpoint)
    key = f"rot-{uuid.uuid4().hex[:6]}/db-password"
    sm.create_secret(Name=key, SecretString="initial-password")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("rotation-aws", labels={"secretsync-test": label})
    wait_for(lambda: _served(api), message="SecretRotation served")
    aws_store(api, ns, aws_endpoint)
    create(api, es_manifest("db", ns, "aws", [("password", key)], rollout={"policy": "auto"}))
    deployment(api, ns, "api", env=[("db", "password")])
    create_rotation = {
        "apiVersion": API_VERSION, "kind": "SecretRotation", "metadata": {"name": "db", "namespace": ns},
        "spec": {"secretStoreRef": {"name": "aws"}, "remoteKey": key, "interval": "720h",
                 "generator": {"password": {"length": 24, "symbols": False}},
                 "hook": {"webhook": {"url": hook.url + "/fail", "caBundle": hook.ca, "timeout": "5s"}}}}
    api.create(SR_RES, create_rotation, ns)
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"),
                             rollout=RolloutSettings(enabled=True, debounce=0.5),
                             rotation=RotationSettings(enabled=True, tick=0.2, retry_max=1.0))
    with running_controller(kube, settings) as ctl:
        wait_for(lambda: secret_data(api, ns, "db") == {"password": "initial-password"}, message="synced")
        version0 = _current_version(sm, key)
        gen0 = restart_state(api, ns, "api")
        # Not due (720h) and not asked: nothing happens.
        assert hook.refused == 0 and not hook.applied
        rotate = CliRunner().invoke(cli, ["--kubeconfig", str(kube.kubeconfig), "rotate", f"{ns}/db"])
        assert rotate.exit_code == 0, rotate.output
        requested = api.get(SR_RES, "db", ns)["metadata"]["annotations"][ROTATE_NOW_ANNOTATION]
        wait_for(lambda: _ready(api, ns, "db").get("reason") == "HookFailed", timeout=10,
                 message="hook failure reported")
        cond = _ready(api, ns, "db")
        assert cond["status"] == "False" and "nothing written" in cond["message"]
        wait_for(lambda: hook.refused >= 2, timeout=10, message="retried with backoff")
        assert _current_version(sm, key) == version0
        assert sm.get_secret_value(SecretId=key)["SecretString"] == "initial-password"
        assert secret_data(api, ns, "db") == {"password": "initial-password"}
        assert restart_state(api, ns, "api") == gen0
        # The hook is fixed: the pending request goes through.
        api.patch(SR_RES, "db", {"spec": {"hook": {"webhook": {"url": hook.url + "/ok"}}}}, ns)
        wait_for(lambda: _ready(api, ns, "db").get("reason") == "Rotated", timeout=15, message="rotated")
        (applied,) = hook.applied
        new_value = applied["value"]
        assert applied["previous"] == "initial-password" and len(new_value) == 24 and new_value.isalnum()
        assert _current_version(sm, key) != version0
        status = api.get(SR_RES, "db", ns)["status"]
        assert status["previousVersion"] == version0 and status["currentVersion"] == _current_version(sm, key)
        assert status["requested"] == requested
        wait_for(lambda: secret_data(api, ns, "db") == {"password": new_value}, timeout=10, message="new value synced")
        wait_for(lambda: restart_state(api, ns, "api")[0] == gen0[0] + 1, timeout=10, message="reader restarted")
        # The request was handled once: no further rotation, no second restart.
        wait_for(lambda: ctl.rotation is not None, message="rotation running")
        assert len(hook.applied) == 1
        assert new_value not in json.dumps(api.get(SR_RES, "db", ns))
        wait_for(lambda: {"Rotated", "HookFailed", "RolloutRestart"} <= {
            e["reason"] for e in api.list(EVENTS, ns)["items"]}, timeout=10, message="events recorded")
        events = api.list(EVENTS, ns)["items"]
        assert new_value not in json.dumps(events) and "initial-password" not in json.dumps(events)
        # `secretsync refresh` asks for a resync of the ExternalSecret; a missing one is a clear error.
        refresh = CliRunner().invoke(cli, ["--kubeconfig", str(kube.kubeconfig), "refresh", f"{ns}/db"])
        assert refresh.exit_code == 0, refresh.output
        assert "secretsync.io/force-sync" in api.get(ES_RES, "db", ns)["metadata"]["annotations"]
        missing = CliRunner().invoke(cli, ["--kubeconfig", str(kube.kubeconfig), "refresh", f"{ns}/nope"])
        assert missing.exit_code != 0 and f"ExternalSecret {ns}/nope not found" in missing.output


def _served(api: KubeApi) -> bool:
    try:
        api.list(SR_RES, limit=1)
        return True
    except KubeError:
        return False


def _hook_jobs(api: KubeApi, ns: str) -> list[dict[str, Any]]:
    return list(api.list(JOBS, ns, label_selector=f"{HOOK_LABEL}=db")["items"])


def _finish(api: KubeApi, ns: str, job: str, outcome: str) -> None:
    """Play the job controller (the test apiserver runs none): the Job ends as ``outcome``."""
    counts = {"succeeded": 1} if outcome == "Complete" else {"failed": 1}
    api.patch(JOBS, job, {"status": {**counts, "conditions": [
        {"type": outcome, "status": "True", "reason": "Test", "message": "set by the test"}]}}, ns,
        subresource="status")


def _gone(api: KubeApi, res: Any, name: str, ns: str) -> bool:
    try:
        obj = api.get(res, name, ns)
    except KubeError as exc:
        return exc.not_found
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def test_a_job_hook_switches_only_after_its_job_succeeded(kube: KubeCluster, api: KubeApi,
                                                          aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    key = f"rot-{uuid.uuid4().hex[:6]}/db-password"
    sm.create_secret(Name=key, SecretString="initial-password")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("rotation-job", labels={"secretsync-test": label})
    wait_for(lambda: _served(api), message="SecretRotation served")
    aws_store(api, ns, aws_endpoint)
    create(api, es_manifest("db", ns, "aws", [("password", key)]))
    api.create(PODTEMPLATES, {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "set-db-password"},
                              "template": {"spec": {"containers": [{
                                  "name": "apply", "image": "postgres:16",
                                  "command": ["sh", "-c", "psql -c \"ALTER USER app PASSWORD '$(cat "
                                              "/var/run/secretsync/rotation/value)'\""]}]}}}, ns)
    api.create(SR_RES, {
        "apiVersion": API_VERSION, "kind": "SecretRotation", "metadata": {"name": "db", "namespace": ns},
        "spec": {"secretStoreRef": {"name": "aws"}, "remoteKey": key, "interval": "720h",
                 "generator": {"password": {"length": 24, "symbols": False}},
                 "hook": {"job": {"podTemplateName": "set-db-password", "timeout": "30s"}}}}, ns)
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"),
                             rotation=RotationSettings(enabled=True, tick=0.2, retry_max=0.5))
    with running_controller(kube, settings):
        wait_for(lambda: secret_data(api, ns, "db") == {"password": "initial-password"}, message="synced")
        version0 = _current_version(sm, key)
        api.patch(SR_RES, "db", {"metadata": {"annotations": {ROTATE_NOW_ANNOTATION: "1"}}}, ns)

        # The Job gets the new value (and the previous one) through a Secret mounted read-only.
        (job,) = wait_for(lambda: _hook_jobs(api, ns), timeout=10, message="hook Job created")
        name = job["metadata"]["name"]
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert {"name": "secretsync-rotation", "mountPath": "/var/run/secretsync/rotation", "readOnly": True} \
            in pod["containers"][0]["volumeMounts"]
        assert job["metadata"]["ownerReferences"][0]["kind"] == "SecretRotation"
        handed = wait_for(lambda: secret_data(api, ns, name), timeout=10, message="hook Secret created")
        assert handed["previous"] == "initial-password" and len(handed["value"]) == 24
        assert wait_for(lambda: (_ready(api, ns, "db").get("reason") == "HookRunning") or None, timeout=10)

        # It fails: nothing written, its Job and Secret removed.
        _finish(api, ns, name, "Failed")
        wait_for(lambda: _ready(api, ns, "db").get("reason") == "HookFailed", timeout=10, message="failure")
        assert _current_version(sm, key) == version0
        assert sm.get_secret_value(SecretId=key)["SecretString"] == "initial-password"
        assert secret_data(api, ns, "db") == {"password": "initial-password"}
        wait_for(lambda: _gone(api, SECRETS, name, ns) and _gone(api, JOBS, name, ns), timeout=10,
                 message="failed hook Job and its Secret deleted")

        # The retry's Job times out: the same.
        api.patch(SR_RES, "db", {"spec": {"hook": {"job": {"timeout": "1s"}}}}, ns)
        second = wait_for(lambda: [j for j in _hook_jobs(api, ns) if j["metadata"]["name"] != name
                                   and not j["metadata"].get("deletionTimestamp")], timeout=10,
                          message="retried with a new Job")[0]["metadata"]["name"]
        wait_for(lambda: "did not finish" in _ready(api, ns, "db").get("message", ""), timeout=10,
                 message="timeout reported")
        assert _current_version(sm, key) == version0
        assert secret_data(api, ns, "db") == {"password": "initial-password"}

        # A Job that succeeds: the value it was handed becomes the provider's current version.
        api.patch(SR_RES, "db", {"spec": {"hook": {"job": {"timeout": "30s"}}}}, ns)
        third = wait_for(lambda: [j for j in _hook_jobs(api, ns) if j["metadata"]["name"] not in (name, second)
                                  and not j["metadata"].get("deletionTimestamp")], timeout=15,
                         message="third Job")[0]["metadata"]["name"]
        value = wait_for(lambda: secret_data(api, ns, third), timeout=10, message="third hook Secret")["value"]
        _finish(api, ns, third, "Complete")
        wait_for(lambda: _ready(api, ns, "db").get("reason") == "Rotated", timeout=10, message="rotated")
        assert sm.get_secret_value(SecretId=key)["SecretString"] == value
        assert _current_version(sm, key) != version0
        wait_for(lambda: _gone(api, SECRETS, third, ns), timeout=10, message="hook Secret deleted after success")
        wait_for(lambda: secret_data(api, ns, "db") == {"password": value}, timeout=10, message="new value synced")
        assert value not in json.dumps(api.get(SR_RES, "db", ns))
        assert value not in json.dumps(api.list(EVENTS, ns)["items"])
