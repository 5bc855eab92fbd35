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
