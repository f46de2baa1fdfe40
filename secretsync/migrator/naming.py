"""Provider key names from a template, made legal for the target provider.

Why per store: ``default/api/DB_PASSWORD`` is a fine Secrets Manager or Vault name, but GCP
allows only ``[A-Za-z0-9_-]``, Azure Key Vault only ``[0-9A-Za-z-]`` (127 chars), and an SSM
Parameter Store path must start with '/'. The rules are the provider's own answer for the
target store (:class:`~secretsync.core.contract.NameRules`), so a chosen name
is stored verbatim, never encoded a second time by the provider. A name that
had to be shortened keeps a short hash of the full name, so two long names never collapse
into one.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping

from secretsync.core.contract import DEFAULT_NAME_RULES, NameRules, name_rules_of
from secretsync.core.errors import InvalidConfig
from secretsync.core.registry import get_factory

#: ``{unit}`` first: ``envs/dev`` and ``envs/prod`` of one app get distinct keys (empty for a flat tree).
DEFAULT_TEMPLATE = "{unit}/{namespace}/{name}/{key}"

#: What a name template may use.
PLACEHOLDERS = {
    "unit": "the deploy unit: the directory of the kustomization that lists the file, of its Helm chart, or of "
            "the file (relative to the planned root; empty at the root and for --cluster)",
    "name": "the name of the object that owns the value (same as {workload})",
    "namespace": "the object's namespace (kustomization namespace, else 'default')",
    "workload": "the name of the object that owns the value (workload, ConfigMap, Secret, generator, chart)",
    "kind": "that object's kind, lower case",
    "key": "the key in the synced Secret (env var, data key, flag-derived env var, values leaf)",
    "container": "the container name (env and argument findings), else empty",
    "file": "the source file's path without extension (manifest mode), else empty",
    "subkey": "the entry inside an embedded file, else empty",
}


def check_template(template: str) -> None:
    """Raise InvalidConfig naming an unknown placeholder (and listing the known ones)."""
    for _, field, _, _ in string.Formatter().parse(template):
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise InvalidConfig(f"--name-template: unknown placeholder {{{field}}} (known: {known})")


def rules_for(provider: str, store_url: str | None = None) -> NameRules:
    """What the target stores verbatim: the rules its factory gives for the store at
    ``store_url`` (an ``aws`` store on Parameter Store names paths, not Secrets Manager names),
    else the provider's declared ``name_rules``. A bad URL raises InvalidConfig naming it."""
    try:
        factory = get_factory(provider)
    except InvalidConfig:  # not installed here: portable names
        return DEFAULT_NAME_RULES
    return name_rules_of(factory, factory.config_from_url(store_url) if store_url else None)


def _filler(rules: NameRules) -> str:
    """The character that replaces illegal ones: '-' where the provider allows it."""
    return next((c for c in "-_." if re.fullmatch(f"[{rules.allowed}]", c)), "x")


def sanitize(name: str, target: str | NameRules) -> str:
    """``name`` made legal for ``target`` (a store's :class:`NameRules`, or a provider's declared
    ones): bad characters -> '-' (or the nearest legal filler), empty segments dropped, segments
    joined by '/' where allowed (the deepest ones merged past ``max_depth``), a reserved first
    word or a non-letter start guarded by ``s-``, a leading '/' where the store wants one."""
    rules = target if isinstance(target, NameRules) else rules_for(target)
    fill = _filler(rules)
    sep = "/" if rules.slash else fill
    run = re.compile(f"{re.escape(fill)}{{2,}}")
    parts = [p for p in name.split("/") if p and p not in (".", "..")]
    cleaned = []
    for part in parts:
        part = re.sub(f"[^{rules.allowed}]", fill, part)
        part = run.sub(fill, part).strip(fill) or "x"
        cleaned.append(part)
    if rules.slash and rules.max_depth and len(cleaned) > rules.max_depth:
        cleaned[rules.max_depth - 1:] = [fill.join(cleaned[rules.max_depth - 1:])]
    out = sep.join(cleaned) or "secret"
    if ((rules.first_alpha and not out[0].isalpha())
            or any(out.lower().startswith(word.lower()) for word in rules.reserved_starts)):
        out = "s" + fill + out
    lead = "/" if rules.leading_slash else ""
    room = rules.max_len - len(lead)
    if len(out) > room:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        out = out[: room - 11].rstrip(fill + "/") + fill + digest
    return lead + out


def render(template: str, fields: Mapping[str, str | None], target: str | NameRules) -> str:
    """Fill the template (unknown placeholders raise InvalidConfig) and sanitize for ``target``."""
    check_template(template)
    values = {k: (fields.get(k) or "") for k in PLACEHOLDERS}
    values["name"] = values["name"] or values["workload"]  # two names for one field
    values["workload"] = values["workload"] or values["name"]
    return sanitize(template.format_map(values), target)


def secret_key(name: str) -> str:
    """A legal key in a Kubernetes Secret's data (``[-._a-zA-Z0-9]+``)."""
    out = re.sub(r"[^-._a-zA-Z0-9]", "_", name).strip(".") or "value"
    return out[:253]


def env_var_for_flag(flag: str) -> str:
    """The env var that carries a command-line flag's value: ``--db-password`` -> SECRETSYNC_DB_PASSWORD.

    Prefixed so it cannot shadow a variable the application already reads.
    """
    core = re.sub(r"[^A-Za-z0-9]+", "_", flag.lstrip("-")).strip("_").upper() or "ARG"
    return f"SECRETSYNC_{core}"


def object_name(*parts: str, suffix: str = "") -> str:
    """A DNS-1123 subdomain name (ExternalSecret / Secret names), hashed when too long."""
    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9.-]", "-", raw.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-.") or "secretsync"
    full = name + suffix
    if len(full) > 253:
        digest = hashlib.sha256(full.encode()).hexdigest()[:8]
        full = name[: 253 - len(suffix) - 9].rstrip("-.") + "-" + digest + suffix
    return full
