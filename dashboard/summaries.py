"""The dashboard's only writes: rebuilding a district's summaries.

`summaries_refresh_district` rebuilds, in one transaction, the district's
household profiles (one set-based statement) and every summary row
(`Tally`): the flows whole, and this month's snapshot of the stocks (earlier
months' snapshots are kept: they are the trend). Readers see the old rows or
the new, never half. A Celery beat job runs it for every district
(`dashboard.tasks`); the page says how fresh the result is.

Every count is made by the database, grouped; Python only spreads each
grouped row over the groups of people it has members in and turns dates
into months and days, so the same code runs on PostgreSQL and on the
embedded SQLite demo.
"""

import datetime
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone

from grievances.models import OPEN_STATUSES as GRIEVANCE_OPEN
from grievances.models import Grievance
from payments.models import PLACE_STATUSES, Enrolment, Payment, PaymentStatus
from programmes.models import EligibilityOutcome, EligibilityResult
from referrals.models import Referral, ReferralEvent, ReferralStatus
from referrals.selectors import AWAITING_AGENCY, IN_PROGRESS
from registry.models import Difficulty, Household, HouseholdStatus, Location, LocationLevel, Member, MemberStatus
from spf.bulk_copy import copy_available, copy_rows, raw_cursor

from .models import (
    GROUP_PEOPLE_FIELDS,
    SNAPSHOT_SUBJECTS,
    DistrictRefresh,
    Group,
    HouseholdProfile,
    Subject,
    Tally,
)

# A page asks again for a first refresh only after this long: time for a worker to get to it
# (a million households take about a minute), without a queue of requests behind it.
REQUEST_AGAIN_AFTER = datetime.timedelta(minutes=10)

# Summary rows are written in batches of this size: a few thousand rows is one
# round trip of a few hundred kilobytes, and a big district's tens of
# thousands of rows go in a handful.
TALLY_BATCH_SIZE = 5000
# A summary row's columns in the order `_Cells.rows` gives them. On PostgreSQL the rows go in with COPY:
# a big district's year is a hundred thousand rows, and building and sending them as model instances
# took as long as counting them (bench/million-notes.md).
TALLY_COLUMNS = (
    "district_id", "subject", "whole_district", "group", "month", "ward_id", "female_headed", "programme_id",
    "agency_id", "state", "category", "days", "count", "people", "overdue", "timely", "amount", "paid_amount",
)  # fmt: skip

# The states of coverage rows: per programme, and across programmes (no programme).
ELIGIBLE = "eligible"
NEEDS_INFORMATION = "needs_information"
ENROLLED = "enrolled"
GAP = "gap"
COMMITTED = "committed"
ELIGIBLE_ANY = "eligible_any"
GAP_ANY = "gap_any"
ENROLLED_ANY = "enrolled_any"
ENROLLED_TWO_PLUS = "enrolled_two_plus"

# Referral rows' category: whether the referral ever left the window (a suggestion never sent has not).
SENT = "sent"
NOT_SENT = "not_sent"
# Payment rows' category: a reissue pays again a failed or unclaimed payment of an earlier cycle.
REISSUE = "reissue"
ORIGINAL = ""
# Grievance rows' category for every sensitive grievance, whatever its real category.
SENSITIVE = "sensitive"


