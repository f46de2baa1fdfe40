"""Bounds on one template render: memory is checked *before* it is allocated, time as it runs.

Why this module: a template is written by a tenant and rendered inside the controller,
whose memory and GIL every other tenant shares. Checking the size of the output after the
fact is too late (``{{ password.center(10**9) }}`` allocates a gigabyte first), so every
operation that can multiply size is priced from its arguments and refused when the price is
over :data:`MAX_STRING`:

* string methods reached through the sandbox's ``call`` (``center``, ``ljust``, ``zfill``,
  ``replace``, ``join``, ``format``, ``expandtabs``...), filters (``center``, ``indent``,
  ``wordwrap``, ``replace``, ``join``, ``format``, ``batch``, ``slice``...) and the binary
  operators ``*``, ``**``, ``%`` and ``+``;
* any value handed to a filter, a function or the output: its *expanded* size
  (:func:`weight`), so a list holding the same big string a million times, or a DAG built by
  nesting lists (a "billion laughs"), is refused before ``toJson`` or ``string`` unrolls it;
* every number passed to a call (``(1).to_bytes(10**9)``).

Time is bounded by a per-render :class:`Budget`: loop iterations, calls, filters and
emitted chunks each take a step, and every step checks a deadline. Text emitted into
``{% set %}`` blocks and macros counts too, so buffering a loop's output cannot grow
unseen.

Every refusal raises :class:`LimitExceeded` with a fixed message: never a value.
"""

from __future__ import annotations

import contextlib
import contextvars
import string
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.utils import Namespace

from secretsync.core.errors import InvalidInput

#: Kubernetes caps a Secret at 1 MiB; a template producing more is a bug or an attack.
MAX_OUTPUT = 1024 * 1024
#: Largest value (expanded size, in characters or items) any single step may build or take.
MAX_STRING = 4 * MAX_OUTPUT
#: All text one render may emit, including what ``{% set %}`` blocks and macros capture.
MAX_EMITTED = 16 * MAX_OUTPUT
#: Loop iterations + calls + filter applications + emitted chunks in one render.
MAX_STEPS = 1_000_000
#: Wall-clock time of one render, not counting ConfigMap/Secret lookups.
MAX_SECONDS = 1.0
#: Largest integer (in bits) arithmetic may produce.
MAX_INT_BITS = 1 << 16
#: Most items ``batch``/``slice`` may pad to, and deepest nesting a value may have.
MAX_ITEMS = 1 << 16
MAX_DEPTH = 200


class LimitExceeded(InvalidInput):
    """A bound was hit. The message is fixed text, safe for status and logs."""


class Budget:
    """Steps, emitted characters and the deadline of one render."""

    __slots__ = ("deadline", "emitted", "steps")

    def __init__(self, seconds: float = MAX_SECONDS) -> None:
        self.deadline = time.monotonic() + seconds
        self.steps = 0
        self.emitted = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise LimitExceeded(f"more than {MAX_STEPS} loop iterations, calls and filters")
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"render took longer than {MAX_SECONDS:g}s")

    def emit(self, size: int) -> None:
        self.emitted += size
        if self.emitted > MAX_EMITTED:
            raise LimitExceeded(f"more than {MAX_EMITTED} characters emitted (set blocks and macros included)")

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent outside the template (an API lookup) does not count against it."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.deadline += time.monotonic() - t0


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("secretsync_template_budget",
                                                                        default=None)


@contextlib.contextmanager
def budget(seconds: float = MAX_SECONDS) -> Iterator[Budget]:
    """Make a fresh budget current for the renders in this block."""
    b = Budget(seconds)
    token = _CURRENT.set(b)
    try:
        yield b
    finally:
        _CURRENT.reset(token)


def current() -> Budget | None:
    return _CURRENT.get()


def step() -> None:
    b = _CURRENT.get()
    if b is not None:
        b.step()


