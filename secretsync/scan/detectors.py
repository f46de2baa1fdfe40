# long-file: key rules, value shapes and the one function that orders them, read top to bottom
"""Deciding whether one value, known by one key, is a plaintext secret.

The scanner only asks about values that stand where Kubernetes puts configuration (env values,
flags, ConfigMap and Secret data, Helm values, kustomize generators), so the detectors can be
eager about what a name says and strict about what a value looks like. In order:

1. **References are never secrets**: ``$(VAR)``, ``${VAR}``, ``{{ ... }}``, ``<...>``, Helm
   template leftovers, secret-manager URIs (``vault:``, ``ref+``, ``arn:aws:secretsmanager``,
   ``projects/*/secrets/*``), SOPS/Ansible-vault ciphertext.
2. **Public material is not secret**: certificates, public keys, ``ssh-rsa AAAA...``.
3. **Known token formats** fire whatever the key (AWS, GitHub, GitLab, Slack, Stripe, Google,
   SendGrid, Twilio, npm, JWT, PEM private keys, URLs and connection strings with a password).
4. **Secret objects**: every value is plaintext in git (``forced``), placeholders aside.
5. **Keyword names** (``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``, ``*API_KEY*``...) make any
   plausible value a finding, *even a weak one*: ``MYSQL_ROOT_PASSWORD: admin123`` is exactly
   what a migration must take out. What stops them: names that describe a secret rather than
   hold one (``*_FILE``, ``*_PATH``, ``*_NAME``, ``*_MIN_LENGTH``, ``existingSecret``...),
   placeholders (``INSERT_..._TOKEN``, ``<your-token>``, ``REPLACE_ME``, ``xxx``, ``TODO``,
   ``example``), booleans, small numbers, durations, paths, URLs and hostnames.
6. **Weak names** (``*_KEY``, ``auth``, ``salt``) need a random-looking value.
7. **Entropy** alone (rule ``high-entropy``, low confidence) for long random strings under
   neutral names; never hex digests, UUIDs, image references or paths.

Weak defaults (``changeme``, ``password``, ``admin``) are reported with medium confidence: they
are real passwords in a real manifest, just guessable ones. Demo words (``foo``, ``bar``,
``dummy``, ``fake_password``) under a secret's name are reported at low confidence, with the
note ``demo-value``: nothing asks for them to be replaced, so a deployment runs with them as
they are (a placeholder like ``REPLACE_ME`` or ``<your-token>`` says it must be replaced).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from secretsync.manifests.documents import TEMPLATE_MARKER

from .findings import Confidence


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    description: str


def _rules(*items: tuple[str, str, str]) -> dict[str, Rule]:
    return {i: Rule(i, n, d) for i, n, d in items}


#: Every rule the scanner can report (SARIF lists them; the CLI documents them).
RULES: dict[str, Rule] = _rules(
    ("secret-object", "Secret object value", "A value of a Kubernetes Secret (or secretGenerator) "
     "kept in the manifest tree: base64 is an encoding, not encryption."),
    ("keyword-password", "Password by name", "A literal value under a password-like name."),
    ("keyword-secret", "Secret by name", "A literal value under a secret/credential/private-key name."),
    ("keyword-token", "Token by name", "A literal value under a token-like name."),
    ("keyword-api-key", "API/access key by name", "A literal value under an API-key or access-key name."),
    ("generic-key", "Random value under a key-like name", "A random-looking value under a name such "
     "as *_KEY, auth or salt."),
    ("high-entropy", "High-entropy string", "A long random-looking value under a neutral name."),
    ("aws-access-key", "AWS access key id", "AKIA/ASIA access key id."),
    ("aws-secret-key", "AWS secret access key", "40-character AWS secret access key."),
    ("github-token", "GitHub token", "GitHub personal access, OAuth, app or fine-grained token."),
    ("gitlab-token", "GitLab token", "GitLab personal/project/deploy token."),
    ("slack-token", "Slack token", "Slack bot/user/app token."),
    ("slack-webhook", "Slack webhook", "Slack incoming webhook URL."),
    ("discord-webhook", "Discord webhook", "Discord webhook URL."),
    ("stripe-key", "Stripe key", "Stripe secret or restricted key."),
    ("google-api-key", "Google API key", "Google API key (AIza...)."),
    ("google-oauth-secret", "Google OAuth client secret", "Google OAuth client secret (GOCSPX-...)."),
    ("sendgrid-key", "SendGrid key", "SendGrid API key."),
    ("twilio-key", "Twilio key", "Twilio API key SID or account SID."),
    ("npm-token", "npm token", "npm access token."),
    ("openai-key", "OpenAI key", "OpenAI API key."),
    ("anthropic-key", "Anthropic key", "Anthropic API key."),
    ("huggingface-token", "Hugging Face token", "Hugging Face access token."),
    ("digitalocean-token", "DigitalOcean token", "DigitalOcean personal access token."),
    ("shopify-token", "Shopify token", "Shopify access token."),
    ("pypi-token", "PyPI token", "PyPI upload token."),
    ("jwt", "JSON Web Token", "A signed JWT (bearer credential)."),
    ("private-key", "Private key", "A PEM private key."),
    ("connection-url", "URL with password", "A URL carrying a password (postgres://u:p@h, ...)."),
    ("url-credential", "Credential in URL query", "A URL query parameter holding a password/token."),
    ("connection-string", "Connection string with password", "A key=value;... connection string "
     "with Password= or AccountKey=."),
    ("azure-storage-key", "Azure storage key", "Azure storage AccountKey or SharedAccessKey."),
    ("auth-header", "Authorization header", "A literal Basic/Bearer credential."),
    ("sql-password", "Password in SQL", "CREATE/ALTER USER ... PASSWORD '...' or IDENTIFIED BY '...' "
     "(init scripts in ConfigMaps, psql -c)."),
    ("docker-auth", "Registry credential", "A docker config ``auth`` entry."),
)

KeyClass = Literal["password", "secret", "token", "api-key", "weak", "negative", "neutral"]

_STRONG_RULE: dict[str, str] = {
    "password": "keyword-password",
    "secret": "keyword-secret",
    "token": "keyword-token",
    "api-key": "keyword-api-key",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a value is a finding: the rule and how sure we are."""

    rule: str
    confidence: Confidence
    #: ``weak-default`` when the value is a well-known default password.
    note: str | None = None


