"""The outbox: background jobs that survive the broker (Redis) being down.

A write that needs a job (re-assess a household, run a recompute, run an import) calls `job_queue` inside its
transaction. The job is a row (`OutboxJob`) in that same transaction, so it exists exactly when the change
does. After commit the row is published to the broker and stamped sent. If the broker does not answer, the
row stays pending, a warning is logged and the user's request carries on as if nothing happened; the sweep
(`outbox_flush`: beat every minute, every worker each time it connects to the broker, `manage.py outbox_flush`)
publishes it when the broker is back. docs/operations.md says what the operator sees and does.

A job may be published twice (a sweep and an after-commit send racing past a timeout, a broker that took the
message but did not answer): every task sent through here is safe to run twice (a status guard, a lock, or
work that finds nothing left to do).

With no broker (the embedded default, `make run`) nothing changes: the task runs in-process after commit,
as `.delay()` in `transaction.on_commit` did.
"""

import datetime
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from celery import current_app
from celery.app.task import Task
from django.db import connection, transaction
from django.db.models import Count, Min, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from .models import OutboxJob

logger = logging.getLogger(__name__)

# How long one publish may take when the broker is down or hung is the settings' to say
# (BROKER_SOCKET_TIMEOUT_SECONDS, CELERY_TASK_PUBLISH_RETRY_POLICY: about a second a try, two tries).
# After the broker failed to answer, this process leaves new jobs to the sweep for a while instead of trying
# each one: a hung broker would otherwise cost every request its timeouts. Ten seconds is short beside the
# sweep's minute, so nothing waits noticeably longer than it would anyway.
BROKER_REST_SECONDS = 10.0
# Rows locked and published per transaction by the sweep: a hundred small messages go out in well under a
# second, so the row locks are short, and a backlog of a day's jobs drains in a few minutes.
OUTBOX_FLUSH_CHUNK = 100
# At most this many rows per sweep: beat runs it every minute, so a large backlog is published over a few
# minutes rather than the broker and the workers being flooded at once.
OUTBOX_FLUSH_LIMIT = 5_000
# Sent rows are kept this long for the admin (what was queued, when, after how many tries), then deleted.
OUTBOX_SENT_KEPT = datetime.timedelta(days=7)
# The error text kept on a row: enough to read the broker's complaint.
ERROR_KEPT = 500

# Errors that mean "the broker did not take it": the connection was refused, timed out or broke.
BROKER_ERRORS = (BrokerUnreachable, ConnectionError, TimeoutError, OSError)

_broker_rests_until = 0.0


@dataclass
class PublishReport:
    sent: int = 0
    failed: int = 0
    error: str = ""
    purged: int = 0


def _eager() -> bool:
    return bool(current_app.conf.task_always_eager)


def _broker_resting() -> bool:
    return time.monotonic() < _broker_rests_until


def _rest_broker() -> None:
    global _broker_rests_until
    _broker_rests_until = time.monotonic() + BROKER_REST_SECONDS


def _broker_answered() -> None:
    global _broker_rests_until
    _broker_rests_until = 0.0


def job_queue(*, task: Task, args: Sequence = (), kwargs: dict | None = None) -> OutboxJob | None:
    """Send `task` to the workers once the current transaction commits, without losing it if the broker is down.

    Call it inside the transaction that makes the change the job is for (outside one, the row is written and
    published at once). Arguments must be JSON: ids, never model instances. Returns the outbox row, or None
    when Celery runs eagerly (no broker), where the task runs in-process after commit as it always has.
    """
    if _eager():
        transaction.on_commit(partial(task.apply_async, list(args), kwargs or {}))
        return None
    job = OutboxJob.objects.create(task=task.name, args=list(args), kwargs=kwargs or {})
    transaction.on_commit(partial(_publish_after_commit, job.pk))
    return job


def _publish_after_commit(job_id: int) -> None:
    if _broker_resting():
        return
    try:
        jobs_publish(job_ids=[job_id])
    except Exception:
        # Never an error into a request whose change has committed: the row is there for the sweep.
        logger.exception("Outbox job %s: publishing failed unexpectedly; the sweep will retry it", job_id)


def send_if_broker_answers(*, task: Task, args: Sequence = ()) -> bool:
    """For work a sweep of its own catches up anyway (referral deliveries, a dashboard's first count): send now
    if the broker answers, at once in-process with no broker.

    Returns whether it was sent. A broker that is down is logged, never raised: the caller's own sweep picks
    the work up when the broker is back.
    """
    if _eager():
        task.apply_async(list(args))
        return True
    if _broker_resting():
        return False
    try:
        task.apply_async(list(args), retry=True)
    except BROKER_ERRORS as problem:
        _rest_broker()
        logger.warning("Broker unreachable, %s%s left to its sweep: %s", task.name, list(args), problem)
        return False
    _broker_answered()
    return True


def jobs_publish(*, job_ids: Sequence[int]) -> PublishReport:
    """Publish these pending rows now (after commit, and the admin's "publish now"); rows sent or busy are skipped."""
    return _publish_pending(OutboxJob.objects.filter(pk__in=list(job_ids)), limit=len(job_ids))


