"""Celery tasks for grievances: thin, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def grievances_mark_overdue() -> int:
    """Beat, each morning: open grievances past their deadline are flagged for the worklist and the dashboard."""
    from .services import grievances_mark_overdue as mark

    return mark()
