"""The DCI envelope: {signature, header, message}. Reading a partner's header,
writing ours, and the three shapes an answer can take.

- A transport error (no token, a bad signature, a body that is not an
  envelope): HTTP 400/401/403/500 with the specification's HttpErrorResponse,
  {"errors": [{"code": "err.…", "message": "…"}]}.
- A synchronous answer: the envelope, whose header says whether the message
  was processed (`succ`) or refused (`rjct`, with a status_reason_code), and
  whose message holds one result per request of the batch.
- An asynchronous acknowledgement: {"message": {"ack_status": "ACK" | "ERR",
  "timestamp", "correlation_id", "error"}}; the answer follows by callback.

Every message we send is signed (see `signatures`).
"""

from __future__ import annotations

import datetime
import time
import uuid
from dataclasses import dataclass

from django.utils import timezone

from .config import DCI_VERSION, identity
from .signatures import sign_envelope

# Message header reason codes (MsgHeaderStatusReasonCode).
VERSION_INVALID = "rjct.version.invalid"
MESSAGE_ID_DUPLICATE = "rjct.message_id.duplicate"
MESSAGE_TS_INVALID = "rjct.message_ts.invalid"
ACTION_INVALID = "rjct.action.invalid"
TOTAL_COUNT_INVALID = "rjct.total_count.invalid"
TOTAL_COUNT_LIMIT = "rjct.total_count.limit_exceeded"

# Transport error codes (the specification's Error object).
REQUEST_BAD = "err.request.bad"
UNAUTHORIZED = "err.request.unauthorized"
FORBIDDEN = "err.request.forbidden"
VERSION_NOT_SUPPORTED = "err.version.not_supported"
SENDER_ID_INVALID = "err.sender_id.invalid"
SENDER_URI_INVALID = "err.sender_uri.invalid"
RECEIVER_ID_INVALID = "err.receiver_id.invalid"
ENCRYPTION_INVALID = "err.encryption.invalid"
SERVICE_UNAVAILABLE = "err.service.unavailable"

# A message timestamped further ahead than this by the sender's clock is refused.
MESSAGE_TS_TOLERANCE = datetime.timedelta(minutes=5)


class TransportError(Exception):
    """The message cannot be taken at all: answered with HttpErrorResponse and this HTTP status."""

    def __init__(self, status_code: int, code: str, message: str):
        super().__init__(message)
        self.status_code, self.code = status_code, code


class Rejection(Exception):
    """The message was read and is refused: `reason_code` for a synchronous answer's header,
    `error_code` (the Error object's) for an acknowledgement."""

    def __init__(self, reason_code: str, message: str, *, error_code: str = REQUEST_BAD):
        super().__init__(message)
        self.reason_code, self.error_code = reason_code, error_code


@dataclass(frozen=True)
class Endpoint:
    """One DCI address of this registry: what it expects and how it answers."""

    path: str
    api: str  # interop.models.Api
    action: str  # interop.models.Action
    mode: str  # interop.models.Mode
    header_action: str  # what header.action must say
    answer_action: str  # what our answer's (or callback's) header.action says
    permission: str  # the Partner flag that allows it
    callback_path: str = ""  # for asynchronous endpoints: added to the partner's callback address
    request_header: bool = True  # MsgHeader (sender_id and total_count required) or MsgCallbackHeader


def error_body(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message[:999]}]}


def now_iso() -> str:
    return timezone.now().isoformat()


def ack_body(*, correlation_id: str, error_code: str = "", error_message: str = "") -> dict:
    message = {"ack_status": "ERR" if error_code else "ACK", "timestamp": now_iso(), "correlation_id": correlation_id}
    if error_code:
        message["error"] = {"code": error_code, "message": error_message[:999]}
    return {"message": message}


def answer_envelope(
    *,
    receiver_id: str,
    action: str,
    status: str,
    message: dict | None = None,
    reason_code: str = "",
    reason_message: str = "",
    total_count: int = 0,
    completed_count: int = 0,
) -> dict:
    """A signed envelope from this registry (a synchronous answer or a callback)."""
    me = identity()
    header = {
        "version": DCI_VERSION,
        "message_id": str(uuid.uuid4()),
        "message_ts": now_iso(),
        "action": action,
        "status": status,
        "total_count": total_count,
        "completed_count": completed_count,
        "sender_id": me.sender_id,
        "receiver_id": receiver_id,
        "is_msg_encrypted": False,
    }
    if reason_code:
        header["status_reason_code"] = reason_code
    if reason_message:
        header["status_reason_message"] = reason_message[:999]
    signature = sign_envelope(
        header=header,
        message=message,
        sender_id=me.sender_id,
        key_id=me.key_id,
        private_key=me.private_key,
        now=int(time.time()),
    )
    envelope = {"signature": signature, "header": header}
    if message is not None:
        envelope["message"] = message
    return envelope


