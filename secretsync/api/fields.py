"""Wire metadata on model fields, and the one generic decoder/encoder driven by it.

Why this exists: the CRD models must have ONE source of truth. Every dataclass field in
:mod:`secretsync.api.models` is ``Annotated[T, Wire(...)]``; the same annotation drives

* :func:`decode` (a dict from the API server or a YAML file -> a frozen dataclass, collecting
  every problem with its field path instead of stopping at the first),
* :func:`encode` (a dataclass -> the dict a manifest or a status patch needs), and
* :mod:`secretsync.api.schema` (the OpenAPI v3 structural schema in the generated CRDs).

So a field cannot be parsed under one name and published under another, and a new field
shows up in the CRD the moment it is added to a model.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar, get_args, get_origin

T = TypeVar("T")


class Codec(Protocol):
    """Converts a wire value that is not JSON-native in the model (e.g. a Go duration)."""

    #: The OpenAPI schema of the wire form.
    schema: Mapping[str, Any]

    def decode(self, raw: Any) -> Any:
        """Return the model value; raise ValueError with a short reason (never the value)."""
        ...

    def encode(self, value: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Wire:
    """How a model field appears on the wire and in the CRD schema."""

    name: str
    doc: str
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    #: Human text for the pattern, used in error messages instead of the raw regex.
    pattern_doc: str | None = None
    minimum: float | None = None
    max_length: int | None = None
    codec: Codec | None = None
    #: Publish the dataclass default as the schema default (the API server then fills it in).
    schema_default: bool = False


class Problems:
    """Every problem found while decoding one object, each with its field path."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def child(path: str, name: str) -> str:
    """``spec`` + ``target`` -> ``spec.target``; map keys that are not identifiers get brackets."""
    if not _IDENT.match(name):
        return f"{path}[{name!r}]" if path else f"[{name!r}]"
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


@dataclass(frozen=True, slots=True)
class FieldInfo:
    attr: str
    tp: Any
    wire: Wire
    required: bool
    default: Any
    #: default_factory (a fresh dict per object), or None for a plain default.
    factory: Any = None
    #: The wire name needs no brackets in a field path.
    plain_name: bool = True

    def fresh_default(self) -> Any:
        return self.factory() if self.factory is not None else self.default


_MISSING = dataclasses.MISSING


_FIELDS_CACHE: dict[Any, tuple[FieldInfo, ...]] = {}


def fields_of(cls: Any) -> tuple[FieldInfo, ...]:
    """The wire description of every field of a model dataclass (cached)."""
    cached = _FIELDS_CACHE.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls, include_extras=True)
    out: list[FieldInfo] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if get_origin(hint) is not Annotated:
            raise TypeError(f"{cls.__name__}.{f.name} has no Wire annotation")
        base, *extras = get_args(hint)
        wire = next((e for e in extras if isinstance(e, Wire)), None)
        if wire is None:
            raise TypeError(f"{cls.__name__}.{f.name} has no Wire annotation")
        factory = None
        if f.default is not _MISSING:
            required, default = False, f.default
        elif f.default_factory is not _MISSING:
            required, default, factory = False, f.default_factory(), f.default_factory
        else:
            required, default = True, None
        out.append(FieldInfo(f.name, base, wire, required, default, factory, bool(_IDENT.match(wire.name))))
    _FIELDS_CACHE[cls] = tuple(out)
    return _FIELDS_CACHE[cls]


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    if get_origin(tp) in (types.UnionType, typing.Union):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"unsupported union {tp!r}")
    return tp, False


def is_open_mapping(tp: Any) -> bool:
    """``Mapping[str, Any]``: a free-form object kept as is (provider config)."""
    return get_origin(tp) is Mapping and get_args(tp)[1] is Any


@dataclass(frozen=True, slots=True)
class _Shape:
    """What decode_value needs to know about a model type, computed once per type."""

    kind: str  # str | bool | int | float | tuple | map | open | dataclass
    optional: bool
    inner: Any = None


_SHAPES: dict[Any, _Shape] = {}