# --------------------------------------------------------------------------------------------
# Key names
# --------------------------------------------------------------------------------------------

_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

#: A last word that makes the name describe a secret instead of holding one.
_NEG_LAST = frozenset((
    "name", "names", "file", "files", "filename", "path", "paths", "dir", "dirs", "directory", "folder",
    "mount", "mountpath", "location", "user", "username", "usr", "login", "email", "mail", "length",
    "len", "size", "minlength", "maxlength", "min", "max", "count", "enabled", "enable", "disabled",
    "disable", "required", "ttl", "expiry", "expires", "expiration", "expire", "timeout", "lifetime",
    "age", "interval", "period", "rotation", "url", "uri", "endpoint", "host", "hostname", "port",
    "addr", "address", "server", "type", "kind", "mode", "method", "algorithm", "algo", "alg", "cipher",
    "policy", "policies", "version", "namespace", "ns", "ref", "reference", "arn", "id", "ids",
    "encryption", "hash", "hashed", "format", "prefix", "suffix", "header", "field", "selector",
    "label", "labels", "annotation", "annotations", "class", "provider", "store", "source", "template",
    "regex", "pattern", "strength", "complexity", "hint", "reset", "enforce", "enforced", "validation",
    "validator", "digits", "lowercase", "uppercase", "special", "chars", "characters", "symbols",
    "history", "attempts", "retries", "lockout", "cache", "generator", "rotate", "audience", "issuer",
    "scope", "scopes", "realm", "claim", "env", "var", "variable", "sha", "checksum", "digest",
    "fingerprint", "revision", "commit", "etag", "secretname", "secretref", "keyref", "configmap",
    "volume", "mountpoint", "owner", "group", "role", "roles", "permission", "permissions", "level",
    "option", "options", "flag", "flags", "strategy", "manager", "backend", "engine", "driver",
    "plugin", "image", "tag", "repository", "repo", "registry", "protocol", "scheme", "charset",
    "encoding", "bits", "rounds", "iterations", "cost", "salt_rounds", "schema", "table", "column",
    "index", "description", "desc", "help", "text", "message", "label_key",
    # units and knobs: ``jwt.expiration-ms``, ``TOKEN_LIMIT``, ``PASSWORD_HASHER``, ``SECRET_ROTATION_SCHEDULE``
    "ms", "millis", "milliseconds", "sec", "secs", "seconds", "mins", "minutes", "hours", "hrs", "days", "weeks",
    "duration", "validity", "delay", "backoff", "limit", "limits", "quota", "threshold", "hasher", "hashing",
    "schedule", "cron",
))

#: A word anywhere in the name that makes it a reference or a switch.
_NEG_ANY = frozenset((
    "existing", "secretref", "secretkeyref", "keyref", "valuefrom", "configmapkeyref", "fieldref",
    "provider", "store", "use", "create", "generate", "rotate", "manage", "sync", "annotations", "public",
    "publishable", "pub",
))

#: A first word that makes the name a knob about secrets (``MIN_PASSWORD_LENGTH``).
_NEG_FIRST = frozenset((
    "checksum", "hash", "sha", "sha1", "sha256", "sha512", "md5", "digest", "fingerprint",
    "no", "skip", "disable", "disabled", "allow", "allowed", "require", "required", "enable", "enabled",
    "use", "is", "has", "show", "hide", "num", "max", "min", "count", "number", "default",
))

_PASS_EXCLUDE = ("bypass", "compass", "overpass", "trespass", "passthrough", "passive", "passenger")
_STRONG_KEY_QUALIFIERS = frozenset((
    "api", "access", "secret", "private", "account", "app", "license", "master", "encryption",
    "signing", "sign", "hmac", "session", "cookie", "jwt", "client", "tls", "ssl", "ssh", "auth",
    "shared", "subscription", "storage", "crypt", "crypto", "encrypt", "decrypt", "webhook", "consumer",
    "service", "deploy",
))
_USERISH = frozenset({"password", "passwd", "pwd", "user", "username"})


#: Words spelled apart that are one thing: ``KEY_STORE_PASSWORD`` is a keystore's password, not a
#: "store" setting.
_COMPOUNDS = {("key", "store"): "keystore", ("trust", "store"): "truststore"}


