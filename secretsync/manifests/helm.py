"""Rendering a Helm chart offline with the real Helm engine, for readers of manifest trees.

Why render: a chart's templates are not YAML until rendered (``{{- include ... | nindent 4 }}``),
and what a value *becomes* (an env var of a container, a key of a Secret) is decided by the
templates, not by its name in ``values.yaml``. Reading the rendered objects is the only way
to know that ``auth.rootPassword`` ends up in a Secret. We do not reimplement Go templates
and Sprig: ``helm-python-sdk`` (pinned, the ``helm`` extra) embeds Helm's own Go library and
renders without a cluster or a ``helm`` binary.

Dependencies: a chart's ``Chart.yaml`` names subcharts by repository (``oci://...``); nothing
is fetched. A subchart is taken from the chart's ``charts/`` folder or, as monorepos and
``bitnami/charts`` keep them, from a sibling folder of the same name (a library chart like
``common``). The chart is copied with them into a temporary folder, so the tree is never
written to. A dependency found nowhere is named in the problem, and the chart is left to the
text pass.

Helm's errors are mapped here (the one boundary): a :class:`RenderProblem` whose message has
every quoted token masked, since a template error may quote a value.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from secretsync.core.errors import InvalidInput

from .loader import load_one

#: A rendered chart bigger than this is a dump, not a release (the scanner's file limit x 10).
MAX_RENDERED_BYTES = 100 * 1024 * 1024
_QUOTED = re.compile(r"""(["'`])(?:(?!\1).){0,400}\1""")


class RenderProblem(InvalidInput):
    """A chart that could not be rendered; the message names the chart, never a value."""


def available() -> bool:
    """Whether the Helm engine is installed (``pip install secretsync[helm]``)."""
    try:
        import helm_python  # noqa: F401
    except (ImportError, OSError):  # OSError: the native library does not load on this platform
        return False
    return True


@dataclass(slots=True)
class Chart:
    """A chart folder: its name, type and declared dependencies, from ``Chart.yaml``."""

    path: Path
    name: str
    library: bool
    dependencies: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Chart | None:
        """The chart in ``path`` (None when ``Chart.yaml`` is missing or not a mapping)."""
        try:
            meta = load_one((path / "Chart.yaml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None
        if not isinstance(meta, dict):
            return None
        deps = meta.get("dependencies")
        names = [str(d["name"]) for d in deps if isinstance(d, dict) and d.get("name")] \
            if isinstance(deps, list) else []
        return cls(path, str(meta.get("name") or path.name), meta.get("type") == "library", names)


def is_chart(path: Path) -> bool:
    return (path / "Chart.yaml").is_file()


def _dependency_source(chart: Chart, name: str) -> Path | None:
    local = chart.path / "charts"
    if (local / name / "Chart.yaml").is_file() or any(local.glob(f"{name}-*.tgz")):
        return None  # already where Helm looks
    sibling = chart.path.parent / name
    if (sibling / "Chart.yaml").is_file():
        return sibling
    raise RenderProblem(f"chart {chart.name}: dependency {name!r} is neither in charts/ nor beside the chart "
                        "(nothing is downloaded); not rendered")


def _mask(text: str) -> str:
    return _QUOTED.sub(lambda m: f"{m.group(1)}***{m.group(1)}", " ".join(text.split()))[:300]


def render(chart: Chart, *, release: str | None = None, namespace: str = "default") -> dict[str, str]:
    """``{template path: rendered text}`` of ``chart`` with its default values; RenderProblem if it fails."""
    try:
        import helm_python as helm
    except (ImportError, OSError):
        raise RenderProblem("the Helm engine is not installed (pip install 'secretsync[helm]')") from None
    sources = {name: _dependency_source(chart, name) for name in chart.dependencies}
    with tempfile.TemporaryDirectory(prefix="secretsync-chart-") as tmp:
        work = Path(tmp) / chart.path.name
        shutil.copytree(chart.path, work, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        for name, src in sources.items():
            if src is not None:
                (work / "charts").mkdir(exist_ok=True)
                shutil.copytree(src, work / "charts" / name, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        try:
            with helm.Chart.load(str(work)) as loaded:
                manifests: dict[str, str] = loaded.render(name=release or chart.name, namespace=namespace)
        except helm.HelmError as exc:
            raise RenderProblem(f"chart {chart.name}: Helm could not render it "
                                f"({type(exc).__name__}: {_mask(str(exc))})") from exc
    if sum(len(t) for t in manifests.values()) > MAX_RENDERED_BYTES:
        raise RenderProblem(f"chart {chart.name}: renders to more than {MAX_RENDERED_BYTES} bytes; not read")
    return manifests


def rendered_documents(manifests: dict[str, str]) -> Iterator[tuple[str, str]]:
    """``(template path, text)`` of every rendered manifest (NOTES.txt and empty ones left out)."""
    for name, text in sorted(manifests.items()):
        if name.endswith((".yaml", ".yml", ".json")) and text.strip():
            yield name, text
