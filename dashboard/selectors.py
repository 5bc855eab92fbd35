"""Reads for the dashboard: who may see it and for which districts, what the
page was asked for (districts, ward, period, split), the figures summed from
the summaries, and the households behind a figure.

Scope is decided here once: a committee member gets their own districts and
nothing else (another district's id is answered as if it did not exist),
ministry staff any district. Figures come from `Tally` rows (a few thousand
for a district); the households behind a figure are read live from the
registry, through `registry.selectors.households_for`.
"""

import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from grievances.models import OPEN_STATUSES as GRIEVANCE_OPEN
from grievances.models import Grievance
from payments.models import PLACE_STATUSES, Enrolment, Payment
from programmes.models import EligibilityOutcome, EligibilityResult
from referrals.models import Referral, ReferralEvent, ReferralStatus
from registry.models import Difficulty, Household, HouseholdStatus, Location, LocationLevel, Member, MemberStatus
from registry.selectors import districts_for, households_for
from spf.models import Role

from .indicators import median_days
from .models import Group, Subject, Tally
from .summaries import (
    ELIGIBLE,
    ELIGIBLE_ANY,
    ENROLLED,
    ENROLLED_ANY,
    ENROLLED_TWO_PLUS,
    GAP,
    GAP_ANY,
    NEEDS_INFORMATION,
    NOT_SENT,
    REISSUE,
    SENSITIVE,
    SENT,
    month_of,
    referral_overdue,
    years_before,
)

# A figure's whole, beside the parts a split gives (ward ids, groups' codes, yes/no never collide with it).
TOTAL = "*"

# How far back the page looks when no period is asked for: a year of committee meetings.
DEFAULT_MONTHS = 12

# `?cycles=all`: the payments table with every cycle of the period (the page shows each programme's last few).
ALL_CYCLES = "all"


def dashboard_may_view(user) -> bool:
    """District committee members and ministry staff; the others work from their own lists."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.role in (Role.COMMITTEE, Role.MINISTRY)


def dashboard_districts_for(user) -> QuerySet[Location]:
    """The districts `user` may look at, by name."""
    return districts_for(user).order_by("name")


def dashboard_wards_for(districts) -> QuerySet[Location]:
    return (
        Location.objects.filter(level=LocationLevel.WARD, parent__in=districts)
        .select_related("parent")
        .order_by("parent__name", "name")
    )


# --- what the page was asked for -----------------------------------------------------------------


def add_months(month: datetime.date, months: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """Whole months, from the first of `first` to the end of `last`."""

    first: datetime.date
    last: datetime.date

    @classmethod
    def default(cls, today: datetime.date | None = None) -> "Period":
        this_month = month_of(today or timezone.localdate())
        return cls(add_months(this_month, -(DEFAULT_MONTHS - 1)), this_month)

    @property
    def months(self) -> list[datetime.date]:
        months, month = [], self.first
        while month <= self.last:
            months.append(month)
            month = add_months(month, 1)
        return months

    @property
    def end_day(self) -> datetime.date:
        return add_months(self.last, 1) - datetime.timedelta(days=1)

    @property
    def label(self) -> str:
        if self.first == self.last:
            return f"{self.first:%B %Y}"
        return f"{self.first:%b %Y} – {self.last:%b %Y}"


class Split:
    NONE = ""
    WARD = "ward"
    FEMALE_HEADED = "female_headed"
    SEX = "sex"
    AGE = "age"
    DISABILITY = "disability"
    DISTRICT = "district"

    CHOICES = (
        (NONE, "No split"),
        (WARD, "Ward"),
        (FEMALE_HEADED, "Female-headed households"),
        (SEX, "Sex"),
        (AGE, "Age band"),
        (DISABILITY, "Disability"),
        (DISTRICT, "District (compare)"),
    )
    # Splits by a column of the summary rows: each row is in exactly one part.
    COLUMNS = {WARD: "ward_id", FEMALE_HEADED: "female_headed", DISTRICT: "district_id"}
    # Splits by groups of people: a household is in every group it has a member in.
    GROUPS = {
        SEX: (Group.FEMALE, Group.MALE),
        AGE: (Group.AGE_0_4, Group.AGE_5_17, Group.AGE_18_59, Group.AGE_60_PLUS),
        DISABILITY: (Group.DISABILITY,),
    }


@dataclass
class DashboardQuery:
    districts: list[Location]
    ward: Location | None = None
    period: Period = field(default_factory=Period.default)
    split: str = Split.NONE
    # Every payment cycle of the period, not only each programme's last few (`?cycles=all`, and exports).
    all_cycles: bool = False
    # Filled on first use: the snapshot month each district's stocks are read from.
    _snapshots: dict[int, datetime.date] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def district_ids(self) -> list[int]:
        return [d.pk for d in self.districts]

    def params(self) -> list[tuple[str, str]]:
        """The query string that asks for this again (for links and exports)."""
        params = [("district", str(pk)) for pk in self.district_ids]
        if self.ward:
            params.append(("ward", str(self.ward.pk)))
        params += [("from", f"{self.period.first:%Y-%m}"), ("to", f"{self.period.last:%Y-%m}")]
        if self.split:
            params.append(("split", self.split))
        return params

    @property
    def place(self) -> str:
        names = (
            ", ".join(d.name for d in self.districts)
            if len(self.districts) <= 4
            else f"{len(self.districts)} districts"
        )
        return f"{names} · {self.ward.name}" if self.ward else f"{names} · all wards"

    def snapshots(self) -> dict[int, datetime.date]:
        """Each district's latest snapshot month up to the end of the period: the stocks "as at" the period."""
        if self._snapshots is None:
            rows = (
                Tally.objects.filter(
                    district_id__in=self.district_ids,
                    subject=Subject.HOUSEHOLDS,
                    whole_district=True,
                    group="",
                    month__lte=self.period.last,
                )
                .order_by()
                .values("district_id")
                .annotate(month=Max("month"))
            )
            self._snapshots = {row["district_id"]: row["month"] for row in rows}
        return self._snapshots


