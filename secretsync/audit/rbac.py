"""Who *could* read Secrets: Kubernetes RBAC evaluated offline, with the reason for every answer.

The matching follows the RBAC authorizer (``k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac``)
rule for rule, so its answers can be checked against a real API server's
``SubjectAccessReview`` (the integration tests do):

* A RoleBinding grants its Role's or ClusterRole's rules in its own namespace; a
  ClusterRoleBinding grants a ClusterRole's rules everywhere.
* A rule matches when the verb, API group and resource each equal a listed value or ``*``
  (``*/sub`` matches a subresource), and ``resourceNames`` is empty or lists the object.
  A request without a name (``list``, ``watch``) never matches a rule with ``resourceNames``
  unless it selects one name (``fieldSelector=metadata.name=...``).
* Subjects: a User by name, a Group by membership, a ServiceAccount as the user
  ``system:serviceaccount:NS:NAME`` (namespace defaulting to the RoleBinding's); every
  ServiceAccount is in the groups ``system:serviceaccounts`` and
  ``system:serviceaccounts:NS``; every authenticated caller in ``system:authenticated``.
* An aggregated ClusterRole (``aggregationRule``) holds the rules of every ClusterRole its
  selectors match, as the controller-manager would fill them in.
* The group ``system:masters`` passes every check without RBAC (a hard-wired authorizer).

Beyond plain ``get/list/watch secrets``, a subject that can do any of the following can read
Secrets too, and is reported as an *escalation* with the rule that allows it: create pods
or change workloads (a pod template mounts any Secret of the namespace), exec into pods,
create ServiceAccount tokens, ``bind``/``escalate`` roles, ``impersonate``, and
``nodes/proxy`` (the kubelet API). Not modelled: webhook, ABAC and Node authorizers, and
admission plugins that could deny what RBAC allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from secretsync.kube.kinds import RBAC_GROUP

from .inventory import BindingInfo, ObjRef, PolicyRule, Problem, RoleInfo, Subject

READ_VERBS: Final = ("get", "list", "watch")
SUPERUSER_GROUP: Final = "system:masters"
#: Groups everyone (or every ServiceAccount) is in: a grant to them is a grant to all.
EVERYONE_GROUPS: Final = frozenset({"system:authenticated", "system:unauthenticated", "system:serviceaccounts"})

HOW_SUPERUSER: Final = "superuser"
HOW_RBAC: Final = "rbac"
HOW_ESCALATION: Final = "escalation"
_HOW_ORDER: Final = {HOW_SUPERUSER: 0, HOW_RBAC: 1, HOW_ESCALATION: 2}

_READ_REASON: Final = "read Secrets"


@dataclass(frozen=True, slots=True)
class _Escalation:
    reason: str
    verbs: tuple[str, ...]
    group: str
    resources: tuple[str, ...]  # "resource" or "resource/subresource"
    cluster_only: bool = False  # a cluster-scoped resource: only ClusterRoleBindings grant it


_WRITE: Final = ("create", "update", "patch")
ESCALATIONS: Final = (
    _Escalation("create pods (a pod can mount any Secret of the namespace)", ("create",), "", ("pods",)),
    _Escalation("create or change workloads (their pod template can mount any Secret of the namespace)",
                _WRITE, "apps", ("deployments", "statefulsets", "daemonsets", "replicasets")),
    _Escalation("create or change workloads (their pod template can mount any Secret of the namespace)",
                _WRITE, "batch", ("jobs", "cronjobs")),
    _Escalation("create or change workloads (their pod template can mount any Secret of the namespace)",
                _WRITE, "", ("replicationcontrollers",)),
    _Escalation("exec into pods (reads the Secrets those pods mount)", ("create", "get"), "", ("pods/exec",)),
    _Escalation("create ServiceAccount tokens (acts as any ServiceAccount of the namespace)", ("create",), "",
                ("serviceaccounts/token",)),
    _Escalation("impersonate ServiceAccounts (acts as any ServiceAccount of the namespace)", ("impersonate",), "",
                ("serviceaccounts",)),
    _Escalation("bind or escalate roles (can grant themselves Secret read)", ("bind", "escalate"), RBAC_GROUP,
                ("roles", "clusterroles")),
    _Escalation("impersonate users or groups (acts as anyone who can read Secrets)", ("impersonate",), "",
                ("users", "groups"), cluster_only=True),
    _Escalation("nodes/proxy (the kubelet API can exec into any pod)", ("get", "create"), "", ("nodes/proxy",),
                cluster_only=True),
)


def _rules(*specs: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]) -> tuple[PolicyRule, ...]:
    return tuple(PolicyRule(i, v, g, r) for i, (v, g, r) in enumerate(specs))


_RW: Final = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
_EDIT_RULES: Final = (
    (READ_VERBS, ("",), ("pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy")),
    (("impersonate",), ("",), ("serviceaccounts",)),
    (_RW[3:], ("",), ("pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward")),
    (_RW[3:], ("",), ("replicationcontrollers", "serviceaccounts", "services", "configmaps", "secrets")),
    (_RW[3:], ("apps",), ("statefulsets", "daemonsets", "deployments", "replicasets")),
    (_RW[3:], ("batch",), ("jobs", "cronjobs")),
)
#: The secret-relevant rules of Kubernetes' built-in user-facing ClusterRoles (1.20 bootstrap
#: policy). Used for manifests only, where a binding to ``edit`` finds no ClusterRole object.
BUILTIN_CLUSTER_ROLES: Final[Mapping[str, tuple[PolicyRule, ...]]] = {
    "cluster-admin": (PolicyRule(0, ("*",), ("*",), ("*",)), PolicyRule(1, ("*",), non_resource_urls=("*",))),
    "admin": _rules(*_EDIT_RULES, (_RW, (RBAC_GROUP,), ("roles", "rolebindings"))),
    "edit": _rules(*_EDIT_RULES),
    "view": (),
}


@dataclass(frozen=True, slots=True)
class Step:
    """Why a subject holds a grant: binding -> role -> rule (a fix removes one of these)."""

    binding: str | None
    role: str | None
    rule: int | None = None
    rule_text: str | None = None
    #: The ClusterRole the rule came from when ``role`` aggregates it.
    aggregated_from: str | None = None

    def __str__(self) -> str:
        if self.binding is None:
            return "-"
        rule = f" rules[{self.rule}]" if self.rule is not None else ""
        agg = f" (aggregated from {self.aggregated_from})" if self.aggregated_from else ""
        return f"{self.binding} -> {self.role}{rule}{agg}"

    def as_dict(self) -> dict[str, object]:
        return {"binding": self.binding, "role": self.role, "rule": self.rule, "ruleText": self.rule_text,
                "aggregatedFrom": self.aggregated_from}


@dataclass(frozen=True, slots=True)
class Grant:
    """One subject's way to read Secrets of a namespace (or of every namespace)."""

    subject: Subject
    how: str  # superuser | rbac | escalation
    reason: str
    #: None: every namespace (a ClusterRoleBinding or the superuser group).
    namespace: str | None
    #: Secret verbs granted (for escalations: the verbs of the escalating rule).
    verbs: tuple[str, ...]
    #: None: every Secret; otherwise only these names.
    resource_names: tuple[str, ...] | None
    via: tuple[Step, ...] = ()

    @property
    def scope(self) -> str:
        return "cluster" if self.namespace is None else "namespace"

    def covers(self, secret: str) -> bool:
        return self.resource_names is None or secret in self.resource_names

    def as_dict(self) -> dict[str, object]:
        return {"subject": self.subject.as_dict(), "how": self.how, "reason": self.reason, "scope": self.scope,
                "namespace": self.namespace, "verbs": list(self.verbs),
                "resourceNames": list(self.resource_names) if self.resource_names is not None else None,
                "via": [s.as_dict() for s in self.via]}


