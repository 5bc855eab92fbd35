"""The follow-up beat jobs: referrals past their due date are marked overdue and
the people who can act are told; referrals long past due are expired.

Both are safe to run again and again (the beat may fire twice, a worker may
die half-way): overdue is marked once per referral (`overdue_since`), each
person gets one notice per referral (a unique constraint), and expiry goes
through the state machine, which refuses to expire a closed referral.
"""

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from spf.models import Role, User

from .models import Notification, Referral, ReferralStatus
from .services import referral_transition

log = logging.getLogger(__name__)

S = ReferralStatus

# The household still waits for something from the agency: a decision (sent,
# received) or the service itself (accepted). Past the due date, that is late.
OVERDUE_STATUSES = (S.SENT, S.RECEIVED, S.ACCEPTED)
# A referral still unanswered a month after its due date is dead: the agency
# has had its service-level time plus a month of overdue notices, and the
# household is better served by a fresh referral (which the open-referral
# index would otherwise block) than by one nobody acts on.
EXPIRY_GRACE_DAYS = 30
# Referrals expired per transaction: each is a locked row, an event and maybe
# an outbox row; a few hundred keeps locks short and a failure cheap to redo.
EXPIRE_BATCH = 200
# Newly overdue referrals are loaded and notified this many at a time, so a
# backlog (the first run on a big registry) never holds every row in memory.
NOTIFY_BATCH = 2000
NOTIFICATION_KIND_OVERDUE = "overdue"
# A digest lists this many referrals and gives the count of the rest: a
# focal point with thousands overdue needs the worklist, not a long e-mail.
DIGEST_MAX_LINES = 200


@dataclass
class OverdueReport:
    marked: int = 0
    notifications: int = 0
    digests: int = 0


@dataclass
class ExpiryReport:
    expired: int = 0
    refused: int = 0


def _recipients(referral_rows: list[dict]) -> tuple[dict[int, list[int]], dict[tuple[int, int], list[int]]]:
    """Who is told about referrals in these districts and agencies, in two queries.

    The window: the district's active front-desk officers. The agency: its
    active programme officers who see the district (so a notice never names a
    referral its reader may not open).
    """
    district_ids = {row["district_id"] for row in referral_rows}
    agency_ids = {row["agency_id"] for row in referral_rows}
    Assignment = User.districts.through
    front_desk: dict[int, list[int]] = defaultdict(list)
    for user_id, district_id in Assignment.objects.filter(
        location_id__in=district_ids, user__role=Role.FRONT_DESK, user__is_active=True
    ).values_list("user_id", "location_id"):
        front_desk[district_id].append(user_id)
    officers: dict[tuple[int, int], list[int]] = defaultdict(list)
    for user_id, agency_id, district_id in Assignment.objects.filter(
        location_id__in=district_ids,
        user__role=Role.PROGRAMME_OFFICER,
        user__agency_id__in=agency_ids,
        user__is_active=True,
    ).values_list("user_id", "user__agency_id", "location_id"):
        officers[(agency_id, district_id)].append(user_id)
    return front_desk, officers


def _overdue_line(row: dict, today: datetime.date) -> str:
    days = (today - row["due_date"]).days
    # Numbers only, no names: an e-mail leaves the system's district scoping.
    return (
        f"{row['number']}  {row['programme__code']}  household {row['household__number']}  "
        f"due {row['due_date']:%d %b %Y} ({days} day{'s' if days != 1 else ''} late)"
    )


def _overdue_message(row: dict) -> str:
    text = (
        f"Referral {row['number']} to {row['programme__name']} for household {row['household__number']} "
        f"is overdue: it was due on {row['due_date']:%d %b %Y}."
    )
    return text[:255]