# --- figures from the summaries ------------------------------------------------------------------


@dataclass
class Figure:
    """The sums of a set of summary rows, and the histogram of their days."""

    count: int = 0
    people: int = 0
    overdue: int = 0
    timely: int = 0
    amount: Decimal | None = None
    paid_amount: Decimal | None = None
    # Made on the first number of days added: most figures have none, and a busy page adds up thousands.
    days: Counter | None = None

    def add_sums(self, count, people, overdue, timely, amount, paid_amount, *, days=None) -> None:
        """Add one grouped row's sums (in `_SUMS`' order); `days` is the row's number of days, if any."""
        self.count += count or 0
        self.people += people or 0
        self.overdue += overdue or 0
        self.timely += timely or 0
        if amount is not None:
            self.amount = amount if self.amount is None else self.amount + amount
        if paid_amount is not None:
            self.paid_amount = paid_amount if self.paid_amount is None else self.paid_amount + paid_amount
        if days is not None:
            if self.days is None:
                self.days = Counter()
            self.days[days] += count or 0

    def __iadd__(self, other: "Figure") -> "Figure":
        self.count += other.count
        self.people += other.people
        self.overdue += other.overdue
        self.timely += other.timely
        for money in ("amount", "paid_amount"):
            theirs = getattr(other, money)
            if theirs is not None:
                setattr(self, money, (getattr(self, money) or Decimal("0")) + theirs)
        if other.days:
            if self.days is None:
                self.days = Counter()
            self.days.update(other.days)
        return self

    @property
    def median_days(self) -> float | None:
        return median_days(self.days or {})


# {key: {part of the split (or TOTAL): Figure}}
Figures = dict[tuple, dict[object, Figure]]

_SUMS = {
    "count": Sum("count"),
    "people": Sum("people"),
    "overdue": Sum("overdue"),
    "timely": Sum("timely"),
    "amount": Sum("amount"),
    "paid_amount": Sum("paid_amount"),
}


@dataclass(frozen=True)
class _TallyRead:
    """The summary rows a figure adds up, and how its split is read from them."""

    tallies: QuerySet
    # A split by a column of the rows (ward, kind of household, district): each row is in one part.
    column: str | None
    # A split by groups of people: the group "" row is the whole.
    groups: tuple | None


