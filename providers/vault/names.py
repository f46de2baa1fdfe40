"""Vault/OpenBao secret names: which names are stored verbatim, and how a name becomes a URL path.

Why here: a KV path is a folder tree, so ``/`` separates segments and every segment is
percent-encoded on its own (hvac joins the URL as text: a name with ``?``, ``#``, ``%`` or a
space would otherwise change the request). The migrator picks names from :data:`NAME_RULES`
so that the name in a plan is the path in Vault.
"""

from __future__ import annotations

from urllib.parse import quote

from secretsync.core.contract import NameRules

#: Names this provider stores verbatim (what the migrator may choose).
NAME_RULES = NameRules(r"A-Za-z0-9/_.@+=-", 512, True)


def quote_path(path: str) -> str:
    """Percent-encode each segment of a Vault path (keeping the slashes between them)."""
    return "/".join(quote(seg, safe="") for seg in path.split("/"))
