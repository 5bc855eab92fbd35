"""Pushing referral events to partner agencies' systems: the outbox worker.

`referrals.services` writes one `Delivery` row (the outbox) in the same
transaction as the referral event it announces. This module sends those rows:

- `delivery_attempt` makes one try at one row. It claims the row in a short
  transaction (row lock, then a lease: `next_attempt_at` pushed past the time a
  call can take), commits, makes the HTTP call with no transaction open, then
  records the result in a second short transaction. A worker that dies during
  the call leaves the row pending with an expired lease: the next sweep after
  the lease sends it again, and the receiver's idempotency key makes the
  repeat harmless.
- `deliveries_sweep` (beat, every minute) queues every row that is due: new
  rows whose after-commit send was lost, retries whose backoff has passed,
  leases that expired.
- `delivery_retry` is the staff's "Retry delivery" for a row that gave up.

Every request is signed (`X-SPF-Signature`, HMAC-SHA256 over
"<timestamp>.<body>" with the agency's secret) and carries the row's
`Idempotency-Key`. `signature_is_valid` is the reference verifier that
`docs/delivery.md` gives to agencies.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import logging
import random
import ssl
import time
import urllib.parse
from dataclasses import dataclass

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from spf.models import Role

from .models import Delivery, DeliveryAttempt, DeliveryStatus, Notification
from .selectors import referrals_for

logger = logging.getLogger(__name__)

# How long to wait for an agency's system is `REFERRAL_WEBHOOK_TIMEOUT_SECONDS`
# in the settings (the reason for its default is given there); it applies to
# the connection and to each read of the response.
# The claim on a row while its call is under way. Far longer than the timeout
# (connect + read, plus recording), so a second worker never sends a row whose
# first call may still answer; short enough that a crashed worker's row goes
# out again within a few minutes.
DELIVERY_LEASE = datetime.timedelta(minutes=2)
# Exponential backoff with full jitter (a random delay between zero and
# base * 2^(attempt-1), capped): 30 s, 1 min, 2 min ... spreads the retries of
# many rows to an agency that comes back, instead of a stampede at the same
# second. The cap keeps an agency that was down for a day from waiting another
# day after it returns.
DELIVERY_BACKOFF_BASE = datetime.timedelta(seconds=30)
DELIVERY_BACKOFF_CAP = datetime.timedelta(hours=6)
# Fifteen tries: with the delays above, up to about a day and a half (about
# half that on average), which rides out a night and a working day of an
# agency's system being down. After that a person must look: the row is
# marked failed and shown to staff, who can retry it.
DELIVERY_MAX_ATTEMPTS = 15
# One sweep queues at most this many rows. Beat runs it every minute, so an
# agency back after a long outage gets its backlog over a few minutes rather
# than the broker being flooded in one go.
DELIVERY_SWEEP_BATCH = 500
# A receiver's answer is kept (in the attempt log) only this far: enough for
# an error message, not a page of HTML.
RESPONSE_TEXT_KEPT = 500
# How old (or how far in the future) a signed timestamp may be before the
# reference verifier refuses it as a replay. Five minutes allows for clocks
# that drift, and no more.
SIGNATURE_TOLERANCE_SECONDS = 300

SIGNATURE_HEADER = "X-SPF-Signature"
TIMESTAMP_HEADER = "X-SPF-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "SPF-Referrals/1"

# What the attempt log says while a call is under way; if it stays, the worker
# stopped during the call (the lease then sends the row again).
ATTEMPT_UNFINISHED = "No result recorded: the call was under way, or the worker stopped during it."


# --- signing -----------------------------------------------------------------------------


def delivery_body(payload: dict) -> bytes:
    """The exact bytes sent and signed: compact JSON with sorted keys, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def signature_for(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-SPF-Signature` value: `sha256=` and the hex HMAC-SHA256 of "<timestamp>.<body>"."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_is_valid(
    secret: str, timestamp: int | str, body: bytes, header: str, *, now: float, tolerance: float
) -> bool:
    """What a receiving agency runs: the signature matches and the timestamp is recent.

    `now` is the receiver's clock (unix seconds) and `tolerance` how far the
    timestamp may be from it; an old timestamp with a good signature is a
    replay and is refused.
    """
    try:
        sent_at = int(str(timestamp).strip())
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance:
        return False
    expected = signature_for(secret, sent_at, body)
    return hmac.compare_digest(expected.encode("ascii"), (header or "").strip().encode("ascii", "replace"))


# --- one attempt -------------------------------------------------------------------------


@dataclass(frozen=True)
class CallResult:
    status_code: int | None
    latency_ms: int
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(
    attempt: int,
    *,
    base: datetime.timedelta = DELIVERY_BACKOFF_BASE,
    cap: datetime.timedelta = DELIVERY_BACKOFF_CAP,
    rng: random.Random | None = None,
) -> datetime.timedelta:
    """How long to wait after failed try number `attempt` (1, 2, ...): full jitter under an exponential ceiling."""
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2 ** max(attempt - 1, 0))
    return datetime.timedelta(seconds=(rng or random).uniform(0, ceiling))


def delivery_attempt(
    *,
    delivery_id: int,
    now: datetime.datetime | None = None,
    timeout: float | None = None,
    lease: datetime.timedelta = DELIVERY_LEASE,
    backoff_base: datetime.timedelta = DELIVERY_BACKOFF_BASE,
    backoff_cap: datetime.timedelta = DELIVERY_BACKOFF_CAP,
    max_attempts: int = DELIVERY_MAX_ATTEMPTS,
) -> str:
    """One try at pushing one outbox row to its agency; returns what happened, in a word or two.

    Skips a row that is not pending, not yet due, or being sent by another
    worker right now. Must not be called inside a transaction: the call to the
    agency is made with none open, so no lock is held over the network.
    `now` and the constants are parameters so tests can move the clock and
    shrink the waits.
    """
    claim = _claim(delivery_id=delivery_id, now=now or timezone.now(), lease=lease)
    if isinstance(claim, str):
        return claim
    delivery, attempt = claim
    try:
        result = _post(delivery, timeout=settings.REFERRAL_WEBHOOK_TIMEOUT_SECONDS if timeout is None else timeout)
    except Exception as problem:
        # Whatever else went wrong (a malformed URL, a bug), it is a failed
        # attempt, logged and retried: never a row left leased with no result,
        # nor an error raised into the request whose commit queued the send.
        logger.exception("Delivery %s: the call failed unexpectedly", delivery.pk)
        result = CallResult(None, 0, f"{type(problem).__name__}: {problem}"[:RESPONSE_TEXT_KEPT])
    return _record_result(
        delivery_id=delivery.pk,
        attempt_id=attempt.pk,
        result=result,
        now=now or timezone.now(),
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        max_attempts=max_attempts,
    )


@transaction.atomic
def _claim(
    *, delivery_id: int, now: datetime.datetime, lease: datetime.timedelta
) -> tuple[Delivery, DeliveryAttempt] | str:
    rows = Delivery.objects.select_related("agency")
    if connection.vendor == "postgresql":
        # Another worker holding the row is sending it: skip, don't queue up behind it.
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    else:
        rows = rows.select_for_update()
    delivery = rows.filter(pk=delivery_id).first()
    if delivery is None:
        return "skipped: busy or gone"
    if delivery.status != DeliveryStatus.PENDING:
        return f"skipped: {delivery.status}"
    if delivery.next_attempt_at > now:
        return "skipped: not due"
    # The lease: until it runs out no sweep finds the row due, and the lock can
    # be released before the network call.
    delivery.next_attempt_at = now + lease
    delivery.attempts += 1
    delivery.save(update_fields=["next_attempt_at", "attempts"])
    attempt = DeliveryAttempt.objects.create(delivery=delivery, at=now, error=ATTEMPT_UNFINISHED)
    return delivery, attempt


def _post(delivery: Delivery, *, timeout: float) -> CallResult:
    agency = delivery.agency
    started = time.monotonic()

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    if not agency.webhook_url or not agency.webhook_secret:
        return CallResult(None, 0, f"{agency.code} has no webhook URL and secret configured.")
    url = urllib.parse.urlsplit(agency.webhook_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return CallResult(None, 0, f"{agency.code}'s webhook URL is not an http(s) URL: {agency.webhook_url}")
    body = delivery_body(delivery.payload)
    # The signing time is the wall clock at sending, whatever clock the caller
    # schedules with: the receiver compares it with its own.
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_for(agency.webhook_secret, timestamp, body),
        IDEMPOTENCY_HEADER: delivery.idempotency_key,
        "X-SPF-Event": str(delivery.payload.get("event", "")),
    }
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
        text = response.read(64 * 1024).decode("utf-8", "replace")
        status = response.status
    except TimeoutError:
        return CallResult(None, elapsed_ms(), f"Timed out: no answer within {timeout:g} s.")
    except ConnectionRefusedError:
        return CallResult(None, elapsed_ms(), f"Connection refused by {url.hostname}:{url.port or url.scheme}.")
    except (OSError, http.client.HTTPException) as problem:
        return CallResult(None, elapsed_ms(), f"{type(problem).__name__}: {problem}"[:RESPONSE_TEXT_KEPT])
    finally:
        conn.close()
    if 200 <= status < 300:
        return CallResult(status, elapsed_ms(), "")
    # Redirects are not followed: a signed POST is re-sent only where the
    # agency registered it; a moved endpoint is a configuration change.
    return CallResult(status, elapsed_ms(), f"HTTP {status}: {text.strip()}"[:RESPONSE_TEXT_KEPT])


@transaction.atomic
def _record_result(
    *,
    delivery_id: int,
    attempt_id: int,
    result: CallResult,
    now: datetime.datetime,
    backoff_base: datetime.timedelta,
    backoff_cap: datetime.timedelta,
    max_attempts: int,
) -> str:
    delivery = Delivery.objects.select_for_update(of=("self",)).select_related("referral").get(pk=delivery_id)
    DeliveryAttempt.objects.filter(pk=attempt_id).update(
        status_code=result.status_code, latency_ms=result.latency_ms, error=result.error
    )
    if delivery.status != DeliveryStatus.PENDING:
        # Delivered by a second worker after our lease ran out: its result stands.
        return f"recorded: already {delivery.status}"
    if result.ok:
        delivery.status, delivery.delivered_at, delivery.last_error = DeliveryStatus.DELIVERED, now, ""
        delivery.save(update_fields=["status", "delivered_at", "last_error"])
        return "delivered"
    delivery.last_error = result.error
    if delivery.attempts >= max_attempts:
        delivery.status = DeliveryStatus.FAILED
        delivery.save(update_fields=["status", "last_error"])
        _notify_failed(delivery)
        logger.warning(
            "Delivery %s to agency %s failed after %s attempts", delivery.pk, delivery.agency_id, delivery.attempts
        )
        return "failed"
    delivery.next_attempt_at = now + retry_delay(delivery.attempts, base=backoff_base, cap=backoff_cap)
    delivery.save(update_fields=["next_attempt_at", "last_error"])
    return "retry scheduled"


def _notify_failed(delivery: Delivery) -> None:
    """The officer who made the referral sees that the agency never got it (staff see it in the admin)."""
    referral = delivery.referral
    if referral.created_by_id is None:
        return
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=referral.created_by_id,
                referral=referral,
                kind="delivery_failed",
                message=f"Referral {referral.number} could not be delivered to the agency's system; staff can retry it.",
            )
        ],
        ignore_conflicts=True,
    )


# --- the sweep and the staff's retry -----------------------------------------------------


def deliveries_due(*, now: datetime.datetime | None = None, limit: int = DELIVERY_SWEEP_BATCH) -> list[int]:
    """Ids of pending rows due now, oldest first (the partial index `delivery_due`)."""
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def deliveries_sweep(*, now: datetime.datetime | None = None, limit: int = DELIVERY_SWEEP_BATCH) -> int:
    """Queue a send for every due row (at most `limit`); returns how many were queued.

    Two sweeps at once may queue the same row twice: the row lock and the
    lease in `delivery_attempt` let only one of them send it.
    """
    from .tasks import delivery_send

    due = deliveries_due(now=now, limit=limit)
    for delivery_id in due:
        delivery_send.delay(delivery_id)
    return len(due)


def user_may_retry_deliveries(user) -> bool:
    return bool(
        user is not None
        and user.is_active
        and (user.is_superuser or user.role == Role.MINISTRY or user.has_perm("referrals.change_delivery"))
    )


@transaction.atomic
def delivery_retry(*, delivery_id: int, acting_user) -> Delivery:
    """Staff: send a failed delivery again, now, with a fresh round of retries. Recorded in the admin history."""
    delivery = Delivery.objects.select_for_update(of=("self",)).select_related("referral", "agency").get(pk=delivery_id)
    if not user_may_retry_deliveries(acting_user):
        raise PermissionDenied("Only ministry staff can retry a delivery.")
    if not referrals_for(acting_user).filter(pk=delivery.referral_id).exists():
        raise PermissionDenied("This delivery is outside your districts.")
    if delivery.status != DeliveryStatus.FAILED:
        raise ValidationError(
            {"status": [f"Only a failed delivery can be retried; this one is {delivery.get_status_display().lower()}."]}
        )
    previous_attempts = delivery.attempts
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.attempts = 0
    delivery.save(update_fields=["status", "next_attempt_at", "attempts"])
    LogEntry.objects.create(
        user=acting_user,
        content_type=ContentType.objects.get_for_model(Delivery),
        object_id=str(delivery.pk),
        object_repr=str(delivery)[:200],
        action_flag=CHANGE,
        change_message=f"Retry delivery: back to pending after {previous_attempts} failed attempts "
        f"(last error: {delivery.last_error[:200] or 'none'}).",
    )
    transaction.on_commit(lambda: _send_later(delivery.pk))
    return delivery


def _send_later(delivery_id: int) -> None:
    """After commit: send now if the broker answers; if it is down the row waits for the deliveries sweep."""
    from spf.outbox import send_if_broker_answers

    from .tasks import delivery_send

    send_if_broker_answers(task=delivery_send, args=[delivery_id])


__all__ = [
    "DELIVERY_BACKOFF_BASE",
    "DELIVERY_BACKOFF_CAP",
    "DELIVERY_LEASE",
    "DELIVERY_MAX_ATTEMPTS",
    "DELIVERY_SWEEP_BATCH",
    "deliveries_due",
    "deliveries_sweep",
    "delivery_attempt",
    "delivery_body",
    "delivery_retry",
    "retry_delay",
    "signature_for",
    "signature_is_valid",
]