def _shape(tp: Any) -> _Shape:
    shape = _SHAPES.get(tp)
    if shape is not None:
        return shape
    base, optional = unwrap_optional(tp)
    origin = get_origin(base)
    if base in (str, bool, int, float):
        shape = _Shape(base.__name__, optional)
    elif origin is tuple:
        shape = _Shape("tuple", optional, get_args(base)[0])
    elif origin is Mapping:
        shape = _Shape("open", optional) if is_open_mapping(base) else _Shape("map", optional, get_args(base)[1])
    elif dataclasses.is_dataclass(base):
        shape = _Shape("dataclass", optional, base)
    else:
        raise TypeError(f"unsupported model type {tp!r}")
    _SHAPES[tp] = shape
    return shape


def _type_error(expected: str, raw: Any) -> str:
    got = "null" if raw is None else {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(raw), type(raw).__name__
    )
    return f"must be {expected}, not {got}"


def _check_scalar(raw: Any, wire: Wire | None, path: str, problems: Problems) -> None:
    if wire is None:
        return
    if wire.enum and raw not in wire.enum:
        problems.add(path, f"must be one of {', '.join(wire.enum)} (got {raw!r})")
    if wire.pattern and isinstance(raw, str) and not re.fullmatch(wire.pattern, raw):
        problems.add(path, f"must be {wire.pattern_doc or 'match ' + wire.pattern} (got {raw!r})")
    if wire.max_length is not None and isinstance(raw, str) and len(raw) > wire.max_length:
        problems.add(path, f"must be at most {wire.max_length} characters")
    if wire.minimum is not None and isinstance(raw, int | float) and raw < wire.minimum:
        problems.add(path, f"must be >= {wire.minimum:g}")


#: Strings up to this length are interned as they are decoded.
_INTERN_MAX = 160


def shared(text: str) -> str:
    """``text`` as the one shared copy of equal short strings.

    Why: a JSON parser makes a new string object for every occurrence, so 10,000 parsed
    ExternalSecrets hold 10,000 copies of their namespace, their store's name, ``Ready``,
    ``SecretSynced``, each remote key (once per ``data`` item) and each timestamp of the
    same second: about a kilobyte per object, a tenth of what the controller keeps for it.
    Interned strings are freed with their last reference (CPython's interning is mortal),
    so an object deleted from the cluster leaves nothing behind. Long strings (templates,
    messages) are left alone: they are rarely equal and interning them only costs a hash.
    """
    return sys.intern(text) if len(text) <= _INTERN_MAX and type(text) is str else text


def decode_value(tp: Any, raw: Any, path: str, problems: Problems, wire: Wire | None = None) -> Any:
    """Decode one wire value into the model type ``tp``; problems are recorded, not raised."""
    if wire is not None and wire.codec is not None:
        try:
            return wire.codec.decode(raw)
        except ValueError as exc:
            problems.add(path, str(exc))
            return None
    shape = _shape(tp)
    if raw is None:
        if not shape.optional:
            problems.add(path, "must not be null")
        return None
    kind = shape.kind
    if kind == "str":
        if not isinstance(raw, str):
            problems.add(path, _type_error("a string", raw))
            return None
        if wire is not None:
            _check_scalar(raw, wire, path, problems)
        return shared(raw)
    if kind == "dataclass":
        return decode(shape.inner, raw, path, problems)
    if kind == "tuple":
        if not isinstance(raw, list):
            problems.add(path, _type_error("a list", raw))
            return ()
        item_wire = wire if wire is not None and (wire.enum or wire.pattern) else None
        item_tp = shape.inner
        return tuple(decode_value(item_tp, item, f"{path}[{i}]", problems, item_wire) for i, item in enumerate(raw))
    if kind in ("map", "open"):
        if not isinstance(raw, dict):
            problems.add(path, _type_error("an object", raw))
            return {}
        if kind == "open":
            return raw
        val_tp = shape.inner
        out: dict[str, Any] = {}
        for k, v in raw.items():
            if not isinstance(k, str):
                problems.add(path, f"keys must be strings (got {k!r})")
                continue
            out[shared(k)] = decode_value(val_tp, v, child(path, k), problems)
        return out
    if kind == "bool":
        if not isinstance(raw, bool):
            problems.add(path, _type_error("true or false", raw))
            return None
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float) or (kind == "int" and not isinstance(raw, int)):
        problems.add(path, _type_error("an integer" if kind == "int" else "a number", raw))
        return None
    _check_scalar(raw, wire, path, problems)
    return float(raw) if kind == "float" else raw


