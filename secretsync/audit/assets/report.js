"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const st = {q: "", ns: "", f: "", page: 0};
function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const k in (attrs || {})) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function secKey(s) { return s.ns + "/" + s.name; }

// ------------------------------------------------------------------ summary and controls
function summary() {
  const s = D.summary, box = $("summary"), fc = s.findings;
  const cards = [["Secrets", s.secrets], ["Workloads", s.workloads],
    ["Pods", Object.values(D.pods).reduce((a, b) => a + b, 0) || "-"],
    ["errors", fc.error, "error"], ["warnings", fc.warning, "warning"], ["info", fc.info, "info"]];
  if (D.hasRbac) cards.push(["RBAC readers", new Set(D.could.map((c) => c.from)).size]);
  if (D.hasLog) cards.push(["reads in the log", D.did.reduce((a, d) => a + d.count, 0)]);
  for (const [label, n, cls] of cards) {
    const c = el("div", {class: "card " + (cls || "")}); c.append(el("b", {}, String(n)), el("span", {}, label));
    box.append(c);
  }
  const byType = {};
  for (const f of D.findings) byType[f[1]] = (byType[f[1]] || 0) + 1;
  for (const [t, label] of D.findingTypes) {
    const c = el("div", {class: "card", "data-finding": t, title: "filter on " + label});
    c.append(el("b", {}, String(byType[t] || 0)), el("span", {}, label));
    c.onclick = () => { $("finding").value = t; st.f = t; st.page = 0; render(); };
    box.append(c);
  }
}
function controls() {
  const nss = new Set(D.secrets.map((s) => s.ns));
  for (const n of [...nss].sort()) $("ns").append(el("option", {value: n}, n));
  for (const [t, label] of D.findingTypes) $("finding").append(el("option", {value: t}, label));
  let timer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { st.q = $("search").value.trim().toLowerCase(); st.page = 0; render(); }, 120);
  });
  $("ns").onchange = () => { st.ns = $("ns").value; st.page = 0; render(); };
  $("finding").onchange = () => { st.f = $("finding").value; st.page = 0; render(); };
}

// ------------------------------------------------------------------ selection
const bindingFindings = {};
for (const f of D.findings) if (!f[5]) (bindingFindings[f[1]] = bindingFindings[f[1]] || new Set()).add(f[2]);
function secretText(s) {
  const parts = [secKey(s), s.state, s.by];
  for (const x of s.src) parts.push(x[1], x[2]);
  for (const u of s.use) parts.push(u[0].slice(2), u[2]);
  return parts.join(" ").toLowerCase();
}
const TEXT = D.secrets.map(secretText);
function grantTouches(c, s) {
  return (c.ns === "*" || c.ns === s.ns) && (!c.names || c.names.includes(s.name));
}
function selected() {
  const q = st.q, out = [];
  const bf = st.f ? bindingFindings[st.f] : null;
  D.secrets.forEach((s, i) => {
    if (st.ns && s.ns !== st.ns) return;
    if (st.f) {
      const direct = s.f.includes(st.f);
      const viaGrant = bf && D.could.some((c) => c.bindings.some((b) => bf.has(b)) && grantTouches(c, s));
      if (!direct && !viaGrant) return;
    }
    if (q && !TEXT[i].includes(q) &&
        !D.could.some((c) => c.label.toLowerCase().includes(q) && grantTouches(c, s)) &&
        !D.did.some((d) => d.label.toLowerCase().includes(q) && (d.ns === "*" || d.ns === s.ns) &&
                         (!d.name || d.name === s.name))) return;
    out.push(s);
  });
  return out;
}

// ------------------------------------------------------------------ graph
const COLS = [["P", "Provider keys"], ["E", "ExternalSecrets"], ["S", "Secrets"], ["W", "Workloads"],
              ["A", "ServiceAccounts"], ["U", "Users and groups"]];