# --------------------------------------------------------------------------- sizes
def weight(obj: Any, limit: int = MAX_STRING) -> int:
    """Expanded size of ``obj``: characters of strings, plus one per container item.

    Shared sub-values count every time they are reachable (that is what serialising them
    costs) but are visited once (memo by identity), so a DAG of nested lists is priced in
    time linear in its distinct nodes. Stops counting once over ``limit``.
    """
    memo: dict[int, int] = {}

    def w(x: Any, depth: int) -> int:
        if isinstance(x, str | bytes | bytearray):
            return len(x)
        if x is None or isinstance(x, bool | float):
            return 1
        if isinstance(x, int):
            return x.bit_length() // 8 + 1
        key = id(x)
        if key in memo:
            return memo[key]
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"a value is nested more than {MAX_DEPTH} levels deep")
        items: Any
        if isinstance(x, Namespace):
            items = [object.__getattribute__(x, "_Namespace__attrs")]
        elif isinstance(x, Mapping):
            items = [*x.keys(), *x.values()]
        elif isinstance(x, list | tuple | set | frozenset):
            items = x
        else:
            return 1
        total = len(items) + 1
        for item in items:
            total += w(item, depth + 1)
            if total > limit:
                break
        memo[key] = total
        return total

    return w(obj, 0)


def check_value(obj: Any, what: str = "a value") -> None:
    if weight(obj) > MAX_STRING:
        raise LimitExceeded(f"{what} is larger than {MAX_STRING} characters or items")


def check_size(size: int, what: str = "the result") -> None:
    if size > MAX_STRING:
        raise LimitExceeded(f"{what} would be larger than {MAX_STRING} characters")


def check_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Every argument of a call or filter: no huge number, no huge (expanded) value."""
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_STRING:
            raise LimitExceeded(f"a number argument is larger than {MAX_STRING}")
        check_value(arg, "an argument")


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes) else weight(value)


def format_cost(fmt: str) -> int:
    """Upper bound of what ``fmt.format(...)`` adds beyond its arguments (field widths)."""
    total = len(fmt)
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return total  # str.format will raise the same error
    for _literal, _name, spec, _conv in fields:
        if spec and "{" in spec:
            raise LimitExceeded("nested format specifications are not allowed in templates")
        total += _digits_sum(spec or "")
    return total


def percent_cost(fmt: str) -> int:
    """Upper bound of what ``fmt % args`` adds beyond its arguments (widths, precisions)."""
    if "*" in fmt:
        raise LimitExceeded("'*' widths are not allowed in templates")
    return len(fmt) + _digits_sum(fmt)


def _digits_sum(text: str) -> int:
    total, run = 0, ""
    for ch in text + " ":
        if ch.isdigit():
            run += ch
            if len(run) > 9:
                raise LimitExceeded("a format width is too large")
        elif run:
            total += int(run)
            run = ""
    return total


def replace_cost(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    s, o, n = str(text), str(old), str(new)
    hits = s.count(o) if o else len(s) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * len(n)


def width_cost(text: Any, width: Any = 0, *_: Any, **__: Any) -> int:
    return max(_length(text), width if isinstance(width, int) else 0)


# --------------------------------------------------------------------------- str/bytes methods
def _join_cost(sep: Any, items: list[Any]) -> int:
    return len(sep) * max(len(items) - 1, 0) + sum(_length(i) for i in items)


_METHOD_COST: Mapping[str, Callable[..., int]] = {
    "center": width_cost,
    "ljust": width_cost,
    "rjust": width_cost,
    "zfill": width_cost,
    "expandtabs": lambda s, tabsize=8: len(s) + s.count("\t" if isinstance(s, str) else b"\t") * max(tabsize, 0),
    "replace": replace_cost,
    "format": lambda s, *a, **k: format_cost(s) + sum(_length(x) for x in (*a, *k.values())),
    "format_map": lambda s, m: format_cost(s) + _length(m),
}
#: Methods with no bounded use in a template (translate can map one char to a long string).
_METHOD_REFUSED = frozenset({"translate", "maketrans"})


def guard_method(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Price a bound str/bytes method call before it runs; returns the args to call with."""
    # The sandbox hands out str.format wrapped (functools.update_wrapper): price the original.
    obj = getattr(obj, "__wrapped__", obj)
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(obj, "__name__", "")
    if name in _METHOD_REFUSED:
        raise LimitExceeded(f"str.{name} is not allowed in templates")
    if name == "join" and args:
        items = list(args[0])  # materialise once: priced and then joined
        check_size(_join_cost(owner, items), "join")
        return (items, *args[1:])
    cost = _METHOD_COST.get(name)
    if cost is not None:
        check_size(cost(owner, *args, **kwargs), name)
    return args


