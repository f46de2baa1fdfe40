"""HashiCorp Vault / OpenBao provider (KV v1 and v2) on hvac: ``vault://[HOST:PORT]/MOUNT``.

The package exports only ``factory`` (found through the ``secretsync.providers`` entry
point); hvac stays behind :mod:`.transport`, and every SDK error is mapped by :mod:`.errors`.
"""

from .factory import VaultFactory, factory

__all__ = ["VaultFactory", "factory"]
