"""Celery tasks of the project package: the task outbox's sweep."""

from celery import shared_task


@shared_task(acks_late=True)
def outbox_flush() -> dict:
    """Beat, every minute, and each worker as it connects: publish the jobs whose send after commit failed."""
    from .outbox import outbox_flush as flush

    report = flush()
    return {"sent": report.sent, "failed": report.failed, "error": report.error, "purged": report.purged}
