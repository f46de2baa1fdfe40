"""Values stay out of SDK log records and SDK error text, whatever the caller's logging setup."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from secretsync.core.redact import REDACTED, SdkBodyRedactor, guard_sdk_loggers, mask_values
from secretsync.core.values import SecretValue

CANARY = "canary-redact-Zq8w-0101"


def test_every_spelling_of_a_value_is_masked() -> None:
    unicode_value = SecretValue("pässwörd-" + CANARY)
    spellings = [
        CANARY,
        json.dumps("pässwörd-" + CANARY)[1:-1],  # JSON with \\u escapes
        base64.b64encode(CANARY.encode()).decode(),
        repr(b"\xff" + CANARY.encode())[2:-1],  # a bytes repr
    ]
    for text in spellings:
        masked = mask_values(f"error: {text} refused", [SecretValue(CANARY), unicode_value,
                                                         SecretValue(b"\xff" + CANARY.encode())])
        assert CANARY not in masked and "***" in masked, masked


def test_short_values_are_not_masked_and_none_is_ignored() -> None:
    assert mask_values("the id is abc", [SecretValue("abc"), None]) == "the id is abc"


def test_guarded_loggers_lose_bodies_but_keep_their_templates(caplog: pytest.LogCaptureFixture) -> None:
    name = "secretsync.tests.fake_sdk.parsers"
    guard_sdk_loggers([name])
    guard_sdk_loggers([name])  # idempotent
    logger = logging.getLogger(name)
    assert sum(isinstance(f, SdkBodyRedactor) for f in logger.filters) == 1
    with caplog.at_level(logging.DEBUG, logger=name):
        logger.debug("Response body:\n%r", json.dumps({"SecretString": CANARY}).encode())
        logger.debug("Making request for %s with params: %s", "GetSecretValue", {"body": CANARY})
        logger.debug("attempt %d of %d", 2, 3)
        logger.debug("Sending request", extra={"request": {"payload": CANARY, "metadata": {
            "authorization": "Bearer " + CANARY, "x-goog-request-params": "name=x"}}})
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert CANARY not in text
    assert "Response body:" in text and REDACTED in text
    assert "attempt 2 of 3" in text  # numbers are not bodies
    assert "x-goog-request-params" in text  # only payloads and credentials go


def test_the_sdk_loggers_that_dump_bodies_are_guarded_on_import() -> None:
    pytest.importorskip("botocore")
    pytest.importorskip("google.cloud.secretmanager_v1")
    import secretsync_providers.aws.sdk
    import secretsync_providers.gcp.auth  # noqa: F401

    transports = "google.cloud.secretmanager_v1.services.secret_manager_service.transports"
    for name in ("botocore.parsers", "botocore.endpoint", f"{transports}.grpc"):
        assert any(isinstance(f, SdkBodyRedactor) for f in logging.getLogger(name).filters), name
