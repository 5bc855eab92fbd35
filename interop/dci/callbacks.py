"""Asynchronous answers: processing an acknowledged message and posting its answer to the partner.

An asynchronous search (or transaction status) is acknowledged at once and
kept with status `pdng`. A Celery task then

1. processes it (`transaction_process`): runs the same exchange a synchronous
   call runs, and writes the signed answer (on-search, txn/on-status) into the
   transaction row, the outbox, in the same transaction that marks it done;
2. posts it (`callback_attempt`): claims the row with a short lease, makes the
   HTTP call with no database transaction open, records the attempt, and on a
   failure schedules the next try with exponential backoff.

A beat sweep (`callbacks_sweep`) picks up what a lost task left: messages
still pending, answers due for another try, leases that ran out. Where the
answer goes is the partner's registered callback address, or the message's
sender_uri if it lies under that address: this registry never posts personal
data to an address ministry staff did not register.
"""

from __future__ import annotations

import datetime
import http.client
import json
import logging
import random
import ssl
import time
import urllib.parse
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from ..models import CallbackAttempt, CallbackStatus, Partner, Status, Transaction
from .config import callback_timeout_seconds
from .envelope import SENDER_URI_INVALID, Endpoint, Rejection, answer_envelope
from .results import Outcome

logger = logging.getLogger(__name__)

# The claim on a row while its call is under way: far longer than the timeout,
# so a second worker never posts an answer whose first call may still succeed.
CALLBACK_LEASE = datetime.timedelta(minutes=2)
# Backoff with full jitter: a random wait up to 30 s, 1 min, 2 min … capped at
# an hour. A search answer is wanted within the hour or not at all: after ten
# tries (about three hours at most) it is marked failed, and the partner can
# read the outcome with a transaction status request and search again.
CALLBACK_BACKOFF_BASE = datetime.timedelta(seconds=30)
CALLBACK_BACKOFF_CAP = datetime.timedelta(hours=1)
CALLBACK_MAX_ATTEMPTS = 10
# A message acknowledged but not processed after this long lost its task (a
# broker restart): the sweep queues it again.
PROCESSING_GRACE = datetime.timedelta(minutes=2)
# One sweep queues at most this many tasks: a partner back after an outage gets
# its backlog over a few minutes, not in one flood.
SWEEP_BATCH = 200
# What the attempt log keeps of a partner's answer: an error message, not a page of HTML.
RESPONSE_TEXT_KEPT = 300
USER_AGENT = "SPF-DCI/1"
ATTEMPT_UNFINISHED = "No result recorded: the call was under way, or the worker stopped during it."


# --- where answers go ------------------------------------------------------------------------


def _same_origin(a: urllib.parse.SplitResult, b: urllib.parse.SplitResult) -> bool:
    def port(parts):
        return parts.port or (443 if parts.scheme == "https" else 80)

    return a.scheme.lower() == b.scheme.lower() and (a.hostname or "") == (b.hostname or "") and port(a) == port(b)


def callback_target(partner: Partner, sender_uri: str, endpoint: Endpoint) -> str:
    """The address an asynchronous answer goes to; Rejection (err.sender_uri.invalid) if there is none allowed."""
    base = partner.callback_url.strip().rstrip("/")
    if not base:
        raise Rejection(
            "",
            "header.sender_uri: this partner has no callback address registered here; ask ministry staff to register "
            "it before sending asynchronous requests.",
            error_code=SENDER_URI_INVALID,
        )
    if not sender_uri:
        return base + endpoint.callback_path
    given, registered = urllib.parse.urlsplit(sender_uri), urllib.parse.urlsplit(base)
    path = given.path or "/"
    if not _same_origin(given, registered) or not (
        path == (registered.path or "/") or path.startswith((registered.path or "").rstrip("/") + "/")
    ):
        raise Rejection(
            "",
            f"header.sender_uri: answers go only to the address registered for this partner ({base}) or below it.",
            error_code=SENDER_URI_INVALID,
        )
    return sender_uri


# --- processing --------------------------------------------------------------------------


def _answer_for(transaction_row: Transaction, outcome: Outcome, endpoint: Endpoint) -> dict:
    return answer_envelope(
        receiver_id=transaction_row.partner.code,
        action=endpoint.answer_action,
        status=outcome.status,
        message=outcome.message,
        reason_code=outcome.reason_code,
        reason_message=outcome.reason_message,
        total_count=len(outcome.items),
        completed_count=outcome.completed_count,
    )


