"""Render ``spec.target.template`` with Jinja2 in a sandbox: secret values in, Secret data out.

Why Jinja2 and why sandboxed: templates are written by whoever may create an
ExternalSecret in a namespace, and rendered by a controller that can read Secrets in every
namespace. So a template must not reach Python internals (``''.__class__.__mro__``), must not
mutate anything, must not read other namespaces, and must not make the controller allocate
unbounded memory. :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` blocks the first
two; ConfigMaps and Secrets are reachable only through a callback the runtime binds to the
ExternalSecret's own namespace (the template functions take a name, never a namespace);
string/list repetition and output size are capped here.

Other choices, and why:

* ``StrictUndefined``: a typo in a variable name must fail the sync, not write an empty
  password into the Secret.
* ``autoescape=False``: the output is Secret data, not HTML.
* Values are exposed as ``str``. Binary values (a PKCS#12 keystore) decode with
  ``surrogateescape``, so ``{{ keystore }}`` and the PKCS#12 helpers get the exact bytes back.
  Every value is a top-level variable when its key is an identifier, and all are in the
  ``values`` mapping (``{{ values["tls.crt"] }}``) for keys that are not.
* Template errors name the ExternalSecret, the template key, the line and the error class,
  and carry no exception text: a message from Python or Jinja can quote its input
  (``int('s3cr3t')``, ``filterPEM(password)``, a slice or ``|upper`` of a value), and no
  scrubber can recognise every transformed form of a value. Our own helpers raise fixed
  messages; an undefined variable is named only when it is a name written in the template.
* Memory and time of a render are bounded before allocation: see
  :mod:`secretsync.api.template_limits`.

Filters/functions (names follow ESO's where they exist): ``b64enc``, ``b64dec``, ``sha256sum``, ``fromJson``,
``toJson``, ``fromYaml``, ``toYaml``, ``toString``, ``quote``, ``filterPEM(type)``,
``pemCertificate``, ``pemPrivateKey``, ``pkcs12key``, ``pkcs12keyPass(pw)``, ``pkcs12cert``,
``pkcs12certPass(pw)``, ``pemToPkcs12(key)``, ``pemToPkcs12Pass(key, pw)``, plus Jinja's
built-ins (``upper``, ``lower``, ``replace``, ``trim``, ``default``...). Globals:
``configMapKey(name, key)`` and ``secretKey(name, key)`` (same namespace only).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from jinja2 import StrictUndefined, Template, UndefinedError, nodes, pass_environment
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from secretsync.core.errors import InvalidInput, NotFound, SecretSyncError, Unavailable
from secretsync.core.values import SecretValue

from . import template_limits as limits
from .models import ExternalSecret, TargetTemplate, reserved_metadata_key
from .template_limits import MAX_OUTPUT, LimitExceeded

__all__ = ["MAX_OUTPUT", "ResourceLookup", "TemplateEngine", "TemplateError", "default_engine"]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_UNDEFINED_NAME = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)' is undefined$")

#: ``lookup(kind, name, key)`` with kind ``"ConfigMap"`` or ``"Secret"``: the runtime binds it
#: to the ExternalSecret's namespace. Raise :class:`secretsync.core.errors.NotFound` when the
#: object or key is absent; other errors (apiserver unavailable) propagate unchanged.
ResourceLookup = Callable[[str, str, str], "str | SecretValue"]


class TemplateError(InvalidInput):
    """A template failed to compile or render. Names the object and key; never a value."""

    reason = "TemplateError"

    def __init__(self, obj_ref: str, key: str, detail: str) -> None:
        self.obj_ref = obj_ref
        self.template_key = key
        super().__init__(f"{obj_ref}: template {key!r}: {detail}")


#: Fetched values at least this long are searched for in rendered metadata (shorter ones,
#: "1" or "on", would refuse harmless labels by coincidence).
MIN_METADATA_NEEDLE = 4
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def to_text(data: bytes) -> str:
    """Bytes -> the str a template sees (binary-safe)."""
    return data.decode("utf-8", "surrogateescape")


def to_bytes(text: str) -> bytes:
    """The inverse of :func:`to_text`."""
    return text.encode("utf-8", "surrogateescape")


class _HelperError(Exception):
    """Raised by our filters with a message that is safe to show (no value in it)."""


# --------------------------------------------------------------------------- filters
def _sha256sum(value: Any) -> str:
    """Sprig's ``sha256sum``: hex digest; how a reload annotation follows a value without carrying it."""
    return hashlib.sha256(to_bytes(str(value))).hexdigest()


