"""Enrolments follow eligibility: when outcomes change, flag the enrolments whose household lost it."""

from django.dispatch import receiver

from programmes.signals import eligibility_changed


@receiver(eligibility_changed)
def flag_enrolments_for_review(sender, household_ids=None, **kwargs):
    """Households re-assessed one by one: their enrolments only (a scan of every enrolment took a second at a
    million households, for each registration). A bulk run: every enrolment."""
    from spf.outbox import job_queue

    from .tasks import enrolments_flag_review

    job_queue(task=enrolments_flag_review, args=[list(household_ids)] if household_ids else [])
