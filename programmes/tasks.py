"""Celery tasks: thin, by id, safe to run twice."""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from spf.outbox import job_queue

from .models import RecomputeRun, RecomputeStatus
from .signals import eligibility_changed

# Eligibility of one household is a handful of queries; a failure is almost
# always a lost database connection, worth a few retries, no more.
HOUSEHOLD_RETRIES = 3


@shared_task(bind=True, max_retries=HOUSEHOLD_RETRIES, acks_late=True)
def recompute_households(self, household_ids: list[int]) -> int:
    from registry.models import Household

    from .services import eligibility_recompute_household

    done = 0
    for household_id in household_ids:
        if not Household.objects.filter(pk=household_id).exists():
            continue
        try:
            eligibility_recompute_household(household_id=household_id)
        except Exception as problem:  # noqa: BLE001 - retried with backoff, then raised
            raise self.retry(exc=problem, countdown=2**self.request.retries) from problem
        done += 1
    if done:
        eligibility_changed.send(sender=None, outcomes_changed=None, household_ids=list(household_ids))
    return done


@shared_task(acks_late=True)
def recompute_run_execute(run_id: int) -> str:
    from .services import recompute_run_execute as execute

    run = execute(run_id=run_id)
    if run and run.outcomes_changed:
        eligibility_changed.send(sender=None, outcomes_changed=run.outcomes_changed)
    return run.status if run else "missing"


@shared_task
def recompute_everything_nightly() -> int:
    """Ages change with time: the nightly beat job re-assesses every programme everywhere."""
    if RecomputeRun.objects.filter(
        programme__isnull=True,
        district__isnull=True,
        status__in=[RecomputeStatus.PENDING, RecomputeStatus.RUNNING],
        created_at__date=timezone.localdate(),
    ).exists():
        return 0
    with transaction.atomic():
        run = RecomputeRun.objects.create(reason="nightly")
        job_queue(task=recompute_run_execute, args=[run.pk])
    return run.pk


@shared_task(acks_late=True)
def recompute_runs_resume() -> list[int]:
    """Beat, every five minutes, and each worker as it connects: runs whose worker died are queued again."""
    from .services import recompute_runs_resume as resume

    return resume()
