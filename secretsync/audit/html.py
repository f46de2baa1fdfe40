"""``audit -o html``: the report as one self-contained page a platform team can share.

Why one file with everything inline: the report goes to app owners and auditors by mail or
as a CI artifact, is opened offline, and must never fetch anything (no CDN, no fonts, no
third-party script). The page is rendered from the report document like every other view,
so it holds nothing ``-o json`` does not (and so no Secret value: the document has none).

Data is embedded as JSON in a ``<script type="application/json">`` block with ``<``, ``>``
and ``&`` escaped, so an object named ``</script>`` in a hostile manifest cannot end the
block; the page's script only ever writes text with ``textContent``.

At scale (10,000 pods, thousands of Secrets) the graph never draws everything: above
:data:`PAGE` Secrets it shows one aggregate node per namespace and column, and a filtered or
searched view is paginated; tables are paginated too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

from .advice import advice_text, sa_of
from .inventory import Subject
from .rbac import HOW_SUPERUSER, is_system
from .report import source_label

#: Secrets drawn per graph page (and the size above which the overview aggregates namespaces).
PAGE: Final = 40

#: Finding filters offered first, with the words a reader looks for.
FINDING_LABELS: Final = {
    "broken-ref": "broken ref", "orphan": "orphan", "unmanaged": "plaintext (only in Kubernetes)",
    "broad-reader": "broad reader", "unused-permission": "unused permission",
    "broken-optional-ref": "broken optional ref", "missing-key": "missing key", "audit-policy": "audit policy",
}


def _sid(ns: str | None, name: str | None) -> str:
    return f"{ns or '*'}/{name or '*'}"


def _subject_id(s: Mapping[str, Any]) -> str:
    if s["kind"] == "ServiceAccount":
        return f"A:{s.get('namespace')}/{s['name']}"
    return f"U:{s['kind']}/{s['name']}"


def _user_id(user: str) -> str:
    sa = sa_of(user)
    return f"A:{sa[0]}/{sa[1]}" if sa else f"U:User/{user}"


def _rbac_edges(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Who-could edges, one per (subject, namespace, names), not per Secret: a grant on a whole
    namespace points at that namespace's "every Secret" node."""
    rbac = doc.get("rbac")
    if not rbac:
        return []
    out: list[dict[str, Any]] = []
    groups = [("*", rbac["cluster"]), *rbac["namespaces"].items()]
    for ns, grants in groups:
        for g in grants:
            s = g["subject"]
            if g["how"] == HOW_SUPERUSER or is_system(Subject(s["kind"], s["name"], s.get("namespace"))):
                continue
            out.append({"from": _subject_id(s), "label": _subject_label(s), "ns": ns,
                        "names": g["resourceNames"], "how": g["how"], "reason": g["reason"],
                        "verbs": g["verbs"], "bindings": sorted({v["binding"] for v in g["via"] if v["binding"]})})
    return out


def _subject_label(s: Mapping[str, Any]) -> str:
    return f"{s['kind']}/{s['namespace']}/{s['name']}" if s.get("namespace") else f"{s['kind']}/{s['name']}"


def page_data(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The compact, value-free data the page draws from (also what the tests inspect)."""
    by_secret: dict[str, list[str]] = {}
    findings = []
    for f in doc["findings"]:
        if f.get("secret"):
            by_secret.setdefault(f["secret"], []).append(f["type"])
        findings.append([f["severity"], f["type"], f["object"], f.get("location") or f.get("field") or "",
                         f["message"], f.get("secret") or ""])
    secrets = []
    for s in doc["secrets"]:
        key = f"{s['namespace']}/{s['name']}"
        secrets.append({
            "ns": s["namespace"], "name": s["name"], "state": s["state"], "by": s["managedBy"] or "",
            "src": [[_src_id(x), source_label(x), x["externalSecret"]] for x in s["sources"]],
            "es": s["externalSecrets"],
            "use": [[_consumer_id(c), c["via"], c.get("serviceAccount") or ""] for c in s["consumers"]],
            "f": sorted(set(by_secret.get(key, []))),
        })
    workloads = {f"W:{w['kind']}/{w['namespace']}/{w['name']}": sum(1 for m in w["members"] if m.startswith("Pod/"))
                 for w in doc["workloads"]}
    did = []
    access = doc.get("access")
    if access:
        for a in access["reads"]:
            did.append({"from": _user_id(a["user"]), "label": a["user"], "ns": a["namespace"] or "*",
                        "name": a["name"], "verb": a["verb"], "count": a["count"], "decision": a["decision"]})
    present = sorted({f[1] for f in findings})
    ftypes = [t for t in FINDING_LABELS if t in present or t in ("broken-ref", "orphan", "unmanaged",
                                                                 "broad-reader", "unused-permission")]
    ftypes += [t for t in present if t not in ftypes]
    return {
        "summary": doc["summary"], "source": doc["source"], "page": PAGE,
        "findingTypes": [[t, FINDING_LABELS.get(t, t)] for t in ftypes],
        "secrets": secrets, "pods": workloads, "could": _rbac_edges(doc), "did": did, "findings": findings,
        "advice": [{"serviceAccount": a["serviceAccount"], "unusedBindings": a["unusedBindings"],
                    "yaml": advice_text(a)} for a in doc.get("leastPrivilege") or ()],
        "hasRbac": doc.get("rbac") is not None, "hasLog": access is not None,
    }


def _src_id(x: Mapping[str, Any]) -> str:
    return f"P:{source_label(x)}"


def _consumer_id(c: Mapping[str, Any]) -> str:
    if c["kind"] == "ServiceAccount":
        return f"A:{c.get('namespace')}/{c['name']}"
    return f"W:{c['kind']}/{c['namespace']}/{c['name']}" if c.get("namespace") else f"W:{c['kind']}/{c['name']}"


def _embed(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _title(doc: Mapping[str, Any]) -> str:
    src = doc["source"]
    if src.get("mode") == "cluster":
        where = src.get("context") or src.get("server") or "cluster"
        return f"{where} / {src.get('namespace') or 'all namespaces'}"
    return ", ".join(src.get("paths") or ()) or "manifests"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _asset(name: str) -> str:
    return (resources.files(__package__) / "assets" / name).read_text(encoding="utf-8")


def render_html(doc: Mapping[str, Any]) -> str:
    """The whole page: inline CSS, inline script, embedded data. No external reference at all."""
    page, css, js = _asset("report.html"), _asset("report.css"), _asset("report.js")
    head, _, tail = page.partition("__DATA__")
    head = head.replace("__TITLE__", _esc("secretsync audit: " + _title(doc))).replace("__CSS__", css)
    return head + _embed(page_data(doc)) + tail.replace("__JS__", js)
