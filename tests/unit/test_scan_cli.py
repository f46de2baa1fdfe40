"""``secretsync scan``: exit codes, table/JSON/SARIF output, baselines, and no value in any output."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsync.cli.main import cli

PW = "Xq7-pw-" + "u3Vt9"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path, "app/deploy.yaml", f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web, namespace: shop}}
        spec:
          template:
            spec:
              containers:
              - name: web
                env:
                - name: DB_PASSWORD
                  value: {PW}
                - name: DB_USER
                  value: app
    """)
    write(tmp_path, "app/broken.yaml", "a: [\n")
    return tmp_path


def test_findings_exit_1_clean_exit_0(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    code, out, err = invoke("scan", str(tree))
    assert code == 1
    assert "app/deploy.yaml:11" in out and "Deployment/shop/web" in out and "keyword-password" in out
    assert "app/broken.yaml" in err and "1 findings" in err
    clean = tmp_path_factory.mktemp("clean")
    write(clean, "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    assert invoke("scan", str(clean))[0] == 0


def test_usage_errors_exit_2(tree: Path) -> None:
    assert invoke("scan", str(tree / "nope"))[0] == 2
    assert invoke("scan", "-n", "x", str(tree))[0] == 2
    assert invoke("scan", "--cluster", "-n", "x", "-A")[0] == 2
    assert invoke("scan", "-o", "xml", str(tree))[0] == 2
    assert invoke("scan", "--max-file-size", "lots", str(tree))[0] == 2
    bad = write(tree, "bad-baseline.json", "[1, 2]")
    assert invoke("scan", "--baseline", str(bad), str(tree))[0] == 2


def test_exit_codes_through_the_real_entry_point(tree: Path) -> None:
    def run(*args: str) -> int:
        return subprocess.run([sys.executable, "-m", "secretsync.cli.main", *args], capture_output=True,
                              timeout=60, check=False).returncode
    assert run("scan", str(tree)) == 1
    assert run("scan", str(tree / "app" / "broken.yaml")) == 8  # nothing found, but not everything read
    assert run("scan", str(tree / "app" / "deploy.yaml")) == 1
    assert run("scan", "--bogus") == 2


def test_json_output(tree: Path) -> None:
    code, out, _ = invoke("scan", "-o", "json", str(tree))
    assert code == 1
    doc = json.loads(out)
    assert set(doc) >= {"findings", "errors"}
    [finding] = doc["findings"]
    assert finding["file"] == "app/deploy.yaml" and finding["line"] == 11
    assert finding["path"] == "spec.template.spec.containers[0].env[0].value"
    assert finding["key"] == "DB_PASSWORD" and finding["container"] == "web" and finding["location"] == "env"
    assert finding["resource"] == "Deployment/shop/web" and len(finding["fingerprint"]) == 16
    assert doc["errors"] == [{"file": "app/broken.yaml", "message": doc["errors"][0]["message"],
                              "resource": None, "path": None, "unread": True}]
    assert doc["summary"]["unread"] == 1


def test_sarif_output_is_structurally_valid(tree: Path) -> None:
    code, out, _ = invoke("scan", "-o", "sarif", str(tree))
    assert code == 1
    log = json.loads(out)
    assert log["version"] == "2.1.0" and "sarif" in log["$schema"]
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "secretsync"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
    assert run["results"]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "app/deploy.yaml"
        assert physical["region"]["startLine"] == 11
        assert len(result["partialFingerprints"]["secretsyncFingerprint/v1"]) == 16
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("broken.yaml" in n["message"]["text"] for n in notes)


def test_write_then_use_a_baseline(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    baseline = tmp_path_factory.mktemp("b") / "baseline.json"
    code, _, err = invoke("scan", "--write-baseline", str(baseline), str(tree))
    assert code == 0 and "wrote 1 fingerprints" in err
    doc = json.loads(baseline.read_text())
    assert doc["tool"] == "secretsync" and len(doc["fingerprints"]) == 1
    assert PW not in baseline.read_text() and "DB_PASSWORD" not in baseline.read_text()
    code, out, err = invoke("scan", "--baseline", str(baseline), str(tree))
    assert code == 8 and "1 suppressed" in err and "(1 not read)" in err  # broken.yaml
    # A new finding is still reported.
    write(tree, "app/cm.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{API_TOKEN: {PW}}}\n")
    code, out, _ = invoke("scan", "--baseline", str(baseline), "-o", "json", str(tree))
    assert code == 1 and [f["key"] for f in json.loads(out)["findings"]] == ["API_TOKEN"]


def test_options_min_confidence_and_file_size(tree: Path) -> None:
    assert invoke("scan", "--min-confidence", "high", str(tree))[0] == 1
    code, _, err = invoke("scan", "--max-file-size", "10B", str(tree))
    assert code == 8 and "limit" in err


def test_a_planted_value_never_appears_in_any_output(tmp_path: Path, canary: str) -> None:
    b64 = base64.b64encode(canary.encode()).decode()
    write(tmp_path, "all.yaml", f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: p}}
        spec:
          containers:
          - name: c
            env:
            - name: DB_PASSWORD
              value: {canary}
            - name: JAVA_OPTS
              value: -Dspring.datasource.password={canary}
            - name: BROKEN
              value: {{nested: {canary}}}
            args: ["--api-token={canary}", "--password", "{canary}"]
        ---
        apiVersion: v1
        kind: Secret
        metadata: {{name: s}}
        data:
          password: {b64}
          broken: "{canary}!!"
        stringData:
          token: {canary}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: c}}
        data:
          SMTP_PASSWORD: {canary}
          app.properties: |
            db.password={canary}
          config.json: '{{"password": "{canary}"}}'
    """)
    write(tmp_path, "values.yaml", f"db:\n  password: {canary}\n")
    write(tmp_path, "k/kustomization.yaml", f"secretGenerator:\n- name: s\n  literals: [password={canary}]\n"
          "  envs: [s.env]\n")
    write(tmp_path, "k/s.env", f"TOKEN={canary}\n")
    write(tmp_path, "bad.yaml", f"password: {canary}\n  : [\n")
    outputs = []
    for fmt in ("table", "json", "sarif"):
        code, out, err = invoke("scan", "-o", fmt, str(tmp_path))
        assert code == 1
        outputs += [out, err]
    code, _, err = invoke("scan", "--write-baseline", str(tmp_path / "bl.json"), str(tmp_path))
    outputs += [err, (tmp_path / "bl.json").read_text()]
    joined = "\n".join(outputs)
    assert "DB_PASSWORD" in joined  # the findings are there...
    assert canary not in joined and canary[2:] not in joined and b64 not in joined  # ...never the value
    doc = json.loads(invoke("scan", "-o", "json", str(tmp_path))[1])
    assert len(doc["findings"]) >= 11


def test_sarif_uris_for_absolute_and_odd_paths() -> None:
    from secretsync.migrator.findings import Finding
    from secretsync.scan import to_sarif

    def finding(file: str | None) -> Finding:
        return Finding(file=file, line=3, resource="Secret/ns/s", path="data.x", key="x", rule="secret-object",
                       confidence="high", location="secret")

    log = to_sarif([finding("/abs/dir/s.yaml"), finding("dir with space/s.yaml"), finding(None)])
    locations = [r["locations"][0] for r in log["runs"][0]["results"]]
    assert locations[0]["physicalLocation"]["artifactLocation"] == {"uri": "file:///abs/dir/s.yaml"}
    assert locations[1]["physicalLocation"]["artifactLocation"] == {"uri": "dir%20with%20space/s.yaml",
                                                                    "uriBaseId": "%SRCROOT%"}
    assert "physicalLocation" not in locations[2]
    assert locations[2]["logicalLocations"][0]["fullyQualifiedName"] == "Secret/ns/s#data.x"