def _tally_read(
    query: DashboardQuery,
    subjects: str | tuple[str, ...],
    *,
    keys: tuple[str, ...],
    where: Q | None,
    split: bool,
    months: str,
) -> _TallyRead | None:
    """The rows of `subjects` the query asks for (None when there is no snapshot to read a stock from)."""
    tallies = Tally.objects.filter(district_id__in=query.district_ids)
    tallies = tallies.filter(subject__in=subjects) if isinstance(subjects, tuple) else tallies.filter(subject=subjects)
    if months == "snapshot":
        snapshots = query.snapshots()
        if not snapshots:
            return None
        at = Q()
        for district_id, month in snapshots.items():
            at |= Q(district_id=district_id, month=month)
        tallies = tallies.filter(at)
    else:
        tallies = tallies.filter(month__gte=query.period.first, month__lte=query.period.last)
    column = Split.COLUMNS.get(query.split) if split else None
    groups = Split.GROUPS.get(query.split) if split else None
    tallies = tallies.filter(whole_district=not by_ward(query, column, keys))
    if query.ward:
        tallies = tallies.filter(ward_id=query.ward.pk)
    if where is not None:
        tallies = tallies.filter(where)
    if groups:
        tallies = tallies.filter(group__in=["", *groups])
    else:
        tallies = tallies.filter(group="")
    return _TallyRead(tallies.order_by(), None if groups else column, groups)


def tally_figures(
    query: DashboardQuery,
    subject: str,
    *,
    keys: tuple[str, ...] = (),
    where: Q | None = None,
    with_days: bool = False,
    split: bool = True,
    months: str = "period",
) -> Figures:
    """Sum `subject`'s summary rows by `keys` and by the parts of the query's split, with each key's whole.

    `months`: "period" for flows in the period, "snapshot" for stocks as at its
    end, "snapshots" for every snapshot in it (a trend of stocks). One query.
    """
    read = _tally_read(query, subject, keys=keys, where=where, split=split, months=months)
    if read is None:
        return {}
    tallies, column, groups = read.tallies, read.column, read.groups
    group_by = list(keys) + (["days"] if with_days else [])
    if groups:
        group_by.append("group")
    elif column:
        group_by.append(column)

    # Tuples, not dicts: a busy district's year is tens of thousands of rows to add up.
    figures: Figures = {}
    width = len(keys)
    days_at = width if with_days else None
    part_at = len(group_by) - 1
    if group_by:
        rows = tallies.order_by().values_list(*group_by).annotate(**_SUMS)
    else:
        sums = tallies.aggregate(**_SUMS)
        rows = [tuple(sums[name] for name in _SUMS)] if sums["count"] is not None else []
    for row in rows:
        by_part = figures.setdefault(row[:width], {})
        days = row[days_at] if days_at is not None else None
        measures = row[len(group_by) :]
        if groups:
            parts = (row[part_at] or TOTAL,)
        elif column:
            parts = (row[part_at], TOTAL)
        else:
            parts = (TOTAL,)
        for part in parts:
            figure = by_part.get(part)
            if figure is None:
                figure = by_part[part] = Figure()
            figure.add_sums(*measures, days=days)
    return figures


def by_ward(query: DashboardQuery, column: str | None = None, keys: tuple[str, ...] = ()) -> bool:
    """Whether to read the rows kept by ward (a ward filter, a split or a key by ward or kind of
    household) rather than the district's own."""
    ward_columns = ("ward_id", "female_headed")
    return bool(query.ward) or column in ward_columns or any(key in ward_columns for key in keys)


def merged(figures: Figures, *, key: Callable[[tuple], tuple | None]) -> Figures:
    """The same figures summed under coarser keys (`key` maps a key to its new key, None to leave it out)."""
    result: Figures = {}
    for old, by_part in figures.items():
        new = key(old)
        if new is None:
            continue
        target = result.setdefault(new, {})
        for part, figure in by_part.items():
            target.setdefault(part, Figure()).__iadd__(figure)
    return result


def whole(figures: Figures, key: tuple = ()) -> Figure:
    return figures.get(key, {}).get(TOTAL) or Figure()


