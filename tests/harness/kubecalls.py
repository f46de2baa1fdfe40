"""Which Kubernetes API calls the controller's code makes, read from the code itself.

Every call the controller makes to the API server goes through one client layer,
``secretsync/kube/client.py`` (``KubeApi.get/list/watch/create/replace/patch/delete`` and
``request`` for the odd subresource). This module parses ``secretsync/controller/`` and turns
each such call into the RBAC permission it needs ``(apiGroup, resource[/subresource], verb)``,
with the file and line that needs it, so the chart's rules can be compared with the code both
ways: a new call without a rule, or a rule no call needs, fails a test that names it.

The resource argument is resolved from what the code passes:

* a ``Resource`` constant (``SECRETS``, ``ES_RES``...);
* a local variable: the constants its assignments use (``res = CONFIGMAPS if ... else SECRETS``);
* ``self.attr`` (or ``self.attr[key]``): the constructor parameter stored there, then every
  place the class is constructed, and the constants passed for that parameter.

A call whose resource cannot be resolved this way is reported as unresolved (and fails the test):
pass a constant, or hand the Resource through a constructor parameter.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTROLLER = REPO / "secretsync" / "controller"

#: KubeApi method -> RBAC verb.
VERBS = {"get": "get", "list": "list", "watch": "watch", "create": "create", "replace": "update",
         "patch": "patch", "delete": "delete", "list_pages": "list", "served": "list"}
#: HTTP method of ``KubeApi.request`` -> RBAC verb (GET with a name is get; without, list).
HTTP_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
#: KubeApi's other public names: no API call of their own (``request`` is parsed separately).
#: ``fenced`` returns the same client with writes gated by leadership: not a call itself.
NOT_CALLS = {"request", "close", "from_config", "for_cli", "configuration", "timeout", "host", "fenced"}


@dataclass(frozen=True, order=True)
class Permission:
    group: str
    resource: str  # "secrets", "externalsecrets/status", "serviceaccounts/token"
    verb: str
    cluster_scoped: bool = False

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}" + (f".{self.group}" if self.group else "")


@dataclass(frozen=True, order=True)
class Call:
    permission: Permission
    where: str  # "secretsync/controller/secretwriter.py:150 (SecretWriter.write)"


def _resource_constants() -> dict[str, object]:
    """Every module-level ``Resource`` in secretsync.controller, by name."""
    from secretsync.kube.client import Resource

    found: dict[str, object] = {}
    for info in pkgutil.iter_modules([str(CONTROLLER)]):
        module = importlib.import_module(f"secretsync.controller.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, Resource):
                found[name] = value
            elif isinstance(value, tuple | list | dict):
                # A module-level collection of Resources (rollout.WORKLOAD_RESOURCES): a call through
                # it may touch any of them, so it needs the rules of all of them.
                items = list(value.values()) if isinstance(value, dict) else list(value)
                if items and all(isinstance(v, Resource) for v in items):
                    found[name] = tuple(items)
    return found


def _is_api(node: ast.expr) -> bool:
    """``api`` or ``<anything>.api``: the KubeApi the controller's classes hold."""
    return (isinstance(node, ast.Name) and node.id == "api") or (isinstance(node, ast.Attribute) and node.attr == "api")


