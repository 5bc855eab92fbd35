"""What the registry tells later parts (eligibility, referrals) without knowing them.

Data flows one way: the registry announces that households changed, after the
transaction that changed them has committed; `programmes` listens and
re-assesses them. The registry never imports a later app.
"""

from django.db import connection, transaction
from django.dispatch import Signal

# household_ids: the households created or changed; district_ids: set for bulk
# writes (imports), when listeners should rather re-assess whole districts.
households_changed = Signal()


def announce_households_changed(household_ids, *, district_ids=()) -> None:
    """Queue the announcement for after commit, once per transaction however many writes it made."""
    pending = getattr(connection, "_registry_changed", None)
    if pending is None:
        pending = connection._registry_changed = {"households": set(), "districts": set()}
    # Registered on every call: a rolled-back transaction drops its callbacks
    # but not this set, and the next commit must still send. The first callback
    # to run sends everything; the rest find nothing.
    transaction.on_commit(_send)
    pending["households"].update(household_ids)
    pending["districts"].update(district_ids)


def _send() -> None:
    pending = getattr(connection, "_registry_changed", None)
    connection._registry_changed = None
    if pending:
        households_changed.send(
            sender=None, household_ids=sorted(pending["households"]), district_ids=sorted(pending["districts"])
        )
