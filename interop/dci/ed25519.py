"""Ed25519 signatures (RFC 8032) for DCI messages, by the `cryptography` package (OpenSSL).

The DCI `signature` field names ed25519 as its algorithm. This module is the
one place the project signs and verifies with it, behind four small functions
on raw bytes (32-byte keys, 64-byte signatures), so the rest of `interop`
never touches key objects. Checked against RFC 8032's test vectors
(interop/tests/test_signatures.py).
"""

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KEY_BYTES = 32
SIGNATURE_BYTES = 64


def _private(secret: bytes) -> Ed25519PrivateKey:
    if len(secret) != KEY_BYTES:
        raise ValueError(f"An Ed25519 private key is {KEY_BYTES} bytes, not {len(secret)}.")
    return Ed25519PrivateKey.from_private_bytes(secret)


def public_key(secret: bytes) -> bytes:
    """The 32-byte public key of a 32-byte private key (seed)."""
    return _private(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def is_public_key(data: bytes) -> bool:
    """True when `data` is 32 bytes OpenSSL accepts as an Ed25519 public key."""
    if len(data) != KEY_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(data)
    except ValueError:
        return False
    return True


def sign(secret: bytes, message: bytes) -> bytes:
    return _private(secret).sign(message)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
