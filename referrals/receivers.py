"""Automatic referrals follow eligibility: when outcomes change, sweep the changes into referrals.

The beat job sweeps every two minutes anyway; this makes it immediate, and is
what makes it happen at all where there is no beat (the embedded demo).
"""

from django.dispatch import receiver

from programmes.signals import eligibility_changed


@receiver(eligibility_changed)
def sweep_changes_into_referrals(sender, **kwargs):
    from spf.outbox import job_queue

    from .tasks import auto_referrals_sweep

    job_queue(task=auto_referrals_sweep)