# --- figures added up by the database ----------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One column of a pivoted read: the sum of a summary column (`count`, `overdue`, `amount`, …) over
    the rows `where` picks out, e.g. the payments paid, or the referrals sent and now accepted."""

    name: str
    column: str = "count"
    where: Q | None = None


# {key: {part of the split (or TOTAL): {measure: sum}}}. A count no row had is None: read it with `or 0`.
Pivot = dict[tuple, dict[object, dict[str, object]]]


def tally_pivot(
    query: DashboardQuery,
    subjects: str | tuple[str, ...],
    *,
    keys: tuple[str, ...] = (),
    measures: tuple[Measure, ...],
    where: Q | None = None,
    split: bool = True,
    months: str = "period",
) -> Pivot:
    """Sum summary rows by `keys` and by the parts of the split, every measure a column of one grouped
    row: the database adds up the states, categories and days a table's row is made of, so a busy
    district's page gets one row per cell of its table instead of one per state and day. One query.

    A split by a column (ward, kind of household, district) gets its whole as the sum of the parts,
    a split by groups of people the group "" row (the groups overlap)."""
    read = _tally_read(query, subjects, keys=keys, where=where, split=split, months=months)
    if read is None:
        return {}
    part_field = "group" if read.groups else read.column
    group_by = [*keys, part_field] if part_field else list(keys)
    sums = {m.name: Sum(m.column, filter=m.where) for m in measures}
    names = list(sums)
    if group_by:
        rows = read.tallies.values_list(*group_by).annotate(**sums)
    else:
        total = read.tallies.aggregate(**sums)
        rows = [tuple(total[name] for name in names)] if any(v is not None for v in total.values()) else []
    width = len(keys)
    pivot: Pivot = {}
    for row in rows:
        values = dict(zip(names, row[len(group_by) :], strict=True))
        by_part = pivot.setdefault(row[:width], {})
        if read.groups:
            by_part[row[width] or TOTAL] = values
        elif read.column:
            by_part[row[width]] = values
            add_measures(by_part.setdefault(TOTAL, {}), values)
        else:
            by_part[TOTAL] = values
    return pivot


def _as_month(value) -> datetime.date | None:
    """A month read by a raw query: SQLite gives back text where PostgreSQL gives a date."""
    if value is None or isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


def _as_month(value) -> datetime.date | None:
    """A month read by a raw query: SQLite gives back text where PostgreSQL gives a date."""
    if value is None or isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


def add_measures(into: dict[str, object], values: dict[str, object]) -> dict[str, object]:
    """Add one row's measures to another's (None is "no row": it adds nothing)."""
    for name, value in values.items():
        if value is not None:
            mine = into.get(name)
            into[name] = value if mine is None else mine + value
    return into


def tally_medians(
    query: DashboardQuery,
    subject: str,
    *,
    groupings: tuple[tuple[str, ...], ...],
    where: Q | None = None,
    split: bool = True,
    only: dict[int, list[tuple]] | None = None,
) -> list[dict[tuple, dict[object, float | None]]]:
    """The median number of days (of acceptance, payment, resolution) for each key of each grouping and
    each part of the split, computed by the database from the histograms the summaries keep.

    One query whatever the groupings: the day-by-day histogram is summed once by every key any grouping
    needs, each grouping (and, for a split by a column, its whole) sums it further, and a running
    total over the days finds the middle. The result, one dict per grouping, is `median_days` of the
    histogram to the day; the histogram itself never leaves the database. `only` narrows a grouping
    (by its index) to the keys the page shows, e.g. the cycles in its table."""
    keys = tuple(dict.fromkeys(key for grouping in groupings for key in grouping))
    read = _tally_read(query, subject, keys=keys, where=where, split=split, months="period")
    if read is None or not groupings:
        return [{} for _ in groupings]
    part_field = "group" if read.groups else read.column
    inner = read.tallies.filter(days__isnull=False).values_list(*keys, *([part_field] if part_field else []), "days")
    inner_sql, params = inner.annotate(n=Sum("count")).query.sql_with_params()
    key_names = [f"k{i}" for i in range(len(keys))]
    columns = ", ".join([*key_names, *(["part"] if part_field else []), "days", "n"])
    width = max(len(grouping) for grouping in groupings)
    branches = []
    params = list(params)
    for index, grouping in enumerate(groupings):
        chosen = [key_names[keys.index(key)] for key in grouping]
        padded = ", ".join(chosen + ["NULL"] * (width - len(chosen))) or "NULL"
        by = ", ".join(chosen)
        narrowed, narrowing = "", []
        if only is not None and index in only:
            shown = only[index] or [(None,) * len(grouping)]  # nothing shown: a key nothing equals
            one = "(" + " AND ".join(f"{name} = %s" for name in chosen) + ")"
            narrowed = " WHERE " + " OR ".join([one] * len(shown))
            narrowing = [value for key in shown for value in key]
        # The parts (or the groups, the whole among them), then a column split's whole: the sum of its parts.
        # Counts as integers: PostgreSQL sums bigints into numerics, and running totals of those are slow.
        if part_field:
            branches.append(
                f"SELECT {index}, {padded}, part, 0, days, CAST(SUM(n) AS INTEGER) FROM h{narrowed} "
                f"GROUP BY {by + ', ' if by else ''}part, days"
            )
            params += narrowing
        if not part_field or read.column:
            branches.append(
                f"SELECT {index}, {padded}, NULL, 1, days, CAST(SUM(n) AS INTEGER) FROM h{narrowed} "
                f"GROUP BY {by + ', ' if by else ''}days"
            )
            params += narrowing
    slots = [f"s{i}" for i in range(max(width, 1))]
    partition = ", ".join(["g", *slots, "part", "whole"])
    sql = (
        f"WITH h ({columns}) AS ({inner_sql}), "
        f"hh (g, {', '.join(slots)}, part, whole, days, n) AS ({' UNION ALL '.join(branches)}), "
        f"c AS (SELECT g, {', '.join(slots)}, part, whole, days, "
        f"SUM(n) OVER (PARTITION BY {partition} ORDER BY days) AS upto, "
        f"SUM(n) OVER (PARTITION BY {partition}) AS total FROM hh) "
        # The middle value(s) of the days in order: the first day whose running total reaches half the
        # total, and the first that passes it (the same day unless the count is even and splits there).
        f"SELECT g, {', '.join(slots)}, part, whole, MIN(CASE WHEN 2 * upto >= total THEN days END), "
        f"MIN(CASE WHEN 2 * upto > total THEN days END) FROM c GROUP BY {partition}"
    )
    results: list[dict[tuple, dict[object, float | None]]] = [{} for _ in groupings]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            grouping = int(row[0])
            key = tuple(
                _as_month(value) if name == "month" else value
                for name, value in zip(groupings[grouping], row[1:], strict=False)
            )
            part, whole_row, low, high = row[1 + len(slots) :]
            if whole_row:
                part = TOTAL
            elif read.groups:
                part = part or TOTAL
            elif read.column == "female_headed":
                part = bool(part)  # SQLite gives booleans back as 0 and 1
            middle = (low + high) / 2
            results[grouping].setdefault(key, {})[part] = int(middle) if middle == int(middle) else middle
    return results


# --- the households behind a figure ----------------------------------------------------------------


class FigureRef:
    """What a link to the households behind a figure says: `figure` is a summary subject (or a state
    of coverage), narrowed by programme, agency, states, category, overdue and a month."""

    def __init__(
        self,
        *,
        subject: str,
        state: str = "",
        programme_id: int | None = None,
        agency_id: int | None = None,
        category: str = "",
        overdue: bool = False,
        month: datetime.date | None = None,
    ):
        self.subject = subject
        self.states = [s for s in state.split(",") if s]
        self.programme_id = programme_id
        self.agency_id = agency_id
        self.category = category
        self.overdue = overdue
        self.month = month

    def params(self) -> list[tuple[str, str]]:
        params = [("figure", self.subject)]
        if self.states:
            params.append(("state", ",".join(self.states)))
        if self.programme_id:
            params.append(("programme", str(self.programme_id)))
        if self.agency_id:
            params.append(("agency", str(self.agency_id)))
        if self.category:
            params.append(("category", self.category))
        if self.overdue:
            params.append(("overdue", "1"))
        if self.month:
            params.append(("month", f"{self.month:%Y-%m}"))
        return params


def group_param(split: str, part) -> str:
    """The `group` a link carries for one part of a split ("" for the whole)."""
    if part == TOTAL or part is None:
        return ""
    if split == Split.FEMALE_HEADED:
        return f"female_headed:{'yes' if part else 'no'}"
    if split in (Split.WARD, Split.DISTRICT):
        return f"{split}:{part}"
    return str(part)


def _people_in(group: str, today: datetime.date) -> Q | None:
    """Households with a present member in `group` (a `Group` code), at `today`'s ages."""
    members = Member.objects.filter(household_id=OuterRef("pk"), status=MemberStatus.PRESENT)
    under_5, under_18, under_60 = (years_before(today, n) for n in (5, 18, 60))
    condition = {
        Group.FEMALE: Q(sex="F"),
        Group.MALE: Q(sex="M"),
        Group.AGE_0_4: Q(date_of_birth__gt=under_5),
        Group.AGE_5_17: Q(date_of_birth__gt=under_18, date_of_birth__lte=under_5),
        Group.AGE_18_59: Q(date_of_birth__gt=under_60, date_of_birth__lte=under_18),
        Group.AGE_60_PLUS: Q(date_of_birth__lte=under_60),
        Group.DISABILITY: _disabled(),
    }.get(group)
    return Q(Exists(members.filter(condition))) if condition is not None else None