def _b64enc(value: Any) -> str:
    return base64.b64encode(to_bytes(str(value))).decode("ascii")


def _b64dec(value: Any) -> str:
    raw = str(value).strip()
    try:
        return to_text(base64.b64decode(raw + "=" * (-len(raw) % 4), validate=False))
    except (binascii.Error, ValueError):
        raise _HelperError("b64dec: input is not valid base64") from None


def _from_json(value: Any) -> Any:
    try:
        return json.loads(str(value))
    except ValueError:
        raise _HelperError("fromJson: input is not valid JSON") from None


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _NoAliasLoader(yaml.SafeLoader):
    """safe_load without anchors/aliases: ``*a`` repeated in nested lists is a "billion laughs"
    that costs nothing to load and a gigabyte to ``toJson``."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            raise _HelperError("fromYaml: YAML aliases are not allowed in templates")
        return super().compose_node(parent, index)


def _from_yaml(value: Any) -> Any:
    try:
        return yaml.load(str(value), Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        raise _HelperError("fromYaml: input is not valid YAML") from None


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip("\n")


def _quote(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)


_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n")
_PEM_END = re.compile(r"-----END ([A-Z0-9 ]{1,64})-----")


def _pem_blocks(text: str) -> list[tuple[str, str]]:
    """(type, block) of every PEM block, in order, in time linear in the text.

    A backtracking ``BEGIN (.*?) END \\1`` regex is quadratic on a value made of many
    BEGIN lines without END (a tenant controls both the value and the template), so the
    END positions are indexed once and each BEGIN looks its END up by bisection.
    """
    ends: dict[str, list[int]] = {}
    for m in _PEM_END.finditer(text):
        ends.setdefault(m.group(1), []).append(m.start())
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _PEM_BEGIN.finditer(text):
        if m.start() < pos:
            continue
        label = m.group(1)
        candidates = ends.get(label, [])
        i = bisect.bisect_left(candidates, m.end())
        if i == len(candidates):
            continue
        stop = candidates[i] + len(f"-----END {label}-----")
        out.append((label, text[m.start():stop] + "\n"))
        pos = stop
    return out


def _filter_pem(value: Any, pem_type: Any) -> str:
    """Every PEM block of ``pem_type`` (e.g. ``CERTIFICATE``), in order (ESO's filterPEM)."""
    blocks = [block for label, block in _pem_blocks(str(value)) if label == pem_type]
    if not blocks:
        raise _HelperError("filterPEM: no block of the requested type found")
    return "".join(blocks)


def _pem_certificate(value: Any) -> str:
    return _filter_pem(value, "CERTIFICATE")


def _pem_private_key(value: Any) -> str:
    blocks = [block for label, block in _pem_blocks(str(value)) if label.endswith("PRIVATE KEY")]
    if not blocks:
        raise _HelperError("pemPrivateKey: no PRIVATE KEY block found")
    return blocks[0]


def _pkcs12_bytes(value: Any) -> bytes:
    return to_bytes(str(value))


def _load_pkcs12(value: Any, password: str | None) -> pkcs12.PKCS12KeyAndCertificates:
    """Load a PKCS#12 archive; accept raw bytes or (as a convenience) its base64 text."""
    raw = _pkcs12_bytes(value)
    candidates = [raw]
    stripped = raw.strip()
    if re.fullmatch(rb"[A-Za-z0-9+/=\r\n]+", stripped or b"-"):
        with contextlib.suppress(binascii.Error, ValueError):
            candidates.append(base64.b64decode(stripped))
    passwords: list[bytes | None] = [password.encode("utf-8")] if password else [None, b""]
    for data in candidates:
        for pw in passwords:
            try:
                return pkcs12.load_pkcs12(data, pw)
            except (ValueError, TypeError):
                continue
    raise _HelperError("not a PKCS#12 archive, or the password is wrong")


def _pkcs12_key(value: Any, password: str | None = None) -> str:
    archive = _load_pkcs12(value, password)
    if archive.key is None:
        raise _HelperError("pkcs12key: the archive holds no private key")
    return archive.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _pkcs12_cert(value: Any, password: str | None = None) -> str:
    """Leaf certificate first, then the chain (what a TLS Secret's tls.crt needs)."""
    archive = _load_pkcs12(value, password)
    certs: list[x509.Certificate] = []
    if archive.cert is not None:
        certs.append(archive.cert.certificate)
    certs += [c.certificate for c in archive.additional_certs]
    if not certs:
        raise _HelperError("pkcs12cert: the archive holds no certificate")
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def _pkcs12_key_pass(value: Any, password: str) -> str:
    return _pkcs12_key(value, password)


def _pkcs12_cert_pass(value: Any, password: str) -> str:
    return _pkcs12_cert(value, password)


def _pem_to_pkcs12(cert_pem: Any, key_pem: Any, password: str | None = None) -> str:
    """A base64 PKCS#12 archive from a PEM certificate (chain) and key (as ESO returns it)."""
    try:
        certs = x509.load_pem_x509_certificates(to_bytes(str(cert_pem)))
        key = serialization.load_pem_private_key(to_bytes(str(key_pem)), password=None)
    except ValueError:
        raise _HelperError("pemToPkcs12: input is not a PEM certificate and private key") from None
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode("utf-8")) if password
        else serialization.NoEncryption()
    )
    data = pkcs12.serialize_key_and_certificates(
        None, key, certs[0], certs[1:] or None, encryption  # type: ignore[arg-type]
    )
    return base64.b64encode(data).decode("ascii")