def key_words(key: str) -> list[str]:
    """``MYSQL_ROOT_PASSWORD`` -> [mysql, root, password]; ``secretKeyRef`` -> [secret, key, ref]."""
    words = [w.lower() for w in _SPLIT.split(key) if w]
    i = 0
    while i < len(words) - 1:
        joined = _COMPOUNDS.get((words[i], words[i + 1]))
        if joined:
            words[i : i + 2] = [joined]
        i += 1
    return words


@lru_cache(maxsize=8192)
def classify_key(key: str) -> KeyClass:
    """What a key's name says about its value (cached: manifests repeat names a lot)."""
    if "/" in key and "." in key.split("/", 1)[0]:
        return "negative"  # an annotation or label key (vault.hashicorp.com/agent-inject-secret-db) names things
    words = key_words(key)
    if not words:
        return "neutral"
    squashed = "".join(words)
    last = words[-1]
    if last in _NEG_LAST or squashed in _NEG_LAST:
        return "negative"
    if any(w in _NEG_ANY for w in words) or squashed.startswith(("existing", "use", "create")):
        return "negative"
    if len(words) > 1 and words[0] in _NEG_FIRST:
        return "negative"
    if last == "key" and len(words) > 1 and words[-2] in _USERISH:
        return "negative"  # ``passwordKey: db-password`` names a key inside a Secret
    if last == "key" and len(words) > 2 and words[-2] == "secret" and words[-3] in (*_USERISH, "token"):
        return "negative"  # ``passwordSecretKey: password``: the same, one level up
    if last in ("tokens", "keys"):
        return "negative"  # ``max_tokens``, ``keys`` lists
    # Passwords.
    if any(w in ("password", "passwd", "passwort", "pwd", "pass", "pw", "passphrase", "passwords")
           for w in words):
        return "password"
    if ("password" in squashed or "passwd" in squashed or "passphrase" in squashed or squashed == "masterauth"
            or (squashed.endswith("pass") and not squashed.endswith(_PASS_EXCLUDE))
            or (squashed.endswith("pw") and len(squashed) <= 10)):
        return "password"  # ... bindpw, rootpw
    # API and access keys.
    if any(q in squashed for q in ("apikey", "accesskey", "accountkey", "appkey", "licensekey",
                                   "secretkey", "subscriptionkey", "masterkey", "authkey")):
        return "api-key"
    if last == "key" and len(words) > 1 and words[-2] in _STRONG_KEY_QUALIFIERS:
        return "secret" if words[-2] in ("private", "encryption", "signing", "tls", "ssl", "ssh",
                                         "hmac", "crypt", "crypto") else "api-key"
    if "privatekey" in squashed:
        return "secret"
    # Secrets and credentials.
    if any(w in ("secret", "secrets", "credential", "credentials", "creds", "cred") for w in words):
        return "secret"
    if "secret" in squashed or "credential" in squashed:
        return "secret"
    # Tokens.
    if any(w in ("token", "bearer", "jwt", "pat") for w in words) or squashed.endswith("token"):
        return "token"
    if any(w in ("key", "auth", "authorization", "salt", "hmac", "signature", "sas", "sig", "otp",
                 "seed", "cookie", "license", "licence") for w in words):
        return "weak"
    return "neutral"


_AWS_SECRET_NAME = re.compile(r"(?i)(aws.?secret|secret.?access.?key)")
_AWS_SECRET_VALUE = re.compile(r"^[A-Za-z0-9/+]{40}$")
_HASHY_NAME = re.compile(r"(?i)(sha\d*|hash|checksum|digest|commit|revision|fingerprint|etag|uid|uuid|"
                         r"(^|[^a-z])id$|image|tag|version|jws)")


# --------------------------------------------------------------------------------------------
# Values: references, placeholders, non-secret shapes
# --------------------------------------------------------------------------------------------

_REFERENCE = re.compile(
    r"""\$\([A-Za-z_][A-Za-z0-9_]*\)       # $(VAR)  (Kubernetes dependent env)
      | \$\{[^}]*\}                     # ${VAR}, ${VAR:-default}
      | \{\{.*?\}\}                     # {{ .Values.x }}, {{ secret }}
      | \#\{[^}]*\}                     # #{...} Ruby/Spring/Octopus
      | %\([A-Za-z_]+\)s                # %(name)s
    """,
    re.VERBOSE | re.DOTALL,
)
_WHOLE_REFERENCE = re.compile(
    r"""^(?: \$[A-Za-z_][A-Za-z0-9_]*            # $VAR
        | %[A-Za-z_][A-Za-z0-9_]*%              # %VAR%
        | @[A-Za-z_][A-Za-z0-9_.]*@             # @VAR@ (maven filtering)
        | __[A-Za-z][A-Za-z0-9_]*__             # __VAR__ (token replacement)
        | <[^<>\n]{1,80}>                       # <your-token>
        | \[[^\[\]\n]{1,80}\]                   # [your key]
        | \(\s*[A-Za-z][^()\n]{0,80}\)          # (set me)
        | (["']?)\$\((?!\s*\))[^\n]{1,200}\)\1;?  # "$(< $PASSWORD_FILE)", $(cat ...): a shell command's output
        | `[^`\n]{1,200}`                       # `cat /run/secrets/x`
      )$""",
    re.VERBOSE,
)
_REFERENCE_SCHEME = re.compile(
    r"(?i)^(?:vault:|ref\+[a-z0-9]+://|op://|bw://|sops://|awssm://|awsssm://|gcpsm://|azkv://|"
    r"secretsmanager:|ssm:|arn:aws[a-z-]*:|projects/[^/\s]+/secrets/|"
    r"secret://|k8s://|kubernetes://|env:|file:|exec:|"
    r"ENC\[[A-Z0-9_]+,|\$ANSIBLE_VAULT;|AgA|-----BEGIN PGP MESSAGE)"
)
#: Sealed-secrets ciphertext starts with "AgA" and is long; short "AgA..." values are not special.
_SEALED_MIN = 200