def _disabled() -> Q:
    q = Q()
    for domain in ("seeing", "hearing", "walking", "cognition", "self_care", "communication"):
        q |= Q(**{f"disability_{domain}__gte": Difficulty.A_LOT})
    return q


def group_filter(group: str, *, query: DashboardQuery, today: datetime.date) -> Q:
    """The households in one part of a split; ValueError for a part that names nothing."""
    if not group:
        return Q()
    kind, _, value = group.partition(":")
    if kind == Split.WARD and value.isdigit():
        return Q(village__parent_id=int(value))
    if kind == Split.DISTRICT and value.isdigit() and int(value) in query.district_ids:
        return Q(district_id=int(value))
    if kind == Split.FEMALE_HEADED and value in ("yes", "no"):
        female = Q(head__sex="F")
        return female if value == "yes" else (Q(head__isnull=True) | ~female)
    people = _people_in(group, today)
    if people is None:
        raise ValueError(group)
    return people


def _in_period(field_name: str, first: datetime.date, end_day: datetime.date) -> Q:
    return Q(**{f"{field_name}__gte": first, f"{field_name}__lte": end_day})


def _between(field_name: str, first: datetime.date, end_day: datetime.date) -> Q:
    """A moment on one of the days from `first` to `end_day`, in the country's time zone.

    Compared as moments, not as `__date`: a column compared as it is has statistics the planner
    reads; its date in a time zone is an expression it guesses at, and it guessed a hundred times
    too few referrals behind a figure and joined all of them before taking the first page."""
    start = timezone.make_aware(datetime.datetime.combine(first, datetime.time.min))
    end = timezone.make_aware(datetime.datetime.combine(end_day + datetime.timedelta(days=1), datetime.time.min))
    return Q(**{f"{field_name}__gte": start, f"{field_name}__lt": end})


