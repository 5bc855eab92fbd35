"""Celery tasks for enrolments and payments: thin, by id, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def enrolments_flag_review() -> int:
    """After recomputes and nightly: enrolments whose household is no longer eligible are flagged for review."""
    from .services import enrolments_flag_lost_eligibility

    return enrolments_flag_lost_eligibility()