def is_reference(value: str) -> bool:
    """A value that points at a secret (or is a template) instead of being one."""
    if TEMPLATE_MARKER in value:
        return True
    if value.lstrip("\"'").startswith(("$(", "`")):
        return True  # a shell command's output (``password=$(grep ... $1)``), cut at a space by a flag parser
    if _REFERENCE.search(value) or _WHOLE_REFERENCE.match(value):
        return True
    match = _REFERENCE_SCHEME.match(value)
    if match:
        return not (match.group(0) == "AgA" and len(value) < _SEALED_MIN)
    return False


_PLACEHOLDER_WORDS = frozenset((
    "none", "null", "nil", "undefined", "n/a", "na", "tbd", "todo", "fixme", "xxx", "placeholder",
    "example", "examples", "dummy", "redacted", "replace_me", "replaceme", "replace-me", "sample",
    "unset", "empty", "default", "fake", "foo", "bar", "baz", "foobar", "secret_here", "insert_here",
    "your_secret", "your_token", "your_password", "your_api_key",
))
_PLACEHOLDER = re.compile(
    r"""(?ix)
      ^(?: x{3,} | \*{3,} | \.{3,} | -+ | \#+ | _+ | \?+ | 0{6,} )$
    | ^(?:insert|replace|enter|put|add|fill|paste|provide|specify)[-_ ]
    | [-_ ](?:here|goes[-_ ]here|placeholder)$
    | ^your[-_ ]
    | ^(?:todo|fixme|tbd)\b
    | (?:^|[^a-z])(?:example|dummy|placeholder|redacted|sample|fake)(?:$|[^a-z])
    | example\.(?:com|org|net)
    | xxxx
    """
)
_PLACEHOLDER_SUBSTRINGS = ("example", "xxxx", "dummy", "placeholder", "redacted", "changethis", "replaceme",
                           "replace_me", "replace-me")
_CAPS_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_CAPS_PLACEHOLDER_WORDS = frozenset(
    {"VAL", "VALUE", "HERE", "PLACEHOLDER", "REPLACE", "INSERT", "YOUR", "TOKEN", "KEY", "SECRET",
     "PASSWORD", "PASS", "PWD", "ID", "NAME", "TODO", "EXAMPLE"}
)


#: "yourpassword", "yourRconPassword": asks to be replaced, but works as-is if nobody does (low confidence).
_SOFT_PLACEHOLDER = re.compile(r"^[Yy]our(?=[A-Z]|pass|secret|token|key|api|app|db|own|admin|root)")
#: Published on purpose (Stripe publishable keys).
_PUBLIC_TOKEN = re.compile(r"^pk_(?:live|test)_")
_BASE64_TEXT = re.compile(r"^(?:[A-Za-z0-9+/]{4}){2,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


def _decoded_text(value: str) -> str | None:
    """The text inside a long base64 value (a PEM, a JSON key file), or None."""
    if len(value) < 64 or not _BASE64_BLOCK.match(value):
        return None
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if "-----BEGIN" in decoded or decoded.lstrip().startswith("{") else None


_BASE64_BLOCK = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}$")


def _encoded_placeholder(value: str) -> bool:
    """``ZHVtbXktYXBpLWtleQ==`` is "dummy-api-key" in base64: still a placeholder."""
    if len(value) > 200 or not _BASE64_TEXT.match(value):
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return False
    return decoded.isprintable() and is_placeholder(decoded)


_WORD_SEP = re.compile(r"[-_ .]+")


#: What a sample value puts before its field's name to say what belongs there.
_DESCRIBING_PREFIXES = frozenset({"base64encoded", "base64", "encoded", "your", "the", "some", "insert", "enter"})


def _describes_itself(value: str, key: str) -> bool:
    """``my-service-principal-client-secret`` under ``ClientSecret``: a sample that names its field.

    Needs three or more words, so ``password123`` (a weak real password) does not qualify.
    """
    words = [w for w in _WORD_SEP.split(value.strip().lower()) if w]
    if not key:
        return False
    squashed_key = "".join(key_words(key))
    if len(words) == 1 and len(squashed_key) >= 5 and words[0].endswith(squashed_key) \
            and words[0][: -len(squashed_key)] in _DESCRIBING_PREFIXES:
        return True  # ``accountkey: base64encodedaccountkey``: says what belongs there
    if len(words) < 3:
        return False
    return len(squashed_key) >= 5 and squashed_key in "".join(words)


_IDENTIFIER_VALUE = re.compile(r"^[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)+$")
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_HOLDS = frozenset({"key", "keys", "password", "passwords", "passwd", "token", "tokens", "cert", "certs",
                    "certificate", "certificates", "tls", "credentials", "creds", "apikey", "keystore"})