def figure_filter(figure: FigureRef, *, query: DashboardQuery, today: datetime.date) -> Q:
    """The households behind `figure`, as the registry stands now (the figure is as of the last refresh).

    ValueError when the figure cannot be listed (sensitive grievances are only ever counted)."""
    first, end_day = query.period.first, query.period.end_day
    if figure.month:
        first, end_day = figure.month, add_months(figure.month, 1) - datetime.timedelta(days=1)
    states = figure.states
    programme = {"programme_id": figure.programme_id} if figure.programme_id else {}
    active = Q(status=HouseholdStatus.ACTIVE)
    subject = figure.subject

    if subject == Subject.HOUSEHOLDS:
        return active
    if subject == Subject.REGISTRATIONS:
        return _in_period("registration_date", first, end_day)
    if subject == Subject.COVERAGE:
        state = states[0] if states else ""
        results = EligibilityResult.objects.filter(household_id=OuterRef("pk"), **programme)
        eligible = results.filter(outcome=EligibilityOutcome.ELIGIBLE)
        places = Enrolment.objects.filter(household_id=OuterRef("pk"), status__in=PLACE_STATUSES, **programme)
        if state == ELIGIBLE and programme:
            return active & Q(Exists(eligible))
        if state == NEEDS_INFORMATION and programme:
            return active & Q(Exists(results.filter(outcome=EligibilityOutcome.NEEDS_INFORMATION)))
        if state == ENROLLED and programme:
            return active & Q(Exists(places))
        if state == GAP and programme:
            return active & Q(Exists(eligible)) & ~Q(Exists(places))
        if state == ELIGIBLE_ANY:
            return active & Q(Exists(eligible))
        if state == GAP_ANY:
            uncovered = eligible.exclude(
                Exists(
                    Enrolment.objects.filter(
                        household_id=OuterRef("household_id"),
                        programme_id=OuterRef("programme_id"),
                        status__in=PLACE_STATUSES,
                    )
                )
            )
            return active & Q(Exists(uncovered))
        if state in (ENROLLED_ANY, ENROLLED_TWO_PLUS):
            # `programmes_held` is annotated by `households_behind`.
            return active & Q(programmes_held__gte=2 if state == ENROLLED_TWO_PLUS else 1)
        raise ValueError(state)
    if subject == Subject.REFERRALS:
        referrals = Referral.objects.filter(
            household_id=OuterRef("pk"), district_id__in=query.district_ids, **programme
        )
        # Counted in the month sent; a suggestion never sent, in the month it was made.
        referrals = referrals.filter(
            (Q(sent_at__isnull=False) & _between("sent_at", first, end_day))
            | (Q(sent_at__isnull=True) & _between("created_at", first, end_day))
        )
        if figure.agency_id:
            referrals = referrals.filter(agency_id=figure.agency_id)
        if states:
            referrals = referrals.filter(status__in=states)
        if figure.category == SENT:
            referrals = referrals.filter(sent_at__isnull=False)
        elif figure.category == NOT_SENT:
            referrals = referrals.filter(sent_at__isnull=True)
        if figure.overdue:
            referrals = referrals.filter(referral_overdue(today))
        return Q(Exists(referrals))
    if subject == Subject.ACCEPTANCES:
        events = ReferralEvent.objects.filter(
            referral__household_id=OuterRef("pk"),
            referral__district_id__in=query.district_ids,
            to_status=ReferralStatus.ACCEPTED,
        ).filter(_between("at", first, end_day))
        if figure.programme_id:
            events = events.filter(referral__programme_id=figure.programme_id)
        if figure.agency_id:
            events = events.filter(referral__agency_id=figure.agency_id)
        return Q(Exists(events))
    if subject == Subject.PAYMENTS:
        payments = Payment.objects.filter(
            household_id=OuterRef("pk"),
            district_id__in=query.district_ids,
            cycle__period_start__gte=first,
            cycle__period_start__lte=end_day,
            **programme,
        )
        if states:
            payments = payments.filter(status__in=states)
        if figure.category == REISSUE:
            payments = payments.filter(reissue_of__isnull=False)
        return Q(Exists(payments))
    if subject in (Subject.GRIEVANCES, Subject.RESOLUTIONS):
        if figure.category == SENSITIVE:
            raise ValueError("Sensitive grievances are counted, never listed.")
        grievances = Grievance.objects.filter(
            household_id=OuterRef("pk"), district_id__in=query.district_ids, sensitive=False, **programme
        )
        when = "created_at" if subject == Subject.GRIEVANCES else "resolved_at"
        grievances = grievances.filter(_between(when, first, end_day))
        if figure.category:
            grievances = grievances.filter(category=figure.category)
        if states:
            grievances = grievances.filter(status__in=states)
        if figure.overdue:
            grievances = grievances.filter(status__in=GRIEVANCE_OPEN, due_date__lt=today)
        return Q(Exists(grievances))
    raise ValueError(subject)