def decode(cls: type[T], raw: Any, path: str, problems: Problems) -> T | None:
    """Decode a dict into dataclass ``cls``; None (with problems recorded) when it cannot.

    Unknown fields are reported: the API server prunes them anyway (structural schemas), so
    an unknown field can only come from a hand-written file, where it is almost always a typo.
    A model may define ``_validate(self, path, problems)`` for rules across fields.
    """
    custom = getattr(cls, "__wire_decode__", None)
    if custom is not None:  # a model that reads its own wire form (ProviderSpec: the provider reads it)
        result: T | None = custom(raw, path, problems)
        return result
    if not isinstance(raw, dict):
        problems.add(path, _type_error("an object", raw))
        return None
    items = problems.items
    before = len(items)
    infos = fields_of(cls)
    known = _known_names(cls)
    if not known.issuperset(raw):
        for key in raw:
            if key not in known:
                hint = _close_match(str(key), known)
                problems.add(child(path, str(key)), "unknown field" + (f" (did you mean {hint!r}?)" if hint else ""))
    kwargs: dict[str, Any] = {}
    for fi in infos:
        name = fi.wire.name
        value = raw.get(name)
        fpath = (f"{path}.{name}" if path else name) if fi.plain_name else child(path, name)
        if value is None:
            if fi.required:
                problems.add(fpath, "required")
            kwargs[fi.attr] = fi.fresh_default()
            continue
        decoded = decode_value(fi.tp, value, fpath, problems, fi.wire)
        if fi.required and decoded == "":
            problems.add(fpath, "must not be empty")
        kwargs[fi.attr] = decoded
    if len(items) > before:
        return None
    obj = cls(**kwargs)
    validate = getattr(obj, "_validate", None)
    if validate is not None:
        validate(path, problems)
        if len(items) > before:
            return None
    return obj


_KNOWN: dict[Any, frozenset[str]] = {}


def _known_names(cls: Any) -> frozenset[str]:
    known = _KNOWN.get(cls)
    if known is None:
        known = _KNOWN[cls] = frozenset(fi.wire.name for fi in fields_of(cls))
    return known


def _close_match(key: str, known: frozenset[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return found[0] if found else None


def encode_value(tp: Any, value: Any, wire: Wire | None = None, *, omit_defaults: bool = True) -> Any:
    if wire is not None and wire.codec is not None:
        return wire.codec.encode(value)
    tp, _ = unwrap_optional(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        return encode(value, omit_defaults=omit_defaults)
    origin = get_origin(tp)
    if origin is tuple:
        (item_tp, _e) = get_args(tp)
        return [encode_value(item_tp, v, omit_defaults=omit_defaults) for v in value]
    if origin is Mapping:
        if is_open_mapping(tp):
            return _plain(value)
        (_k, val_tp) = get_args(tp)
        return {k: encode_value(val_tp, v, omit_defaults=omit_defaults) for k, v in value.items()}
    return value


def encode(obj: Any, *, omit_defaults: bool = True) -> dict[str, Any]:
    """A model dataclass -> its wire dict. Omits None and empty collections (and, by default,
    values equal to the field default) so generated manifests stay short and readable."""
    custom = getattr(obj, "__wire_encode__", None)
    if custom is not None:
        encoded: dict[str, Any] = custom()
        return encoded
    out: dict[str, Any] = {}
    for fi in fields_of(type(obj)):
        value = getattr(obj, fi.attr)
        if value is None:
            continue
        if isinstance(value, tuple | dict | Mapping) and not value and not fi.required:
            continue
        if omit_defaults and not fi.required and value == fi.default:
            continue
        out[fi.wire.name] = encode_value(fi.tp, value, fi.wire, omit_defaults=omit_defaults)
    return out


def _plain(value: Any) -> Any:
    """Deep-copy a mapping/list tree into plain dicts and lists (safe to dump or mutate)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def plain(value: Any) -> Any:
    return _plain(value)