def _names_a_field(value: str, key: str) -> bool:
    """A value that names a key of a Secret, or a Secret, rather than holding a secret.

    ``clientSecretKey: client-secret`` (the key inside the Secret to read), and
    ``encryptionKeySecret: enc-key`` / ``passwordSecret: pg-password`` (the Secret that holds
    the key): chart values say where a secret is this way all the time. Real secrets are
    not lower-case dashed identifiers made of the name's own words.
    """
    words = key_words(key)
    if _IDENTIFIER_VALUE.match(value) and len(words) > 1:
        squashed_value = "".join(w for w in _WORD_SEP.split(value) if w)
        squashed_key = "".join(words)
        if len(squashed_value) >= 5 and squashed_value in squashed_key and squashed_value != squashed_key:
            return True  # the key says more than the value: ``...Key``, ``...Name``
    return (len(words) > 1 and words[-1] == "secret" and any(w in _HOLDS for w in words[:-1])
            and bool(_DNS_LABEL.match(value)) and "-" in value)


def is_placeholder(value: str, key: str = "") -> bool:
    """A value nobody would deploy as-is: it asks to be replaced.

    Weak but working passwords (``changeme``, ``password``, ``admin``) are NOT placeholders.
    """
    low = value.lower()
    if low in _PLACEHOLDER_WORDS or _PLACEHOLDER.search(value):
        return True
    if any(w in low for w in _PLACEHOLDER_SUBSTRINGS):
        return True
    if key and low == key.lower():
        return True  # GOOGLE_API_KEY: GOOGLE_API_KEY
    if _CAPS_PLACEHOLDER.match(value):
        words = value.split("_")
        if any(w in _CAPS_PLACEHOLDER_WORDS for w in words):
            return True  # GOOGLE_API_KEY_VAL, ALLOYDB_SECRET_NAME_VAL
    return False


#: Words of a value a demo or a test uses as a password: it works as it stands.
_DEMO_WORDS = frozenset({"foo", "bar", "baz", "qux", "quux", "foobar", "dummy", "fake", "demo", "mock"})
#: Words that may stand beside a demo word (``fake_password``, ``dummy-api-key``, ``foo123``).
_DEMO_FILLER = frozenset({"password", "passwd", "pass", "pwd", "secret", "token", "key", "api", "my", "value",
                          "user", "admin", "db", "test", "apikey", "pw"})
_DEMO_SHAPE = re.compile(r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*$")


def is_demo_value(value: str) -> bool:
    """``foo``, ``bar``, ``dummy``, ``fake_password``: a demo's password, weak but working as-is.

    Made only of demo words, filler words (``password``, ``secret``...) and digits, with at
    least one demo word. Reported at low confidence rather than dropped as a placeholder.
    """
    low = value.strip().lower()
    if len(low) > 40 or not _DEMO_SHAPE.match(low):
        return False
    words = _WORD_SEP.split(low)
    stems = [w.rstrip("0123456789") or w for w in words]
    return any(w in _DEMO_WORDS for w in stems) and all(
        w in _DEMO_WORDS or w in _DEMO_FILLER or w.isdigit() for w in stems)


WEAK_DEFAULTS = frozenset((
    "changeme", "change_me", "change-me", "changeit", "password", "passw0rd", "p@ssw0rd", "password1",
    "password123", "secret", "admin", "admin123", "administrator", "root", "toor", "test", "test123",
    "guest", "letmein", "qwerty", "123456", "1234567", "12345678", "123456789", "default",
    "yourpassword", "mypassword", "mysecret", "pass", "pass123", "welcome", "welcome1", "minio",
    "minio123", "minioadmin", "postgres", "mysql", "redis", "rabbitmq", "guest123", "supersecret",
    "s3cr3t",
))

_BOOL = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "enabled", "disabled", "enable",
                   "disable", "none", "null", "~"})
