"""Secret names in the Kubernetes provider: Secret object names (DNS subdomains)."""

from __future__ import annotations

import re

from secretsync.core.contract import NameRules
from secretsync.core.errors import InvalidConfig

from .config import PROVIDER

#: What the API server accepts as a Secret name, stored as is.
NAME_RULES = NameRules(r"a-z0-9.-", 253, False)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check_name(name: str, operation: str) -> str:
    """A Secret name, checked before any call: anything else could only be a guess (a 404
    for a name no Secret can have must not read as "absent")."""
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise InvalidConfig("invalid Secret name: a DNS subdomain of at most 253 characters is required",
                            provider=PROVIDER, operation=operation, key=str(name)[:253])
    return name