const COLX = {P: 0, E: 1, S: 2, W: 3, A: 4, U: 5};
function detailGraph(secs) {
  const nodes = new Map(), edges = [];
  const node = (id, label, extra) => { if (!nodes.has(id)) nodes.set(id, Object.assign({id, label}, extra || {})); };
  const keys = new Set(secs.map(secKey)), nsAll = new Set();
  for (const s of secs) {
    const sid = "S:" + secKey(s);
    const sev = s.f.some((t) => ["broken-ref", "missing-key"].includes(t)) ? "error" :
      (s.f.length ? "warning" : "");
    node(sid, secKey(s), {cls: s.state + (sev ? " bad-" + sev : ""), title: s.state + (s.by ? ", " + s.by : "") +
      (s.f.length ? "; findings: " + s.f.join(", ") : "")});
    for (const [pid, plabel, es] of s.src) {
      node(pid, plabel); node("E:" + es.split("/").slice(1).join("/"), es.split("/").slice(1).join("/"));
      edges.push([pid, "E:" + es.split("/").slice(1).join("/"), ""]);
      edges.push(["E:" + es.split("/").slice(1).join("/"), sid, ""]);
    }
    for (const [cid, via, sa] of s.use) {
      node(cid, cid.slice(2) + (D.pods[cid] ? "  (" + D.pods[cid] + " pods)" : ""));
      edges.push([sid, cid, ""]);
      if (sa && cid[0] === "W") { node("A:" + sa, "ServiceAccount/" + sa); edges.push([cid, "A:" + sa, ""]); }
    }
  }
  const touch = (ns, name, label, from, kind, extra) => {
    if (name) {
      if (!keys.has((ns === "*" ? "" : ns) + "/" + name) && ns !== "*") return;
      const targets = ns === "*" ? secs.filter((s) => s.name === name) : [{ns, name}];
      for (const t of targets) { node(from, label); edges.push([from, "S:" + t.ns + "/" + t.name, kind, extra]); }
      return;
    }
    if (ns !== "*" && !secs.some((s) => s.ns === ns)) return;
    const nid = "N:" + ns; nsAll.add(nid);
    node(nid, (ns === "*" ? "every namespace" : ns) + ": every Secret", {col: "S"});
    node(from, label); edges.push([from, nid, kind, extra]);
  };
  for (const c of D.could) {
    if (c.names) { for (const n of c.names) touch(c.ns, n, c.label, c.from, "could", c.how + ": " + c.reason); }
    else touch(c.ns, null, c.label, c.from, "could", c.how + ": " + c.reason);
  }
  for (const d of D.did) touch(d.ns, d.name, d.label, d.from, "did " + (d.decision === "forbid" ? "forbid" : ""),
    d.verb + " x" + d.count + " (" + d.decision + ")");
  return {nodes: [...nodes.values()], edges};
}
function overviewGraph(secs) {
  // One node per namespace and column, counting distinct objects: thousands stay readable.
  const agg = new Map(), edges = new Set();
  const bump = (id, ns, member) => {
    const a = agg.get(id) || {id, ns, members: new Set()}; a.members.add(member); agg.set(id, a);
  };
  for (const s of secs) {
    const ns = s.ns, sid = "S:" + ns;
    bump(sid, ns, s.name);
    for (const [pid, , es] of s.src) {
      bump("P:" + ns, ns, pid); bump("E:" + ns, ns, es); edges.add("P:" + ns + "|E:" + ns); edges.add("E:" + ns + "|" + sid);
    }
    for (const [cid, , sa] of s.use) {
      const k = (cid[0] === "A" ? "A:" : "W:") + ns; bump(k, ns, cid); edges.add(sid + "|" + k);
      if (sa && cid[0] === "W") { bump("A:" + ns, ns, "A:" + sa); edges.add(k + "|A:" + ns); }
    }
  }
  const unit = {P: "provider keys", E: "ExternalSecrets", S: "Secrets", W: "workloads", A: "ServiceAccounts"};
  const nodes = [...agg.values()].map((a) => ({id: a.id, ns: a.ns, agg: true,
    label: a.ns + " \u00b7 " + a.members.size + " " + unit[a.id[0]]}));
  const es = [...edges].map((k) => k.split("|").concat(["", ""]));
  const couldNs = new Map();
  for (const c of D.could) couldNs.set(c.ns, (couldNs.get(c.ns) || 0) + 1);
  for (const [ns, n] of couldNs) {
    if (ns !== "*" && !agg.has("S:" + ns)) continue;
    // A cluster-wide grant reaches every namespace: one node, not an edge to each.
    nodes.push({id: "U:" + ns, ns, agg: true,
      label: (ns === "*" ? "every namespace" : ns) + " \u00b7 " + n + " grants"});
    if (ns !== "*") es.push(["U:" + ns, "S:" + ns, "could", n + " grants"]);
  }
  return {nodes, edges: es};
}
function drawGraph(g, overview) {
  const svg = $("graph");
  svg.replaceChildren();
  const colW = 215, rowH = 26, nodeW = 195, pad = 28;
  const rows = {P: [], E: [], S: [], W: [], A: [], U: []};
  for (const n of g.nodes) rows[n.col || n.id[0]].push(n);
  const used = COLS.filter(([c]) => rows[c].length);
  const pos = new Map();
  used.forEach(([c, title], i) => {
    svg.append(el("svg:text", {x: 10 + i * colW, y: 16, class: "col"}, title));
    rows[c].sort((a, b) => (a.id[0] === "N" ? -1 : 0) - (b.id[0] === "N" ? -1 : 0) || a.label.localeCompare(b.label));
    rows[c].forEach((n, j) => pos.set(n.id, {x: 10 + i * colW, y: pad + j * rowH, n}));
  });
  const h = pad + Math.max(1, ...used.map(([c]) => rows[c].length)) * rowH + 10;
  const w = Math.max(700, used.length * colW);
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("width", String(w)); svg.setAttribute("height", String(h));
  const eg = el("svg:g"); svg.append(eg);
  for (const [a, b, kind, title] of g.edges) {
    const p = pos.get(a), q = pos.get(b);
    if (!p || !q) continue;
    const back = q.x < p.x;
    const x1 = back ? p.x : p.x + nodeW, y1 = p.y + 10, x2 = back ? q.x + nodeW : q.x, y2 = q.y + 10;
    const dx = Math.max(40, Math.abs(x2 - x1) / 2) * (back ? -1 : 1);
    const path = el("svg:path", {class: "e " + (kind || ""), "data-a": a, "data-b": b,
      d: "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 + " " + x2 + "," + y2});
    if (title) path.append(el("svg:title", {}, title));
    eg.append(path);
  }
  const q = st.q;
  for (const {x, y, n} of pos.values()) {
    const hit = q && !overview && n.label.toLowerCase().includes(q);
    const gr = el("svg:g", {class: "node t-" + (n.col === "S" ? "N" : n.id[0]) + " " + (n.cls || "") + (hit ? " hit" : ""),
      transform: "translate(" + x + "," + y + ")", "data-id": n.id});
    gr.append(el("svg:rect", {width: nodeW, height: 20}));
    const label = n.label.length > 31 ? n.label.slice(0, 30) + "\u2026" : n.label;
    gr.append(el("svg:text", {x: 6, y: 14}, label), el("svg:title", {}, n.id.slice(2) + (n.title ? "\n" + n.title : "")));
    gr.onmouseenter = () => focus(n.id, true);
    gr.onmouseleave = () => focus(n.id, false);
    gr.onclick = () => {
      if (overview) { st.ns = n.ns === "*" ? "" : n.ns; $("ns").value = st.ns; }
      else { st.q = n.id.slice(2).toLowerCase().split("  ")[0]; $("search").value = st.q; }
      st.page = 0; render();
    };
    svg.append(gr);
  }
}
function focus(id, on) {
  for (const p of $("graph").querySelectorAll("path.e")) {
    if (p.getAttribute("data-a") === id || p.getAttribute("data-b") === id) p.classList.toggle("focus", on);
  }
}
function graph(secs) {
  const overview = !st.q && !st.ns && !st.f && secs.length > D.page;
  const pages = Math.max(1, Math.ceil(secs.length / D.page));
  if (st.page >= pages) st.page = pages - 1;
  const pager = $("pager"); pager.replaceChildren();
  if (overview) {
    drawGraph(overviewGraph(secs), true);
    $("hint").textContent = secs.length + " Secrets: one node per namespace and column. Click a namespace, " +
      "pick a finding or search to see the objects.";
    return;
  }
  const part = secs.slice(st.page * D.page, (st.page + 1) * D.page);
  if (pages > 1) {
    const prev = el("button", {}, "\u2039 prev"), next = el("button", {}, "next \u203A");
    prev.disabled = st.page === 0; next.disabled = st.page + 1 >= pages;
    prev.onclick = () => { st.page--; render(); }; next.onclick = () => { st.page++; render(); };
    pager.append(prev, next, el("span", {class: "muted"}, "Secrets " + (st.page * D.page + 1) + "\u2013" +
      (st.page * D.page + part.length) + " of " + secs.length));
  }
  drawGraph(detailGraph(part), false);
  $("hint").textContent = secs.length ? "Click a node to search for it; hover for details." : "Nothing matches.";
}
function legend() {
  const items = [["", "provider key \u2192 ExternalSecret \u2192 Secret \u2192 workload \u2192 ServiceAccount"]];
  if (D.hasRbac) items.push(["could", "could read (RBAC grant)"]);
  if (D.hasLog) items.push(["did", "did read (audit log)"]);
  for (const [cls, text] of items) {
    const s = el("span"); const i = el("i");
    if (cls === "could") i.style.cssText = "border-top:2px dashed var(--could)";
    if (cls === "did") i.style.cssText = "border-top:3px solid var(--did)";
    s.append(i, document.createTextNode(text)); $("legend").append(s);
  }
}

// ------------------------------------------------------------------ tables
function table(box, headers, rows, key) {
  const t = box.__t || (box.__t = {sort: -1, dir: 1, page: 0, key: ""});
  if (t.key !== key) { t.page = 0; t.key = key; }
  if (t.sort >= 0) {
    rows = rows.slice().sort((a, b) => String(a[t.sort]).localeCompare(String(b[t.sort]), undefined,
      {numeric: true}) * t.dir);
  }
  const size = 100, pages = Math.max(1, Math.ceil(rows.length / size));
  if (t.page >= pages) t.page = pages - 1;
  const tbl = el("table"), tr = el("tr");
  headers.forEach((h, i) => {
    const th = el("th", {class: t.sort === i ? (t.dir > 0 ? "asc" : "desc") : ""}, h);
    th.onclick = () => { t.dir = t.sort === i ? -t.dir : 1; t.sort = i; table(box, headers, rows, key); };
    tr.append(th);
  });
  const thead = el("thead"); thead.append(tr); tbl.append(thead);
  const body = el("tbody");
  for (const r of rows.slice(t.page * size, (t.page + 1) * size)) {
    const row = el("tr");
    r.forEach((c, i) => row.append(el("td", headers[0] === "severity" && i < 2 ? {class: "nw sev-" + c} : {},
      String(c))));
    body.append(row);
  }
  tbl.append(body);
  const pg = el("div", {class: "pg"});
  pg.append(document.createTextNode(rows.length + " rows "));
  if (pages > 1) {
    const prev = el("button", {}, "\u2039"), next = el("button", {}, "\u203A");
    prev.disabled = t.page === 0; next.disabled = t.page + 1 >= pages;
    prev.onclick = () => { t.page--; table(box, headers, rows, key); };
    next.onclick = () => { t.page++; table(box, headers, rows, key); };
    pg.append(prev, next, document.createTextNode(" page " + (t.page + 1) + " of " + pages));
  }
  box.replaceChildren(tbl, pg);
}
function tables(secs) {
  const key = st.q + "|" + st.ns + "|" + st.f;
  table($("secrets"), ["Secret", "state", "managed by", "from (provider key)", "read by", "runs as", "findings"],
    secs.map((s) => [secKey(s), s.state, s.by || "-", s.src.map((x) => x[1]).join(", ") || "-",
      s.use.map((u) => u[0].slice(2) + " (" + u[1] + ")").join(", ") || "-",
      [...new Set(s.use.map((u) => u[2]).filter(Boolean))].join(", ") || "-", s.f.join(", ") || "-"]), key);
  const q = st.q, keys = new Set(secs.map(secKey));
  const fr = D.findings.filter((f) => (!st.f || f[1] === st.f) &&
    (!st.ns || f[2].split("/")[1] === st.ns || (f[5] && f[5].split("/")[0] === st.ns)) &&
    (!q || (f[2] + " " + f[4] + " " + f[3]).toLowerCase().includes(q) || (f[5] && keys.has(f[5]))));
  table($("findings"), ["severity", "type", "object", "where", "message"], fr.map((f) => f.slice(0, 5)), key);
  if (!D.hasRbac && !D.hasLog) { $("accessbox").hidden = true; }
  else {
    const rows = [];
    for (const c of D.could) rows.push(["could (" + c.how + ")", c.label, c.ns, c.names ? c.names.join(",") : "*",
      c.how === "escalation" ? c.reason : c.verbs.join(","), c.bindings.join(", ")]);
    for (const d of D.did) rows.push(["did (" + d.decision + ")", d.label, d.ns, d.name || "*", d.verb + " x" + d.count, ""]);
    table($("access"), ["kind", "subject", "namespace", "Secrets", "what", "via"],
      rows.filter((r) => (!st.ns || r[2] === st.ns || r[2] === "*") && (!q || r.join(" ").toLowerCase().includes(q))), key);
  }
}
function advice() {
  // Follows the namespace filter and the search; the first 20 open, the rest a click away.
  if (!D.advice.length) { $("advicebox").hidden = true; return; }
  const q = st.q, box = $("advice");
  const rows = D.advice.filter((a) => (!st.ns || a.serviceAccount.split("/")[0] === st.ns) &&
    (!q || (a.serviceAccount + " " + a.unusedBindings.join(" ")).toLowerCase().includes(q)));
  box.replaceChildren(el("p", {class: "muted"}, rows.length + " ServiceAccounts. Each block is YAML for " +
    "kubectl apply; the comments say what the log window showed and which bindings it never used."));
  for (const a of rows.slice(0, 200)) {
    const d = el("details"); if (rows.length <= 20) d.open = true;
    d.append(el("summary", {}, "ServiceAccount " + a.serviceAccount +
      (a.unusedBindings.length ? " \u2014 never used: " + a.unusedBindings.join(", ") : "")), el("pre", {}, a.yaml));
    box.append(d);
  }
  if (rows.length > 200) box.append(el("p", {class: "muted"}, (rows.length - 200) + " more: narrow with the search " +
    "or the namespace filter, or run secretsync audit --least-privilege"));
}
function render() {
  const secs = selected();
  $("status").textContent = secs.length + " of " + D.secrets.length + " Secrets";
  graph(secs); tables(secs); advice();
}
summary(); controls(); legend(); render();
document.body.setAttribute("data-ready", "1");
window.__readyMs = performance.now();
