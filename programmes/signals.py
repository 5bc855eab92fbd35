"""What the eligibility part tells later parts (referrals) without knowing them."""

from django.dispatch import Signal

# Sent after eligibility results were written and committed (a bulk run, or
# households re-assessed one by one); `outcomes_changed` is how many changed, and
# `household_ids` which households were re-assessed (None for a bulk run: any of them).
eligibility_changed = Signal()