_SMALL_NUMBER = re.compile(r"^[+-]?\d{1,5}(?:\.\d+)?$")
_DURATION_SIZE = re.compile(r"^\d+(?:\.\d+)?(?:ns|us|ms|s|m|h|d|w|y|Ki|Mi|Gi|Ti|K|M|G|T|KB|MB|GB|TB|k|b|B|%)$")
_PATH = re.compile(r"^(?:/|\./|\.\./|~/|[A-Za-z]:\\)[^\s]*$")
_PATHISH = re.compile(r"^(?:/[\w.@-]+)+/?$|^(?:\.{1,2}|~)(?:/[\w.@-]+)+/?$")
#: A Kubernetes object name that says it is a Secret's name (``web-tls``, ``db-credentials``).
_SECRET_NAME_VALUE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-(?:secret|secrets|tls|cert|certs|credentials|creds|keys)$")
_REL_PATH = re.compile(r"^[A-Za-z0-9_.@-]+(?:/[A-Za-z0-9_.@-]+){2,}/?$")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")
_EMAIL = re.compile(r"^[^@\s:/]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::\d+)?$")
_IP = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?:/\d+)?$")
_FILE_NAME = re.compile(
    r"(?i)^[\w.-]+\.(?:txt|json|ya?ml|pem|key|crt|cert|cer|p12|pfx|jks|keystore|truststore|env|conf|"
    r"cfg|ini|properties|xml|toml|sh|der|csr|pub|asc|gpg)$"
)
_PUBLIC = re.compile(
    r"-----BEGIN (?:CERTIFICATE|TRUSTED CERTIFICATE|X509 CRL|CERTIFICATE REQUEST|NEW CERTIFICATE REQUEST|"
    r"PUBLIC KEY|RSA PUBLIC KEY|PGP PUBLIC KEY BLOCK|SSH2 PUBLIC KEY|DH PARAMETERS|EC PARAMETERS)-----"
    r"|^(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com) AAAA"
)
_PRIVATE_ANYWHERE = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_IMAGE_REF = re.compile(r"^[\w.-]+(?::\d+)?(?:/[\w.-]+)+(?::[\w.-]+)?(?:@sha256:[a-f0-9]{64})?$")
_DIGEST = re.compile(r"(?i)^(?:sha(?:1|224|256|384|512)|md5|blake2b?):[a-f0-9]{16,}$")
_UUID = re.compile(r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
#: Kubernetes user and group names: ``system:serviceaccount:kube-system:token-reviewer``.
_KUBE_IDENTITY = re.compile(r"^system:(?:serviceaccounts?|nodes?|masters|authenticated|unauthenticated|anonymous|"
                            r"kube-[a-z-]+|bootstrappers?|monitoring)(?::[a-z0-9.-]+)*$")
_CRON = re.compile(r"^(?:@(?:yearly|annually|monthly|weekly|daily|midnight|hourly|reboot)"
                   r"|(?:[\d*/,?LW#-]+\s+){4,5}[\d*/,?LW#A-Za-z-]+)$")
_VERSION = re.compile(r"^v?\d+(?:\.\d+){1,3}(?:[-+][\w.]+)?$")


def is_public_material(value: str) -> bool:
    """Certificates and public keys: published on purpose, never a finding."""
    return bool(_PUBLIC.search(value)) and not _PRIVATE_ANYWHERE.search(value)


def _not_a_secret_shape(value: str) -> bool:
    """Shapes a keyword-named value takes when it is configuration, not a credential."""
    low = value.lower()
    if low in _BOOL or _SMALL_NUMBER.match(value) or _DURATION_SIZE.match(value):
        return True
    if (_PATHISH.match(value) or (_PATH.match(value) and " " not in value and len(value) < 256)) \
            and not _looks_random(value.replace("/", ""), 16):
        return True
    if _REL_PATH.match(value) and not _looks_random(value.replace("/", ""), 16):
        return True  # database/creds/app, secret/data/prod/db: a path in a secret store
    if _URL.match(value):
        return True  # with credentials it matched connection-url before we got here
    if _EMAIL.match(value) or _HOSTNAME.match(value) or _IP.match(value):
        return True
    if _KUBE_IDENTITY.match(value) or _CRON.match(value):
        return True
    return bool(_FILE_NAME.match(value) or _DIGEST.match(value))


# --------------------------------------------------------------------------------------------
# Randomness
# --------------------------------------------------------------------------------------------


def shannon_entropy(text: str) -> float:
    """Bits per character."""
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_RANDOM_CHARS = re.compile(r"^[A-Za-z0-9+/=_\-.~!@#$%^&*]+$")
_PRINTABLE_CHARS = re.compile(r"^[!-~]+$")


def _looks_random(value: str, min_len: int, *, printable: bool = False) -> bool:
    """A long, mixed-class, high-entropy string without structure (no paths, images, UUIDs).

    ``printable``: any visible ASCII may occur (WordPress salts, Django keys use ``{}[]()<>``),
    for names that already say "key" or "salt".
    """
    if len(value) < min_len or not (_PRINTABLE_CHARS if printable else _RANDOM_CHARS).match(value):
        return False
    if _UUID.match(value) or _DIGEST.match(value) or _VERSION.match(value):
        return False
    if _HEX.match(value):
        return len(value) >= 32 and shannon_entropy(value) >= 3.3
    has_digit = any(c.isdigit() for c in value)
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    if not (has_digit and has_upper and has_lower):
        return False
    if "/" in value and _IMAGE_REF.match(value):
        return False
    if "." in value and _HOSTNAME.match(value.lower()):
        return False
    threshold = 3.5 if len(value) < 24 else 3.8
    return shannon_entropy(value) >= threshold


_CAPS_TOKEN = re.compile(r"^[A-Z0-9]{16,}$")


def _random_caps(value: str) -> bool:
    """A long run of capitals (and digits) with no word structure: an Erlang cookie, a licence key."""
    return bool(_CAPS_TOKEN.match(value)) and shannon_entropy(value) >= 3.5 and not _HEX.match(value)


def looks_random(value: str, min_len: int = 20) -> bool:
    return _looks_random(value, min_len)


# --------------------------------------------------------------------------------------------
# Known token formats
# --------------------------------------------------------------------------------------------

_TOKEN_PATTERNS: list[tuple[str, re.Pattern[str], Confidence]] = [
    ("private-key", _PRIVATE_ANYWHERE, "high"),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"), "high"),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b"), "high"),
    ("gitlab-token", re.compile(r"\bgl(?:pat|dt|rt|ptt|ft|oas)-[A-Za-z0-9_-]{20,}"), "high"),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,}"),
     "high"),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "high"),
    ("discord-webhook", re.compile(r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[\w-]{20,}"),
     "high"),
    ("stripe-key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b"), "high"),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "high"),
    ("google-oauth-secret", re.compile(r"\bGOCSPX-[A-Za-z0-9_-]{28}\b"), "high"),
    ("sendgrid-key", re.compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b"), "high"),
    ("twilio-key", re.compile(r"\b(?:SK|AC)[0-9a-f]{32}\b"), "medium"),
    ("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), "high"),
    ("anthropic-key", re.compile(r"\bsk-ant-[a-z0-9]+-[A-Za-z0-9_-]{40,}"), "high"),
    ("openai-key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{16,}"
                              r"|\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}"), "high"),
    ("huggingface-token", re.compile(r"\bhf_[A-Za-z]{34,}\b"), "high"),
    ("digitalocean-token", re.compile(r"\bdo[pro]_v1_[a-f0-9]{64}\b"), "high"),
    ("shopify-token", re.compile(r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"), "high"),
    ("pypi-token", re.compile(r"\bpypi-AgE[A-Za-z0-9_-]{50,}"), "high"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "high"),
    ("azure-storage-key", re.compile(r"(?i)\b(?:AccountKey|SharedAccessKey)\s*=\s*[A-Za-z0-9+/]{20,}={0,2}"),
     "high"),
    ("docker-auth", re.compile(r"\"auth\"\s*:\s*\"[A-Za-z0-9+/]{8,}={0,2}\""), "high"),
]
_TOKEN_PREFILTER = re.compile(
    r"PRIVATE KEY|AKIA|ASIA|ABIA|ACCA|gh[pousr]_|github_pat_|gl(?:pat|dt|rt|ptt|ft|oas)-|hooks\.slack|xox|"
    r"discord|_live_|_test_|AIza|GOCSPX|SG\.|SK[0-9a-f]|AC[0-9a-f]|npm_|sk-|hf_|do[pro]_v1|shp|pypi-|eyJ|"
    r"(?i:accountkey|sharedaccesskey)|\"auth\""
)

_URL_CREDS = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]{1,30})://([^\s:/?#@\"'<>]*):([^\s@/?#\"'<>]+)@([^\s/?#\"'<>]+)"
)
_URL_QUERY_CRED = re.compile(
    r"(?i)[?&;](password|passwd|pwd|pass|token|access_token|auth_token|api_key|apikey|secret|client_secret|"
    r"sig|x-amz-signature)=([^&\s#\"']+)"
)
_CONN_STRING_PASSWORD = re.compile(r"(?i)(?:^|;)\s*(password|pwd)\s*=\s*([^;]+)")
_SQL_HINT = re.compile(r"(?i)password|identified")
#: ``CREATE USER app WITH PASSWORD 's3cret'``, ``ALTER ROLE x ENCRYPTED PASSWORD '...'``,
#: ``CREATE USER 'a'@'%' IDENTIFIED BY 's3cret'`` (MySQL), ``SET PASSWORD ... = 's3cret'``.
_SQL_PASSWORD = re.compile(r"(?i)\b(?:(?:with|encrypted|unencrypted|alter\s+user\s+\S+|role\s+\S+)\s+password"
                           r"|identified\s+(?:with\s+\S+\s+)?by|set\s+password\s+(?:for\s+\S+\s+)?=)\s+"
                           r"'([^'\n]{3,200})'")
