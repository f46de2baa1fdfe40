"""Azure Key Vault provider (``azure://VAULT``, ``https://VAULT.vault.azure.net``).

Loaded through the ``secretsync.providers`` entry point; needs the ``azure`` extra
(``azure-keyvault-secrets``, ``azure-identity``). See ``docs/providers.md``.
"""

from .client import CAPABILITIES, AzureKeyVaultClient
from .factory import AzureKeyVaultFactory, factory

__all__ = ["CAPABILITIES", "AzureKeyVaultClient", "AzureKeyVaultFactory", "factory"]
