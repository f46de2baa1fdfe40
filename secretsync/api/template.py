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
* Template errors name the ExternalSecret and the template key, never a value: exception
  texts are scrubbed of every value before they reach a status condition or a log.

Filters/functions (names follow ESO's where they exist): ``b64enc``, ``b64dec``, ``fromJson``,
``toJson``, ``fromYaml``, ``toYaml``, ``toString``, ``quote``, ``filterPEM(type)``,
``pemCertificate``, ``pemPrivateKey``, ``pkcs12key``, ``pkcs12keyPass(pw)``, ``pkcs12cert``,
``pkcs12certPass(pw)``, ``pemToPkcs12(key)``, ``pemToPkcs12Pass(key, pw)``, plus Jinja's
built-ins (``upper``, ``lower``, ``replace``, ``trim``, ``default``...). Globals:
``configMapKey(name, key)`` and ``secretKey(name, key)`` (same namespace only).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from jinja2 import StrictUndefined, Template, UndefinedError
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from secretsync.core.errors import InvalidConfig, SecretSyncError
from secretsync.core.values import SecretValue

from .models import ExternalSecret, TargetTemplate

#: Kubernetes caps a Secret at 1 MiB; a template producing more is a bug or an attack.
MAX_OUTPUT = 1024 * 1024
#: Largest string/list a single ``*`` may build inside a template.
MAX_REPEAT = 1024 * 1024
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

#: ``lookup(kind, name, key)`` with kind ``"ConfigMap"`` or ``"Secret"``: the runtime binds it
#: to the ExternalSecret's namespace. Raise :class:`secretsync.core.errors.NotFound` when the
#: object or key is absent; other errors (apiserver unavailable) propagate unchanged.
ResourceLookup = Callable[[str, str, str], "str | SecretValue"]


class TemplateError(InvalidConfig):
    """A template failed to compile or render. Names the object and key; never a value."""

    reason = "TemplateError"

    def __init__(self, obj_ref: str, key: str, detail: str) -> None:
        self.obj_ref = obj_ref
        self.template_key = key
        super().__init__(f"{obj_ref}: template {key!r}: {detail}")


def to_text(data: bytes) -> str:
    """Bytes -> the str a template sees (binary-safe)."""
    return data.decode("utf-8", "surrogateescape")


def to_bytes(text: str) -> bytes:
    """The inverse of :func:`to_text`."""
    return text.encode("utf-8", "surrogateescape")


class _HelperError(Exception):
    """Raised by our filters with a message that is safe to show (no value in it)."""


# --------------------------------------------------------------------------- filters
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


def _from_yaml(value: Any) -> Any:
    try:
        return yaml.safe_load(str(value))
    except yaml.YAMLError:
        raise _HelperError("fromYaml: input is not valid YAML") from None


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip("\n")


def _quote(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)


_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.DOTALL
)


def _filter_pem(value: Any, pem_type: str) -> str:
    """Every PEM block of ``pem_type`` (e.g. ``CERTIFICATE``), in order (ESO's filterPEM)."""
    blocks = [m.group(0).rstrip("\r\n") + "\n" for m in _PEM_BLOCK.finditer(str(value)) if m.group(1) == pem_type]
    if not blocks:
        raise _HelperError(f"filterPEM: no {pem_type} block found")
    return "".join(blocks)


def _pem_certificate(value: Any) -> str:
    return _filter_pem(value, "CERTIFICATE")


def _pem_private_key(value: Any) -> str:
    blocks = [m.group(0).rstrip("\r\n") + "\n" for m in _PEM_BLOCK.finditer(str(value))
              if m.group(1).endswith("PRIVATE KEY")]
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
class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox plus a cap on ``*`` and ``**`` (memory exhaustion)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_REPEAT:
                    raise SecurityError("repetition result too large")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 1024:
            raise SecurityError("exponent too large")
        return super().call_binop(context, operator, left, right)


def _scrub(message: str, secrets: Iterable[str]) -> str:
    """Remove every value (and its repr form) from an error message."""
    for s in sorted(set(secrets), key=len, reverse=True):
        if not s:
            continue
        forms = {s, repr(s)[1:-1]}
        for form in forms:
            if len(form) >= 3 and form in message:
                message = message.replace(form, "***")
            elif form and (f"'{form}'" in message or f'"{form}"' in message):
                message = message.replace(f"'{form}'", "'***'").replace(f'"{form}"', '"***"')
    return message


