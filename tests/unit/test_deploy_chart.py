"""The Helm chart and the plain manifests in deploy/: rendered, compared, and checked for least privilege.

There is no ``helm`` binary in CI, so this module carries a small renderer for the subset of
Helm's template language the chart uses (translated to Jinja2): ``define``/``include``,
``if``/``else``/``with``/``range``, ``toYaml``, ``nindent``, ``quote``, ``printf``,
``default``, ``trunc``, ``trimSuffix``, ``contains``, ``and``/``not``/``gt``/``int``,
``join``, ``ternary``, ``.Capabilities.APIVersions.Has``. The chart must stay inside that
subset; anything else fails here loudly.

deploy/manifests/ is this renderer's output for the default values (plus a namespaced-only
example). Regenerate it with::

    .venv/bin/python -m tests.unit.test_deploy_chart --write
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from secretsync.api.models import GROUP, PLURALS
from secretsync.api.schema import rendered_crds

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "secretsync"
MANIFESTS = REPO / "deploy" / "manifests"
RELEASE = {"Name": "secretsync", "Namespace": "secretsync", "Service": "Helm"}
NAMESPACED_EXAMPLE = {"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": ["app"]}}


# --------------------------------------------------------------------------- Helm subset -> Jinja2
class _Unsupported(Exception):
    pass


def _actions(src: str) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    pos = 0
    while (start := src.find("{{", pos)) >= 0:
        parts.append(("text", src[pos:start]))
        i, quote = start + 2, None
        while not (quote is None and src.startswith("}}", i)):
            ch = src[i]
            if quote and ch == "\\":
                i += 1
            elif quote and ch == quote:
                quote = None
            elif not quote and ch in "\"`":
                quote = ch
            i += 1
        parts.append(("action", src[start + 2:i]))
        pos = i + 2
    parts.append(("text", src[pos:]))
    return parts


def _tokens(expr: str) -> list[str]:
    return re.findall(r'"(?:\\.|[^"\\])*"|`[^`]*`|[()]|\||[^\s()|]+', expr)


class _Expr:
    def __init__(self, dot: str) -> None:
        self.dot = dot

    def operand(self, tok: str) -> str:
        if tok.startswith('"'):
            return json.dumps(json.loads(tok))
        if tok.startswith("`"):
            return json.dumps(tok[1:-1])
        if re.fullmatch(r"-?\d+", tok) or tok in ("true", "false"):
            return tok
        if tok == ".":
            return self.dot
        if tok.startswith("$"):
            head, _, rest = tok[1:].partition(".")
            base = head or "_root"
            return base + ("." + rest if rest else "")
        if tok.startswith("."):
            return f"{self.dot}{tok}"
        raise _Unsupported(f"operand {tok!r}")

    def args(self, toks: list[str]) -> list[str]:
        out, i = [], 0
        while i < len(toks):
            if toks[i] == "(":
                depth, j = 1, i + 1
                while depth:
                    depth += {"(": 1, ")": -1}.get(toks[j], 0)
                    j += 1
                out.append(f"({self.pipeline(toks[i + 1:j - 1])})")
                i = j
            else:
                out.append(self.operand(toks[i]))
                i += 1
        return out

    def command(self, toks: list[str], piped: str | None) -> str:
        head = toks[0]
        if head.startswith((".", "$")) or head == "(":
            vals = self.args(toks)
            if len(vals) == 1 and piped is None:
                return vals[0]
            return f"{vals[0]}({', '.join(vals[1:] + ([piped] if piped else []))})"
        a = self.args(toks[1:]) + ([piped] if piped is not None else [])
        simple = {"toYaml": "toYaml", "quote": "quote", "int": "int"}
        if head in simple:
            return f"({a[0]} | {simple[head]})"
        if head == "include":
            if a[1] not in ("_root", self.dot) or not a[0].startswith('"'):
                raise _Unsupported("include must pass . or $")
            return json.loads(a[0]).replace(".", "_") + "()"
        if head in ("nindent", "indent", "trunc", "trimSuffix", "join"):
            return f"({a[1]} | {head}({a[0]}))"
        if head == "default":
            return f"({a[1]} | godefault({a[0]}))"
        if head == "printf":
            return f"({a[0]} | format({', '.join(a[1:])}))"
        if head == "contains":
            return f"({a[0]} in {a[1]})"
        if head in ("and", "or"):
            return "(" + f" {head} ".join(a) + ")"
        if head == "not":
            return f"(not {a[0]})"
        if head in ("eq", "ne", "gt", "lt"):
            op = {"eq": "==", "ne": "!=", "gt": ">", "lt": "<"}[head]
            return f"({a[0]} {op} {a[1]})"
        if head == "ternary":
            return f"({a[0]} if {a[2]} else {a[1]})"
        raise _Unsupported(f"function {head!r}")

    def pipeline(self, toks: list[str]) -> str:
        cmds: list[list[str]] = [[]]
        depth = 0
        for t in toks:
            depth += {"(": 1, ")": -1}.get(t, 0)
            if t == "|" and depth == 0:
                cmds.append([])
            else:
                cmds[-1].append(t)
        expr: str | None = None
        for cmd in cmds:
            expr = self.command(cmd, expr)
        assert expr is not None
        return expr


def helm_to_jinja(src: str) -> str:
    out: list[str] = []
    stack: list[tuple[str, str]] = []  # (closing tag, dot to restore)
    dot = "_root"
    counter = 0
    for kind, body in _actions(src):
        if kind == "text":
            if "{%" in body or "{#" in body:
                raise _Unsupported("Jinja syntax in chart text")
            out.append(body)
            continue
        lt = "-" if body.startswith("-") else ""
        rt = "-" if body.endswith("-") else ""
        inner = body[len(lt):len(body) - len(rt)].strip()
        if inner.startswith("/*"):
            out.append("{#" + lt + " c " + rt + "#}")
            continue
        toks = _tokens(inner)
        ex = _Expr(dot)
        head = toks[0]
        if head == "define":
            out.append("{%" + lt + f" macro {json.loads(toks[1]).replace('.', '_')}() " + rt + "%}")
            stack.append(("endmacro", dot))
        elif head == "if":
            out.append("{%" + lt + f" if {ex.pipeline(toks[1:])} " + rt + "%}")
            stack.append(("endif", dot))
        elif head == "else":
            out.append("{%" + lt + " else " + rt + "%}")
        elif head == "with":
            counter += 1
            var = f"_w{counter}"
            out.append("{%" + lt + f" set {var} = {ex.pipeline(toks[1:])} %}}{{% if {var} " + rt + "%}")
            stack.append(("endif", dot))
            dot = var
        elif head == "range":
            counter += 1
            if len(toks) > 3 and toks[2] == ":=":
                var, expr = toks[1][1:], ex.pipeline(toks[3:])
            else:
                var, expr = f"_r{counter}", ex.pipeline(toks[1:])
                stack.append(("endfor", dot))
                out.append("{%" + lt + f" for {var} in {expr} " + rt + "%}")
                dot = var
                continue
            out.append("{%" + lt + f" for {var} in {expr} " + rt + "%}")
            stack.append(("endfor", dot))
            dot = var
        elif head == "end":
            closing, dot = stack.pop()
            out.append("{%" + lt + f" {closing} " + rt + "%}")
        else:
            out.append("{{" + lt + f" {ex.pipeline(toks)} " + rt + "}}")
    assert not stack, "unbalanced {{ end }}"
    return "".join(out)


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n") if value is not None else ""


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class _APIVersions:
    def __init__(self, versions: set[str]) -> None:
        self.versions = versions

    def Has(self, what: str) -> bool:  # Helm's method name
        return what in self.versions or what.rsplit("/", 1)[0] in self.versions


def render_chart(overrides: dict[str, Any] | None = None, *,
                 api_versions: frozenset[str] = frozenset({"policy/v1"})) -> list[dict[str, Any]]:
    """Render every template with values.yaml (+ overrides); the resulting YAML documents."""
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined, autoescape=False,
                             keep_trailing_newline=True)
    env.filters.update({
        "toYaml": _to_yaml,
        "nindent": lambda s, n: "\n" + "\n".join((" " * n + ln) if ln else ln for ln in str(s).split("\n")),
        "indent": lambda s, n: "\n".join((" " * n + ln) if ln else ln for ln in str(s).split("\n")),
        "quote": lambda s: json.dumps("" if s is None or isinstance(s, jinja2.Undefined) else str(s)),
        "trunc": lambda s, n: str(s)[:n],
        "trimSuffix": lambda s, suf: str(s)[: -len(suf)] if suf and str(s).endswith(suf) else str(s),
        "join": lambda seq, sep: sep.join(str(x) for x in seq),
        "godefault": lambda v, d: v if v else d,
    })
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = _merge(yaml.safe_load((CHART / "values.yaml").read_text()), overrides or {})
    root = {
        "Values": values,
        "Release": RELEASE,
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
        "Capabilities": {"APIVersions": _APIVersions(set(api_versions))},
    }
    helpers = helm_to_jinja((CHART / "templates" / "_helpers.tpl").read_text())
    docs: list[dict[str, Any]] = []
    for path in sorted((CHART / "templates").glob("*.yaml")):
        source = helpers + helm_to_jinja(path.read_text())
        text = env.from_string(source).render(_root=root)
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return docs


def rendered_manifests() -> dict[str, str]:
    """deploy/manifests/ file name -> content."""
    header = ("# Rendered from deploy/helm/secretsync (default values) by tests/unit/test_deploy_chart.py.\n"
              "# Apply the CRDs first: kubectl apply -f deploy/crds/\n")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE["Namespace"]}}

    def dump(docs: list[dict[str, Any]]) -> str:
        docs = sorted(docs, key=lambda d: _INSTALL_ORDER.index(d["kind"]))  # what kubectl apply needs first
        return header + "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)

    return {
        "secretsync.yaml": dump([namespace, *render_chart()]),
        "secretsync-namespaced.yaml": dump([namespace, *render_chart(NAMESPACED_EXAMPLE)]),
    }


#: Helm's install order (the kinds this chart uses).
_INSTALL_ORDER = ["Namespace", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount", "ClusterRole",
                  "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment", "ServiceMonitor"]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return render_chart()


def test_plain_manifests_are_the_rendered_chart() -> None:
    """If this fails: .venv/bin/python -m tests.unit.test_deploy_chart --write"""
    for name, text in rendered_manifests().items():
        on_disk = (MANIFESTS / name).read_text(encoding="utf-8")
        assert list(yaml.safe_load_all(on_disk)) == list(yaml.safe_load_all(text)), name


def test_chart_crds_are_the_generated_crds() -> None:
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in (CHART / "crds").glob("*.yaml")}
    assert on_disk == rendered_crds()


def test_deployment_runs_two_hardened_replicas_with_leader_election(default_docs: list[dict[str, Any]]) -> None:
    (dep,) = _by_kind(default_docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert "--leader-elect" in c["args"] and "controller" in c["args"]
    assert "--lease-namespace=$(POD_NAMESPACE)" in c["args"]
    assert c["image"] == "ghcr.io/secretsync/secretsync:0.1.0"
    assert pod["affinity"]["podAntiAffinity"]


def _rules(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for role in _by_kind(docs, kind) for r in role["rules"]]


def _verbs(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {v for r in rules if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]}


def test_cluster_role_is_least_privilege(default_docs: list[dict[str, Any]]) -> None:
    rules = _rules(default_docs, "ClusterRole")
    for kind, plural in PLURALS.items():
        assert {"get", "list", "watch"} <= _verbs(rules, GROUP, plural), kind
        assert _verbs(rules, GROUP, f"{plural}/status") == {"get", "update", "patch"}
    # only ExternalSecrets are written (by ClusterExternalSecret fan-out); stores never
    assert _verbs(rules, GROUP, "secretstores") == {"get", "list", "watch"}
    assert _verbs(rules, GROUP, "clustersecretstores") == {"get", "list", "watch"}
    assert _verbs(rules, "", "secrets") == {"get", "list", "watch", "create", "update", "patch", "delete"}
    assert _verbs(rules, "", "configmaps") == {"get"}
    assert _verbs(rules, "", "events") == {"create", "patch"}
    assert _verbs(rules, "", "namespaces") == {"get", "list", "watch"}
    # nothing else, no wildcards, no leases cluster-wide
    resources = {res for r in rules for res in r["resources"]}
    assert resources <= {*PLURALS.values(), *(f"{p}/status" for p in PLURALS.values()), "secrets", "configmaps",
                         "events", "namespaces"}
    assert not any("*" in r["verbs"] or "*" in r["resources"] or "*" in r["apiGroups"] for r in rules)


def test_leases_are_in_a_role_of_the_release_namespace(default_docs: list[dict[str, Any]]) -> None:
    (role,) = [r for r in _by_kind(default_docs, "Role") if r["metadata"]["name"].endswith("leader-election")]
    assert role["metadata"]["namespace"] == RELEASE["Namespace"]
    lease_rules = [r for r in role["rules"] if "leases" in r["resources"]]
    assert {v for r in lease_rules for v in r["verbs"]} == {"get", "create", "update"}
    assert any(r.get("resourceNames") == ["secretsync-controller"] for r in lease_rules)
    assert not any("leases" in r["resources"] for r in _rules(default_docs, "ClusterRole"))


def test_optional_permissions_follow_values() -> None:
    docs = render_chart({"rbac": {"configMapTemplates": False, "serviceAccountTokens": True,
                                  "clusterExternalSecrets": False}})
    rules = _rules(docs, "ClusterRole")
    assert not _verbs(rules, "", "configmaps")
    assert _verbs(rules, "", "serviceaccounts/token") == {"create"}
    assert _verbs(rules, GROUP, "externalsecrets") == {"get", "list", "watch"}


def test_namespaced_mode_uses_roles_only() -> None:
    docs = render_chart(NAMESPACED_EXAMPLE)
    assert not _by_kind(docs, "ClusterRole") and not _by_kind(docs, "ClusterRoleBinding")
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in _by_kind(docs, "Role")}
    assert ("app", "secretsync-controller") in roles
    rules = [r for role in _by_kind(docs, "Role") if role["metadata"]["namespace"] == "app" for r in role["rules"]]
    assert not any(res.startswith("cluster") for r in rules for res in r["resources"])
    (dep,) = _by_kind(docs, "Deployment")
    assert "--namespaces=app" in dep["spec"]["template"]["spec"]["containers"][0]["args"]


def test_pdb_network_policy_and_metrics(default_docs: list[dict[str, Any]]) -> None:
    (pdb,) = _by_kind(default_docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["minAvailable"] == 1
    old = _by_kind(render_chart(api_versions=frozenset()), "PodDisruptionBudget")
    assert old[0]["apiVersion"] == "policy/v1beta1"  # Kubernetes 1.20
    (np,) = _by_kind(default_docs, "NetworkPolicy")
    assert np["spec"]["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]
    (svc,) = _by_kind(default_docs, "Service")
    assert svc["spec"]["ports"][0]["name"] == "metrics"
    assert not _by_kind(default_docs, "ServiceMonitor")
    monitored = render_chart({"serviceMonitor": {"enabled": True}})
    assert _by_kind(monitored, "ServiceMonitor")[0]["spec"]["endpoints"][0]["port"] == "metrics"


def test_every_object_is_labelled_and_namespaced_where_needed(default_docs: list[dict[str, Any]]) -> None:
    cluster_kinds = {"ClusterRole", "ClusterRoleBinding"}
    for doc in default_docs:
        md = doc["metadata"]
        assert md["labels"]["app.kubernetes.io/part-of"] == "secretsync", doc["kind"]
        if doc["kind"] not in cluster_kinds:
            assert md["namespace"] == RELEASE["Namespace"], doc["kind"]


def test_dockerfile_runs_as_non_root_from_python_slim() -> None:
    text = (REPO / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^USER 65532", text, re.M)
    assert 'pip install --no-cache-dir ".[all]"' in text or "pip install --no-cache-dir '.[all]'" in text
    assert 'ENTRYPOINT ["secretsync"]' in text


if __name__ == "__main__":  # regenerate deploy/manifests
    if "--write" in sys.argv:
        MANIFESTS.mkdir(parents=True, exist_ok=True)
        for name, text in rendered_manifests().items():
            (MANIFESTS / name).write_text(text, encoding="utf-8")
            print(f"wrote {MANIFESTS / name}")


def test_stores_get_the_controller_identity_and_files_only_when_the_admin_says_so(
        default_docs: list[dict[str, Any]]) -> None:
    def args(docs: list[dict[str, Any]]) -> list[str]:
        return list(_by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"])

    assert not [a for a in args(default_docs) if a.startswith("--allow-")]
    allowed = render_chart({"controller": {"allowNamespacedAmbientIdentity": True, "allowClusterStoreFiles": True}})
    assert {"--allow-namespaced-ambient-identity", "--allow-cluster-store-files"} <= set(args(allowed))
