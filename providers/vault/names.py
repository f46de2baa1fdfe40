"""Vault/OpenBao secret names: which names are stored verbatim, and how a name becomes a URL path.

Why here: a KV path is a folder tree, so ``/`` separates segments and every segment is
percent-encoded on its own (hvac joins the URL as text: a name with ``?``, ``#``, ``%`` or a
space would otherwise change the request). The migrator picks names from :data:`NAME_RULES`
so that the name in a plan is the path in Vault.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from secretsync.core.contract import NameRules

#: Names this provider stores verbatim (what the migrator may choose).
NAME_RULES = NameRules(r"A-Za-z0-9/_.@+=-", 512, True)


def quote_path(path: str) -> str:
    """Percent-encode each segment of a Vault path (keeping the slashes between them)."""
    return "/".join(quote(seg, safe="") for seg in path.split("/"))


def read_paths(name: str, mount: str, kv2: Callable[[], bool | None]) -> list[str]:
    """The paths inside the mount a read of ``name`` tries, in order.

    As ESO, a key written with the mount (``secret/foo``, and on KV v2 ``secret/data/foo``)
    means ``foo`` inside the mount; the literal path comes last, so a secret really named
    ``secret/foo`` is still found and a NotFound means none exists. ``kv2`` is asked only for
    a ``MOUNT/data/`` key (asking may probe the server); None (unknown) gives both readings.
    """
    head = mount + "/"
    if not name.startswith(head) or len(name) == len(head):
        return [name]
    rest = name[len(head):]
    if rest.startswith("data/") and len(rest) > 5:
        v2 = kv2()
        if v2 is None:
            return [rest[5:], rest, name]
        if v2:
            rest = rest[5:]
    return [rest, name]
