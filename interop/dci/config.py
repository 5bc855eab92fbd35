"""This registry's side of DCI: its sender id and signing key, and the limits it answers within.

Read from the settings (and so from the environment: see spf/settings/base.py);
every value has a default, so a fresh machine works without any.
"""

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from . import ed25519

DCI_VERSION = "1.0.0"
# The answer's language. The specification's locale is ISO 639-3 (three
# lower-case letters); our messages are written in English.
ANSWER_LOCALE = "eng"

# A page of 200 households with their members is about half a megabyte of
# JSON: it crosses a slow district link in seconds. Larger pages time out.
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
# Search requests in one message: ten pages of the largest size is already
# more than a gateway usually forwards in one answer.
MAX_SEARCH_REQUESTS = 10
# Enrolment updates in one message: each is a few writes with their history;
# a hundred are answered within a few seconds, well inside a gateway's timeout.
MAX_ENROLMENT_UPDATES = 100
# A search is a lookup, not an export of the registry: a query matching more
# than this many records is refused with rjct.search.too_many_records_found,
# and the partner narrows it (by district, ward, age ...).
MAX_MATCHES = 10_000
# Conditions in one query, and values in one "in" list: far beyond any real
# lookup, and within what the rules language accepts in one expression.
MAX_CONDITIONS = 20
MAX_IN_VALUES = 50


@dataclass(frozen=True)
class Identity:
    sender_id: str
    key_id: str
    private_key: bytes
    public_key: bytes

    @property
    def public_key_base64(self) -> str:
        return base64.b64encode(self.public_key).decode("ascii")


@lru_cache(maxsize=4)
def _identity(sender_id: str, configured_key: str, secret_key: str) -> Identity:
    if configured_key:
        seed = base64.b64decode(configured_key)
        if len(seed) != ed25519.KEY_BYTES:
            raise ValueError("DCI_SIGNING_KEY must be the base64 of 32 random bytes.")
    else:
        # No key configured: one derived from SECRET_KEY, stable across restarts,
        # so a demo or a first install signs without another secret to manage.
        seed = hashlib.sha256(b"spf-dci-signing-key\x00" + secret_key.encode("utf-8")).digest()
    public = ed25519.public_key(seed)
    # The key's id changes with the key: partners see at once which key signed.
    key_id = hashlib.sha256(public).hexdigest()[:12]
    return Identity(sender_id, key_id, seed, public)


def identity() -> Identity:
    """This registry's DCI identity: the sender id its messages carry and the key that signs them."""
    return _identity(
        getattr(settings, "DCI_SENDER_ID", "") or "spf-single-window",
        getattr(settings, "DCI_SIGNING_KEY", "") or "",
        settings.SECRET_KEY,
    )


def poverty_score_attribute() -> str:
    """The household attribute DCI's poverty_score reads (a proxy-means test score)."""
    return getattr(settings, "DCI_POVERTY_SCORE_ATTRIBUTE", "") or "pmt_score"


def callback_timeout_seconds() -> float:
    return float(getattr(settings, "DCI_CALLBACK_TIMEOUT_SECONDS", 10.0))


def payload_retention_days() -> int:
    return int(getattr(settings, "DCI_PAYLOAD_RETENTION_DAYS", 30))