class _Module:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rel = path.relative_to(REPO).as_posix()
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent

    def enclosing(self, node: ast.AST, kind: type[ast.AST] | tuple[type[ast.AST], ...]) -> ast.AST | None:
        cur = self.parents.get(node)
        while cur is not None and not isinstance(cur, kind):
            cur = self.parents.get(cur)
        return cur

    def qualname(self, node: ast.AST) -> str:
        names = []
        cur = self.parents.get(node)
        while cur is not None:
            if isinstance(cur, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(cur.name)
            cur = self.parents.get(cur)
        return ".".join(reversed(names))


class _Analyzer:
    def __init__(self) -> None:
        self.constants = _resource_constants()
        self.modules = [_Module(p) for p in sorted(CONTROLLER.glob("*.py"))]
        self.calls: list[Call] = []
        self.unresolved: list[str] = []

    # -- resolution ----------------------------------------------------------------------------
    def _names_in(self, node: ast.AST) -> set[str]:
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in self.constants}

    def _resolve(self, mod: _Module, expr: ast.expr) -> set[str]:
        while isinstance(expr, ast.Subscript):  # self.resources[kind] -> self.resources
            expr = expr.value
        if isinstance(expr, ast.Name):
            if expr.id in self.constants:
                return {expr.id}
            func = mod.enclosing(expr, (ast.FunctionDef, ast.AsyncFunctionDef))
            found: set[str] = set()
            for node in ast.walk(func) if func is not None else ():
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == expr.id
                                                        for t in node.targets):
                    found |= self._names_in(node.value)
            return found
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            cls = mod.enclosing(expr, ast.ClassDef)
            return self._through_constructor(cls, expr.attr) if isinstance(cls, ast.ClassDef) else set()
        return set()

    def _through_constructor(self, cls: ast.ClassDef, attr: str) -> set[str]:
        init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is None:
            return set()
        param = None
        for node in ast.walk(init):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and any(
                    isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name)
                    and t.value.id == "self" for t in node.targets)):
                param = node.value.id
        if param is None:
            # ``self.attr = {r.kind: r for r in (DEPLOYMENTS, ...)}``: the constants it is built from.
            found_direct: set[str] = set()
            for node in ast.walk(init):
                if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name)
                        and t.value.id == "self" for t in node.targets):
                    found_direct |= self._names_in(node.value)
            return found_direct
        positional = [a.arg for a in init.args.posonlyargs + init.args.args][1:]  # without self
        found: set[str] = set()
        for mod in self.modules:
            for node in ast.walk(mod.tree):
                if not isinstance(node, ast.Call):
                    continue
                callee = node.func.id if isinstance(node.func, ast.Name) else (
                    node.func.attr if isinstance(node.func, ast.Attribute) else None)
                if callee != cls.name:
                    continue
                for kw in node.keywords:
                    if kw.arg == param:
                        found |= self._names_in(kw.value)
                if param in positional and positional.index(param) < len(node.args):
                    found |= self._names_in(node.args[positional.index(param)])
        return found

    # -- calls ---------------------------------------------------------------------------------
    def _record(self, mod: _Module, node: ast.Call, resource: ast.expr, subresource: str | None, verb: str) -> None:
        names = self._resolve(mod, resource)
        where = f"{mod.rel}:{node.lineno} ({mod.qualname(node)})"
        if not names:
            self.unresolved.append(f"{where}: {ast.unparse(node)[:120]}")
            return
        for name in sorted(names):
            value = self.constants[name]
            for res in value if isinstance(value, tuple) else (value,):
                plural = res.plural + (f"/{subresource}" if subresource else "")  # type: ignore[attr-defined]
                perm = Permission(res.group, plural, verb, not res.namespaced)  # type: ignore[attr-defined]
                self.calls.append(Call(perm, where))

    def run(self) -> None:
        for mod in self.modules:
            for node in ast.walk(mod.tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and _is_api(node.func.value)):
                    continue
                method = node.func.attr
                if method in VERBS and node.args:
                    sub = next((kw.value.value for kw in node.keywords if kw.arg == "subresource"
                                and isinstance(kw.value, ast.Constant)), None)
                    self._record(mod, node, node.args[0], sub, VERBS[method])
                elif method == "request":
                    self._request(mod, node)
                elif method not in NOT_CALLS:
                    self.unresolved.append(f"{mod.rel}:{node.lineno} ({mod.qualname(node)}): KubeApi.{method}() "
                                           "is not mapped to an RBAC verb in tests/harness/kubecalls.py")

    def _request(self, mod: _Module, node: ast.Call) -> None:
        """``api.request("POST", RES.path(ns, name, "token"), ...)``."""
        where = f"{mod.rel}:{node.lineno} ({mod.qualname(node)})"
        if (len(node.args) >= 2 and isinstance(node.args[0], ast.Constant) and node.args[0].value == "GET"
                and isinstance(node.args[1], ast.Attribute) and node.args[1].attr == "group_version_path"):
            return  # API discovery (GET /apis/GROUP/VERSION): every authenticated user may, no rule needed
        if (len(node.args) < 2 or not isinstance(node.args[0], ast.Constant)
                or not isinstance(node.args[1], ast.Call) or not isinstance(node.args[1].func, ast.Attribute)
                or node.args[1].func.attr != "path"):
            self.unresolved.append(f"{where}: request() with a path not built by Resource.path(...)")
            return
        method = str(node.args[0].value).upper()
        path_args = node.args[1].args
        sub = path_args[2].value if len(path_args) > 2 and isinstance(path_args[2], ast.Constant) else None
        verb = HTTP_VERBS.get(method) or ("get" if len(path_args) > 1 else "list")
        self._record(mod, node, node.args[1].func.value, sub, verb)


def controller_calls() -> tuple[list[Call], list[str]]:
    """Every API call in secretsync/controller/ as (permission, where); and the unresolved ones."""
    analyzer = _Analyzer()
    analyzer.run()
    return sorted(set(analyzer.calls)), analyzer.unresolved