_AUTH_HEADER = re.compile(r"(?i)\b(basic|bearer)\s+([A-Za-z0-9+/=._~-]{16,})")
_URL_PLACEHOLDER_PASSWORDS = frozenset(
    {"password", "pass", "passwd", "pwd", "secret", "xxx", "xxxx", "***", "****", "mypassword", "yourpassword",
     "pw", "p", "userpassword", "user_password", "db_password", "dbpassword"}
)


def _fake_token(token: str) -> bool:
    """A token-shaped string made up for documentation (AKIA...EXAMPLE, ghp_xxxx...)."""
    upper = token.upper()
    if "EXAMPLE" in upper or "XXXX" in upper or "DUMMY" in upper or "SAMPLE" in upper:
        return True
    body = token[4:] if len(token) > 8 else token
    if len(set(body)) <= 3:
        return True
    return "1234567890" in token or "ABCDEFGHIJ" in upper


_PEM_HEADER_END = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")
_PEM_END = "-----END"


def _pem_body(text: str, start: int) -> str:
    """The armoured body after a PEM header at ``start`` (up to the END line, or 400 chars)."""
    header = _PEM_HEADER_END.match(text, start)
    body_start = header.end() if header else start
    end = text.find(_PEM_END, body_start)
    if end < 0 or end - body_start > 20000:
        end = body_start + 400
    return text[body_start:end].replace("\\n", "\n")


def _private_key_has_body(text: str, start: int) -> bool:
    """A PEM header followed by real key material (not ``...``, ``A key`` or ``<key>``)."""
    body = _pem_body(text, start)
    material = sum(1 for c in body if c.isalnum() or c in "+/=")
    return material >= 64 and not is_placeholder(body.strip())


def _placeholder_pem(value: str) -> bool:
    """A PEM block whose body asks to be filled in (``<your-client-private-key>``)."""
    match = _PEM_HEADER_END.search(value)
    if match is None:
        return False
    body = _pem_body(value, match.start())
    material = sum(1 for c in body if c.isalnum() or c in "+/=")
    return material < 64 or is_placeholder(body.strip())


def _secret_part_ok(secret: str) -> bool:
    if not secret or is_reference(secret) or is_placeholder(secret):
        return False
    if secret.lower() in _URL_PLACEHOLDER_PASSWORDS:
        return False
    return not (secret.startswith("%") or secret.startswith(":"))


@dataclass(frozen=True, slots=True)
class TokenHit:
    rule: str
    confidence: Confidence
    start: int
    end: int