def referrals_mark_overdue(*, today: datetime.date) -> OverdueReport:
    """Mark referrals past their due date overdue and tell who can act on them.

    Set-based: one UPDATE per batch marks them; the people are found in two
    queries per batch and the notices written in one bulk insert. Each person
    with an e-mail (and each agency's focal point, `Agency.email`) gets one
    digest for the run, listing every newly overdue referral they can act on,
    sent after the transaction commits.
    """
    report = OverdueReport()
    digests: dict[str, list[str]] = defaultdict(list)
    with transaction.atomic():
        due = Referral.objects.filter(status__in=OVERDUE_STATUSES, due_date__lt=today, overdue_since__isnull=True)
        # Rows another run is marking right now are left to it.
        ids = list(due.order_by("pk").select_for_update(skip_locked=True).values_list("pk", flat=True))
        for start in range(0, len(ids), NOTIFY_BATCH):
            batch = ids[start : start + NOTIFY_BATCH]
            report.marked += Referral.objects.filter(pk__in=batch).update(overdue_since=today)
            rows = list(
                Referral.objects.filter(pk__in=batch)
                .order_by("agency_id", "due_date", "pk")
                .values(
                    "pk",
                    "agency_id",
                    "agency__email",
                    "district_id",
                    "due_date",
                    "programme__code",
                    "programme__name",
                    "household__number",
                )
            )
            front_desk, officers = _recipients(rows)
            notices = []
            line_for_user: dict[int, list[str]] = defaultdict(list)
            for row in rows:
                row["number"] = Referral(pk=row["pk"]).number
                message, line = _overdue_message(row), _overdue_line(row, today)
                readers = {
                    *front_desk.get(row["district_id"], ()),
                    *officers.get((row["agency_id"], row["district_id"]), ()),
                }
                for user_id in sorted(readers):
                    notices.append(
                        Notification(
                            recipient_id=user_id, referral_id=row["pk"], kind=NOTIFICATION_KIND_OVERDUE, message=message
                        )
                    )
                    line_for_user[user_id].append(line)
                if row["agency__email"]:
                    digests[row["agency__email"].strip().lower()].append(line)
            # Already notified (a run that crashed after its notices): left alone.
            report.notifications += len(Notification.objects.bulk_create(notices, ignore_conflicts=True))
            emails = dict(User.objects.filter(pk__in=line_for_user).exclude(email="").values_list("pk", "email"))
            for user_id, lines in line_for_user.items():
                if user_id in emails:
                    digests[emails[user_id].strip().lower()].extend(lines)
        report.digests = len(digests)
        if digests:
            transaction.on_commit(lambda: _send_digests(dict(digests), today=today))
    return report


def _send_digests(digests: dict[str, list[str]], *, today: datetime.date) -> None:
    """One e-mail per address: a person who is both an officer and the focal point gets one."""
    connection = get_connection()
    for address, lines in digests.items():
        lines = list(dict.fromkeys(lines))  # the same referral reached them twice (user and focal point)
        shown, rest = lines[:DIGEST_MAX_LINES], len(lines) - DIGEST_MAX_LINES
        body = [
            f"{len(lines)} referral{'s are' if len(lines) != 1 else ' is'} now past the due date "
            f"and still waiting for the agency ({today:%d %b %Y}):",
            "",
            *shown,
        ]
        if rest > 0:
            body += ["", f"... and {rest} more: see the referral worklist."]
        body += ["", "Open each referral in the system to receive, accept, reject or complete it."]
        message = EmailMessage(
            subject=f"{len(lines)} overdue referral{'s' if len(lines) != 1 else ''}",
            body="\n".join(body),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            connection=connection,
        )
        try:
            message.send()
        except Exception:
            # One bad address or a mail server hiccup must not stop the other
            # digests; the in-app notices are already written.
            log.exception("Could not send the overdue digest to %s", address)


def referrals_expire(*, today: datetime.date) -> ExpiryReport:
    """Expire open referrals more than `EXPIRY_GRACE_DAYS` past their due date, through the state machine.

    Each batch is one transaction; every expiry is recorded as an event by the
    system and reaches a push agency through the outbox, like any other move.
    """
    report = ExpiryReport()
    cutoff = today - datetime.timedelta(days=EXPIRY_GRACE_DAYS)
    reason = f"Expired: no outcome {EXPIRY_GRACE_DAYS} days after the due date."
    stale = Referral.objects.filter(status__in=OVERDUE_STATUSES, due_date__lt=cutoff)
    last_pk = 0
    while True:
        batch = list(stale.filter(pk__gt=last_pk).order_by("pk")[:EXPIRE_BATCH])
        if not batch:
            return report
        last_pk = batch[-1].pk
        with transaction.atomic():
            for referral in batch:
                try:
                    with transaction.atomic():
                        referral_transition(referral=referral, to_status=S.EXPIRED, acting_user=None, reason=reason)
                except (ValidationError, PermissionDenied):
                    # Closed by someone else since it was read: the state
                    # machine refuses; skip it and expire the others.
                    log.exception("Could not expire referral %s", referral.number)
                    report.refused += 1
                else:
                    report.expired += 1


__all__ = [
    "EXPIRY_GRACE_DAYS",
    "ExpiryReport",
    "OverdueReport",
    "referrals_expire",
    "referrals_mark_overdue",
]
