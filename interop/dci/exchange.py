"""One DCI message in, one answer out: the order every message is taken in.

1. Who sends it: a partner's bearer token (401 without a valid one; 403 for a
   suspended partner or an exchange it is not allowed).
2. Can it be read: JSON, an envelope with a header and a message of the right
   shape, not encrypted (400 err.request.bad, naming the field).
3. Is it theirs, unchanged: the signature, when the partner has a key (401
   err.signature.missing or err.signature.invalid); header.sender_id is the
   token's partner (401 err.sender_id.invalid).
4. Is it new: the message is recorded; the database refuses a message_id the
   partner already used (rjct.message_id.duplicate), so a message is never
   answered twice, even when two copies arrive at once.
5. Is the header right: version, action, message_ts, total_count (rjct.…).
6. The exchange itself, at once (sync) or acknowledged and answered by
   callback (async), each request of the batch with its own status.

Transport errors answer with the HttpErrorResponse shape; everything after
step 4 answers in DCI's own shape (an envelope, or an acknowledgement) with
HTTP 200, and is kept in the partner's transaction log.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import logging
import time
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Action, Api, Mode, Partner, PartnerToken, Status, Transaction, TransactionItem
from ..services import token_hash
from .callbacks import callback_target
from .config import MAX_ENROLMENT_UPDATES, MAX_SEARCH_REQUESTS, identity
from .enrolled import enrolled_outcome
from .envelope import (
    ENCRYPTION_INVALID,
    FORBIDDEN,
    MESSAGE_ID_DUPLICATE,
    REQUEST_BAD,
    SERVICE_UNAVAILABLE,
    UNAUTHORIZED,
    Endpoint,
    Rejection,
    TransportError,
    ack_body,
    answer_envelope,
    check_header,
    error_body,
    read_header,
)
from .results import Outcome
from .search import search_outcome
from .signatures import SignatureProblem, check_signature, parse_signature
from .txn_status import txn_status_outcome
from .updates import beneficiaries_of, updates_outcome

logger = logging.getLogger(__name__)

# A DCI message is a few kilobytes; a batch of a hundred enrolment updates a
# few hundred. Five megabytes is far beyond any honest message, and refusing
# more before reading it keeps one caller from tying up a worker.
MAX_BODY_BYTES = 5 * 1024 * 1024
# last_used_at is written at most this often per token: one UPDATE per request
# would make every search a write.
TOKEN_TOUCH_INTERVAL = datetime.timedelta(minutes=5)

ON_SEARCH, ON_STATUS = "/registry/on-search", "/registry/txn/on-status"

ENDPOINTS = [
    Endpoint(
        "registry/sync/search", Api.SOCIAL, Action.SEARCH, Mode.SYNC, "search", "on-search", "can_search_registry"
    ),
    Endpoint(
        "registry/search",
        Api.SOCIAL,
        Action.SEARCH,
        Mode.ASYNC,
        "search",
        "on-search",
        "can_search_registry",
        ON_SEARCH,
    ),
    Endpoint("registry/sync/txn/status", Api.SOCIAL, Action.TXN_STATUS, Mode.SYNC, "txn-status", "txn-on-status", ""),
    Endpoint(
        "registry/txn/status", Api.SOCIAL, Action.TXN_STATUS, Mode.ASYNC, "txn-status", "txn-on-status", "", ON_STATUS
    ),
]
# The Integrated Beneficiary Registry's own paths. Its search shares /registry/sync/search
# with the Social Registry's, so the IBR API lives under ibr/; its enrolled and
# enrolment-update paths, which nothing else uses, are also served at the root.
_IBR = [
    Endpoint(
        "registry/sync/enrolled", Api.IBR, Action.ENROLLED, Mode.SYNC, "search", "on-search", "can_read_enrolments"
    ),
    Endpoint(
        "registry/sync/enrollment/updates",
        Api.IBR,
        Action.UPDATES,
        Mode.SYNC,
        "notify",
        "on-notify",
        "can_update_enrolments",
        request_header=False,
    ),
]
ENDPOINTS += _IBR
ENDPOINTS += [dataclasses.replace(endpoint, path="ibr/" + endpoint.path) for endpoint in _IBR]
ENDPOINTS += [
    Endpoint(
        "ibr/registry/sync/search", Api.IBR, Action.SEARCH, Mode.SYNC, "search", "on-search", "can_read_enrolments"
    ),
    Endpoint(
        "ibr/registry/search",
        Api.IBR,
        Action.SEARCH,
        Mode.ASYNC,
        "search",
        "on-search",
        "can_read_enrolments",
        ON_SEARCH,
    ),
    Endpoint("ibr/registry/sync/txn/status", Api.IBR, Action.TXN_STATUS, Mode.SYNC, "txn-status", "txn-on-status", ""),
    Endpoint(
        "ibr/registry/txn/status", Api.IBR, Action.TXN_STATUS, Mode.ASYNC, "txn-status", "txn-on-status", "", ON_STATUS
    ),
]
ENDPOINTS_BY_PATH = {endpoint.path: endpoint for endpoint in ENDPOINTS}

PERMISSION_WORDS = {
    "can_search_registry": "search the registry",
    "can_read_enrolments": "read enrolments",
    "can_update_enrolments": "send enrolment updates",
}


@dataclass
class Answer:
    status_code: int
    body: dict
    transaction: Transaction | None = None


# --- steps 1 to 3 ------------------------------------------------------------------------------


def authenticate(authorization: str) -> Partner:
    scheme, _, raw = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise TransportError(401, UNAUTHORIZED, "Send the partner's token as 'Authorization: Bearer <token>'.")
    token = (
        PartnerToken.objects.select_related("partner", "partner__service_user")
        .filter(token_hash=token_hash(raw))
        .first()
    )
    now = timezone.now()
    if token is None or not token.is_usable(now):
        raise TransportError(401, UNAUTHORIZED, "This token is not valid: unknown, expired or revoked.")
    partner = token.partner
    if not partner.active:
        raise TransportError(403, FORBIDDEN, f"Partner {partner.code} is suspended; ask ministry staff.")
    if token.last_used_at is None or token.last_used_at < now - TOKEN_TOUCH_INTERVAL:
        PartnerToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return partner


def read_envelope(content_type: str, body: bytes) -> dict:
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        raise TransportError(
            400, REQUEST_BAD, "Files (FileInfo) are not taken here; send the envelope as application/json."
        )
    if media not in ("application/json", ""):
        raise TransportError(400, REQUEST_BAD, f"Send application/json, not {media}.")
    try:
        envelope = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise TransportError(400, REQUEST_BAD, f"The body is not JSON (UTF-8): {problem}.")
    if not isinstance(envelope, dict):
        raise TransportError(400, REQUEST_BAD, "The body must be an object: {signature, header, message}.")
    if not isinstance(envelope.get("header"), dict):
        raise TransportError(400, REQUEST_BAD, "header: required, an object.")
    message = envelope.get("message")
    if not isinstance(message, dict):
        raise TransportError(400, REQUEST_BAD, "message: required, an object.")
    if {"ciphertext", "encrypted_key"} & set(message):
        raise TransportError(
            400,
            ENCRYPTION_INVALID,
            "message: encrypted messages are not supported here; send it in the clear over HTTPS.",
        )
    return envelope


def verify_signature(partner: Partner, envelope: dict, *, now: int) -> None:
    keys = {key.key_id: key for key in partner.keys.filter(revoked_at__isnull=True)}
    if not keys:
        return
    try:
        parsed = parse_signature(envelope.get("signature") or "")
        if parsed.sender_id != partner.code:
            raise SignatureProblem(
                "err.signature.invalid", f"signature: kidId names sender '{parsed.sender_id}', not {partner.code}."
            )
        key = keys.get(parsed.key_id)
        if key is None:
            raise SignatureProblem(
                "err.signature.invalid", f"signature: '{parsed.key_id}' is not an active key of {partner.code}."
            )
        check_signature(
            parsed,
            header=envelope["header"],
            message=envelope.get("message"),
            public_key=base64.b64decode(key.public_key),
            now=now,
        )
    except SignatureProblem as problem:
        raise TransportError(401, problem.code, str(problem))


def items_in(endpoint: Endpoint, message: dict) -> tuple[int, int]:
    """(requests in the message, the most one message may hold); TransportError for a message of the wrong shape."""
    transaction_id = message.get("transaction_id")
    if transaction_id is None:
        raise TransportError(
            400, REQUEST_BAD, "message.transaction_id: required (your id for the business transaction)."
        )
    if not isinstance(transaction_id, (str, int)) or isinstance(transaction_id, bool) or len(str(transaction_id)) > 99:
        raise TransportError(400, REQUEST_BAD, "message.transaction_id: a string of at most 99 characters.")
    if endpoint.action == Action.SEARCH:
        requests = message.get("search_request")
        if not isinstance(requests, list) or not requests:
            raise TransportError(400, REQUEST_BAD, "message.search_request: required, a list of search requests.")
        return len(requests), MAX_SEARCH_REQUESTS
    if endpoint.action == Action.UPDATES:
        beneficiaries = beneficiaries_of(message)
        if not isinstance(beneficiaries, list) or not beneficiaries:
            raise TransportError(
                400, REQUEST_BAD, "message.enrolled_updates.beneficiaries: required, a list of beneficiaries."
            )
        return len(beneficiaries), MAX_ENROLMENT_UPDATES
    key = "enrolled_criteria" if endpoint.action == Action.ENROLLED else "txnstatus_request"
    if not isinstance(message.get(key), dict):
        raise TransportError(400, REQUEST_BAD, f"message.{key}: required, an object.")
    return 1, 1


# --- steps 4 to 6 ------------------------------------------------------------------------------


def run_exchange(*, endpoint: Endpoint, partner: Partner, transaction_row: Transaction, message: dict) -> Outcome:
    correlation_id = transaction_row.correlation_id
    if endpoint.action == Action.SEARCH:
        return search_outcome(partner=partner, api=endpoint.api, message=message, correlation_id=correlation_id)
    if endpoint.action == Action.ENROLLED:
        return enrolled_outcome(partner=partner, message=message, correlation_id=correlation_id)
    if endpoint.action == Action.UPDATES:
        return updates_outcome(
            partner=partner, message=message, correlation_id=correlation_id, message_id=transaction_row.message_id
        )
    return txn_status_outcome(partner=partner, message=message, correlation_id=correlation_id)


def record_outcome(row: Transaction, outcome: Outcome, *, started: float) -> None:
    row.status = outcome.status
    row.status_reason_code = outcome.reason_code
    row.status_reason_message = outcome.reason_message[:999]
    row.completed_count = outcome.completed_count
    row.record_count = outcome.record_count
    row.completed_at = timezone.now()
    row.duration_ms = round((time.monotonic() - started) * 1000)
    TransactionItem.objects.bulk_create(
        [
            TransactionItem(
                transaction=row,
                position=position,
                reference_id=item.reference_id[:99],
                status=item.status,
                status_reason_code=item.reason_code,
                status_reason_message=item.reason_message[:999],
                total_count=item.total_count,
                returned_count=item.returned_count,
                page_number=item.page_number,
                page_size=item.page_size,
                enrolment_id=item.enrolment_id,
                referral_id=item.referral_id,
            )
            for position, item in enumerate(outcome.items, start=1)
        ]
    )
    row.save()


def _refuse(row: Transaction, endpoint: Endpoint, rejection: Rejection) -> Answer:
    row.status, row.status_reason_code = Status.REJECTED, rejection.reason_code or rejection.error_code
    row.status_reason_message, row.completed_at = str(rejection)[:999], timezone.now()
    row.save(update_fields=["status", "status_reason_code", "status_reason_message", "completed_at"])
    if endpoint.mode == Mode.ASYNC:
        text = f"{rejection.reason_code}: {rejection}" if rejection.reason_code else str(rejection)
        return Answer(
            200, ack_body(correlation_id=row.correlation_id, error_code=rejection.error_code, error_message=text), row
        )
    body = answer_envelope(
        receiver_id=row.partner.code,
        action=endpoint.answer_action,
        status=Status.REJECTED,
        reason_code=rejection.reason_code,
        reason_message=str(rejection),
    )
    return Answer(200, body, row)


def _duplicate(partner: Partner, endpoint: Endpoint, message_id: str) -> Answer:
    original = Transaction.objects.get(partner=partner, message_id=message_id)
    text = (
        f"header.message_id: '{message_id}' was received at "
        f"{timezone.localtime(original.received_at):%Y-%m-%d %H:%M:%S %z} (correlation_id {original.correlation_id}); "
        "a message is answered once. Send a new message with a new message_id, or ask for the status of that one."
    )
    if endpoint.mode == Mode.ASYNC:
        return Answer(
            200,
            ack_body(
                correlation_id=original.correlation_id,
                error_code=REQUEST_BAD,
                error_message=f"{MESSAGE_ID_DUPLICATE}: {text}",
            ),
        )
    body = answer_envelope(
        receiver_id=partner.code,
        action=endpoint.answer_action,
        status=Status.REJECTED,
        reason_code=MESSAGE_ID_DUPLICATE,
        reason_message=text,
    )
    return Answer(200, body)


def _queue_processing(transaction_pk: int) -> None:
    from ..tasks import transaction_run

    try:
        transaction_run.delay(transaction_pk)
    except Exception:
        # The broker is down: the beat sweep processes it when it is back.
        logger.warning("DCI transaction %s: could not queue its processing; the sweep will", transaction_pk)


def dci_receive(*, endpoint: Endpoint, authorization: str, content_type: str, body: bytes) -> Answer:
    """Take one message for `endpoint` and answer it (see the module's docstring for the order)."""
    started = time.monotonic()
    partner = None
    try:
        partner = authenticate(authorization)
        if endpoint.permission and not getattr(partner, endpoint.permission):
            raise TransportError(
                403,
                FORBIDDEN,
                f"Partner {partner.code} may not {PERMISSION_WORDS[endpoint.permission]}; ask ministry staff.",
            )
        if len(body) > MAX_BODY_BYTES:
            raise TransportError(400, REQUEST_BAD, f"The message is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB.")
        envelope = read_envelope(content_type, body)
        verify_signature(partner, envelope, now=int(time.time()))
        header = read_header(
            envelope["header"], endpoint=endpoint, partner_code=partner.code, receiver_id=identity().sender_id
        )
        message = envelope["message"]
        items, limit = items_in(endpoint, message)
    except TransportError as problem:
        logger.info(
            "DCI %s from %s refused: %s %s", endpoint.path, partner.code if partner else "?", problem.code, problem
        )
        return Answer(problem.status_code, error_body(problem.code, str(problem)))

    row = Transaction(
        partner=partner,
        message_id=header.message_id,
        transaction_id=str(message.get("transaction_id") or "")[:99],
        correlation_id=uuid.uuid4().hex,
        api=endpoint.api,
        action=endpoint.action,
        mode=endpoint.mode,
        endpoint=endpoint.path,
        header=envelope["header"],
        item_count=items,
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        logger.info("DCI %s from %s: message_id %s repeated", endpoint.path, partner.code, header.message_id)
        return _duplicate(partner, endpoint, header.message_id)

    try:
        check_header(header, endpoint=endpoint, items=items, limit=limit, now=timezone.now())
        if endpoint.mode == Mode.ASYNC:
            row.callback_url = callback_target(partner, header.sender_uri, endpoint)
    except Rejection as rejection:
        return _refuse(row, endpoint, rejection)

    if endpoint.mode == Mode.ASYNC:
        row.request, row.status = message, Status.PENDING
        row.save(update_fields=["request", "status", "callback_url"])
        transaction.on_commit(lambda: _queue_processing(row.pk))
        return Answer(200, ack_body(correlation_id=row.correlation_id), row)

    try:
        outcome = run_exchange(endpoint=endpoint, partner=partner, transaction_row=row, message=message)
        record_outcome(row, outcome, started=started)
    except Exception:
        logger.exception("DCI %s from %s: message %s failed", endpoint.path, partner.code, row.message_id)
        Transaction.objects.filter(pk=row.pk).update(
            status=Status.REJECTED,
            status_reason_code=SERVICE_UNAVAILABLE,
            status_reason_message="The registry could not process this message.",
            completed_at=timezone.now(),
        )
        return Answer(
            500,
            error_body(
                SERVICE_UNAVAILABLE,
                f"The registry could not process this message (correlation_id {row.correlation_id}); "
                "send it again later with a new message_id.",
            ),
            row,
        )
    body = answer_envelope(
        receiver_id=partner.code,
        action=endpoint.answer_action,
        status=outcome.status,
        message=outcome.message,
        reason_code=outcome.reason_code,
        reason_message=outcome.reason_message,
        total_count=len(outcome.items),
        completed_count=outcome.completed_count,
    )
    return Answer(200, body, row)