class TemplateEngine:
    """Compiles templates once (bounded cache) and renders them; safe to share across threads."""

    def __init__(self, cache_size: int = 512) -> None:
        env = _Sandbox(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
        env.filters.update(FILTERS)
        # The PEM/PKCS#12 helpers and b64 are also callable as functions (ESO style).
        env.globals.update(FILTERS)
        self._env = env
        self._cache: OrderedDict[str, Template] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile(self, source: str) -> Template:
        """Compile (cached); raises jinja2.TemplateSyntaxError."""
        with self._lock:
            tmpl = self._cache.get(source)
            if tmpl is not None:
                self._cache.move_to_end(source)
                return tmpl
        tmpl = self._env.from_string(source)
        with self._lock:
            self._cache[source] = tmpl
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return tmpl

    def check_syntax(self, obj_ref: str, key: str, source: str) -> None:
        """Raise TemplateError when ``source`` does not compile (for validation before any fetch)."""
        try:
            self.compile(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(obj_ref, key, f"syntax error at line {exc.lineno}: {exc.message}") from None

    def render(
        self,
        obj_ref: str,
        key: str,
        source: str,
        values: Mapping[str, SecretValue],
        lookup: ResourceLookup | None = None,
    ) -> SecretValue:
        """Render one template with ``values`` as variables; the result is a SecretValue.

        Raises TemplateError (naming ``obj_ref`` and ``key``, never a value). Errors the
        lookup callback raises from :mod:`secretsync.core.errors` other than NotFound (e.g.
        the API server is unavailable) propagate unchanged so they are retried.
        """
        texts = {k: to_text(v.reveal()) for k, v in values.items()}
        try:
            tmpl = self.compile(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(obj_ref, key, f"syntax error at line {exc.lineno}: {exc.message}") from None
        variables: dict[str, Any] = {k: v for k, v in texts.items() if k.isidentifier()}
        variables["values"] = texts
        variables.update(self._lookup_functions(lookup, texts))
        try:
            out: list[str] = []
            size = 0
            for chunk in tmpl.generate(variables):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise TemplateError(obj_ref, key, f"output larger than {MAX_OUTPUT} bytes")
                out.append(chunk)
        except TemplateError:
            raise
        except SecretSyncError as exc:
            if exc.retryable:
                raise
            raise TemplateError(obj_ref, key, _scrub(str(exc), texts.values())) from None
        except _HelperError as exc:
            raise TemplateError(obj_ref, key, str(exc)) from None
        except SecurityError as exc:
            detail = "not allowed in a template: " + _scrub(str(exc), texts.values())
            raise TemplateError(obj_ref, key, detail) from None
        except UndefinedError as exc:
            raise TemplateError(obj_ref, key, _scrub(str(exc), texts.values())) from None
        except JinjaTemplateError as exc:
            raise TemplateError(obj_ref, key, _scrub(str(exc), texts.values())) from None
        except Exception as exc:  # any error a built-in raised while handling a value
            detail = f"{type(exc).__name__}: {_scrub(str(exc), texts.values())}"
            raise TemplateError(obj_ref, key, detail) from None
        return SecretValue(to_bytes("".join(out)))

    @staticmethod
    def _lookup_functions(lookup: ResourceLookup | None, texts: Mapping[str, str]) -> dict[str, Any]:
        def fetch(kind: str, name: Any, key: Any) -> str:
            if lookup is None:
                raise _HelperError(f"{kind} lookups are not available here")
            if not isinstance(name, str) or not _NAME.match(name):
                raise _HelperError(f"{kind} name must be a name in the same namespace")
            if not isinstance(key, str) or not _KEY.match(key):
                raise _HelperError(f"{kind} key must be a valid key")
            result = lookup(kind, name, key)
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

        Label and annotation values are deliberately NOT templated: metadata is readable
        by anyone who may list Secrets' metadata, so secret values must never land there.
        """
        tmpl: TargetTemplate | None = es.spec.target.template
        if tmpl is None or (not tmpl.data and not tmpl.template_from):
            return dict(values)
        rendered: dict[str, SecretValue] = {}
        for i, tf in enumerate(tmpl.template_from):
            kind, ref = ("ConfigMap", tf.config_map) if tf.config_map is not None else ("Secret", tf.secret)
            assert ref is not None  # the parser guarantees exactly one
            for item in ref.items:
                label = f"templateFrom[{i}].{kind[0].lower() + kind[1:]}.{ref.name}/{item.key}"
                if lookup is None:
                    raise TemplateError(es.ref, label, f"{kind} lookups are not available here")
                try:
                    source = lookup(kind, ref.name, item.key)
                except SecretSyncError as exc:
                    if exc.retryable:
                        raise
                    raise TemplateError(es.ref, label, f"cannot read the template: {exc}") from None
                text = to_text(source.reveal()) if isinstance(source, SecretValue) else str(source)
                rendered[item.key] = self.render(es.ref, label, text, values, lookup)
        for key, source in tmpl.data.items():
            rendered[key] = self.render(es.ref, key, source, values, lookup)
        if tmpl.merge_policy == "Merge":
            return {**values, **rendered}
        return rendered


_default_engine: TemplateEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> TemplateEngine:
    """A process-wide engine (compiled templates are shared)."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = TemplateEngine()
        return _default_engine