def outbox_flush(*, limit: int = OUTBOX_FLUSH_LIMIT, now: datetime.datetime | None = None) -> PublishReport:
    """The sweep: publish pending rows, oldest first, until none is left, `limit` is reached or the broker fails.

    Safe to run in several processes at once: each locks the rows it publishes and skips rows another holds
    (SELECT ... FOR UPDATE SKIP LOCKED). Also deletes sent rows older than OUTBOX_SENT_KEPT.
    """
    report = _publish_pending(OutboxJob.objects.all(), limit=limit)
    cutoff = (now or timezone.now()) - OUTBOX_SENT_KEPT
    report.purged, _ = OutboxJob.objects.filter(sent_at__lt=cutoff).delete()
    if report.sent or report.error:
        logger.info("Outbox sweep: %s published, %s failed %s", report.sent, report.failed, report.error)
    return report


def _publish_pending(rows: QuerySet, *, limit: int) -> PublishReport:
    report = PublishReport()
    skip_locked = connection.features.has_select_for_update_skip_locked
    after, looked_at = 0, 0
    while looked_at < limit and not report.error:
        size = min(OUTBOX_FLUSH_CHUNK, limit - looked_at)
        with transaction.atomic():
            batch = list(
                rows.filter(sent_at__isnull=True, pk__gt=after)
                .order_by("pk")
                .select_for_update(skip_locked=skip_locked)[:size]
            )
            if not batch:
                break
            after, looked_at = batch[-1].pk, looked_at + len(batch)
            now = timezone.now()
            sent = []
            for job in batch:
                job.attempts += 1
                job.last_attempt_at = now
                try:
                    _publish(job)
                except BROKER_ERRORS as problem:
                    # The broker is down: this row and the rest wait for the next sweep.
                    _rest_broker()
                    report.failed += 1
                    report.error = job.last_error = f"{type(problem).__name__}: {problem}"[:ERROR_KEPT]
                    job.save(update_fields=["attempts", "last_attempt_at", "last_error"])
                    logger.warning(
                        "Broker unreachable; outbox job %s (%s) waits for the sweep: %s", job.pk, job.task, problem
                    )
                    break
                except Exception as problem:
                    # Not the broker: this job cannot be sent as it is (a bug). Shown in the admin; the others go on.
                    report.failed += 1
                    job.last_error = f"{type(problem).__name__}: {problem}"[:ERROR_KEPT]
                    job.save(update_fields=["attempts", "last_attempt_at", "last_error"])
                    logger.exception("Outbox job %s (%s) could not be published", job.pk, job.task)
                    continue
                job.sent_at, job.last_error = now, ""
                sent.append(job)
                _broker_answered()
            OutboxJob.objects.bulk_update(sent, ["sent_at", "attempts", "last_attempt_at", "last_error"])
            report.sent += len(sent)
        if len(batch) < size:
            break
    return report


def _publish(job: OutboxJob) -> None:
    app = current_app
    if _eager():
        # Rows left from a time with a broker, flushed where there is none: run them here.
        app.tasks[job.task].apply_async(job.args, job.kwargs)
        return
    app.send_task(job.task, args=job.args, kwargs=job.kwargs, retry=True)


# --- reads ------------------------------------------------------------------------------------------------


def outbox_backlog() -> dict:
    """What waits to be published: how many jobs, and since when (for the health check and the operator)."""
    waiting = OutboxJob.objects.filter(sent_at__isnull=True).aggregate(count=Count("pk"), oldest=Min("created_at"))
    age = (timezone.now() - waiting["oldest"]).total_seconds() if waiting["oldest"] else 0.0
    return {"pending": waiting["count"], "oldest_seconds": round(max(age, 0.0))}


def broker_state() -> str:
    """The broker answers ("up"), does not ("down"), or there is none ("none": tasks run in the web process).

    One try, about a second at most when the broker is hung (BROKER_SOCKET_TIMEOUT_SECONDS).
    """
    if _eager():
        return "none"
    if _broker_resting():
        return "down"
    try:
        with current_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=0)
            # Opening a channel asks Redis for an answer (PING), not just for a socket.
            broker.default_channel  # noqa: B018
    except Exception as problem:  # noqa: BLE001 - whatever the transport raises, the broker did not answer
        _rest_broker()
        logger.warning("Broker unreachable: %s", problem)
        return "down"
    _broker_answered()
    return "up"


def job_is_waiting(*, task: Task | str, args: Sequence) -> bool:
    """Whether a job for `task` with exactly these arguments waits in the outbox (not yet published)."""
    name = task if isinstance(task, str) else task.name
    return OutboxJob.objects.filter(sent_at__isnull=True, task=name, args=list(args)).exists()


__all__ = [
    "BROKER_REST_SECONDS",
    "OUTBOX_FLUSH_LIMIT",
    "OUTBOX_SENT_KEPT",
    "PublishReport",
    "broker_state",
    "job_is_waiting",
    "job_queue",
    "jobs_publish",
    "outbox_backlog",
    "outbox_flush",
    "send_if_broker_answers",
]
