"""Package discovery that pyproject.toml cannot express on its own.

``providers/`` (one folder per provider, as the layout asks) installs as the import package
``secretsync_providers``, so nothing claims a generic top-level name like ``providers``.
Every sub-folder with an ``__init__.py`` is picked up, so adding a provider needs no edit here.
"""

from setuptools import find_packages, setup

packages = find_packages(include=["secretsync", "secretsync.*"])
packages += ["secretsync_providers"] + [f"secretsync_providers.{p}" for p in find_packages("providers")]

setup(packages=packages, package_dir={"secretsync_providers": "providers"})