def households_behind(
    *, user, query: DashboardQuery, figure: FigureRef, group: str = "", today: datetime.date | None = None
) -> QuerySet[Household]:
    """The households a figure counts, in the user's districts, by number; ValueError for a figure that
    cannot be listed. Everything a row of the list shows is joined."""
    today = today or timezone.localdate()
    households = households_for(user).filter(district_id__in=query.district_ids)
    if figure.subject == Subject.COVERAGE and figure.states and figure.states[0] in (ENROLLED_ANY, ENROLLED_TWO_PLUS):
        places = Enrolment.objects.filter(household_id=OuterRef("pk"), status__in=PLACE_STATUSES)
        households = households.annotate(
            programmes_held=Subquery(
                places.order_by().values("household_id").annotate(n=Count("programme_id", distinct=True)).values("n"),
                output_field=IntegerField(),
            )
        )
    if query.ward:
        households = households.filter(village__parent_id=query.ward.pk)
    households = households.filter(group_filter(group, query=query, today=today))
    households = households.filter(figure_filter(figure, query=query, today=today))
    return households.select_related("head", "village", "village__parent", "district").order_by("number")


__all__ = [
    "ALL_CYCLES",
    "TOTAL",
    "DashboardQuery",
    "Figure",
    "FigureRef",
    "Measure",
    "Period",
    "Pivot",
    "Split",
    "add_months",
    "add_measures",
    "by_ward",
    "dashboard_districts_for",
    "dashboard_may_view",
    "dashboard_wards_for",
    "figure_filter",
    "group_filter",
    "group_param",
    "households_behind",
    "merged",
    "tally_figures",
    "tally_medians",
    "tally_pivot",
    "whole",
]