def transaction_process(*, transaction_pk: int) -> str:
    """Process an acknowledged message and queue its answer; safe to run twice (the second finds it done)."""
    from .exchange import ENDPOINTS_BY_PATH, record_outcome, run_exchange

    started = time.monotonic()
    with transaction.atomic():
        rows = Transaction.objects.select_related("partner", "partner__service_user")
        rows = (
            rows.select_for_update(skip_locked=True, of=("self",))
            if connection.vendor == "postgresql"
            else rows.select_for_update()
        )
        row = rows.filter(pk=transaction_pk).first()
        if row is None:
            return "skipped: busy or gone"
        if row.status != Status.PENDING or row.callback_status:
            return f"skipped: {row.get_status_display().lower()}"
        endpoint = ENDPOINTS_BY_PATH[row.endpoint]
        try:
            outcome = run_exchange(
                endpoint=endpoint, partner=row.partner, transaction_row=row, message=row.request or {}
            )
        except Exception:
            logger.exception("DCI transaction %s: processing failed", row.pk)
            text = "The registry could not process this message; send it again with a new message_id."
            outcome = Outcome(None, [], status=Status.REJECTED, reason_message=text)
        record_outcome(row, outcome, started=started)
        row.callback_payload = _answer_for(row, outcome, endpoint)
        row.callback_status = CallbackStatus.PENDING
        row.callback_next_at = timezone.now()
        # The question is answered: what it asked (it may name people) is not kept.
        row.request = None
        row.save()
        transaction.on_commit(lambda: _queue_delivery(row.pk))
    return "processed"


def _queue_delivery(transaction_pk: int) -> None:
    from ..tasks import callback_send

    try:
        callback_send.delay(transaction_pk)
    except Exception:
        # The broker is down: the sweep sends it when it is back.
        logger.warning("DCI transaction %s: could not queue its callback; the sweep will", transaction_pk)


# --- delivery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CallResult:
    status_code: int | None
    latency_ms: int
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> datetime.timedelta:
    ceiling = min(
        CALLBACK_BACKOFF_CAP.total_seconds(), CALLBACK_BACKOFF_BASE.total_seconds() * 2 ** max(attempt - 1, 0)
    )
    return datetime.timedelta(seconds=(rng or random).uniform(0, ceiling))


@transaction.atomic
def _claim(*, transaction_pk: int, now: datetime.datetime) -> tuple[Transaction, CallbackAttempt] | str:
    rows = Transaction.objects.select_related("partner")
    rows = (
        rows.select_for_update(skip_locked=True, of=("self",))
        if connection.vendor == "postgresql"
        else rows.select_for_update()
    )
    row = rows.filter(pk=transaction_pk).first()
    if row is None:
        return "skipped: busy or gone"
    if row.callback_status != CallbackStatus.PENDING:
        return f"skipped: {row.callback_status or 'no callback'}"
    if row.callback_next_at and row.callback_next_at > now:
        return "skipped: not due"
    row.callback_next_at = now + CALLBACK_LEASE
    row.callback_attempts += 1
    row.save(update_fields=["callback_next_at", "callback_attempts"])
    attempt = CallbackAttempt.objects.create(transaction=row, at=now, url=row.callback_url, error=ATTEMPT_UNFINISHED)
    return row, attempt