def _verb_matches(rule: PolicyRule, verb: str) -> bool:
    return "*" in rule.verbs or verb in rule.verbs


def _group_matches(rule: PolicyRule, group: str) -> bool:
    return "*" in rule.api_groups or group in rule.api_groups


def _resource_matches(rule: PolicyRule, resource: str) -> bool:
    """``resource`` is ``res`` or ``res/sub``; ``*`` matches all, ``*/sub`` any resource's ``sub``."""
    sub = resource.partition("/")[2]
    return any(r == "*" or r == resource or (sub and r == f"*/{sub}") for r in rule.resources)


def rule_allows(rule: PolicyRule, verb: str, group: str, resource: str, name: str | None = None) -> bool:
    """Does ``rule`` allow this request? (``name`` None: a request for no single object.)"""
    if rule.non_resource_urls and not rule.resources:
        return False
    if not (_verb_matches(rule, verb) and _group_matches(rule, group) and _resource_matches(rule, resource)):
        return False
    return not rule.resource_names or (name is not None and name in rule.resource_names)


def subject_matches(subject: Subject, user: str, groups: Iterable[str]) -> bool:
    if subject.kind == "User":
        return subject.name == user
    if subject.kind == "Group":
        return subject.name in (groups if isinstance(groups, set | frozenset) else set(groups))
    return user == f"system:serviceaccount:{subject.namespace}:{subject.name}"


