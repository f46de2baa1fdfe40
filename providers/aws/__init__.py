"""AWS Secrets Manager provider (``aws://REGION[/PREFIX]``), built on boto3.

Only :data:`factory` is public; it is found through the ``secretsync.providers`` entry point.
"""

from .factory import AwsFactory, factory

__all__ = ["AwsFactory", "factory"]
