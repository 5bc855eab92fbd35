"""Keeps eligibility fresh when the registry changes (after its commit)."""

from django.dispatch import receiver

from registry.signals import households_changed

# Above this many households in one announcement (an import), re-assess their
# districts in bulk rather than one household at a time: one set-based step
# per 50,000 households beats thousands of small tasks.
BULK_THRESHOLD = 500
# Households per task when assessed one by one.
HOUSEHOLDS_PER_TASK = 50


@receiver(households_changed)
def reassess_changed_households(sender, household_ids, district_ids=(), **kwargs):
    from django.db import transaction

    from spf.outbox import job_queue

    from .models import RecomputeRun
    from .tasks import recompute_households, recompute_run_execute

    if district_ids or len(household_ids) > BULK_THRESHOLD:
        from registry.models import Household

        districts = set(district_ids) or set(
            Household.objects.filter(pk__in=household_ids).values_list("district_id", flat=True).distinct()
        )
        for district_id in sorted(districts):
            with transaction.atomic():
                run = RecomputeRun.objects.create(district_id=district_id, reason="registry changed in bulk")
                job_queue(task=recompute_run_execute, args=[run.pk])
        return
    for start in range(0, len(household_ids), HOUSEHOLDS_PER_TASK):
        job_queue(task=recompute_households, args=[household_ids[start : start + HOUSEHOLDS_PER_TASK]])
