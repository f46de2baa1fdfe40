"""Legal names of the two AWS services a store can use, and a secret's wire name.

Why here and not in the client: the migrator chooses names (it asks the factory's
``name_rules``), the config checks its prefix with the same alphabet, and each client turns a
relative name into the id AWS is sent; one table keeps the three in step.

* Secrets Manager: 1-512 ASCII letters, digits and ``/_+=.@-``; a leading ``/`` is an ordinary
  character (``/prod/db``). Reads may also name a full secret ARN (another account's secret)
  or an AWS-managed name with ``!`` (``rds!db-...``).
* SSM Parameter Store: letters, digits and ``_.-/``; a name with a ``/`` is a path and must
  start with ``/``; up to 15 levels; at most 1011 characters (AWS counts the ARN's head in
  its 2048 limit, which leaves 1011 for the name); ``aws``/``ssm`` are reserved first words.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from secretsync.core.contract import NameRules
from secretsync.core.errors import InvalidConfig

if TYPE_CHECKING:
    from .config import AwsConfig

PROVIDER = "aws"

#: What AWS allows in a secret name: ASCII letters, digits and /_+=.@- (1-512 chars).
NAME_CHARS = re.compile(r"^[A-Za-z0-9/_+=.@-]+$")
MAX_NAME_LENGTH = 512
#: Names Secrets Manager stores verbatim without a prefix (a store's own: :func:`name_rules`).
NAME_RULES = NameRules(r"A-Za-z0-9/_+=.@-", MAX_NAME_LENGTH, True, label="AWS Secrets Manager names")

#: A full secret ARN (any partition, region and account: cross-account reads name the ARN).
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]{1,512}$")
#: Names AWS itself gives secrets it manages: RDS/Redshift master passwords are ``rds!...``.
_MANAGED_NAME_CHARS = re.compile(r"^[A-Za-z0-9/_+=.@!-]+$")

#: SSM parameter names: letters, digits, ``_.-/``.
SSM_NAME_CHARS = re.compile(r"^[A-Za-z0-9_./-]+$")
SSM_MAX_NAME_LENGTH = 1011
SSM_MAX_DEPTH = 15
_SSM_RESERVED_WORDS = ("aws", "ssm")
_SSM_RESERVED = re.compile(r"^/?(aws|ssm)", re.IGNORECASE)


def name_rules(config: AwsConfig) -> NameRules:
    """The names this store keeps verbatim (what the migrator may choose), after its prefix.

    Why per store: Secrets Manager and Parameter Store differ (a Parameter Store path starts
    with '/', has at most 15 levels, and may not begin with 'aws' or 'ssm'), and the prefix
    takes its share of the length and levels; :func:`check_name` and
    :func:`check_parameter_name` hold the same limits at put time.
    """
    from .config import PARAMETER_STORE

    head = config.head
    if config.service != PARAMETER_STORE:
        return NameRules(r"A-Za-z0-9/_+=.@-", MAX_NAME_LENGTH - len(head), True, label="AWS Secrets Manager names")
    label = "SSM Parameter Store names" + (f" (after the store's prefix {head!r})" if head else "")
    if head and not head.startswith("/"):
        # ESO's prefix without a leading '/' ("app-"): a name with '/' could never be legal.
        return NameRules(r"A-Za-z0-9_.-", SSM_MAX_NAME_LENGTH - len(head), False, label=label)
    return NameRules(r"A-Za-z0-9_./-", SSM_MAX_NAME_LENGTH - len(head), True, leading_slash=not head,
                     # '/x/y' has 2 levels; under '/team/' a name 'x/y' adds 1 to the head's 2 '/'.
                     max_depth=SSM_MAX_DEPTH - (head.count("/") - 1 if head else 0),
                     reserved_starts=() if head else _SSM_RESERVED_WORDS, label=label)


def has_dot_segment(path: str) -> bool:
    """A '.' or '..' segment: meaningless to AWS, but a path-traversal attempt everywhere else."""
    return any(seg in (".", "..") for seg in path.split("/"))


def _invalid(why: str, operation: str, name: str) -> InvalidConfig:
    return InvalidConfig(f"invalid secret name: {why}", provider=PROVIDER, operation=operation, key=name)


def check_name(config: AwsConfig, name: str, operation: str, *, read: bool = False) -> str:
    """The wire name (SecretId) for ``name``, or InvalidConfig naming the secret when AWS would refuse it.

    ``read``: names only reads may use are accepted too: a full ARN (sent as is, without the
    prefix: the way to read another account's secret) and the ``!`` of AWS-managed secrets
    (``rds!db-...``). A leading ``/`` is an ordinary character of AWS names (``/prod/db``).
    """
    if not isinstance(name, str) or not name or name.endswith("/"):
        raise _invalid("empty or ending in '/'", operation, str(name))
    if read and SECRET_ARN.match(name):
        return name
    wire = config.wire_name(name)
    chars = _MANAGED_NAME_CHARS if read else NAME_CHARS
    if not chars.match(name) or "//" in wire or len(wire) > MAX_NAME_LENGTH:
        raise _invalid("AWS allows 1-512 ASCII letters, digits and /_+=.@- (with the prefix), or a secret ARN",
                       operation, name)
    if has_dot_segment(name):
        raise _invalid("a '.' or '..' segment", operation, name)
    return wire


def check_parameter_name(config: AwsConfig, name: str, operation: str) -> str:
    """The SSM parameter name for ``name`` (the store's prefix prepended), or InvalidConfig."""
    if not isinstance(name, str) or not name or name.endswith("/"):
        raise _invalid("empty or ending in '/'", operation, str(name))
    wire = config.wire_name(name)
    if not SSM_NAME_CHARS.match(wire) or "//" in wire or len(wire) > SSM_MAX_NAME_LENGTH:
        raise _invalid("Parameter Store allows up to 1011 ASCII letters, digits and _.-/ (with the prefix)",
                       operation, name)
    if "/" in wire and not wire.startswith("/"):
        raise _invalid("a parameter name with '/' is a path and must start with '/'", operation, name)
    if wire.count("/") > SSM_MAX_DEPTH:
        raise _invalid(f"more than {SSM_MAX_DEPTH} levels of hierarchy", operation, name)
    if _SSM_RESERVED.match(wire):
        raise _invalid("names may not begin with 'aws' or 'ssm'", operation, name)
    if has_dot_segment(wire):
        raise _invalid("a '.' or '..' segment", operation, name)
    return wire
