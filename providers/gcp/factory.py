"""``gcp://PROJECT[/PREFIX][?location=LOCATION][&endpoint=HOST]``: the Secret Manager provider factory.

Config keys (a SecretStore's ``spec.provider.gcp`` maps onto the same names):

* ``project`` (required): project id (``my-project``), number, or ``domain.com:project``;
* ``prefix`` (optional): names are relative to this folder (``PREFIX/name``), as with aws://;
* ``location`` (optional): use regional secrets in this location (and its regional endpoint);
* ``endpoint`` (optional): a TLS endpoint other than ``secretmanager.googleapis.com``
  (Private Service Connect, a regional endpoint).

The plaintext test endpoint of the fake server is not a store field: it is the process's
``SECRETSYNC_GCP_INSECURE_ENDPOINT`` (see :mod:`.connect`), so no store author can make the
client send anything in plaintext.

Credentials passed to :meth:`GcpFactory.open` (resolved Secret references): ``serviceAccountKey``
(a ``service_account`` key JSON, nothing else) or ``accessToken``; without them, Application
Default Credentials apply (see :mod:`.connect`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from secretsync.core.changes import ChangeFeed
from secretsync.core.contract import CredentialUse, NameRules, SecretsClient, StoreBlock, generic_store_block
from secretsync.core.errors import InvalidConfig
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from .api import SecretManagerApi
from .client import CAPABILITIES, GcpClient
from .connect import build_sdk_client, connection_spec
from .events import open_feed, validate_subscription
from .naming import encode_secret_id

_PROJECT = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})$")
_LOCATION = re.compile(r"^[a-z]+(?:-[a-z0-9]+)+$")
#: An API endpoint: a host name, optionally with a port (what ClientOptions.api_endpoint takes).
_ENDPOINT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?$")
_KEYS = {"project", "prefix", "location", "endpoint"}
_URL_KEYS = {"location", "endpoint"}


class GcpFactory:
    name = "gcp"
    #: Other keys its SecretStore block may be written under.
    aliases: tuple[str, ...] = ("gcpsm",)
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NameRules(r"A-Za-z0-9_-", 255, False)
    #: The block's description in the SecretStore CRD.
    block_doc = 'GCP Secret Manager: {project, location?, endpoint?, secretRef?: {serviceAccountKey | accessToken}}.'
    capabilities = CAPABILITIES

    def store_block(self, block: Mapping[str, Any]) -> StoreBlock:
        """The block as written -> canonical config and the credentials it names."""
        return generic_store_block(block)

    def config_from_url(self, url: str) -> dict[str, Any]:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise InvalidConfig(f"gcp:// store URL {url!r} does not parse: {exc}") from None
        if parts.scheme.lower() not in ("gcp", "gcpsm"):
            raise InvalidConfig(f"not a gcp:// URL: {url!r}")
        project = unquote(parts.netloc)
        if not project:
            raise InvalidConfig("gcp:// store URL needs a project, e.g. gcp://my-project")
        config: dict[str, Any] = {"project": project}
        prefix = unquote(parts.path).strip("/")
        if prefix:
            config["prefix"] = prefix
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in _URL_KEYS:
                raise InvalidConfig(f"gcp:// store URL: unknown parameter {key!r} "
                                    f"(known: {', '.join(sorted(_URL_KEYS))})")
            config[key] = value
        return config

    def validate_config(self, config: Mapping[str, Any]) -> None:
        unknown = sorted(set(config) - _KEYS)
        if unknown:
            raise InvalidConfig(f"gcp store config: unknown field(s) {unknown} (known: {sorted(_KEYS)})")
        project = config.get("project")
        if not isinstance(project, str) or not _PROJECT.match(project):
            raise InvalidConfig(f"gcp store config field 'project': {project!r} is not a project id "
                                "(6-30 lowercase letters, digits, hyphens) or project number")
        prefix = config.get("prefix")
        if prefix is not None:
            if not isinstance(prefix, str) or "//" in prefix.strip("/"):
                raise InvalidConfig(f"gcp store config field 'prefix': {prefix!r} must be a path without '//'")
            if any(seg in (".", "..") for seg in prefix.strip("/").split("/")) and prefix.strip("/"):
                raise InvalidConfig(f"gcp store config field 'prefix': {prefix!r} has a '.' or '..' segment")
            if prefix.strip("/"):
                try:
                    encode_secret_id(prefix.strip("/") + "/x")
                except InvalidConfig as exc:
                    raise InvalidConfig(f"gcp store config field 'prefix': {exc}") from None
        location = config.get("location")
        if location is not None and (not isinstance(location, str) or not _LOCATION.match(location)):
            raise InvalidConfig(f"gcp store config field 'location': {location!r} is not a location "
                                "such as europe-west1")
        for key in ("endpoint", "insecureEndpoint"):
            value = config.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidConfig(f"gcp store config field {key!r} must be a non-empty string")
        endpoint = config.get("endpoint")
        if endpoint is not None and not _ENDPOINT.match(endpoint):
            raise InvalidConfig(f"gcp store config field 'endpoint': {endpoint[:80]!r} is not HOST or HOST:PORT "
                                "(e.g. secretmanager.europe-west1.rep.googleapis.com)")

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        """A key or token credential is the store's own; else ADC (env, gcloud files, metadata)."""
        own = bool(credentials & {"serviceAccountKey", "accessToken"})
        return CredentialUse(
            ambient=None if own else ("no secretRef.serviceAccountKey or secretRef.accessToken: Application "
                                      "Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, metadata server)"),
            destinations=("endpoint",) if config.get("endpoint") else (),
        )

    def open(
        self,
        config: Mapping[str, Any],
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> SecretsClient:
        self.validate_config(config)
        settings = settings or ClientSettings()
        spec = connection_spec(config, credentials)
        api = SecretManagerApi(lambda: build_sdk_client(spec), settings)
        return GcpClient(str(config["project"]), config.get("location"), api, settings,
                         prefix=str(config.get("prefix") or ""), where=spec.describe())

    # -- change feed (secretsync.core.changes.ChangeFeedFactory) -----------------------------
    def validate_feed(self, subscription: str) -> None:
        validate_subscription(subscription)

    def open_feed(
        self,
        config: Mapping[str, Any],
        subscription: str,
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> ChangeFeed:
        """A Pub/Sub subscription of Secret Manager notifications (providers/gcp/events.py)."""
        self.validate_config(config)
        return open_feed(config, subscription, settings, credentials)


factory = GcpFactory()