def _post(row: Transaction, *, timeout: float) -> CallResult:
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    url = urllib.parse.urlsplit(row.callback_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return CallResult(None, 0, f"Not an http(s) address: {row.callback_url}")
    body = json.dumps(row.callback_payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if row.partner.callback_token:
        headers["Authorization"] = f"Bearer {row.partner.callback_token}"
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(
            url.hostname, url.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read(16 * 1024).decode("utf-8", "replace")
        status = response.status
    except TimeoutError:
        return CallResult(None, elapsed(), f"Timed out: no answer within {timeout:g} s.")
    except ConnectionRefusedError:
        return CallResult(None, elapsed(), f"Connection refused by {url.hostname}:{url.port or url.scheme}.")
    except (OSError, http.client.HTTPException) as problem:
        return CallResult(None, elapsed(), f"{type(problem).__name__}: {problem}"[:RESPONSE_TEXT_KEPT])
    finally:
        conn.close()
    if 200 <= status < 300:
        return CallResult(status, elapsed(), "")
    # Redirects are not followed: personal data goes only where it was registered to go.
    return CallResult(status, elapsed(), f"HTTP {status}: {text.strip()}"[:RESPONSE_TEXT_KEPT])


@transaction.atomic
def _record(*, transaction_pk: int, attempt_pk: int, result: CallResult, now: datetime.datetime) -> str:
    row = Transaction.objects.select_for_update().get(pk=transaction_pk)
    CallbackAttempt.objects.filter(pk=attempt_pk).update(
        status_code=result.status_code, latency_ms=result.latency_ms, error=result.error
    )
    if row.callback_status != CallbackStatus.PENDING:
        return f"recorded: already {row.callback_status}"
    if result.ok:
        row.callback_status, row.callback_delivered_at, row.callback_last_error = CallbackStatus.DELIVERED, now, ""
        # Delivered: the records it carried are not kept here.
        row.callback_payload = None
        row.save(update_fields=["callback_status", "callback_delivered_at", "callback_last_error", "callback_payload"])
        return "delivered"
    row.callback_last_error = result.error
    if row.callback_attempts >= CALLBACK_MAX_ATTEMPTS:
        row.callback_status = CallbackStatus.FAILED
        row.save(update_fields=["callback_status", "callback_last_error"])
        logger.warning("DCI transaction %s: callback failed after %s attempts", row.pk, row.callback_attempts)
        return "failed"
    row.callback_next_at = now + retry_delay(row.callback_attempts)
    row.save(update_fields=["callback_next_at", "callback_last_error"])
    return "retry scheduled"


def callback_attempt(*, transaction_pk: int, now: datetime.datetime | None = None, timeout: float | None = None) -> str:
    """One try at posting one answer. Not to be called inside a transaction: no lock is held over the network."""
    claim = _claim(transaction_pk=transaction_pk, now=now or timezone.now())
    if isinstance(claim, str):
        return claim
    row, attempt = claim
    try:
        result = _post(row, timeout=callback_timeout_seconds() if timeout is None else timeout)
    except Exception as problem:
        logger.exception("DCI transaction %s: the callback failed unexpectedly", row.pk)
        result = CallResult(None, 0, f"{type(problem).__name__}: {problem}"[:RESPONSE_TEXT_KEPT])
    return _record(transaction_pk=row.pk, attempt_pk=attempt.pk, result=result, now=now or timezone.now())


# --- the sweep, staff's retry and retention --------------------------------------------------


def callbacks_due(*, now: datetime.datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    now = now or timezone.now()
    return list(
        Transaction.objects.filter(callback_status=CallbackStatus.PENDING, callback_next_at__lte=now)
        .order_by("callback_next_at")
        .values_list("pk", flat=True)[:limit]
    )


def unprocessed(*, now: datetime.datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    now = now or timezone.now()
    return list(
        Transaction.objects.filter(status=Status.PENDING, callback_status="", received_at__lte=now - PROCESSING_GRACE)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def callbacks_sweep(*, now: datetime.datetime | None = None) -> dict:
    """Queue what is due: answers to post again, messages whose processing was lost."""
    from ..tasks import callback_send, transaction_run

    due, lost = callbacks_due(now=now), unprocessed(now=now)
    for pk in due:
        callback_send.delay(pk)
    for pk in lost:
        transaction_run.delay(pk)
    return {"callbacks": len(due), "reprocessed": len(lost)}


@transaction.atomic
def callback_retry(*, transaction_pk: int, acting_user) -> Transaction:
    """Staff: post a failed answer again, now, with a fresh round of tries (recorded in the admin's history)."""
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType
    from django.core.exceptions import PermissionDenied, ValidationError

    if not (acting_user is not None and acting_user.is_active and acting_user.sees_every_district):
        raise PermissionDenied("Only ministry staff retry a partner's callback.")
    row = Transaction.objects.select_for_update().get(pk=transaction_pk)
    if row.callback_status != CallbackStatus.FAILED or row.callback_payload is None:
        raise ValidationError(
            {"callback_status": ["Only a failed callback whose answer is still kept can be retried."]}
        )
    row.callback_status, row.callback_attempts, row.callback_next_at = CallbackStatus.PENDING, 0, timezone.now()
    row.save(update_fields=["callback_status", "callback_attempts", "callback_next_at"])
    LogEntry.objects.create(
        user=acting_user,
        content_type=ContentType.objects.get_for_model(Transaction),
        object_id=str(row.pk),
        object_repr=str(row)[:200],
        action_flag=CHANGE,
        change_message=f"Retry callback after it failed (last error: {row.callback_last_error[:200] or 'none'}).",
    )
    transaction.on_commit(lambda: _queue_delivery(row.pk))
    return row


def transactions_purge(*, now: datetime.datetime | None = None, days: int | None = None) -> int:
    """Past the retention period, forget what messages asked and answers never delivered (they name people)."""
    from .config import payload_retention_days

    cutoff = (now or timezone.now()) - datetime.timedelta(days=payload_retention_days() if days is None else days)
    old = Transaction.objects.filter(received_at__lt=cutoff)
    cleared = old.filter(request__isnull=False).update(request=None)
    cleared += (
        old.filter(callback_payload__isnull=False)
        .exclude(callback_status=CallbackStatus.PENDING)
        .update(callback_payload=None)
    )
    return cleared


__all__ = [
    "callback_attempt",
    "callback_retry",
    "callback_target",
    "callbacks_sweep",
    "transaction_process",
    "transactions_purge",
]