def _pem_to_pkcs12_pass(cert_pem: Any, key_pem: Any, password: str) -> str:
    return _pem_to_pkcs12(cert_pem, key_pem, password)


FILTERS: Mapping[str, Callable[..., Any]] = {
    "b64enc": _b64enc,
    "sha256sum": _sha256sum,
    "b64dec": _b64dec,
    "fromJson": _from_json,
    "toJson": _to_json,
    "fromYaml": _from_yaml,
    "toYaml": _to_yaml,
    "toString": str,
    "quote": _quote,
    "filterPEM": _filter_pem,
    "pemCertificate": _pem_certificate,
    "pemPrivateKey": _pem_private_key,
    "pkcs12key": _pkcs12_key,
    "pkcs12keyPass": _pkcs12_key_pass,
    "pkcs12cert": _pkcs12_cert,
    "pkcs12certPass": _pkcs12_cert_pass,
    "pemToPkcs12": _pem_to_pkcs12,
    "pemToPkcs12Pass": _pem_to_pkcs12_pass,
}


# --------------------------------------------------------------------------- environment
@pass_environment
def _join(environment: Environment, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    """Jinja's ``join``, with the joined size priced before the string is built."""
    items = list(value)
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = [getter(x) for x in items]
    sep = str(d)
    limits.check_size(len(sep) * max(len(items) - 1, 0) + sum(limits.weight(x) for x in items), "join")
    return sep.join(x if isinstance(x, str) else str(x) for x in items)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every size-multiplying operation priced first.

    Loops, outputs and ``~`` operands are routed through guard filters when a template is
    parsed (:func:`~secretsync.api.template_limits.instrument`); method calls and the
    ``* ** % +`` operators are priced here; filters are wrapped where they are registered.
    """

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        limits.instrument(tree)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.step()
        limits.guard_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        limits.step()
        limits.check_arguments(args, kwargs)
        args = limits.guard_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        limits.check_value(result, "the result of a call")
        return result


def _detail(exc: BaseException, static_names: frozenset[str]) -> str:
    """What went wrong, from the exception's class: never its message, which may echo data."""
    if isinstance(exc, LimitExceeded | _HelperError):
        return str(exc)  # our own fixed texts
    if isinstance(exc, SecurityError):
        return "not allowed in a template (SecurityError)"
    if isinstance(exc, UndefinedError):
        m = _UNDEFINED_NAME.match(str(exc))
        if m and m.group(1) in static_names:  # a name the template itself spells, not a looked-up value
            return f"{m.group(1)!r} is undefined"
        return "undefined attribute or item (UndefinedError)"
    if isinstance(exc, RecursionError):
        return "too deeply nested or recursive (RecursionError)"
    return type(exc).__name__


def _template_line(exc: BaseException) -> int | None:
    """The template line of the innermost template frame (Jinja rewrites tracebacks to them)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class TemplateEngine:
    """Compiles templates once (bounded cache) and renders them; safe to share across threads."""

    def __init__(self, cache_size: int = 512) -> None:
        env = _Sandbox(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
        env.filters.update(FILTERS)
        env.filters["join"] = _join
        # The PEM/PKCS#12 helpers and b64 are also callable as functions (ESO style).
        env.globals.update(FILTERS)
        env.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs: nothing a Secret needs
        for name, func in list(env.filters.items()):
            env.filters[name] = limits.guard_filter(name, func)
        env.filters.update({limits.LOOP: limits.guard_loop, limits.EMIT: limits.guard_emit,
                            limits.VALUE: limits.guard_value})
        self._env = env
        self._cache: OrderedDict[str, tuple[Template, frozenset[str]]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile(self, source: str) -> Template:
        """Compile (cached); raises jinja2.TemplateSyntaxError."""
        return self._compile(source)[0]

    def _compile(self, source: str) -> tuple[Template, frozenset[str]]:
        with self._lock:
            hit = self._cache.get(source)
            if hit is not None:
                self._cache.move_to_end(source)
                return hit
        tree = self._env.parse(source)
        names = frozenset(n.name for n in tree.find_all(nodes.Name))
        entry = (self._env.from_string(tree), names)
        with self._lock:
            self._cache[source] = entry
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return entry

    @staticmethod
    def _syntax_error(obj_ref: str, key: str, exc: TemplateSyntaxError, echo: bool) -> TemplateError:
        detail = f"syntax error at line {exc.lineno}"
        if echo and exc.message:
            detail += f": {exc.message}"
        return TemplateError(obj_ref, key, detail)

    def check_syntax(self, obj_ref: str, key: str, source: str) -> None:
        """Raise TemplateError when ``source`` does not compile (for validation before any fetch)."""
        try:
            self._compile(source)
        except TemplateSyntaxError as exc:
            raise self._syntax_error(obj_ref, key, exc, True) from None

    def render(
        self,
        obj_ref: str,
        key: str,
        source: str,
        values: Mapping[str, SecretValue],
        lookup: ResourceLookup | None = None,
        *,
        source_is_secret: bool = False,
    ) -> SecretValue:
        """Render one template with ``values`` as variables; the result is a SecretValue.

        Raises TemplateError naming ``obj_ref``, ``key``, the template line and the error
        class, never a value. A lookup that fails for a passing reason (API server
        unavailable) raises :class:`~secretsync.core.errors.Unavailable` so it is retried.
        ``source_is_secret``: the template came from a Secret, so a syntax error does not
        quote it either.
        """
        texts = {k: to_text(v.reveal()) for k, v in values.items()}
        try:
            tmpl, names = self._compile(source)
        except TemplateSyntaxError as exc:
            raise self._syntax_error(obj_ref, key, exc, not source_is_secret) from None
        variables: dict[str, Any] = {k: v for k, v in texts.items() if k.isidentifier()}
        variables["values"] = texts
        variables.update(self._lookup_functions(lookup))
        out: list[str] = []
        try:
            with limits.budget():
                size = 0
                for chunk in tmpl.generate(variables):
                    size += len(chunk)
                    if size > MAX_OUTPUT:
                        raise LimitExceeded(f"output larger than {MAX_OUTPUT} bytes")
                    out.append(chunk)
        except SecretSyncError as exc:
            if exc.retryable:
                raise
            raise TemplateError(obj_ref, key, self._where(exc) + _detail(exc, names)) from None
        except Exception as exc:  # any error a filter, method or operator raised while handling a value
            raise TemplateError(obj_ref, key, self._where(exc) + _detail(exc, names)) from None
        return SecretValue(to_bytes("".join(out)))

    @staticmethod
    def _where(exc: BaseException) -> str:
        line = _template_line(exc)
        return f"line {line}: " if line is not None else ""

    @staticmethod
    def _lookup_functions(lookup: ResourceLookup | None) -> dict[str, Any]:
        def fetch(kind: str, name: Any, key: Any) -> str:
            if lookup is None:
                raise _HelperError(f"{kind} lookups are not available here")
            if not isinstance(name, str) or not _NAME.match(name):
                raise _HelperError(f"{kind} name must be a name in the same namespace")
            if not isinstance(key, str) or not _KEY.match(key):
                raise _HelperError(f"{kind} key must be a valid key")
            # Names and keys may be computed from values, so no message below quotes them.
            b = limits.current()
            try:
                with b.paused() if b is not None else contextlib.nullcontext():
                    result = lookup(kind, name, key)
            except SecretSyncError as exc:
                if exc.retryable:
                    raise Unavailable(f"a {kind} lookup of the template failed for now", operation="template",
                                      delay=getattr(exc, "delay", None)) from None
                if isinstance(exc, NotFound):
                    raise _HelperError(f"{kind} lookup: the {kind} or its key does not exist") from None
                raise _HelperError(f"{kind} lookup failed ({type(exc).__name__})") from None
            return to_text(result.reveal()) if isinstance(result, SecretValue) else str(result)

        def config_map_key(name: Any, key: Any) -> str:
            return fetch("ConfigMap", name, key)

        def secret_key(name: Any, key: Any) -> str:
            return fetch("Secret", name, key)

        return {"configMapKey": config_map_key, "secretKey": secret_key}

    def render_target(
        self,
        es: ExternalSecret,
        values: Mapping[str, SecretValue],
        lookup: ResourceLookup | None = None,
    ) -> dict[str, SecretValue]:
        """The data of the target Secret for ``es`` given the fetched ``values``.

        * No template, or a template with only type/metadata: the fetched values as is.
        * ``templateFrom`` items render first (output under the item's key), then
          ``template.data`` (which wins on a clash).
        * ``mergePolicy: Replace`` (default) keeps only the rendered keys; ``Merge`` adds
          them to the fetched values.

        Label and annotation values are rendered by :meth:`render_metadata`, which refuses any
        that would carry a fetched value.
        """
        return self.render_data(es.ref, es.spec.target.template, values, lookup)

    def render_data(self, ref: str, tmpl: TargetTemplate | None, values: Mapping[str, SecretValue],
                    lookup: ResourceLookup | None = None) -> dict[str, SecretValue]:
        """:meth:`render_target` for any object with a template (a PushSecret renders the data it
        pushes the same way); ``ref`` names the object in errors."""
        if tmpl is None or (not tmpl.data and not tmpl.template_from):
            return dict(values)
        rendered = dict(self._render_from(ref, tmpl, "Data", values, lookup))
        for key, source in tmpl.data.items():
            rendered[key] = self.render(ref, key, source, values, lookup)
        if tmpl.merge_policy == "Merge":
            return {**values, **rendered}
        return rendered

    def _render_from(self, ref: str, tmpl: TargetTemplate, target: str, values: Mapping[str, SecretValue],
                     lookup: ResourceLookup | None) -> list[tuple[str, SecretValue]]:
        """The (key, rendered value) pairs of the ``templateFrom`` entries aimed at ``target``
        (Data, Annotations, Labels), in order. A ``literal`` renders to a YAML mapping (ESO)."""
        out: list[tuple[str, SecretValue]] = []
        for i, tf in enumerate(tmpl.template_from):
            if tf.target != target:
                continue
            if tf.literal is not None:
                label = f"templateFrom[{i}].literal"
                text = to_text(self.render(ref, label, tf.literal, values, lookup).reveal())
                try:
                    doc = _from_yaml(text) if text.strip() else {}
                except (_HelperError, yaml.YAMLError):
                    raise TemplateError(ref, label, "the rendered literal is not valid YAML") from None
                if not isinstance(doc, dict):
                    raise TemplateError(ref, label, "the rendered literal must be a YAML mapping of keys to values")
                for key, value in doc.items():
                    if isinstance(value, (dict, list)):
                        raise TemplateError(ref, f"{label}.{key}", "values must be scalars")
                    out.append((str(key), SecretValue("" if value is None else str(value))))
                continue
            kind, src = ("ConfigMap", tf.config_map) if tf.config_map is not None else ("Secret", tf.secret)
            assert src is not None  # the parser guarantees exactly one
            for item in src.items:
                label = f"templateFrom[{i}].{kind[0].lower() + kind[1:]}.{src.name}/{item.key}"
                if lookup is None:
                    raise TemplateError(ref, label, f"{kind} lookups are not available here")
                try:
                    source = lookup(kind, src.name, item.key)
                except SecretSyncError as exc:
                    if exc.retryable:
                        raise
                    raise TemplateError(ref, label, f"cannot read the template: {exc}") from None
                text = to_text(source.reveal()) if isinstance(source, SecretValue) else str(source)
                out.append((item.key, self.render(ref, label, text, values, lookup,
                                                  source_is_secret=kind == "Secret")))
        return out

    def render_metadata(
        self,
        es: ExternalSecret,
        values: Mapping[str, SecretValue],
        lookup: ResourceLookup | None = None,
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The target Secret's labels and annotations, templates rendered (as ESO does).

        Why a guard: metadata is returned by every list of Secrets' metadata and copied into
        tools that index it, so a value there is a leak. A rendered label or annotation (or a
        key a ``templateFrom`` renders) that contains any fetched value in any letter case, or
        its base64, is refused naming the field (never the value); derived values such as
        ``{{ password | sha256sum }}`` (what reload annotations use) are fine. A label value
        must also be a valid label value. Keys the controller owns (``reserved_metadata_key``)
        are refused here too: a ``templateFrom``'s keys are known only now.
        """
        tmpl: TargetTemplate | None = es.spec.target.template
        targeted = tmpl is not None and any(tf.target != "Data" for tf in tmpl.template_from)
        if tmpl is None or (tmpl.metadata is None and not targeted):
            return {}, {}
        # Compared case-folded, and base64 of the case forms too: `{{ password | upper }}` in a
        # label is the password.
        texts = [t for t in (to_text(v.reveal()) for v in values.values()) if len(t) >= MIN_METADATA_NEEDLE]
        needles = {t.casefold() for t in texts}
        needles |= {_b64enc(form).casefold() for t in texts for form in (t, t.upper(), t.lower())}
        out: list[dict[str, str]] = []
        md = tmpl.metadata
        for part, source, target in (("labels", md.labels if md else {}, "Labels"),
                                     ("annotations", md.annotations if md else {}, "Annotations")):
            rendered: dict[str, str] = {}
            # templateFrom entries aimed at labels/annotations first; template.metadata wins a clash.
            pending: list[tuple[str, str, str | None]] = [
                (key, f"templateFrom(target {target}).{key}", to_text(v.reveal()))
                for key, v in self._render_from(es.ref, tmpl, target, values, lookup)]
            pending += [(key, f"metadata.{part}.{key}", None) for key in source]
            for key, field, done in pending:
                why = reserved_metadata_key(key)
                if why is not None:
                    raise TemplateError(es.ref, field, why)
                if done is not None and any(n in key.casefold() for n in needles):
                    raise TemplateError(es.ref, f"templateFrom(target {target})", "a rendered key contains a "
                                                                                  "fetched secret value")
                if done is None:
                    text = source[key]
                    if "{{" not in text and "{%" not in text:
                        rendered[key] = text
                        continue
                    value = to_text(self.render(es.ref, field, text, values, lookup).reveal())
                else:
                    value = done
                if any(n in value.casefold() for n in needles):
                    raise TemplateError(es.ref, field, "the rendered value contains a fetched secret value; "
                                                       "Secret metadata is readable by anyone who may list "
                                                       "Secrets, so values may only appear hashed")
                if part == "labels" and not _LABEL_VALUE.fullmatch(value):
                    raise TemplateError(es.ref, field, "the rendered value is not a valid label value (at most "
                                                       "63 characters: alphanumerics, '-', '_', '.')")
                rendered[key] = value
            out.append(rendered)
        return out[0], out[1]


_default_engine: TemplateEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> TemplateEngine:
    """A process-wide engine (compiled templates are shared)."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = TemplateEngine()
        return _default_engine
