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
    """Queue the announcement for after commit, once per transaction however many writes it made.

    A rolled-back transaction drops its commit callbacks; the ids gathered for
    it are dropped with them (the send is looked for among the callbacks still
    registered), so a later transaction never announces what never happened.
    """
    pending = getattr(connection, "_registry_changed", None)
    registered = any(entry[1] is _send for entry in connection.run_on_commit)
    first = pending is None or not registered
    if first:
        pending = connection._registry_changed = {"households": set(), "districts": set()}
    pending["households"].update(household_ids)
    pending["districts"].update(district_ids)
    if first:
        transaction.on_commit(_send)


def _send() -> None:
    pending = getattr(connection, "_registry_changed", None)
    connection._registry_changed = None
    if pending:
        households_changed.send(
            sender=None, household_ids=sorted(pending["households"]), district_ids=sorted(pending["districts"])
        )