def find_tokens(text: str) -> Iterator[TokenHit]:
    """Every known-format credential in a piece of text (values, scripts, embedded files).

    Where two rules match overlapping text, the more specific (earlier) one wins.
    """
    spans: list[tuple[int, int]] = []
    for hit in _find_tokens(text):
        if any(hit.start < end and start < hit.end for start, end in spans):
            continue
        spans.append((hit.start, hit.end))
        yield hit


def _find_tokens(text: str) -> Iterator[TokenHit]:
    if _TOKEN_PREFILTER.search(text):
        for rule, pattern, confidence in _TOKEN_PATTERNS:
            for match in pattern.finditer(text):
                token = match.group(0)
                if rule == "private-key":
                    if not _private_key_has_body(text, match.start()):
                        continue
                elif _fake_token(token):
                    continue
                yield TokenHit(rule, confidence, match.start(), match.end())
    if "://" in text:
        for match in _URL_CREDS.finditer(text):
            if _secret_part_ok(match.group(3)):
                yield TokenHit("connection-url", "high", match.start(), match.end())
        if "=" in text:
            for match in _URL_QUERY_CRED.finditer(text):
                if _secret_part_ok(match.group(2)) and len(match.group(2)) >= 6:
                    yield TokenHit("url-credential", "high", match.start(), match.end())
    if "=" in text and ";" in text:
        for match in _CONN_STRING_PASSWORD.finditer(text):
            if _secret_part_ok(match.group(2).strip()):
                yield TokenHit("connection-string", "high", match.start(), match.end())
    if "'" in text and _SQL_HINT.search(text):
        for match in _SQL_PASSWORD.finditer(text):
            if _secret_part_ok(match.group(1)):  # the password alone: it is what moves
                yield TokenHit("sql-password", "high", match.start(1), match.end(1))
    if "earer" in text or "asic" in text:
        for match in _AUTH_HEADER.finditer(text):
            if _secret_part_ok(match.group(2)) and not _fake_token(match.group(2)):
                yield TokenHit("auth-header", "medium", match.start(), match.end())


def first_token(text: str) -> TokenHit | None:
    return next(find_tokens(text), None)


# --------------------------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------------------------


def judge(key: str, value: str, *, forced: bool = False, entropy: bool = True) -> Verdict | None:
    """Whether ``value``, known as ``key``, is a plaintext secret, and by which rule.

    ``forced``: the value sits in a Secret object (or a secretGenerator), so every real value is
    plaintext in git; only emptiness, placeholders, references and public material excuse it.
    """
    text = value.strip()
    if not text:
        return None
    if is_reference(text) or is_public_material(text):
        return None
    hit = first_token(text)
    kclass = classify_key(key) if key else "neutral"
    if hit is not None:
        return Verdict(hit.rule, hit.confidence)
    decoded = _decoded_text(text)
    if decoded is not None:  # base64-wrapped material: kubeconfig *-data fields, values files
        if is_public_material(decoded):
            return None
        inner = first_token(decoded)
        if inner is not None:
            return Verdict(inner.rule, inner.confidence)
    if forced:
        if is_demo_value(text):
            return Verdict("secret-object", "low", "demo-value")
        if is_placeholder(text, key) or _encoded_placeholder(text) or _placeholder_pem(text):
            return None
        if _SOFT_PLACEHOLDER.match(text) or _describes_itself(text, key):
            return Verdict("secret-object", "low", "placeholder-like")
        strong = kclass in _STRONG_RULE
        return Verdict("secret-object", "high" if strong else "medium",
                       "weak-default" if text.lower() in WEAK_DEFAULTS else None)
    if _PUBLIC_TOKEN.match(text):
        return None
    if kclass in _STRONG_RULE:
        if is_demo_value(text):
            return Verdict(_STRONG_RULE[kclass], "low", "demo-value")
        if is_placeholder(text, key) or _encoded_placeholder(text):
            return None
        if _placeholder_pem(text):
            return None
        if kclass == "secret" and _SECRET_NAME_VALUE.match(text):
            return None  # tls: {secret: web-tls-secret} names a Secret object
        if _names_a_field(text, key):
            return None
        if kclass == "api-key" and _AWS_SECRET_NAME.search(key) and _AWS_SECRET_VALUE.match(text):
            return Verdict("aws-secret-key", "high")
        if _not_a_secret_shape(text):
            return None  # a path or identity that happens to repeat its name (``.../kubelet-client.key``)
        if _SOFT_PLACEHOLDER.match(text) or _describes_itself(text, key):
            return Verdict(_STRONG_RULE[kclass], "low", "placeholder-like")
        if len(text) < 3 and not text.isalnum():
            return None
        if text.isdigit() and len(text) < 6:
            return None
        if text.lower() in WEAK_DEFAULTS:
            return Verdict(_STRONG_RULE[kclass], "medium", "weak-default")
        return Verdict(_STRONG_RULE[kclass], "high")
    if kclass == "weak":
        if (_looks_random(text, 16, printable=True) or _random_caps(text)) and not is_placeholder(text, key):
            return Verdict("generic-key", "medium")
        return None
    if entropy and kclass == "neutral" and not _HASHY_NAME.search(key) and _looks_random(text, 24) \
            and not _HEX.match(text) and not is_placeholder(text, key):
        return Verdict("high-entropy", "low")
    return None