# --- reading a partner's header ----------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    message_id: str
    message_ts: datetime.datetime | None
    action: str
    version: str
    total_count: int | None
    sender_uri: str


def _text(header: dict, key: str, *, required: bool, limit: int = 999) -> str:
    value = header.get(key)
    if value is None or value == "":
        if required:
            raise TransportError(400, REQUEST_BAD, f"header.{key}: required.")
        return ""
    if not isinstance(value, str):
        raise TransportError(400, REQUEST_BAD, f"header.{key}: must be a string.")
    if len(value) > limit:
        raise TransportError(400, REQUEST_BAD, f"header.{key}: at most {limit} characters.")
    return value.strip()


def parse_timestamp(value) -> datetime.datetime | None:
    """An ISO 8601 date-time with its offset (Z or ±hh:mm); None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def read_header(header: dict, *, endpoint: Endpoint, partner_code: str, receiver_id: str) -> Header:
    """What the header says, or TransportError for a header that cannot be taken."""
    message_id = _text(header, "message_id", required=True, limit=100)
    _text(header, "action", required=True, limit=64)
    if "message_ts" not in header or header.get("message_ts") in (None, ""):
        raise TransportError(400, REQUEST_BAD, "header.message_ts: required.")
    sender_id = _text(header, "sender_id", required=endpoint.request_header, limit=255)
    if sender_id and sender_id != partner_code:
        raise TransportError(
            401,
            SENDER_ID_INVALID,
            f"header.sender_id: '{sender_id}' is not the partner this token was issued to ({partner_code}).",
        )
    receiver = _text(header, "receiver_id", required=False, limit=255)
    if receiver and receiver != receiver_id:
        raise TransportError(
            400, RECEIVER_ID_INVALID, f"header.receiver_id: this registry is '{receiver_id}', not '{receiver}'."
        )
    if header.get("is_msg_encrypted") is True:
        raise TransportError(
            400,
            ENCRYPTION_INVALID,
            "header.is_msg_encrypted: encrypted messages are not supported here; send the message in the clear "
            "over HTTPS with is_msg_encrypted false.",
        )
    total = header.get("total_count")
    if total in (None, "") and endpoint.request_header:
        raise TransportError(400, REQUEST_BAD, "header.total_count: required (the number of requests in the message).")
    return Header(
        message_id=message_id,
        message_ts=parse_timestamp(header.get("message_ts")),
        action=str(header.get("action")).strip(),
        version=str(header.get("version") or DCI_VERSION).strip(),
        total_count=_count(total),
        sender_uri=_text(header, "sender_uri", required=False, limit=500),
    )


def _count(value) -> int | None:
    # The specification's samples send "1" where the schema says 1: both are read.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def check_header(header: Header, *, endpoint: Endpoint, items: int, limit: int, now: datetime.datetime) -> None:
    """The rules a read header must meet; Rejection with the specification's reason code if it does not."""
    if header.version != DCI_VERSION:
        raise Rejection(
            VERSION_INVALID,
            f"header.version: this registry speaks DCI {DCI_VERSION}, not {header.version}.",
            error_code=VERSION_NOT_SUPPORTED,
        )
    if header.action != endpoint.header_action:
        raise Rejection(
            ACTION_INVALID, f"header.action: {endpoint.path} takes '{endpoint.header_action}', not '{header.action}'."
        )
    if header.message_ts is None:
        raise Rejection(
            MESSAGE_TS_INVALID,
            "header.message_ts: must be an ISO 8601 date-time with its offset, e.g. 2026-11-23T10:15:00+02:00.",
        )
    if header.message_ts > now + MESSAGE_TS_TOLERANCE:
        raise Rejection(MESSAGE_TS_INVALID, "header.message_ts: is in the future; check the sender's clock.")
    if endpoint.request_header or header.total_count is not None:
        if header.total_count is None or header.total_count != items:
            raise Rejection(
                TOTAL_COUNT_INVALID,
                f"header.total_count: the message holds {items} request{'s' if items != 1 else ''}, "
                f"not {header.total_count if header.total_count is not None else 'a number'}.",
            )
    if items > limit:
        raise Rejection(TOTAL_COUNT_LIMIT, f"header.total_count: at most {limit} requests in one message.")
