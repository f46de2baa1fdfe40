"""The bounded YAML loader every reader of manifests uses for plain, typed data.

Why not ``yaml.safe_load``: libyaml builds an alias once and shares it, so loading a
657-byte alias bomb is instant, but the first consumer that walks, copies or serialises the
result (a deep copy, ``json.dumps``, a diff) expands it to billions of values and the kernel
kills the process. Here each document's node graph is measured *as expanded* before it is
constructed (the size of a shared node is computed once, so measuring is linear in the
file), and a document over the budget is refused with a message naming it. Texts nested
deeper than :data:`~.documents.MAX_DEPTH` are refused before libyaml sees them (its C
composer would overflow the stack). Both limits are the scanner's (:mod:`.documents`), so
``scan``, ``migrate`` and ``audit`` accept and refuse the same files.

Scalars are typed as the API server reads YAML 1.1 (``3`` an int, ``true`` a bool), unlike
:func:`.documents.parse_yaml_stream`, which keeps every scalar as text for the detectors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from .documents import MAX_DEPTH, safe_problem, too_deep

#: Values one document may expand to (the scanner's per-document node budget).
DEFAULT_BUDGET: Final = 200_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class LoadedDocument:
    index: int
    #: 1-based line of the document's first node (for ``file:line`` in reports).
    line: int
    data: Any
    #: The composed node (with line marks), kept only when the caller asks (``keep_nodes``):
    #: audit resolves the exact line of each field it reports, then drops it.
    node: yaml.Node | None = None


@dataclass(slots=True)
class Loaded:
    documents: list[LoadedDocument] = field(default_factory=list)
    #: Documents (or the whole text) not loaded, each message naming a line, never a value.
    problems: list[str] = field(default_factory=list)
    #: How many of them expand past the budget (alias bombs, data dumps).
    over_budget: int = 0


def _expanded_size(node: yaml.Node, sizes: dict[int, int], budget: int) -> int:
    """Values ``node`` stands for once every alias is expanded; stops counting past ``budget``."""
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    visiting: set[int] = set()  # a recursive alias counts once, not forever
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if key in sizes or (key in visiting and not children_done):
            continue
        if isinstance(current, yaml.ScalarNode):
            sizes[key] = 1
            continue
        kids: list[yaml.Node] = (
            list(current.value) if isinstance(current, yaml.SequenceNode)
            else [n for pair in current.value for n in pair]
        )
        if children_done:
            total = 1
            for kid in kids:
                total += sizes.get(id(kid), 1)
                if total > budget:
                    break
            sizes[key] = total
            continue
        visiting.add(key)
        stack.append((current, True))
        stack.extend((kid, False) for kid in kids if id(kid) not in sizes)
    return sizes[id(node)]


def load_yaml(text: str, *, budget: int = DEFAULT_BUDGET, keep_nodes: bool = False) -> Loaded:
    """Every document of a YAML stream as plain typed data, bounded; never raises on bad input.

    A stream that fails to parse keeps the documents before the failure and names its line.
    """
    out = Loaded()
    if too_deep(text):
        out.problems.append(f"nested more than {MAX_DEPTH} levels deep; not parsed")
        return out
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            line = int(node.start_mark.line) + 1
            if _expanded_size(node, {}, budget) > budget:
                out.problems.append(f"document {index} (line {line}): more than {budget} values "
                                    "(alias expansion?); skipped")
                out.over_budget += 1
            else:
                out.documents.append(LoadedDocument(index, line, loader.construct_document(node),
                                                    node if keep_nodes else None))
            index += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        out.problems.append(f"document {index}: not valid YAML{where} ({safe_problem(exc)})")
    except (ValueError, TypeError, RecursionError) as exc:  # pathological input deep in libyaml
        out.problems.append(f"document {index}: cannot parse ({type(exc).__name__})")
    finally:
        loader.dispose()
    return out


def load_json(text: str) -> Loaded:
    """A JSON file as one document (JSON has no aliases; depth is checked first)."""
    if too_deep(text):
        return Loaded(problems=[f"nested more than {MAX_DEPTH} levels deep; not parsed"])
    try:
        return Loaded(documents=[LoadedDocument(0, 1, json.loads(text.lstrip("\ufeff")))])
    except RecursionError:
        return Loaded(problems=["malformed JSON: nested too deeply"])
    except ValueError as exc:
        return Loaded(problems=[f"malformed JSON (line {getattr(exc, 'lineno', '?')}): "
                                f"{getattr(exc, 'msg', 'invalid')}"])


def load_text(name: str, text: str, *, budget: int = DEFAULT_BUDGET, keep_nodes: bool = False) -> Loaded:
    """A manifest file's documents, by its name: ``.json`` as JSON, anything else as YAML."""
    if name.lower().endswith(".json"):
        return load_json(text)
    return load_yaml(text, budget=budget, keep_nodes=keep_nodes)


def load_one(text: str, *, budget: int = DEFAULT_BUDGET) -> Any:
    """The first document of ``text`` as plain data; None when it does not load (or is empty)."""
    loaded = load_yaml(text, budget=budget)
    if loaded.problems and (not loaded.documents or loaded.documents[0].index != 0):
        return None
    return loaded.documents[0].data if loaded.documents else None
