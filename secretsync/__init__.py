"""secretsync: take plaintext secrets out of Kubernetes and keep them in secret managers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("secretsync")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
