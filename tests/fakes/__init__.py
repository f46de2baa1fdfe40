"""Wire-level fakes of cloud services, driven by the real SDKs (see each module)."""

from __future__ import annotations

import base64
import json
from typing import Any


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: the fakes trust the test apiserver that issued the
    ServiceAccount tokens they are shown, as a federation set up for that issuer would."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