@dataclass(frozen=True, slots=True)
class _Match:
    binding: BindingInfo
    rule: PolicyRule
    aggregated_from: str | None

    def step(self) -> Step:
        return Step(str(self.binding.ref), str(self.binding.role), self.rule.index, self.rule.text(),
                    self.aggregated_from)


@dataclass
class Rbac:
    """RBAC of one cluster (or manifest tree): roles, bindings, and questions about Secrets.

    ``builtin_roles``: resolve bindings to ``cluster-admin``/``admin``/``edit``/``view`` that
    have no ClusterRole object (manifest trees never contain the built-in roles).
    """

    roles: Mapping[ObjRef, RoleInfo]
    bindings: Sequence[BindingInfo]
    builtin_roles: bool = False
    problems: list[Problem] = field(default_factory=list)
    _effective: dict[ObjRef, tuple[tuple[PolicyRule, str | None], ...]] = field(default_factory=dict, repr=False)
    _missing: set[ObjRef] = field(default_factory=set, repr=False)
    _readers_everywhere: set[Subject] | None = field(default=None, repr=False)
    _by_namespace: dict[str | None, list[BindingInfo]] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ rules
    def rules_of(self, ref: ObjRef) -> tuple[tuple[PolicyRule, str | None], ...]:
        """The role's effective rules, each with the ClusterRole it was aggregated from (or None)."""
        if ref not in self._effective:
            self._effective[ref] = self._resolve(ref, frozenset())
        return self._effective[ref]

    def _resolve(self, ref: ObjRef, seen: frozenset[ObjRef]) -> tuple[tuple[PolicyRule, str | None], ...]:
        role = self.roles.get(ref)
        if role is None:
            if self.builtin_roles and ref.kind == "ClusterRole" and ref.name in BUILTIN_CLUSTER_ROLES:
                return tuple((r, None) for r in BUILTIN_CLUSTER_ROLES[ref.name])
            return ()
        out: dict[PolicyRule, str | None] = dict.fromkeys(role.rules)
        if role.aggregation:
            for other in self.roles.values():
                if (other.ref == ref or other.ref in seen or other.ref.kind != "ClusterRole"
                        or not any(sel.matches(other.labels) for sel in role.aggregation)):
                    continue
                for rule, origin in self._resolve(other.ref, seen | {ref}):
                    # A live aggregated role already holds copies of these rules: keep one,
                    # and say where it came from.
                    dup = next((r for r in out if _same(r, rule)), None)
                    if dup is not None:
                        del out[dup]
                    out[rule] = origin or str(other.ref)
        return tuple(out.items())

    def _role_exists(self, ref: ObjRef) -> bool:
        return ref in self.roles or (self.builtin_roles and ref.kind == "ClusterRole"
                                     and ref.name in BUILTIN_CLUSTER_ROLES)

    def _index(self) -> dict[str | None, list[BindingInfo]]:
        """Bindings by namespace (None: ClusterRoleBindings), without those whose role is missing."""
        if self._by_namespace is None:
            self._by_namespace = {}
            for b in self.bindings:
                if not self._role_exists(b.role):
                    if b.role not in self._missing:
                        self._missing.add(b.role)
                        self.problems.append(Problem(str(b.ref), "roleRef",
                                                     f"{b.role} not found: the binding grants nothing"))
                    continue
                key = None if b.ref.kind == "ClusterRoleBinding" else b.ref.namespace
                self._by_namespace.setdefault(key, []).append(b)
        return self._by_namespace

    def matches(self, namespace: str | None, verb: str, group: str, resource: str,
                name: str | None = None, *, any_name: bool = False, cluster: bool = True,
                local: bool = True) -> Iterator[_Match]:
        """Every (binding, rule) that allows the request in ``namespace`` (None: a cluster-scoped one).

        ``any_name`` also yields name-restricted rules; ``cluster``/``local`` select
        ClusterRoleBindings and the namespace's RoleBindings.
        """
        index = self._index()
        bindings = (index.get(None, []) if cluster else []) + (
            index.get(namespace, []) if local and namespace is not None else [])
        for b in bindings:
            for rule, origin in self.rules_of(b.role):
                if any_name and rule.resource_names:
                    ok = rule_allows(rule, verb, group, resource, rule.resource_names[0])
                else:
                    ok = rule_allows(rule, verb, group, resource, name)
                if ok:
                    yield _Match(b, rule, origin)

    # ------------------------------------------------------------------ questions
    def allowed(self, user: str, groups: Sequence[str], verb: str, group: str, resource: str,
                namespace: str | None, name: str | None = None) -> tuple[Step, ...]:
        """Why ``user`` may do this (empty: RBAC denies it). ``groups`` as the authenticator sets them."""
        if SUPERUSER_GROUP in groups:
            return (Step(None, None),)
        # Subjects first: a binding for someone else never needs its rules resolved.
        index = self._index()
        member = set(groups)
        out = []
        for b in index.get(None, []) + (index.get(namespace, []) if namespace is not None else []):
            if not any(subject_matches(s, user, member) for s in b.subjects):
                continue
            out += [_Match(b, rule, origin).step() for rule, origin in self.rules_of(b.role)
                    if rule_allows(rule, verb, group, resource, name)]
        return tuple(out)

    def _cluster_readers(self) -> set[Subject]:
        if self._readers_everywhere is None:
            self._readers_everywhere = {
                g.subject for g in self.secret_readers(None)
                if g.how != HOW_ESCALATION and g.resource_names is None and set(READ_VERBS) <= set(g.verbs)}
        return self._readers_everywhere

    def secret_readers(self, namespace: str | None) -> list[Grant]:
        """Who can read Secrets of ``namespace`` (None: grants that hold in every namespace).

        Grants from ClusterRoleBindings are returned for ``namespace=None`` only, so a report
        over many namespaces lists each of them once.
        """
        acc: dict[tuple[Subject, str, str, tuple[str, ...] | None], tuple[set[str], list[Step]]] = {}

        def add(subject: Subject, how: str, reason: str, names: tuple[str, ...] | None, verbs: Iterable[str],
                step: Step) -> None:
            verbs_set, steps = acc.setdefault((subject, how, reason, names), (set(), []))
            verbs_set.update(verbs)
            if step not in steps:
                steps.append(step)

        # Each binding is reported in one place: ClusterRoleBindings at cluster scope only.
        cluster = namespace is None
        for verb in READ_VERBS:
            for m in self.matches(namespace, verb, "", "secrets", any_name=True, cluster=cluster,
                                  local=not cluster):
                for s in m.binding.subjects:
                    add(s, HOW_RBAC, _READ_REASON, m.rule.resource_names or None, (verb,), m.step())
        # Who reads every Secret here (or everywhere) already needs no escalation listed.
        readers = {k[0] for k, (verbs, _) in acc.items() if k[3] is None and set(READ_VERBS) <= verbs}
        if namespace is not None:
            readers |= self._cluster_readers()
        for esc in ESCALATIONS:
            if esc.cluster_only and namespace is not None:
                continue
            for verb in esc.verbs:
                for resource in esc.resources:
                    for m in self.matches(namespace, verb, esc.group, resource, any_name=True,
                                          cluster=cluster, local=not cluster):
                        for s in m.binding.subjects:
                            if s not in readers:
                                add(s, HOW_ESCALATION, esc.reason, None, (verb,), m.step())
        out = [Grant(s, how, reason, namespace, tuple(v for v in (*READ_VERBS, *sorted(verbs - set(READ_VERBS)))
                                                    if v in verbs), names, tuple(steps))
               for (s, how, reason, names), (verbs, steps) in acc.items()]
        if namespace is None:
            out.append(Grant(Subject("Group", SUPERUSER_GROUP), HOW_SUPERUSER,
                             "system:masters passes every authorization check", None, READ_VERBS, None))
        out.sort(key=lambda g: (_HOW_ORDER[g.how], g.subject.kind, g.subject.namespace or "", g.subject.name,
                                g.reason))
        return out


def _same(a: PolicyRule, b: PolicyRule) -> bool:
    return (a.verbs, a.api_groups, a.resources, a.resource_names, a.non_resource_urls) == (
        b.verbs, b.api_groups, b.resources, b.resource_names, b.non_resource_urls)


def is_everyone(subject: Subject) -> bool:
    """A Group meaning every caller, every ServiceAccount, or every ServiceAccount of a namespace."""
    return (subject.kind == "Group" and (subject.name in EVERYONE_GROUPS
                                        or subject.name.startswith("system:serviceaccounts:"))) or (
        subject.kind == "User" and subject.name == "system:anonymous")


def is_system(subject: Subject) -> bool:
    """Kubernetes' own identities (controllers, the scheduler, kube-system ServiceAccounts)."""
    if subject.kind == "ServiceAccount":
        return subject.namespace == "kube-system"
    return subject.name.startswith("system:") and not is_everyone(subject)
