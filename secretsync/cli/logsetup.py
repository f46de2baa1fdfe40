"""Logging for the CLI and the controller, with SDK loggers held at WARNING.

Why pin the SDK loggers: botocore, urllib3, azure-core and hvac log request and
response bodies at DEBUG, and those bodies hold secret values. ``--log-level debug``
turns on secretsync's own debug lines only; they never include values.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

#: SDK loggers that warn about what the adapter already reports as a mapped error.
QUIET_LOGGERS = ("azure.core.exceptions", "azure.keyvault")

SDK_LOGGERS = (
    "botocore", "boto3", "urllib3", "s3transfer", "azure", "msal", "hvac", "google", "grpc",
    "kubernetes", "requests", "moto", "werkzeug",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("namespace", "name", "store", "reason", "key"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def setup_logging(level: str = "warning", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("secretsync").setLevel(getattr(logging, level.upper()))
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # azure-core logs a multi-line WARNING with a traceback for every error body that is not
    # JSON; our adapter already maps that error, so the warning only breaks one-line output.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
