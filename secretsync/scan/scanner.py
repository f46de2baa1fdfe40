"""The scan itself: files and live objects in, detections and errors out.

One pass per file: read (with size, binary, symlink and encoding guards), parse every document
with line numbers (:mod:`.documents`), walk the places values stand (:mod:`.walker`), judge each
(:mod:`.detectors`), drop what an inline ``# secretsync:ignore`` comment or the baseline accepts.
Every problem becomes a :class:`ScanError` naming the file (and object and field) and the scan
goes on: one broken file must not hide the secrets in the rest of the tree.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from secretsync.core.atomicfile import is_temp_name, target_of_temp
from secretsync.core.values import SecretValue
from secretsync.kube.labels import MANAGED_LABEL, MANAGED_VALUE, MERGE_ANNOTATION_PREFIX, MERGED_KEYS_ANNOTATION
from secretsync.manifests import helm
from secretsync.manifests.documents import ParsedStream, parse_json_text, parse_yaml_stream
from secretsync.manifests.tree import walk_tree
from secretsync.manifests.units import KUSTOMIZATION_NAMES

from .detectors import Verdict, judge
from .findings import Detection, Finding, redact
from .formats import iter_leaves, path_join
from .results import ScanError, ScanOptions, ScanResult, confidence_at_least
from .walker import (
    Candidate,
    FileReader,
    Sink,
    is_json6902,
    json6902_candidates,
    resource_id,
    walk_kustomization,
    walk_object,
    walk_values,
)

_IGNORE = re.compile(r"#\s*secretsync:ignore(?:=([\w,\-]+))?")
_VALUES_NAME = re.compile(r"^values(?:[._-][\w.-]*)?\.ya?ml$")
_VALUES_LIKE = re.compile(r"(?:^|[._-])values(?:[._-][\w.-]*)?\.ya?ml$")
_SKIPPED_SECRET_TYPES = frozenset({
    "kubernetes.io/service-account-token", "helm.sh/release.v1", "bootstrap.kubernetes.io/token",
})

#: Secrets a controller generates from another source of truth (cert-manager does not always own them).
_GENERATED_SECRET_ANNOTATIONS = ("cert-manager.io/", "sealedsecrets.bitnami.com/")
#: ``creationPolicy: Merge``: the controller writes the keys each ExternalSecret lists in its own
#: ``merge.secretsync.io/<name>`` annotation (``{"keys": [...]}``) into a Secret it does not own
#: (no managed-by label); older controllers listed them in ``secretsync.io/merged-keys`` (a, b).

FileKind = Literal["manifest", "helm-values", "kustomization"]


class _Unreadable(Exception):
    """A file we will not read; the message names why (never its content)."""


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def scan_paths(paths: Sequence[Path | str], options: ScanOptions | None = None) -> ScanResult:
    """Scan files and directory trees of manifests, Helm values and kustomizations.

    ``Finding.file`` is relative to a directory argument, or the argument itself for a file.
    """
    opts = options or ScanOptions()
    result = ScanResult()
    for given in paths:
        path = Path(given)
        try:
            if path.is_dir():
                _scan_tree(path, opts, result)
            elif path.exists() or path.is_symlink():
                root = path.parent.resolve()
                _scan_file_safely(path, str(given), root, opts, result, shown_root=None)
            else:
                result.errors.append(ScanError(str(given), "no such file or directory", unread=True))
        except OSError as exc:
            result.errors.append(ScanError(str(given), f"cannot read: {exc.strerror or type(exc).__name__}",
                                           unread=True))
    return result


def scan_objects(
    objects: Iterable[Mapping[str, Any]], options: ScanOptions | None = None,
    source: Literal["manifest", "cluster"] = "cluster",
) -> ScanResult:
    """Scan objects already in memory (from a cluster: ``kubectl get -o json`` shaped dicts).

    For cluster objects, Secrets managed by secretsync, service-account tokens, bootstrap
    tokens, Helm release records and Secrets a controller writes (an owner with ``controller:
    true``, cert-manager and sealed-secrets annotations) are skipped: their source of truth is
    elsewhere. So is any object whose controller is among the scanned objects: the pod of a
    ReplicaSet shows the same env as its Deployment. So are the keys an ExternalSecret merges
    into a Secret (``creationPolicy: Merge``, listed in its ``merge.secretsync.io/<name>``
    annotation); the Secret's other keys are scanned.
    """
    opts = options or ScanOptions()
    result = ScanResult()
    items = [o for o in objects if isinstance(o, Mapping)]
    uids = {_uid(o) for o in items} - {None}
    for obj in items:
        sink = Sink()
        try:
            if source == "cluster" and _skip_live(obj, uids):
                continue
            result.objects_scanned += 1
            synced = _merged_keys(obj) if source == "cluster" else frozenset()
            for cand in walk_object(obj, sink):
                if synced and cand.location == "secret" and cand.path in synced:
                    continue  # written by the controller from a provider: not a plaintext source
                _emit(cand, opts, result, file=None, texts={}, document=0, source=source, templated=False)
        except Exception as exc:  # a bug must cost one object, not the scan (type only: no value)
            result.errors.append(ScanError(None, f"internal error ({type(exc).__name__}); object skipped",
                                           _resource_of(obj), unread=True))
        for problem in sink.problems:
            result.errors.append(ScanError(None, problem.message, problem.resource, problem.path))
    return result


def scan_text(text: str, name: str = "<text>", options: ScanOptions | None = None,
              kind: FileKind | None = None) -> ScanResult:
    """Scan one file's text as if it were a file called ``name`` (tests, stdin)."""
    opts = options or ScanOptions()
    result = ScanResult()
    result.files_scanned = 1
    result.bytes_scanned = len(text.encode("utf-8", "replace"))

    def no_files(rel: str) -> tuple[str, str]:
        raise ValueError("referenced files are not available when scanning text")

    _scan_parsed(text, name, kind or _file_kind(Path(name), check_chart=False), opts, result, no_files,
                 chart_name=Path(name).parent.name or None)
    return result


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _scan_tree(root: Path, opts: ScanOptions, result: ScanResult) -> None:
    root_resolved = root.resolve()

    def unlistable(directory: Path, exc: OSError) -> None:
        result.errors.append(ScanError(_rel(directory, root), f"cannot list: {exc.strerror or type(exc).__name__}",
                                       unread=True))

    charts: list[Path] = []
    for current, dirnames, filenames in walk_tree(root, unlistable):
        if "Chart.yaml" in filenames and opts.render_charts:
            charts.append(current)
        kept = []
        for name in sorted(dirnames):
            if name in opts.exclude_dirs:
                continue
            sub = current / name
            if sub.is_symlink():
                try:
                    target = _resolve(sub)
                except _Unreadable as exc:
                    result.errors.append(ScanError(_rel(sub, root), str(exc), unread=True))
                    continue
                if not _inside(target, root_resolved):
                    result.errors.append(ScanError(_rel(sub, root), "symlink to a directory outside the "
                                                   "scanned tree; skipped"))
                continue  # inside the tree: walked through its real path already
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            meant = target_of_temp(name) if is_temp_name(name) else name
            if not meant.endswith(opts.extensions) and meant != "Kustomization":
                continue
            file_path = current / name
            _scan_file_safely(file_path, _rel(file_path, root), root_resolved, opts, result, shown_root=root)
    if charts and helm.available():
        for chart_dir in charts:
            if any(parent.name == "charts" and parent.parent in charts for parent in chart_dir.parents):
                continue  # a subchart: rendered with its parent
            try:
                _scan_rendered_chart(chart_dir, root, opts, result)
            except Exception as exc:  # a bug must cost one chart, not the scan (type only: no value)
                result.errors.append(ScanError(_rel(chart_dir / "Chart.yaml", root),
                                               f"internal error rendering the chart ({type(exc).__name__})"))


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _resolve(path: Path) -> Path:
    """The real path, or _Unreadable for a symlink loop (pathlib raises RuntimeError on those)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise _Unreadable("symlink loop; skipped") from None


def _read_text(path: Path, root: Path, opts: ScanOptions) -> str:
    """A file's text, or _Unreadable naming why (symlink out of tree, size, binary, encoding)."""
    if path.is_symlink():
        target = _resolve(path)
        if not _inside(target, root):
            raise _Unreadable("symlink to a file outside the scanned tree; skipped")
        if not target.exists():
            raise _Unreadable("broken symlink; skipped")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _Unreadable(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if size > opts.max_file_size:
        raise _Unreadable(f"file is {size} bytes, over the {opts.max_file_size}-byte limit "
                          "(--max-file-size); skipped")
    if not path.is_file():
        raise _Unreadable("not a regular file; skipped")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Unreadable(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if b"\x00" in data[:8192]:
        raise _Unreadable("binary file; skipped")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"not UTF-8 text (byte {exc.start}); skipped") from None


def _file_kind(path: Path, *, check_chart: bool = True) -> FileKind:
    if is_temp_name(path.name):  # a stray temp of an interrupted write: read as the file it was for
        path = path.with_name(target_of_temp(path.name))
    name = path.name
    if name in KUSTOMIZATION_NAMES:
        return "kustomization"
    if _VALUES_NAME.match(name) and (
        name in ("values.yaml", "values.yml") or (check_chart and (path.parent / "Chart.yaml").is_file())
    ):
        return "helm-values"
    return "manifest"


def _chart_name(path: Path) -> str:
    chart = path.parent / "Chart.yaml"
    try:
        if chart.is_file() and chart.stat().st_size < 1_000_000:
            match = re.search(r"(?m)^name:\s*['\"]?([\w.-]+)", chart.read_text("utf-8", "replace"))
            if match:
                return match.group(1)
    except OSError:
        pass
    return path.parent.name


def _scan_file_safely(path: Path, shown: str, root: Path, opts: ScanOptions, result: ScanResult,
                      shown_root: Path | None) -> None:
    """One file; whatever goes wrong costs this file only (the error names its type, never a value)."""
    try:
        _scan_file(path, shown, root, opts, result, shown_root)
    except Exception as exc:
        result.errors.append(ScanError(shown, f"internal error ({type(exc).__name__}); file skipped", unread=True))


def _scan_file(path: Path, shown: str, root: Path, opts: ScanOptions, result: ScanResult,
               shown_root: Path | None) -> None:
    try:
        text = _read_text(path, root, opts)
    except _Unreadable as exc:
        result.errors.append(ScanError(shown, str(exc), unread=True))
        return
    result.files_scanned += 1
    result.bytes_scanned += len(text)
    kind = _file_kind(path)
    base = path.parent

    def read(rel: str) -> tuple[str, str]:
        target = base / rel
        try:
            real = _resolve(target)
        except _Unreadable as exc:
            raise ValueError(str(exc)) from None
        if not _inside(real, root):
            raise ValueError("outside the scanned tree; not read")
        try:
            content = _read_text(target, root, opts)
        except _Unreadable as exc:
            raise ValueError(str(exc)) from None
        display = _rel(target, shown_root) if shown_root is not None else (Path(shown).parent / rel).as_posix()
        return content, os.path.normpath(display).replace(os.sep, "/")

    before = len(result.detections)
    _scan_parsed(text, shown, kind, opts, result, read,
                 chart_name=_chart_name(path) if kind == "helm-values" or _VALUES_LIKE.search(path.name) else None)
    if is_temp_name(path.name) and len(result.detections) > before:
        # Left by a write that was killed (secretsync's, or an older version's random-named one):
        # after a killed rollback it holds the original plaintext, beside the restored file.
        for detection in result.detections[before:]:
            detection.finding.extra["stray-temp"] = target_of_temp(path.name)


def _scan_parsed(text: str, shown: str, kind: FileKind, opts: ScanOptions, result: ScanResult,
                 read: FileReader, chart_name: str | None) -> None:
    budget = opts.max_nodes_per_document
    parse = parse_json_text if shown.endswith(".json") else parse_yaml_stream
    stream: ParsedStream = parse(text, budget=budget)
    for message in stream.problems:
        result.errors.append(ScanError(shown, message, unread=True))
    texts: dict[str, str] = {shown: text}

    def reader(rel: str) -> tuple[str, str]:
        content, display = read(rel)
        texts[display] = content
        return content, display

    # ``mariadb-values.yaml``, ``values-prod.yaml``: values files kept outside their chart.
    values_named = bool(_VALUES_LIKE.search(Path(shown).name))
    for doc in stream.documents:
        root = doc.root
        if is_json6902(root):  # a kustomize JSON 6902 patch file: the values it sets
            for cand in json6902_candidates(root, f"Patch//{shown}"):
                _emit(cand, opts, result, file=shown, texts=texts, document=doc.index, source="manifest",
                      templated=doc.templated)
            continue
        if not isinstance(root, Mapping):
            continue
        sink = Sink()
        candidates: Iterator[Candidate]
        is_object = "kind" in root and "apiVersion" in root
        doc_kind = root.get("kind") if is_object else None
        try:
            if not is_object and (kind == "helm-values" or (kind == "manifest" and values_named)):
                candidates = walk_values(root, f"HelmValues//{chart_name or ''}", budget)
            elif kind == "kustomization" or doc_kind in ("Kustomization", "Component"):
                candidates = walk_kustomization(root, sink, reader, file=shown, budget=budget)
            else:
                candidates = walk_object(root, sink)
            for cand in candidates:
                _emit(cand, opts, result, file=shown, texts=texts, document=doc.index, source="manifest",
                      templated=doc.templated)
        except ValueError as exc:  # a values walk over budget
            result.errors.append(ScanError(shown, f"document {doc.index}: {exc}; rest of it skipped", unread=True))
        except Exception as exc:  # a bug must cost one document, not the scan (type only: no value)
            result.errors.append(ScanError(shown, f"document {doc.index}: internal error "
                                           f"({type(exc).__name__}); rest of it skipped", unread=True))
        if doc.templated:
            continue  # a field's shape in a template is decided when it renders (``command: {{ include }}``)
        for problem in sink.problems:
            result.errors.append(ScanError(problem.file or shown, problem.message, problem.resource, problem.path))


# --------------------------------------------------------------------------------------------
# Helm charts, rendered
# --------------------------------------------------------------------------------------------


def _scan_rendered_chart(chart_dir: Path, root: Path, opts: ScanOptions, result: ScanResult) -> None:
    """Render a chart with Helm and report, at their ``values.yaml`` line, the values that end up secret.

    The text passes already judge ``values.yaml`` by key names and the templates' own literals;
    rendering adds what only the templates know: ``auth.rootPassword`` becomes a Secret's key,
    ``extraEnv[0].value`` a container's ``DB_PASSWORD``. A rendered finding counts only when its
    value stands in the chart's ``values.yaml`` (the file a user edits and a migration moves);
    values Helm generates (``randAlphaNum``) or computes stay out. Findings the values pass
    reported already (same file and path) are not repeated.
    """
    chart = helm.Chart.read(chart_dir)
    values_file = next((chart_dir / n for n in ("values.yaml", "values.yml") if (chart_dir / n).is_file()), None)
    if chart is None or chart.library or values_file is None:
        return
    values_rel = _rel(values_file, root)
    try:
        manifests = helm.render(chart)
    except helm.RenderProblem as exc:
        result.errors.append(ScanError(_rel(chart_dir / "Chart.yaml", root), f"{exc} (its files were scanned as text)"))
        return
    try:
        values_text = _read_text(values_file, root.resolve(), opts)
    except _Unreadable:
        return  # reported by the file pass
    at: dict[str, tuple[str, str, int | None]] = {}
    for doc in parse_yaml_stream(values_text, budget=opts.max_nodes_per_document).documents[:1]:
        try:
            for leaf_path, key, value, line in iter_leaves(doc.root, budget=opts.max_nodes_per_document):
                if value.strip():
                    at.setdefault(value.strip(), (leaf_path, key, line))
        except ValueError:
            return  # over budget: the values pass reports it
    seen = {(d.finding.file, d.finding.path) for d in result.detections}
    resource = f"HelmValues//{chart.name}"
    for template, text in helm.rendered_documents(manifests):
        for doc in parse_yaml_stream(text, budget=opts.max_nodes_per_document).documents:
            if not isinstance(doc.root, Mapping):
                continue
            pending = list(walk_object(doc.root, Sink()))
            while pending:
                cand = pending.pop()
                verdict, judged = _verdict(cand, opts)
                if verdict is None:
                    pending.extend(cand.children)
                    continue
                source = at.get((judged or "").strip()) if judged is not None else None
                if source is None or not confidence_at_least(verdict.confidence, opts.min_confidence):
                    continue
                leaf_path, key, line = source
                if (values_rel, leaf_path) in seen:
                    continue
                seen.add((values_rel, leaf_path))
                finding = Finding(
                    file=values_rel, line=line, resource=resource, path=leaf_path, key=key, rule=verdict.rule,
                    confidence=verdict.confidence, location="helm-values",
                    preview=_printable(redact(judged or "")), source="manifest",
                    extra={"rendered": f"{template}: {cand.resource} {cand.path}",
                           **({"note": verdict.note} if verdict.note else {})},
                )
                if finding.fingerprint in opts.baseline or (
                        opts.inline_ignore and line and _ignored(verdict.rule, (line,), values_text)):
                    result.suppressed += 1
                    continue
                result.detections.append(Detection(finding, SecretValue(cand.value)))


# --------------------------------------------------------------------------------------------
# Candidates -> detections
# --------------------------------------------------------------------------------------------


def _verdict(cand: Candidate, opts: ScanOptions) -> tuple[Verdict | None, str | None]:
    """The verdict and the text it was reached on (None for binary values)."""
    if cand.judged is not None:
        text: str | None = cand.judged
    elif isinstance(cand.value, str):
        text = cand.value
    else:
        try:
            text = cand.value.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if cand.verdict is not None:
        return cand.verdict, text
    if text is None:
        if cand.forced and cand.value:
            return Verdict("secret-object", "medium"), None
        return None, None
    return judge(cand.judge_key or cand.key, text, forced=cand.forced, entropy=opts.entropy), text


def _ignored(rule: str, lines: Iterable[int], text: str | None) -> bool:
    """Whether ``# secretsync:ignore`` (or ``=rule``) stands on one of ``lines`` or the line above."""
    if text is None or "secretsync:ignore" not in text:
        return False
    split = text.splitlines()
    for line in lines:
        for number in (line, line - 1):
            if 1 <= number <= len(split):
                match = _IGNORE.search(split[number - 1])
                if match and (match.group(1) is None or rule in match.group(1).split(",")):
                    return True
    return False


def _printable(preview: str) -> str:
    """A preview fit for one table cell: control characters (``{\n``) become spaces."""
    return "".join(c if c.isprintable() else " " for c in preview)


def _emit(cand: Candidate, opts: ScanOptions, result: ScanResult, *, file: str | None,
          texts: Mapping[str, str], document: int, source: Literal["manifest", "cluster"],
          templated: bool) -> None:
    verdict, text = _verdict(cand, opts)
    if verdict is None:
        for child in cand.children:
            _emit(child, opts, result, file=file, texts=texts, document=document, source=source,
                  templated=templated)
        return
    if not confidence_at_least(verdict.confidence, opts.min_confidence):
        return
    where = cand.file or file
    if opts.inline_ignore and where is not None and cand.line \
            and _ignored(verdict.rule, (cand.line, *cand.anchors), texts.get(where)):
        result.suppressed += 1
        return
    extra: dict[str, Any] = dict(cand.extra)
    if verdict.note:
        extra["note"] = verdict.note
    if templated:
        extra["templated"] = True
    finding = Finding(
        file=where,
        line=(cand.line or None) if where is not None else None,
        resource=cand.resource,
        path=cand.path,
        key=cand.key,
        rule=verdict.rule,
        confidence=verdict.confidence,
        location=cand.location,
        preview=_printable(redact(text)) if text is not None else "***",
        container=cand.container,
        subkey=cand.subkey,
        source=source,
        document=document,
        extra=extra,
    )
    if finding.fingerprint in opts.baseline:
        result.suppressed += 1
        return
    result.detections.append(Detection(finding, SecretValue(cand.value)))


# --------------------------------------------------------------------------------------------
# Live objects
# --------------------------------------------------------------------------------------------


def _resource_of(obj: Mapping[str, Any]) -> str:
    try:
        return resource_id(obj)
    except Exception:
        return "?"


def _uid(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        uid = meta.get("uid")
        return uid if isinstance(uid, str) else None
    return None


def _merged_keys(obj: Mapping[str, Any]) -> frozenset[str]:
    """Paths (``data.KEY``) of a live Secret's keys that an ExternalSecret merges into it
    (``creationPolicy: Merge``): the controller writes them from the provider, so like a managed
    Secret they are a synced copy, not a source; the Secret's other keys are still scanned."""
    if obj.get("kind") != "Secret":
        return frozenset()
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping):
        return frozenset()
    keys: set[str] = set()
    for name, raw in annotations.items():
        if not isinstance(raw, str):
            continue
        if str(name).startswith(MERGE_ANNOTATION_PREFIX):
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            listed = doc.get("keys") if isinstance(doc, Mapping) else None
            keys.update(k for k in listed or () if isinstance(k, str))
        elif name == MERGED_KEYS_ANNOTATION:
            keys.update(k for k in raw.split(",") if k)
    return frozenset(path_join("data", k) for k in keys)


def _skip_live(obj: Mapping[str, Any], uids: set[str | None]) -> bool:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    owners = meta.get("ownerReferences")
    if obj.get("kind") == "Secret":
        labels = meta.get("labels")
        if isinstance(labels, Mapping) and labels.get(MANAGED_LABEL) == MANAGED_VALUE:
            return True
        stype = obj.get("type")
        if isinstance(stype, str) and stype in _SKIPPED_SECRET_TYPES:
            return True
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping) and any(str(k).startswith(_GENERATED_SECRET_ANNOTATIONS)
                                                    for k in annotations):
            return True
        if isinstance(owners, list) and any(isinstance(o, Mapping) and o.get("controller") for o in owners):
            return True  # written by a controller (ExternalSecret, SealedSecret, Certificate...): not a source
    if isinstance(owners, list):
        for owner in owners:
            if not isinstance(owner, Mapping) or not owner.get("controller"):
                continue
            uid = owner.get("uid")
            if isinstance(uid, str) and uid in uids:
                return True
    return False
