"""New secret values for ``SecretRotation``: passwords by policy, random bytes, UUIDs, key pairs.

Why here and why ``secrets``/``cryptography``: every value comes from the OS CSPRNG
(``secrets``, ``os.urandom``) and every key pair from ``cryptography`` (PKCS#8 private key,
SubjectPublicKeyInfo public key, PEM); nothing is seeded or home-made. The result is a
:class:`SecretValue` at once, so it cannot reach a log line or an error by accident.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
import uuid
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from secretsync.api.models import PASSWORD_SYMBOLS, Generator, PasswordGenerator
from secretsync.core.errors import InvalidConfig
from secretsync.core.values import SecretValue

_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1,
                                                      "P-521": ec.SECP521R1}


def generate(gen: Generator) -> SecretValue:
    """One new value of the generator's kind (key pairs: JSON ``{privateKey, publicKey}``)."""
    if gen.password is not None:
        return password(gen.password)
    if gen.random_bytes is not None:
        raw = os.urandom(gen.random_bytes.length)
        enc = gen.random_bytes.encoding
        if enc == "raw":
            return SecretValue(raw)
        if enc == "hex":
            return SecretValue(raw.hex())
        return SecretValue(base64.urlsafe_b64encode(raw) if enc == "base64url" else base64.b64encode(raw))
    if gen.uuid is not None:
        return SecretValue(str(uuid.uuid4()))
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if gen.rsa is not None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=gen.rsa.bits)
    elif gen.ecdsa is not None:
        key = ec.generate_private_key(_CURVES[gen.ecdsa.curve]())
    elif gen.ed25519 is not None:
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise InvalidConfig("generator: set exactly one kind")
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return SecretValue(json.dumps({"privateKey": private, "publicKey": public}))


def password(policy: PasswordGenerator) -> SecretValue:
    """``length`` characters with at least one of every enabled class, minus ``exclude``."""
    wanted = [(policy.lowercase, string.ascii_lowercase), (policy.uppercase, string.ascii_uppercase),
              (policy.digits, string.digits), (policy.symbols, PASSWORD_SYMBOLS)]
    classes = ["".join(c for c in chars if c not in policy.exclude) for on, chars in wanted if on]
    if not classes or any(not c for c in classes):
        raise InvalidConfig("generator.password: exclude leaves an enabled character class empty")
    alphabet = "".join(classes)
    chars = [secrets.choice(c) for c in classes]
    chars += [secrets.choice(alphabet) for _ in range(policy.length - len(chars))]
    # Shuffle with the CSPRNG so the guaranteed characters are not at fixed positions.
    for i in range(len(chars) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return SecretValue("".join(chars))