def month_of(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def years_before(day: datetime.date, years: int) -> datetime.date:
    """The same day `years` earlier (28 February for a 29th in a year that has none): whoever was born on
    or before it is at least `years` old on `day`, as `Member.age_on` counts."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


# --- household profiles --------------------------------------------------------------------


def _disabled(alias: str) -> str:
    """SQL: the Washington Group cut-off (a lot of difficulty, or cannot do, in any domain), as `Member.has_disability`."""
    domains = ("seeing", "hearing", "walking", "cognition", "self_care", "communication")
    return "(" + " OR ".join(f"COALESCE({alias}.disability_{d}, 0) >= %s" for d in domains) + ")", [
        int(Difficulty.A_LOT)
    ] * len(domains)


def profiles_rebuild(*, district_id: int, today: datetime.date) -> int:
    """Rebuild the profiles of the district's households (any status) in one statement; returns how many."""
    profile = HouseholdProfile._meta.db_table
    household = Household._meta.db_table
    member = Member._meta.db_table
    location = Location._meta.db_table
    disabled_sql, disabled_params = _disabled("m")
    under_5, under_18, under_60 = (years_before(today, n) for n in (5, 18, 60))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {profile} WHERE district_id = %s", [district_id])
        # A household that moved here still has its profile among the old district's rows. Two
        # statements, not one with OR: a plain IN is a semi-join, an OR beside it made PostgreSQL
        # probe the subquery row by row (13 minutes at a million households instead of a second).
        cursor.execute(
            f"DELETE FROM {profile} WHERE household_id IN (SELECT id FROM {household} WHERE district_id = %s)",
            [district_id],
        )
        # Standard SQL only (CASE, COALESCE, LEFT JOIN): the embedded SQLite demo runs it too.
        cursor.execute(
            f"INSERT INTO {profile} (household_id, district_id, ward_id, active, female_headed, registration_date, "
            f"people, people_female, people_male, people_age_0_4, people_age_5_17, people_age_18_59, "
            f"people_age_60_plus, people_disability) "
            f"SELECT h.id, h.district_id, v.parent_id, h.status = %s, COALESCE(head.sex = %s, FALSE), "
            f"h.registration_date, COUNT(m.id), "
            f"COALESCE(SUM(CASE WHEN m.sex = %s THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN m.sex = %s THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN m.date_of_birth > %s THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN m.date_of_birth > %s AND m.date_of_birth <= %s THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN m.date_of_birth > %s AND m.date_of_birth <= %s THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN m.date_of_birth <= %s THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN {disabled_sql} THEN 1 ELSE 0 END), 0) "
            f"FROM {household} h JOIN {location} v ON v.id = h.village_id "
            f"LEFT JOIN {member} head ON head.id = h.head_id "
            f"LEFT JOIN {member} m ON m.household_id = h.id AND m.status = %s "
            f"WHERE h.district_id = %s "
            f"GROUP BY h.id, h.district_id, v.parent_id, h.status, head.sex, h.registration_date",
            [
                HouseholdStatus.ACTIVE,
                "F",
                "F",
                "M",
                under_5,
                under_18,
                under_5,
                under_60,
                under_18,
                under_60,
                *disabled_params,
                MemberStatus.PRESENT,
                district_id,
            ],
        )
        written = cursor.rowcount
        if connection.vendor == "postgresql":
            # The tallies below join these rows at once: let the planner know how many there are.
            cursor.execute(f"ANALYZE {profile}")
    return written


# --- spreading grouped rows over the groups of people -----------------------------------------

_MEASURES = ("count", "people", "overdue", "timely", "amount", "paid_amount")


@dataclass
class _Cells:
    """The summary rows of one district and subject being counted, keyed by every dimension."""

    district_id: int
    subject: str
    month: datetime.date | None = None
    cells: dict[tuple, dict] = field(default_factory=dict)

    def add(self, row: dict, *, people: bool = True, **dims) -> None:
        """Add a grouped row to the whole, and to each group of people its households have members in.

        `row` carries the measures and the profile's per-group sums (`people_female`, …); a
        group's people are its own members (the women and girls), the whole's are everyone."""
        dims.setdefault("month", self.month)
        self._add(dims, Group.ALL, row, row.get("people") or 0)
        for group, people_field in GROUP_PEOPLE_FIELDS.items():
            in_group = row.get(people_field) or 0
            if in_group > 0:
                self._add(dims, group, row, in_group)

    def _add(self, dims: dict, group: str, row: dict, people: int) -> None:
        # Groups of people are a split of their own, never crossed with female-headed households:
        # their rows need no such column, and are half as many.
        by_ward = (row.get("ward_key"), bool(row.get("fh_key")) and group == Group.ALL, False)
        for place in (by_ward, (None, False, True)):
            self._add_at(place, dims, group, row, people)

    def _add_at(self, place: tuple, dims: dict, group: str, row: dict, people: int) -> None:
        key = (
            group,
            dims.get("month"),
            *place,
            dims.get("programme_id"),
            dims.get("agency_id"),
            dims.get("state", ""),
            dims.get("category", ""),
            dims.get("days"),
        )
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = dict.fromkeys(_MEASURES, 0)
            cell["amount"] = cell["paid_amount"] = None
        cell["count"] += row.get("count") or 0
        cell["people"] += people
        cell["overdue"] += row.get("overdue") or 0
        cell["timely"] += row.get("timely") or 0
        for money in ("amount", "paid_amount"):
            if row.get(money) is not None:
                cell[money] = (cell[money] or Decimal("0")) + row[money]

    def rows(self) -> Iterable[tuple]:
        """The summary rows as values in the order of `TALLY_COLUMNS`, for COPY."""
        district_id, subject = self.district_id, self.subject
        for (
            group,
            month,
            ward,
            fh,
            whole_district,
            programme,
            agency,
            state,
            category,
            days,
        ), cell in self.cells.items():
            yield (
                district_id, subject, whole_district, group, month, ward, fh, programme, agency, state, category, days,
                cell["count"], cell["people"], cell["overdue"], cell["timely"], cell["amount"], cell["paid_amount"],
            )  # fmt: skip

    def tallies(self) -> Iterable[Tally]:
        for (
            group,
            month,
            ward,
            fh,
            whole_district,
            programme,
            agency,
            state,
            category,
            days,
        ), cell in self.cells.items():
            yield Tally(
                district_id=self.district_id,
                subject=self.subject,
                whole_district=whole_district,
                group=group,
                month=month,
                ward_id=ward,
                female_headed=fh,
                programme_id=programme,
                agency_id=agency,
                state=state,
                category=category,
                days=days,
                **cell,
            )


def _by_profile(facts: QuerySet, *, profile: str, keys: dict, measures: dict) -> QuerySet:
    """`facts` grouped by `keys`, the household's ward and kind, and which groups of people it has.

    `profile` is the path from a fact to its household's profile ("" for the profiles
    themselves); the result rows carry `measures`, `people` and each group's people.
    """
    has_groups = {
        f"has_{name}": Case(
            When(**{f"{profile}{name}__gt": 0}, then=Value(True)), default=Value(False), output_field=BooleanField()
        )
        for name in GROUP_PEOPLE_FIELDS.values()
    }
    return (
        facts.order_by()
        .values(
            **keys,
            ward_key=F(f"{profile}ward_id"),
            fh_key=Coalesce(F(f"{profile}female_headed"), Value(False)),
            **has_groups,
        )
        .annotate(
            **measures,
            people=Sum(f"{profile}people"),
            **{name: Sum(f"{profile}{name}") for name in GROUP_PEOPLE_FIELDS.values()},
        )
    )


# --- the subjects ------------------------------------------------------------------------------


def _households(district_id: int, month: datetime.date) -> _Cells:
    cells = _Cells(district_id, Subject.HOUSEHOLDS, month)
    profiles = HouseholdProfile.objects.filter(district_id=district_id, active=True)
    for row in _by_profile(profiles, profile="", keys={}, measures={"count": Count("pk")}):
        cells.add(row)
    return cells


def _registrations(district_id: int) -> _Cells:
    cells = _Cells(district_id, Subject.REGISTRATIONS)
    profiles = HouseholdProfile.objects.filter(district_id=district_id)
    rows = _by_profile(
        profiles, profile="", keys={"month_key": TruncMonth("registration_date")}, measures={"count": Count("pk")}
    )
    for row in rows:
        cells.add(row, month=_as_date(row["month_key"]))
    return cells


def _place(household: str = "household_id", programme: str = "programme_id") -> QuerySet:
    """Place-holding enrolments (approved, active, suspended) of the outer row's household and programme."""
    enrolments = Enrolment.objects.filter(household_id=OuterRef(household), status__in=PLACE_STATUSES)
    return enrolments.filter(programme_id=OuterRef(programme)) if programme else enrolments


def _coverage(district_id: int, month: datetime.date) -> _Cells:
    cells = _Cells(district_id, Subject.COVERAGE, month)
    profile = "household__dashboard_profile__"
    in_district = {f"{profile}district_id": district_id, f"{profile}active": True}

    # Eligible (or needing information), and whether enrolled: the gap is eligible and not enrolled.
    results = EligibilityResult.objects.filter(
        **in_district, outcome__in=(EligibilityOutcome.ELIGIBLE, EligibilityOutcome.NEEDS_INFORMATION)
    )
    rows = _by_profile(
        results,
        profile=profile,
        keys={"programme_key": F("programme_id"), "outcome_key": F("outcome"), "enrolled_key": Exists(_place())},
        measures={"count": Count("pk")},
    )
    for row in rows:
        programme_id = row["programme_key"]
        if row["outcome_key"] == EligibilityOutcome.NEEDS_INFORMATION:
            cells.add(row, programme_id=programme_id, state=NEEDS_INFORMATION)
            continue
        cells.add(row, programme_id=programme_id, state=ELIGIBLE)
        if not row["enrolled_key"]:
            cells.add(row, programme_id=programme_id, state=GAP)

    # Enrolled: households holding a place, eligible or not. A programme for individuals may
    # hold several places in one household: the household is counted once, by its first.
    # The first place of each household and programme by a grouped query, not by "no earlier place
    # exists": with the enrolments' statistics stale (a bulk enrolment not yet analysed), PostgreSQL ran
    # that anti-join as a scan of the programme's places for each place, and a district of 100,000 places
    # did not finish in ten minutes; a grouping is linear whatever the planner believes.
    first_places = (
        Enrolment.objects.filter(**in_district, status__in=PLACE_STATUSES)
        .order_by()
        .values("household_id", "programme_id")
        .annotate(first=Min("pk"))
        .values("first")
    )
    places = Enrolment.objects.filter(pk__in=Subquery(first_places))
    for row in _by_profile(
        places, profile=profile, keys={"programme_key": F("programme_id")}, measures={"count": Count("pk")}
    ):
        cells.add(row, programme_id=row["programme_key"], state=ENROLLED)

    # What the places cost a year is set against the district's budget: the whole district, no split.
    committed = (
        Enrolment.objects.filter(district_id=district_id, status__in=PLACE_STATUSES)
        .order_by()
        .values("programme_id")
        .annotate(count=Count("pk"), amount=Sum("amount"))
    )
    for row in committed:
        cells.add(
            {"count": row["count"], "amount": row["amount"] or Decimal("0")},
            programme_id=row["programme_id"],
            state=COMMITTED,
        )

    # Across programmes: eligible for any, in the gap of any, enrolled in one or in two and more.
    profiles = HouseholdProfile.objects.filter(district_id=district_id, active=True)
    eligible_results = EligibilityResult.objects.filter(
        household_id=OuterRef("household_id"), outcome=EligibilityOutcome.ELIGIBLE
    )
    gaps = eligible_results.exclude(Exists(_place(household="household_id", programme="programme_id")))
    rows = _by_profile(
        profiles.filter(Exists(eligible_results)),
        profile="",
        keys={"gap_key": Exists(gaps)},
        measures={"count": Count("pk")},
    )
    for row in rows:
        cells.add(row, state=ELIGIBLE_ANY)
        if row["gap_key"]:
            cells.add(row, state=GAP_ANY)
    programmes_held = Subquery(
        _place(programme="")
        .order_by()
        .values("household_id")
        .annotate(n=Count("programme_id", distinct=True))
        .values("n"),
        output_field=IntegerField(),
    )
    rows = _by_profile(
        profiles.filter(Exists(_place(programme=""))).annotate(programmes_held=programmes_held),
        profile="",
        keys={
            "two_plus_key": Case(
                When(programmes_held__gte=2, then=Value(True)), default=Value(False), output_field=BooleanField()
            )
        },
        measures={"count": Count("pk")},
    )
    for row in rows:
        cells.add(row, state=ENROLLED_ANY)
        if row["two_plus_key"]:
            cells.add(row, state=ENROLLED_TWO_PLUS)
    return cells


def referral_overdue(today: datetime.date) -> Q:
    """The worklist's overdue test (`referrals.selectors`): marked overdue by the morning job, or fallen due since."""
    return Q(status__in=IN_PROGRESS, overdue_since__isnull=False) | Q(status__in=AWAITING_AGENCY, due_date__lt=today)


def _referrals(district_id: int, today: datetime.date) -> _Cells:
    cells = _Cells(district_id, Subject.REFERRALS)
    referrals = Referral.objects.filter(district_id=district_id)
    rows = _by_profile(
        referrals,
        profile="household__dashboard_profile__",
        keys={
            "programme_key": F("programme_id"),
            "agency_key": F("agency_id"),
            "status_key": F("status"),
            # A suggestion never sent counts in the month it was made.
            "month_key": TruncMonth(Coalesce("sent_at", "created_at", output_field=DateTimeField())),
            "sent_key": Case(
                When(sent_at__isnull=False, then=Value(SENT)), default=Value(NOT_SENT), output_field=CharField()
            ),
        },
        measures={"count": Count("pk"), "overdue": Count("pk", filter=referral_overdue(today))},
    )
    for row in rows:
        cells.add(
            row,
            month=_as_date(row["month_key"]),
            programme_id=row["programme_key"],
            agency_id=row["agency_key"],
            state=row["status_key"],
            category=row["sent_key"],
        )
    return cells


def _acceptances(district_id: int) -> _Cells:
    cells = _Cells(district_id, Subject.ACCEPTANCES)
    events = ReferralEvent.objects.filter(to_status=ReferralStatus.ACCEPTED, referral__district_id=district_id)
    rows = _by_profile(
        events,
        profile="referral__household__dashboard_profile__",
        keys={
            "programme_key": F("referral__programme_id"),
            "agency_key": F("referral__agency_id"),
            "accepted_key": TruncDate("at"),
            "sent_key": TruncDate("referral__sent_at"),
        },
        # On time: accepted by the due date the programme's service level set when it was sent.
        measures={
            "count": Count("pk"),
            "timely": Count("pk", filter=Q(referral__due_date__isnull=True) | Q(at__date__lte=F("referral__due_date"))),
        },
    )
    for row in rows:
        accepted, sent = _as_date(row["accepted_key"]), _as_date(row["sent_key"])
        cells.add(
            row,
            month=month_of(accepted),
            programme_id=row["programme_key"],
            agency_id=row["agency_key"],
            days=(accepted - sent).days if sent else None,
        )
    return cells


def _payments(district_id: int) -> _Cells:
    cells = _Cells(district_id, Subject.PAYMENTS)
    payments = Payment.objects.filter(district_id=district_id)
    rows = _by_profile(
        payments,
        profile="household__dashboard_profile__",
        keys={
            "programme_key": F("programme_id"),
            "status_key": F("status"),
            "period_key": F("cycle__period_start"),
            "paid_key": TruncDate("paid_at"),
            "reissue_key": Case(
                When(reissue_of__isnull=False, then=Value(REISSUE)), default=Value(ORIGINAL), output_field=CharField()
            ),
        },
        # On time: paid by the last day of the cycle's period.
        measures={
            "count": Count("pk"),
            "amount": Sum("amount"),
            "paid_amount": Sum("paid_amount", filter=Q(status=PaymentStatus.PAID)),
            "timely": Count("pk", filter=Q(status=PaymentStatus.PAID, paid_at__date__lte=F("cycle__period_end"))),
        },
    )
    for row in rows:
        period_start, paid = _as_date(row["period_key"]), _as_date(row["paid_key"])
        cells.add(
            row,
            month=month_of(period_start),
            programme_id=row["programme_key"],
            state=row["status_key"],
            category=row["reissue_key"],
            days=max((paid - period_start).days, 0) if paid and row["status_key"] == PaymentStatus.PAID else None,
        )
    return cells


def _as_date(value) -> datetime.date | None:
    """A truncated date as a date: SQLite gives back text or a datetime where PostgreSQL gives a date."""
    if value is None or type(value) is datetime.date:
        return value
    if isinstance(value, datetime.datetime):
        return value.date()
    return datetime.date.fromisoformat(str(value)[:10])


# --- the refresh -------------------------------------------------------------------------------


@dataclass
class RefreshReport:
    district_id: int
    households: int
    tallies: int
    seconds: float


def summaries_refresh_district(*, district_id: int, today: datetime.date | None = None) -> RefreshReport | None:
    """Rebuild one district's profiles and summaries in one transaction; None if a refresh of it is running.

    Safe to run twice: each run replaces what the last one wrote (and this
    month's snapshot), nothing accumulates.
    """
    today = today or timezone.localdate()
    started = time.monotonic()
    try:
        with transaction.atomic():
            DistrictRefresh.objects.get_or_create(district_id=district_id)
    except IntegrityError:
        pass  # another worker created it at the same moment: it is there either way
    with transaction.atomic():
        refresh = DistrictRefresh.objects.select_for_update(skip_locked=True).filter(pk=district_id).first()
        if refresh is None:
            return None
        households = profiles_rebuild(district_id=district_id, today=today)
        month = month_of(today)
        parts = [
            _households(district_id, month),
            _registrations(district_id),
            _coverage(district_id, month),
            _referrals(district_id, today),
            _acceptances(district_id),
            _payments(district_id),
            *_grievance_parts(district_id, today),
        ]
        Tally.objects.filter(district_id=district_id).exclude(subject__in=SNAPSHOT_SUBJECTS).delete()
        Tally.objects.filter(district_id=district_id, subject__in=SNAPSHOT_SUBJECTS, month=month).delete()
        written = 0
        if copy_available():
            with raw_cursor() as cursor:
                for part in parts:
                    copy_rows(cursor, Tally, TALLY_COLUMNS, part.rows())
                    written += len(part.cells)
        else:
            for part in parts:
                rows = list(part.tallies())
                Tally.objects.bulk_create(rows, batch_size=TALLY_BATCH_SIZE)
                written += len(rows)
        refresh.refreshed_at = timezone.now()
        refresh.reference_date = today
        refresh.households = households
        refresh.seconds = round(time.monotonic() - started, 2)
        refresh.save()
    return RefreshReport(district_id=district_id, households=households, tallies=written, seconds=refresh.seconds)


def _grievance_parts(district_id: int, today: datetime.date) -> list[_Cells]:
    """Grievances received and resolved. A sensitive grievance is counted and nothing more: under
    its own category, with no ward, kind of household or group of people, and no days."""
    received = _Cells(district_id, Subject.GRIEVANCES)
    resolved = _Cells(district_id, Subject.RESOLUTIONS)
    grievances = Grievance.objects.filter(district_id=district_id)
    overdue = Count("pk", filter=Q(status__in=GRIEVANCE_OPEN, due_date__lt=today))
    on_time = Count("pk", filter=Q(resolved_at__date__lte=F("due_date")))
    month = TruncMonth("created_at")
    rows = _by_profile(
        grievances.filter(sensitive=False),
        profile="household__dashboard_profile__",
        keys={"category_key": F("category"), "status_key": F("status"), "month_key": month},
        measures={"count": Count("pk"), "overdue": overdue},
    )
    for row in rows:
        received.add(row, month=_as_date(row["month_key"]), state=row["status_key"], category=row["category_key"])
    rows = _by_profile(
        grievances.filter(sensitive=False, resolved_at__isnull=False),
        profile="household__dashboard_profile__",
        keys={
            "category_key": F("category"),
            "resolved_key": TruncDate("resolved_at"),
            "received_key": TruncDate("created_at"),
        },
        measures={"count": Count("pk"), "timely": on_time},
    )
    for row in rows:
        day, since = _as_date(row["resolved_key"]), _as_date(row["received_key"])
        resolved.add(row, month=month_of(day), category=row["category_key"], days=(day - since).days)
    sensitive = grievances.filter(sensitive=True).order_by()
    for row in sensitive.values(status_key=F("status"), month_key=month).annotate(count=Count("pk"), overdue=overdue):
        received.add(row, month=_as_date(row["month_key"]), state=row["status_key"], category=SENSITIVE)
    rows = (
        sensitive.filter(resolved_at__isnull=False)
        .values(month_key=TruncMonth("resolved_at"))
        .annotate(count=Count("pk"), timely=on_time)
    )
    for row in rows:
        resolved.add(row, month=_as_date(row["month_key"]), category=SENSITIVE)
    return [received, resolved]


def summaries_request(*, district_ids: list[int]) -> list[int]:
    """Queue a first refresh of those districts never refreshed (a new district, a fresh database), unless
    one was asked for lately; returns the districts queued. With Celery eager (the demo) they run at once."""
    from .tasks import summaries_refresh_district as task

    now = timezone.now()
    queued = []
    for district_id in district_ids:
        try:
            with transaction.atomic():
                DistrictRefresh.objects.get_or_create(district_id=district_id)
        except IntegrityError:
            pass
        asked = (
            DistrictRefresh.objects.filter(pk=district_id, refreshed_at__isnull=True)
            .filter(Q(requested_at__isnull=True) | Q(requested_at__lt=now - REQUEST_AGAIN_AFTER))
            .update(requested_at=now)
        )
        if asked:
            queued.append(district_id)
    from spf.outbox import send_if_broker_answers

    # Sent now, or not at all while Redis is down (the page still opens): the beat job refreshes every
    # district every 30 minutes anyway, so nothing waits in the outbox for this.
    for district_id in queued:
        send_if_broker_answers(task=task, args=[district_id])
    return queued


def summary_district_ids() -> list[int]:
    """Every district with households, the ones refreshed longest ago first."""
    ids = Location.objects.filter(level=LocationLevel.DISTRICT).order_by("pk").values_list("pk", flat=True)
    last = dict(DistrictRefresh.objects.values_list("district_id", "refreshed_at"))
    epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return sorted(ids, key=lambda pk: last.get(pk) or epoch)


__all__ = [
    "ELIGIBLE",
    "ENROLLED",
    "GAP",
    "RefreshReport",
    "month_of",
    "profiles_rebuild",
    "referral_overdue",
    "summaries_refresh_district",
    "summaries_request",
    "summary_district_ids",
    "years_before",
]