def guard_binop(operator: str, left: Any, right: Any) -> None:
    """``*``, ``**``, ``%`` and ``+`` priced from their operands."""
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if (isinstance(seq, str | bytes | list | tuple) and isinstance(n, int) and n > 0
                    and (weight(seq) * n > MAX_STRING or len(seq) * n > MAX_STRING)):
                raise LimitExceeded(f"repetition result would be larger than {MAX_STRING}")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise LimitExceeded("integer result too large")
    elif operator == "**":
        if isinstance(right, int | float) and abs(right) > 1024:
            raise LimitExceeded("exponent too large")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() * abs(right) > MAX_INT_BITS:
            raise LimitExceeded("integer result too large")
    elif operator == "%" and isinstance(left, str | bytes):
        fmt = left if isinstance(left, str) else left.decode("latin-1")
        check_size(percent_cost(fmt) + weight(right), "'%' formatting")
    elif operator == "+" and isinstance(left, str | bytes | list | tuple):
        check_size(weight(left) + weight(right), "'+'")


# --------------------------------------------------------------------------- filters
def _indent_cost(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    text = str(s)
    w = len(width) if isinstance(width, str) else (width if isinstance(width, int) else 0)
    return len(text) + (text.count("\n") + 1) * max(w, 0)


def _wordwrap_cost(s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
                   *_: Any, **kwargs: Any) -> int:
    text = str(s)
    if len(text) > MAX_OUTPUT:
        raise LimitExceeded(f"wordwrap input larger than {MAX_OUTPUT} characters")
    wrap = kwargs.get("wrapstring", wrapstring)
    w = max(width if isinstance(width, int) else 1, 1)
    return len(text) + (len(text) // w + text.count("\n") + 1) * len(str(wrap) if wrap is not None else "\n")


def _items_cost(value: Any, count: Any = 1, fill_with: Any = None, *_: Any, **__: Any) -> int:
    if isinstance(count, int) and count > MAX_ITEMS:
        raise LimitExceeded(f"more than {MAX_ITEMS} batches or slices")
    return 0


def _format_filter_cost(value: Any, *args: Any, **kwargs: Any) -> int:
    return percent_cost(str(value)) + sum(weight(x) for x in (*args, *kwargs.values()))


#: Filters whose result size depends on an argument, priced before they run.
FILTER_COST: Mapping[str, Callable[..., int]] = {
    "center": width_cost,
    "indent": _indent_cost,
    "wordwrap": _wordwrap_cost,
    "replace": replace_cost,
    "format": _format_filter_cost,
    "batch": _items_cost,
    "slice": _items_cost,
}


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter: one budget step, arguments and result checked, the price paid first."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    cost = FILTER_COST.get(name)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        step()
        values = args[skip:]
        check_arguments(values, kwargs)
        if cost is not None and values:
            check_size(cost(*values, **kwargs), name)
        result = func(*args, **kwargs)
        check_value(result, f"the result of {name}")
        return result

    guarded.__dict__.update(getattr(func, "__dict__", {}))  # keeps jinja_pass_arg / async markers
    guarded.__name__ = getattr(func, "__name__", name)
    guarded.__doc__ = func.__doc__
    return guarded


# --------------------------------------------------------------------------- the AST hooks
#: Filter names the instrumented template calls; registered by the engine.
LOOP, EMIT, VALUE = "_guard_loop", "_guard_emit", "_guard_value"


@pass_context
def guard_loop(_context: Any, iterable: Any) -> Iterator[Any]:
    for item in iterable:
        step()
        yield item


@pass_context
def guard_emit(_context: Any, value: Any) -> Any:
    size = weight(value)
    if size > MAX_STRING:
        raise LimitExceeded(f"an output value is larger than {MAX_STRING} characters or items")
    b = _CURRENT.get()
    if b is not None:
        b.step()
        b.emit(size)
    return value


@pass_context
def guard_value(_context: Any, value: Any) -> Any:
    check_value(value, "a '~' operand")
    return value


def instrument(tree: nodes.Template) -> None:
    """Route every loop, output and ``~`` operand of a parsed template through the guards."""

    def wrap(node: Any, name: str) -> nodes.Expr:
        return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)

    loops = list(tree.find_all(nodes.For))
    outputs = list(tree.find_all(nodes.Output))
    concats = list(tree.find_all(nodes.Concat))
    for loop in loops:
        loop.iter = wrap(loop.iter, LOOP)
    for out in outputs:
        out.nodes = [wrap(n, EMIT) for n in out.nodes]
    for cat in concats:
        cat.nodes = [wrap(n, VALUE) for n in cat.nodes]
