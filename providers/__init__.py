"""Provider adapters, one folder each; installed as the import package ``secretsync_providers``.

Each adapter hides its SDK behind the smallest interface it uses and maps every SDK error
into :mod:`secretsync.core.errors` at the boundary.
"""
