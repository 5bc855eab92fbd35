"""The DCI message signature: what it covers, how it is written, how it is checked.

The specifications give only an example of the `signature` field:

    Signature:  namespace="dci", kidId="{sender_id}|{unique_key_id}|{algorithm}",
    algorithm="ed25519", created="1606970629", expires="1607030629",
    headers="(created) (expires) digest", signature="Base64(signing content)"

and say it is "a signature of {header}+{message} verified using the sender's
signing public key". That is the HTTP-signature scheme of Beckn, which DCI
took its envelope from; this module implements it for the envelope:

    digest          = BLAKE2b-512 of the RFC 8785 canonical JSON of
                      {"header": <header>, "message": <message>}  (no "message" key if none)
    signing string  = "(created): <created>\n(expires): <expires>\ndigest: BLAKE-512=<base64 digest>"
    signature       = base64( Ed25519-sign(private key, signing string) )

`created` and `expires` are unix seconds; a signature is accepted from
`created` (less the clock tolerance) until `expires` (plus it). The message_id,
unique per sender, makes a captured message useless a second time.
docs/interoperability.md gives partners the same recipe with a worked example.
"""

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from . import ed25519
from .canonical import canonical_json

ALGORITHM = "ed25519"
SIGNED_HEADERS = "(created) (expires) digest"
# Clocks drift: a signature made up to five minutes "in the future" by the
# sender's clock, or read five minutes after it expired, is still accepted.
CLOCK_TOLERANCE_SECONDS = 300
# Our own signatures are valid this long: enough for a callback to be retried
# by a slow partner's gateway, short enough that a captured one soon expires.
SIGNATURE_LIFETIME_SECONDS = 3600

_PARAMETER = re.compile(r'([A-Za-z]+)\s*=\s*"([^"]*)"?')


class SignatureProblem(ValueError):
    """Why a signature was refused: `code` is the DCI error code, the message says what is wrong."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ParsedSignature:
    sender_id: str
    key_id: str
    algorithm: str
    created: int
    expires: int
    signature: bytes


def signed_content(header: dict, message) -> bytes:
    body = {"header": header} if message is None else {"header": header, "message": message}
    return canonical_json(body)


def signing_string(*, created: int, expires: int, content: bytes) -> bytes:
    digest = base64.b64encode(hashlib.blake2b(content, digest_size=64).digest()).decode("ascii")
    return f"(created): {created}\n(expires): {expires}\ndigest: BLAKE-512={digest}".encode()


def sign_envelope(*, header: dict, message, sender_id: str, key_id: str, private_key: bytes, now: int) -> str:
    """The `signature` value for an envelope we send."""
    created, expires = now, now + SIGNATURE_LIFETIME_SECONDS
    raw = ed25519.sign(
        private_key, signing_string(created=created, expires=expires, content=signed_content(header, message))
    )
    return (
        f'Signature: namespace="dci", kidId="{sender_id}|{key_id}|{ALGORITHM}", algorithm="{ALGORITHM}", '
        f'created="{created}", expires="{expires}", headers="{SIGNED_HEADERS}", '
        f'signature="{base64.b64encode(raw).decode("ascii")}"'
    )


def parse_signature(value: str) -> ParsedSignature:
    """Read a `signature` field; SignatureProblem when it is not one we can check."""
    text = (value or "").strip()
    if not text:
        raise SignatureProblem("err.signature.missing", "signature: this partner signs its messages; none was sent.")
    if text.lower().startswith("signature:"):
        text = text[len("signature:") :]
    parameters = {name.lower(): content for name, content in _PARAMETER.findall(text)}
    key = parameters.get("kidid") or parameters.get("keyid") or ""
    parts = key.split("|")
    if len(parts) != 3 or not all(parts):
        raise SignatureProblem("err.signature.invalid", 'signature: kidId must be "{sender_id}|{key_id}|ed25519".')
    sender_id, key_id, key_algorithm = parts
    algorithm = parameters.get("algorithm", key_algorithm).lower()
    if algorithm != ALGORITHM or key_algorithm.lower() != ALGORITHM:
        raise SignatureProblem("err.signature.invalid", f'signature: algorithm must be "{ALGORITHM}".')
    if " ".join(parameters.get("headers", SIGNED_HEADERS).split()) != SIGNED_HEADERS:
        raise SignatureProblem("err.signature.invalid", f'signature: headers must be "{SIGNED_HEADERS}".')
    try:
        created, expires = int(parameters["created"]), int(parameters["expires"])
    except (KeyError, ValueError):
        raise SignatureProblem(
            "err.signature.invalid", "signature: created and expires must be unix times in whole seconds."
        )
    try:
        raw = base64.b64decode(parameters.get("signature", ""), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureProblem("err.signature.invalid", "signature: the signature value is not base64.")
    if len(raw) != ed25519.SIGNATURE_BYTES:
        raise SignatureProblem(
            "err.signature.invalid", f"signature: an Ed25519 signature is {ed25519.SIGNATURE_BYTES} bytes."
        )
    return ParsedSignature(sender_id, key_id, algorithm, created, expires, raw)


def check_signature(parsed: ParsedSignature, *, header: dict, message, public_key: bytes, now: int) -> None:
    """Raise SignatureProblem unless `parsed` signs this header and message with `public_key`, now."""
    if parsed.created > now + CLOCK_TOLERANCE_SECONDS:
        raise SignatureProblem("err.signature.invalid", "signature: created is in the future; check your clock.")
    if parsed.expires < now - CLOCK_TOLERANCE_SECONDS:
        raise SignatureProblem("err.signature.invalid", "signature: it has expired; sign the message again.")
    if parsed.expires < parsed.created:
        raise SignatureProblem("err.signature.invalid", "signature: expires is before created.")
    content = signed_content(header, message)
    if not ed25519.verify(
        public_key, signing_string(created=parsed.created, expires=parsed.expires, content=content), parsed.signature
    ):
        raise SignatureProblem(
            "err.signature.invalid",
            "signature: it does not match the header and message (or was made with another key).",
        )


def decode_public_key(text: str) -> bytes:
    """A public key as partners give it: base64 (or hex) of the 32 raw bytes, or the PEM block
    `openssl pkey -pubout` prints. ValueError if it is not one."""
    text = re.sub(r"-----(BEGIN|END) PUBLIC KEY-----", "", text or "")
    text = "".join(text.split())
    candidates = []
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        candidates.append(bytes.fromhex(text))
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            candidates.append(decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError):
            continue
    for raw in candidates:
        # A key exported as DER (SubjectPublicKeyInfo) ends with the 32 raw bytes.
        if len(raw) == 44 and raw.startswith(bytes.fromhex("302a300506032b6570032100")):
            raw = raw[12:]
        if ed25519.is_public_key(raw):
            return raw
    raise ValueError("An Ed25519 public key is 32 bytes, given in base64 (44 characters) or hex (64).")
