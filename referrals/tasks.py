"""Celery tasks for referrals: thin, by id, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def auto_referrals_sweep() -> dict:
    """Beat, every few minutes and after recomputes: eligibility changes become referrals."""
    from .services import referrals_from_eligibility

    report = referrals_from_eligibility()
    return {"created": report.created, "sent": report.sent, "withdrawn": report.withdrawn}


@shared_task(acks_late=True)
def delivery_send(delivery_id: int) -> str:
    """One attempt at pushing one outbox row to its agency (retries are scheduled in the row, swept by beat)."""
    from .delivery import delivery_attempt

    return delivery_attempt(delivery_id=delivery_id)


@shared_task(acks_late=True)
def deliveries_sweep() -> int:
    """Beat, every minute: queue a send for each outbox row that is due (new, retrying, or with a lapsed lease)."""
    from .delivery import deliveries_sweep as sweep

    return sweep()


@shared_task(acks_late=True)
def referrals_mark_overdue(today: str | None = None) -> dict:
    """Beat, each morning: referrals past due are marked overdue and the agency and the window are told.

    `today` (ISO date) is for a re-run of a missed day; by default the local date.
    """
    import datetime

    from django.utils import timezone

    from .followup import referrals_mark_overdue as mark_overdue

    report = mark_overdue(today=datetime.date.fromisoformat(today) if today else timezone.localdate())
    return {"marked": report.marked, "notifications": report.notifications, "digests": report.digests}


@shared_task(acks_late=True)
def referrals_expire(today: str | None = None) -> dict:
    """Beat, each night: referrals long past due are expired through the state machine."""
    import datetime

    from django.utils import timezone

    from .followup import referrals_expire as expire

    report = expire(today=datetime.date.fromisoformat(today) if today else timezone.localdate())
    return {"expired": report.expired, "refused": report.refused}
