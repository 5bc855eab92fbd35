"""Celery tasks for enrolments and payments: thin, by id, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def enrolments_flag_review(household_ids: list[int] | None = None) -> int:
    """After recomputes and nightly: enrolments whose household is no longer eligible are flagged for review
    (of `household_ids` only, when given)."""
    from .services import enrolments_flag_lost_eligibility

    return enrolments_flag_lost_eligibility(household_ids=household_ids)


@shared_task(name="payments.beneficiary_list_run", acks_late=True)
def beneficiary_list_run(list_id: int) -> str:
    """Run a beneficiary list waiting to run; a list already running or finished is left as it is."""
    from .beneficiaries import beneficiary_list_run as run

    beneficiary_list = run(list_id=list_id)
    return beneficiary_list.status if beneficiary_list is not None else "skipped: not waiting to run"


@shared_task(acks_late=True)
def payroll_generate_cycle(cycle_id: int, request_id: int) -> str:
    """Generate a cycle's payroll as asked (the admin's action); a request already answered is left alone."""
    from .payroll import payroll_generate_queued

    return payroll_generate_queued(cycle_id=cycle_id, request_id=request_id)


@shared_task(acks_late=True)
def payroll_requests_resume() -> list[int]:
    """Beat, every five minutes, and each worker as it connects: payroll requests whose worker died are queued again."""
    from .payroll import payroll_requests_resume as resume

    return resume()
