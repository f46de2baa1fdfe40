"""GCP Secret Manager provider (``gcp://PROJECT``), found through the ``secretsync.providers`` entry point.

See docs/providers.md for authentication, IAM roles, the secret-id mapping and the cost
of change detection.
"""

from .factory import GcpFactory, factory

__all__ = ["GcpFactory", "factory"]
