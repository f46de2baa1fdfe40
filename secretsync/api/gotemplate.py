"""Translate ESO's Go templates (text/template + Sprig) into our Jinja2 templates.

Why a translator instead of "rewrite your templates by hand": most ESO templates are a
handful of shapes (``{{ .key }}``, ``{{ .key | toString }}``, ``{{ .key | b64dec }}``,
``{{ .p12 | pkcs12cert }}``, ``{{ index . "dashed-key" }}``, ``{{ .url | replace "a" "b" }}``),
and translating them mechanically is both faster and less error-prone than doing it by
hand for hundreds of ExternalSecrets. Anything outside those shapes (control structures,
variables, unknown functions) is *reported*, never guessed: :func:`translate` returns the
problems and the caller refuses to call the object converted.

Go pipelines pass the piped value as the LAST argument (``.x | replace "a" "b"`` is
``replace "a" "b" .x``); Jinja filters take it first (``x | replace("a", "b")``). The
table below records, per function, how the arguments map.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

#: Go/Sprig/ESO function -> Jinja filter with the same arguments minus the piped value.
_FILTERS: dict[str, str] = {
    "toString": "toString",
    "b64enc": "b64enc",
    "b64dec": "b64dec",
    "upper": "upper",
    "lower": "lower",
    "trim": "trim",
    "title": "title",
    "toJson": "toJson",
    "fromJson": "fromJson",
    "toYaml": "toYaml",
    "fromYaml": "fromYaml",
    "quote": "quote",
    "replace": "replace",
    "filterPEM": "filterPEM",
    "pkcs12key": "pkcs12key",
    "pkcs12keyPass": "pkcs12keyPass",
    "pkcs12cert": "pkcs12cert",
    "pkcs12certPass": "pkcs12certPass",
}
#: Functions whose Go argument order is our global function's order.
_GLOBALS: dict[str, str] = {
    "pemToPkcs12": "pemToPkcs12",
    "pemToPkcs12Pass": "pemToPkcs12Pass",
}
_KEYWORDS = ("if", "else", "end", "range", "with", "define", "template", "block", "break", "continue")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JINJA_RESERVED = {"values", "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is",
                   "if", "else", "for", "loop", "configMapKey", "secretKey"}


class _Unsupported(Exception):
    pass


@dataclass
class Translation:
    """The Jinja2 text, what could not be translated, and notes on changed behaviour."""

    text: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The template is a Helm-escaped one (``{{ `{{ .x }}` }}``) and was kept Helm-escaped.
    helm_escaped: bool = False


def _scan_actions(src: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and ("action", inner-with-trim-markers) parts, honouring quotes."""
    parts: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            parts.append(("text", src[pos:]))
            return parts
        parts.append(("text", src[pos:start]))
        i = start + 2
        quote: str | None = None
        while i < len(src):
            ch = src[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 2
                    continue
                if ch == quote:
                    quote = None
            elif ch in ('"', "`", "'"):
                quote = ch
            elif src.startswith("}}", i):
                break
            i += 1
        else:
            raise _Unsupported("unterminated {{ action")
        parts.append(("action", src[start + 2:i]))
        pos = i + 2


def _tokens(expr: str) -> list[str]:
    """Go template tokens: strings, raw strings, parens, pipes, words."""
    out: list[str] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch.isspace():
            i += 1
        elif ch == '"':
            j = i + 1
            while j < len(expr) and expr[j] != '"':
                j += 2 if expr[j] == "\\" else 1
            out.append(expr[i:j + 1])
            i = j + 1
        elif ch == "`":
            j = expr.index("`", i + 1) if "`" in expr[i + 1:] else len(expr)
            out.append(expr[i:j + 1])
            i = j + 1
        elif ch in "()|":
            out.append(ch)
            i += 1
        else:
            j = i
            while j < len(expr) and not expr[j].isspace() and expr[j] not in "()|\"`":
                j += 1
            out.append(expr[i:j])
            i = j
    return out


def _is_operand(tok: str) -> bool:
    return tok[:1] in ('.', '"', "`", "$") or tok in ("true", "false", "nil") or bool(
        re.fullmatch(r"-?\d+(\.\d+)?", tok))


def _jinja_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _Translator:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def operand(self, tok: str) -> str:
        if tok.startswith('"'):
            try:
                return _jinja_string(json.loads(tok))
            except ValueError:
                raise _Unsupported(f"string literal {tok} uses Go escapes") from None
        if tok.startswith("`"):
            return _jinja_string(tok[1:-1])
        if tok in ("true", "false"):
            return tok
        if tok == "nil":
            return "none"
        if re.fullmatch(r"-?\d+(\.\d+)?", tok):
            return tok
        if tok == ".":
            raise _Unsupported("'.' (the whole data map) has no Jinja equivalent; use values")
        if tok.startswith("$"):
            raise _Unsupported(f"template variables ({tok}) are not translated")
        if tok.startswith("."):
            parts = tok[1:].split(".")
            head = self.variable(parts[0])
            if len(parts) > 1:
                self.notes.append(f"{tok}: nested access on a secret value is translated as JSON access "
                                  f"({head} | fromJson)")
                return f"({head} | fromJson)" + "".join(f"[{_jinja_string(p)}]" for p in parts[1:])
            return head
        raise _Unsupported(f"function or word {tok!r} is not translated")

    @staticmethod
    def variable(name: str) -> str:
        if _IDENT.match(name) and name not in _JINJA_RESERVED:
            return name
        return f"values[{_jinja_string(name)}]"

    def command(self, toks: list[str], piped: str | None) -> str:
        """One pipeline command; ``piped`` is the Jinja expression of the value piped in."""
        if not toks:
            raise _Unsupported("empty command")
        head = toks[0]
        if head in _KEYWORDS:
            raise _Unsupported(f"control structure {{{{ {head} }}}} is not translated")
        if head == "index":
            if piped is not None or len(toks) != 3 or toks[1] != "." or toks[2][:1] not in ('"', "`"):
                raise _Unsupported('index is only translated as index . "key"')
            key = json.loads(toks[2]) if toks[2].startswith('"') else toks[2][1:-1]
            return self.variable(key)
        args = self.args(toks[1:])
        if head == "printf":
            if not args or not args[0].startswith('"'):
                raise _Unsupported("printf needs a literal format")
            fmt = json.loads(args[0])
            if re.search(r"%[^sdv%]", fmt):
                raise _Unsupported(f"printf format {fmt!r} uses verbs other than %s %d %v")
            rest = args[1:] + ([piped] if piped is not None else [])
            return f"{_jinja_string(fmt.replace('%v', '%s'))} | format({', '.join(rest)})"
        if head == "default":
            if len(args) + (piped is not None) != 2:
                raise _Unsupported("default takes two values")
            value = piped if piped is not None else args[1]
            return f"{value} | default({args[0]}, true)"
        if head in _FILTERS:
            all_args = list(args) + ([piped] if piped is not None else [])
            if not all_args:
                raise _Unsupported(f"{head} needs a value")
            value, extra = all_args[-1], all_args[:-1]
            call = _FILTERS[head] + (f"({', '.join(extra)})" if extra else "")
            return f"{value} | {call}"
        if head in _GLOBALS:
            all_args = list(args) + ([piped] if piped is not None else [])
            return f"{_GLOBALS[head]}({', '.join(all_args)})"
        raise _Unsupported(f"function {head!r} has no translation")

    def args(self, toks: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(toks):
            if toks[i] == "(":
                depth, j = 1, i + 1
                while j < len(toks) and depth:
                    depth += {"(": 1, ")": -1}.get(toks[j], 0)
                    j += 1
                out.append(f"({self.pipeline(toks[i + 1:j - 1])})")
                i = j
            else:
                out.append(self.operand(toks[i]))
                i += 1
        return out

    def pipeline(self, toks: list[str]) -> str:
        commands: list[list[str]] = [[]]
        depth = 0
        for t in toks:
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
            if t == "|" and depth == 0:
                commands.append([])
            else:
                commands[-1].append(t)
        expr: str | None = None
        for cmd in commands:
            if expr is None and cmd and (cmd[0] == "(" or (len(cmd) == 1 and _is_operand(cmd[0]))):
                values = self.args(cmd)
                if len(values) != 1:
                    raise _Unsupported("a value cannot be called like a function")
                expr = values[0]
            else:
                expr = self.command(cmd, expr)
        assert expr is not None
        return expr


def _escape_text(text: str) -> str:
    """Literal text that Jinja would otherwise read as a tag or comment."""
    return re.sub(r"\{[%#]", lambda m: "{{ " + _jinja_string(m.group(0)) + " }}", text)


def translate(source: str) -> Translation:
    """Translate one Go template into Jinja2 (see the module docstring for what is covered)."""
    tr = _Translator()
    problems: list[str] = []
    try:
        parts = _scan_actions(source)
    except _Unsupported as exc:
        return Translation(source, [str(exc)])
    # {{ `...{{ .x }}...` }}: a Helm-escaped template. Translate the inside, keep the escape.
    stripped = source.strip()
    actions = [p for p in parts if p[0] == "action"]
    if (len(actions) == 1 and stripped.startswith("{{") and stripped.endswith("}}")
            and re.fullmatch(r"\s*-?\s*`[^`]*`\s*-?\s*", actions[0][1]) and "{{" in actions[0][1]):
        inner = actions[0][1].strip().strip("-").strip()[1:-1]
        sub = translate(inner)
        text = source.replace(inner, sub.text)
        return Translation(text, sub.problems, [*sub.notes, "kept Helm-escaped ({{ `...` }}): render it with helm"],
                           helm_escaped=True)
    out: list[str] = []
    for kind, body in parts:
        if kind == "text":
            out.append(_escape_text(body))
            continue
        left = "-" if body.startswith("-") and body[1:2] in (" ", "\t", "\n") else ""
        right = "-" if body.endswith("-") and body[-2:-1] in (" ", "\t", "\n") else ""
        inner = body[len(left):len(body) - len(right)].strip()
        if inner.startswith("/*") and inner.endswith("*/"):
            out.append("{#" + left + " " + inner[2:-2].strip().replace("#}", "# }") + " " + right + "#}")
            continue
        try:
            expr = tr.pipeline(_tokens(inner))
        except _Unsupported as exc:
            problems.append(f"{{{{ {inner} }}}}: {exc}")
            out.append("{{" + left + " " + _jinja_string("{{ " + inner + " }}") + " " + right + "}}")
            continue
        except (ValueError, IndexError):
            problems.append(f"{{{{ {inner} }}}}: could not parse")
            out.append("{{" + left + " " + _jinja_string("{{ " + inner + " }}") + " " + right + "}}")
            continue
        out.append("{{" + left + " " + expr + " " + right + "}}")
    return Translation("".join(out), problems, tr.notes)
