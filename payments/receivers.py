"""Enrolments follow eligibility: when outcomes change, flag the enrolments whose household lost it."""

from django.dispatch import receiver

from programmes.signals import eligibility_changed


@receiver(eligibility_changed)
def flag_enrolments_for_review(sender, **kwargs):
    from spf.outbox import job_queue

    from .tasks import enrolments_flag_review

    job_queue(task=enrolments_flag_review)
