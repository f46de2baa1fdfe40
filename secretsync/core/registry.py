"""Find providers through the ``secretsync.providers`` entry-point group and open stores by URL.

Why entry points: the core must not import any cloud SDK (import-linter enforces it), and
a third party can ship a provider as its own distribution. A provider whose SDK is not
installed is listed as unavailable with the reason, instead of breaking every command.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from .contract import ProviderFactory, SecretsClient
from .errors import InvalidConfig
from .settings import ClientSettings
from .values import SecretValue

GROUP = "secretsync.providers"

#: https URLs whose host ends like this name an Azure Key Vault (``https://VAULT.vault.azure.net``).
_AZURE_HOST_SUFFIXES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net",
                        ".vault.microsoftazure.de")
#: Other spellings users reach for.
_SCHEME_ALIASES = {"openbao": "vault", "bao": "vault", "awssm": "aws", "gcpsm": "gcp", "azkv": "azure"}


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    factory: ProviderFactory | None
    error: str | None = None

    @property
    def available(self) -> bool:
        return self.factory is not None


_lock = threading.Lock()
_cache: dict[str, ProviderInfo] = {}


def _load(name: str) -> ProviderInfo:
    with _lock:
        if name in _cache:
            return _cache[name]
        eps = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not eps:
            info = ProviderInfo(name, None, f"no provider named {name!r} is installed")
        else:
            try:
                obj = eps[0].load()
                factory = obj() if isinstance(obj, type) else obj
                if not isinstance(factory, ProviderFactory):
                    raise TypeError(f"{eps[0].value} is not a ProviderFactory")
                info = ProviderInfo(name, factory)
            except ImportError as exc:
                info = ProviderInfo(name, None, f"not installed: {exc} (pip install 'secretsync[{name}]')")
            except Exception as exc:
                info = ProviderInfo(name, None, f"failed to load: {type(exc).__name__}: {exc}")
        _cache[name] = info
        return info


def provider_names() -> list[str]:
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def providers() -> list[ProviderInfo]:
    """Every installed provider, loaded, with the reason for any that cannot load."""
    return [_load(n) for n in provider_names()]


def get_factory(name: str) -> ProviderFactory:
    info = _load(_SCHEME_ALIASES.get(name, name))
    if info.factory is None:
        raise InvalidConfig(info.error or f"provider {name!r} unavailable", operation="open")
    return info.factory


def provider_for_block(key: str) -> str | None:
    """The provider a SecretStore block key names: an entry-point name, or an alias a provider
    declares for its block (ESO's ``gcpsm`` for gcp, ``azurekv`` for azure). None: no
    installed provider answers to it.

    Why aliases come from the factories: a block key is the provider's own knowledge, so a
    third-party provider that mirrors another operator's block name can declare it too.
    """
    names = provider_names()
    if key in names:
        return key
    for name in names:
        info = _load(name)
        if info.factory is not None and key in tuple(getattr(info.factory, "aliases", ()) or ()):
            return name
    return None


def provider_for_url(url: str) -> str:
    """The provider name a store URL addresses (raises InvalidConfig when none does)."""
    if not isinstance(url, str):
        raise InvalidConfig(f"store URL must be a string, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError as exc:
        raise InvalidConfig(f"store URL {url!r} does not parse: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidConfig(f"store URL {url!r} has no scheme (e.g. file://PATH, aws://REGION)")
    if scheme in ("https", "http"):
        if host.endswith(_AZURE_HOST_SUFFIXES):
            return "azure"
        raise InvalidConfig(
            f"store URL {url!r}: an https URL names an Azure Key Vault (https://NAME.vault.azure.net); "
            "use vault://HOST:PORT/MOUNT for Vault/OpenBao"
        )
    return _SCHEME_ALIASES.get(scheme, scheme)


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """A provider name and its config: what a URL or a SecretStore resolves to."""

    provider: str
    config: Mapping[str, Any]


def parse_store_url(url: str) -> StoreSpec:
    name = provider_for_url(url)
    factory = get_factory(name)
    config = factory.config_from_url(url)
    factory.validate_config(config)
    return StoreSpec(name, config)


def open_store(
    url_or_spec: str | StoreSpec,
    settings: ClientSettings | None = None,
    credentials: Mapping[str, SecretValue] | None = None,
) -> SecretsClient:
    """Open a client for a store URL or spec, validating the config first."""
    spec = parse_store_url(url_or_spec) if isinstance(url_or_spec, str) else url_or_spec
    factory = get_factory(spec.provider)
    factory.validate_config(spec.config)
    return factory.open(spec.config, settings or ClientSettings(), credentials)
