"""The dashboard as the committee reads it: headline figures, the monitoring
indicators, and five sections (the registry, programmes' coverage and gaps,
referrals, payments, grievances), each with its tables and monthly trends.

Built from the summaries through `dashboard.selectors` (`tally_pivot`: one
grouped row per row of a table, its figures summed by the database;
`tally_medians`: medians of days found by the database), a fixed number of
queries whatever the number of programmes, wards or months. Every count links
to the households behind it; every table (a trend's too) exports to CSV and
Excel. The rates are the indicators' own functions.
"""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote_plus, urlencode

from django.conf import settings
from django.db.models import Q, Sum
from django.urls import reverse
from django.utils import timezone

from grievances.models import OPEN_STATUSES as GRIEVANCE_OPEN
from grievances.models import GrievanceCategory
from payments.models import PaymentStatus
from payments.services import PAYMENTS_PER_YEAR
from programmes.models import Agency, Programme, ProgrammeDistrict
from referrals.models import ReferralStatus
from registry.models import Location, LocationLevel

from . import indicators as ind
from .models import DistrictRefresh, Group, Subject, Tally
from .selectors import (
    ALL_CYCLES,
    TOTAL,
    DashboardQuery,
    Figure,
    FigureRef,
    Measure,
    Pivot,
    Split,
    add_measures,
    group_param,
    tally_figures,
    tally_medians,
    tally_pivot,
    whole,
)
from .summaries import (
    COMMITTED,
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
)
from .tables import DAYS, MONEY, PERCENT, TEXT, Column, Table

R = ReferralStatus
P = PaymentStatus

# {month: {part of the split (or TOTAL): count}}: one line of a trend.
MonthCounts = dict[datetime.date, dict[object, int]]

# The beat entry that keeps the summaries current: the page says how often it runs.
REFRESH_SCHEDULE = "dashboard-summaries-refresh"


@dataclass
class Chart:
    key: str
    title: str
    kind: str  # "line" or "bar"
    labels: list[str]
    series: list[dict]
    table: Table
    stacked: bool = False

    @property
    def empty(self) -> bool:
        return not any(value for series in self.series for value in series["data"])

    def config(self) -> dict:
        """What `static/js/dashboard.js` draws (Chart.js, served from our own static files)."""
        return {"kind": self.kind, "labels": self.labels, "series": self.series, "stacked": self.stacked}


@dataclass
class Headline:
    label: str
    value: object
    href: str = ""
    note: str = ""


@dataclass
class IndicatorValue:
    indicator: ind.Indicator
    value: float | None
    note: str = ""
    href: str = ""

    @property
    def text(self) -> str:
        return self.indicator.describe(self.value)


@dataclass
class Section:
    key: str
    title: str
    lead: str
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Freshness:
    refreshed_at: datetime.datetime | None
    never: list[Location]
    every_minutes: int | None

    @property
    def stale(self) -> bool:
        """Older than two runs of the job: the job is behind or not running."""
        if self.refreshed_at is None or not self.every_minutes:
            return False
        return timezone.now() - self.refreshed_at > datetime.timedelta(minutes=2 * self.every_minutes)


@dataclass
class Dashboard:
    query: DashboardQuery
    freshness: Freshness
    headlines: list[Headline]
    indicators: list[IndicatorValue]
    sections: list[Section]

    def tables(self) -> dict[str, Table]:
        found = {}
        for section in self.sections:
            for table in section.tables:
                found[table.key] = table
            for chart in section.charts:
                found[chart.table.key] = chart.table
        return found

    def heading(self, table: Table) -> list[str]:
        """The lines above an exported table: what, where, when, and how fresh."""
        split = dict(Split.CHOICES).get(self.query.split, "")
        fresh = self.freshness.refreshed_at
        return [
            table.title,
            self.query.place,
            f"Period: {self.query.period.label}" + (f" · split by {split.lower()}" if self.query.split else ""),
            f"Figures as of {timezone.localtime(fresh):%Y-%m-%d %H:%M %Z}" if fresh else "Figures not computed yet",
        ]


def _refresh_minutes() -> int | None:
    entry = settings.CELERY_BEAT_SCHEDULE.get(REFRESH_SCHEDULE)
    schedule = entry and entry.get("schedule")
    return round(schedule / 60) if isinstance(schedule, int | float) else None


def freshness_for(query: DashboardQuery) -> Freshness:
    refreshed = dict(
        DistrictRefresh.objects.filter(district_id__in=query.district_ids, refreshed_at__isnull=False).values_list(
            "district_id", "refreshed_at"
        )
    )
    never = [d for d in query.districts if d.pk not in refreshed]
    return Freshness(
        refreshed_at=min(refreshed.values()) if refreshed else None, never=never, every_minutes=_refresh_minutes()
    )


# --- building ------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, query: DashboardQuery):
        self.q = query
        self.split = query.split
        self.split_label = dict(Split.CHOICES).get(query.split, "")
        self._names: dict[int, str] = {}
        self._households_url: str | None = None
        self._group_suffixes: dict[object, str] = {}
        running = (
            ProgrammeDistrict.objects.filter(district_id__in=query.district_ids)
            .select_related("programme", "programme__agency")
            .order_by("programme__name", "district__name")
        )
        self.coverage_rows = list(running)
        self.programmes: dict[int, Programme] = {}
        for row in self.coverage_rows:
            self.programmes.setdefault(row.programme_id, row.programme)
        self.agencies: dict[int, Agency] = {p.agency_id: p.agency for p in self.programmes.values()}

    # -- links and labels --

    def figure_url(self, figure: FigureRef) -> str:
        """The address of the households behind `figure` for the whole: a split's part adds its `group`.
        A table's column links to the same figure row after row: its address is built once, and each row
        adds its programme, month and part to it (a busy table has thousands of links)."""
        if self._households_url is None:
            self._households_url = f"{reverse('dashboard:households')}?{urlencode(self.q.params())}&"
        return self._households_url + _query(figure.params())

    def group_suffix(self, part) -> str:
        """What a link adds for one part of the split ("" for the whole)."""
        suffix = self._group_suffixes.get(part)
        if suffix is None:
            group = group_param(self.split, part)
            suffix = self._group_suffixes[part] = f"&{_query([('group', group)])}" if group else ""
        return suffix

    def href(self, figure: FigureRef, part=TOTAL) -> str:
        return self.figure_url(figure) + self.group_suffix(part)

    def _programme(self, programme_id: int) -> Programme:
        if programme_id not in self.programmes:
            # A programme that has left these districts still has its history here.
            for programme in Programme.objects.filter(pk=programme_id).select_related("agency"):
                self.programmes[programme.pk] = programme
                self.agencies.setdefault(programme.agency_id, programme.agency)
        return self.programmes[programme_id]

    def _agency(self, agency_id: int) -> Agency:
        if agency_id not in self.agencies:
            self.agencies.update({a.pk: a for a in Agency.objects.filter(pk=agency_id)})
        return self.agencies[agency_id]

    def part_label(self, part) -> str:
        if part == TOTAL:
            return "All"
        if self.split == Split.FEMALE_HEADED:
            return "Female-headed" if part else "Not female-headed"
        if self.split in (Split.WARD, Split.DISTRICT):
            if part is None:
                return "Ward not known"
            return self._location_name(part)
        return Group(part).label

    def _location_name(self, pk: int) -> str:
        if not self._names:
            # One query for every name a split can need: the districts and their wards.
            self._names = {d.pk: d.name for d in self.q.districts}
            wards = Location.objects.filter(level=LocationLevel.WARD, parent_id__in=self.q.district_ids)
            self._names.update(dict(wards.values_list("pk", "name")))
        return self._names.get(pk, "—")

    def parts(self, by_part) -> list:
        """The whole first, then the parts of the split in their natural order."""
        if not self.split:
            return [TOTAL]
        parts = [p for p in by_part if p != TOTAL]
        if self.split in Split.GROUPS:
            order = list(Group.values)
            parts.sort(key=order.index)
        elif self.split == Split.FEMALE_HEADED:
            parts.sort(key=lambda p: not p)
        else:
            parts.sort(key=lambda p: (p is None, self.part_label(p)))
        return [TOTAL, *parts]

    def columns(self, leading: list[Column], measures: list[Column]) -> list[Column]:
        # A table with no key of its own still starts with a label: "All", or the split's parts.
        split = [Column("part", self.split_label if self.split else "", TEXT)] if self.split or not leading else []
        return [*leading, *split, *measures]

    def leading(self, values: list, part) -> list:
        if self.split:
            return [*values, self.part_label(part)]
        return values if values else ["All households"]

    def links(self, at: int, part, suffix: str, prefixes: dict[int, str]) -> dict[int, str]:
        """A row's links: each column's prebuilt address, the row's own keys and its part of the split."""
        group = self.group_suffix(part)
        return {at + column: prefix + suffix + group for column, prefix in prefixes.items()}

    # -- trends --

    def trend(
        self,
        key: str,
        title: str,
        lines: list[tuple[str, MonthCounts, FigureRef | None]],
        *,
        kind: str = "line",
        stacked: bool = False,
        note: str = "",
        stock: bool = False,
    ) -> Chart:
        """A monthly trend of counts. `lines` are (label, {month: {part: count}}, the figure each month's
        count links to). With a split, the first line is drawn for the whole and each part of the split."""
        months = self.q.period.months
        labels = [f"{m:%b %Y}" for m in months]
        if self.split:
            label, counts, link = lines[0]
            parts = set()
            for by_part in counts.values():
                parts |= set(by_part)
            series = [(self.part_label(p), counts, link, p) for p in self.parts(dict.fromkeys(parts or {TOTAL}))]
            stacked = False
        else:
            series = [(label, counts, link, TOTAL) for label, counts, link in lines]
        table = Table(
            key=key,
            title=title,
            columns=[Column("month", "Month", TEXT), *(Column(f"series_{i}", s[0]) for i, s in enumerate(series))],
            note=note,
        )
        # A stock has no figure for a month without a snapshot (an empty point, not a zero); a flow has zero.
        data = [
            [(counts.get(m, {}).get(part) or 0) if not stock or m in counts else None for m in months]
            for _, counts, _, part in series
        ]
        prefixes = [
            (self.figure_url(link), self.group_suffix(part)) if link is not None else None
            for _, _, link, part in series
        ]
        for index, month in enumerate(months):
            hrefs = {
                column: f"{prefix[0]}&month={month:%Y-%m}{prefix[1]}"
                for column, prefix in enumerate(prefixes, start=1)
                if prefix is not None and data[column - 1][index]
            }
            table.add([labels[index], *(values[index] for values in data)], hrefs=hrefs)
        return Chart(
            key=key,
            title=title,
            kind=kind,
            labels=labels,
            series=[{"label": s[0], "data": values} for s, values in zip(series, data, strict=True)],
            table=table,
            stacked=stacked,
        )

    # -- the sections --

    def build(self) -> Dashboard:
        registry, headlines = self.registry()
        coverage, coverage_indicators = self.coverage()
        referrals, referral_indicators = self.referrals()
        payments, payment_indicators = self.payments()
        grievances = self.grievances()
        return Dashboard(
            query=self.q,
            freshness=freshness_for(self.q),
            headlines=headlines,
            indicators=[*coverage_indicators, *referral_indicators, *payment_indicators],
            sections=[registry, coverage, referrals, payments, grievances],
        )

    def registry(self) -> tuple[Section, list[Headline]]:
        q = self.q
        stock = tally_figures(q, Subject.HOUSEHOLDS, months="snapshot")
        kinds = tally_figures(q, Subject.HOUSEHOLDS, keys=("female_headed",), months="snapshot", split=False)
        disabled = _group_whole(q, Subject.HOUSEHOLDS, Group.DISABILITY)
        registered = tally_pivot(q, Subject.REGISTRATIONS, keys=("month",), measures=(Measure("registered"),))
        everyone = whole(stock)
        female_headed = whole(kinds, (True,))
        in_period = sum(_get(by_part.get(TOTAL), "registered") for by_part in registered.values())
        stock_ref = FigureRef(subject=Subject.HOUSEHOLDS)
        registered_ref = FigureRef(subject=Subject.REGISTRATIONS)
        headlines = [
            Headline("Households registered", everyone.count, self.href(stock_ref), "active, at the end of the period"),
            Headline("People in them", everyone.people),
            Headline(
                "Female-headed households",
                female_headed.count,
                f"{self.href(stock_ref)}&group=female_headed%3Ayes",
                _share(female_headed.count, everyone.count),
            ),
            Headline(
                "Households with a person with a disability",
                disabled.count,
                f"{self.href(stock_ref)}&group=disability",
                f"{disabled.people:,} people with a disability",
            ),
            Headline("Registered in the period", in_period, self.href(registered_ref), q.period.label),
        ]
        table = Table(
            key="households",
            title="Registered households and people",
            columns=self.columns([], [Column("households", "Households"), Column("people", "People")]),
            note=_group_note(self.split),
        )
        by_part = stock.get((), {TOTAL: Figure()})
        for part in self.parts(by_part):
            figure = by_part.get(part) or Figure()
            table.add(
                self.leading([], part) + [figure.count, figure.people],
                hrefs={len(self.leading([], part)): self.href(stock_ref, part)},
                is_part=part != TOTAL,
            )
        chart = self.trend(
            "registrations_by_month",
            "Households registered, by month",
            [("Households registered", _month_counts(registered, "registered"), registered_ref)],
            kind="bar",
        )
        section = Section(
            key="registry",
            title="Registered households",
            lead="Households registered and still active at the end of the period, and the people living in them.",
            tables=[table],
            charts=[chart],
        )
        return section, headlines

    def coverage(self) -> tuple[Section, list[IndicatorValue]]:
        q = self.q
        by_programme = tally_pivot(
            q,
            Subject.COVERAGE,
            keys=("programme_id",),
            measures=tuple(Measure(state, where=Q(state=state)) for state in COVERAGE_STATES),
            months="snapshot",
            where=Q(programme__isnull=False) & ~Q(state=COMMITTED),
        )
        any_states = (ELIGIBLE_ANY, GAP_ANY, ENROLLED_ANY, ENROLLED_TWO_PLUS)
        across = tally_pivot(
            q,
            Subject.COVERAGE,
            measures=tuple(Measure(state, where=Q(state=state)) for state in any_states),
            months="snapshot",
            where=Q(programme__isnull=True),
        ).get((), {})
        trend_states = (GAP_ANY, ELIGIBLE_ANY, ENROLLED_ANY)
        trend = tally_pivot(
            q,
            Subject.COVERAGE,
            keys=("month",),
            measures=tuple(Measure(state, where=Q(state=state)) for state in trend_states),
            where=Q(programme__isnull=True, state__in=trend_states),
        )
        committed = _committed(q)
        programme_ids = list(dict.fromkeys([*self.programmes, *(key[0] for key in by_programme)]))
        programme_ids.sort(key=lambda pk: self._programme(pk).name)

        table = Table(
            key="coverage",
            title="Eligible, enrolled and the gap, by programme",
            columns=self.columns(
                [Column("programme", "Programme", TEXT)],
                [
                    Column("eligible", "Eligible"),
                    Column("needs_information", "Needs information"),
                    Column("enrolled", "Enrolled"),
                    Column("gap", "Gap: eligible, not enrolled"),
                    Column("coverage_rate", "Coverage rate", PERCENT),
                    Column("gap_rate", "Gap rate", PERCENT),
                ],
            ),
            note="Households, as at the end of the period. Enrolled: holding a place (approved, active or "
            "suspended), eligible or not. " + _group_note(self.split),
        )
        prefixes = {
            i: self.figure_url(FigureRef(subject=Subject.COVERAGE, state=state))
            for i, state in enumerate(COVERAGE_STATES)
        }
        total_eligible = total_gap = 0
        for programme_id in programme_ids:
            programme = self._programme(programme_id)
            by_part = by_programme.get((programme_id,), {})
            for part in self.parts(by_part or {TOTAL: None}):
                sums = by_part.get(part)
                counts = [_get(sums, state) for state in COVERAGE_STATES]
                eligible, gap = counts[0], counts[3]
                if part == TOTAL:
                    total_eligible += eligible
                    total_gap += gap
                lead = self.leading([programme.name], part)
                table.add(
                    lead
                    + counts
                    + [ind.coverage_rate(eligible=eligible, gap=gap), ind.gap_rate(eligible=eligible, gap=gap)],
                    hrefs=self.links(len(lead), part, f"&programme={programme_id}", prefixes),
                    is_part=part != TOTAL,
                )

        places = Table(
            key="capacity",
            title="Coverage against capacity and budget",
            columns=[
                Column("programme", "Programme", TEXT),
                Column("capacity", "Capacity (places)"),
                Column("places", "Places held"),
                Column("places_used", "Places used", PERCENT),
                Column("budget", "Yearly budget", MONEY),
                Column("committed", "Committed a year", MONEY),
                Column("budget_used", "Budget used", PERCENT),
            ],
            note="Set for the whole district: the ward filter and the split do not apply. Committed a year: the "
            "places' current amounts times the programme's payments a year. Empty: no limit set.",
        )
        ceilings: dict[int, dict] = {}
        for row in self.coverage_rows:
            ceiling = ceilings.setdefault(row.programme_id, {"capacity": 0, "budget": Decimal("0")})
            ceiling["capacity"] = (
                None if row.capacity is None or ceiling["capacity"] is None else ceiling["capacity"] + row.capacity
            )
            ceiling["budget"] = (
                None if row.budget is None or ceiling["budget"] is None else ceiling["budget"] + row.budget
            )
        for programme_id in programme_ids:
            programme = self._programme(programme_id)
            ceiling = ceilings.get(programme_id, {"capacity": None, "budget": None})
            held = committed.get(programme_id) or Figure()
            yearly = (held.amount or Decimal("0")) * PAYMENTS_PER_YEAR.get(programme.frequency, 12)
            places.add(
                [
                    programme.name,
                    ceiling["capacity"],
                    held.count,
                    ind.percent(held.count, ceiling["capacity"]) if ceiling["capacity"] else None,
                    ceiling["budget"],
                    yearly.quantize(Decimal("0.01")) if held.amount is not None else None,
                    ind.percent(yearly, ceiling["budget"]) if ceiling["budget"] else None,
                ],
                currency=programme.currency,
            )

        any_table = Table(
            key="across_programmes",
            title="Across programmes",
            columns=self.columns(
                [],
                [
                    Column("eligible_any", "Eligible for at least one"),
                    Column("gap_any", "In the gap of at least one"),
                    Column("enrolled_any", "Enrolled in at least one"),
                    Column("enrolled_two_plus", "Enrolled in two or more"),
                    Column("complementary_share", "Share with two or more", PERCENT),
                ],
            ),
            note=_group_note(self.split),
        )
        any_prefixes = {
            i: self.figure_url(FigureRef(subject=Subject.COVERAGE, state=state)) for i, state in enumerate(any_states)
        }
        for part in self.parts(across or {TOTAL: None}):
            counts = [_get(across.get(part), state) for state in any_states]
            lead = self.leading([], part)
            any_table.add(
                lead + counts + [ind.complementary_share(two_or_more=counts[3], one_or_more=counts[2])],
                hrefs=self.links(len(lead), part, "", any_prefixes),
                is_part=part != TOTAL,
            )

        chart = self.trend(
            "coverage_by_month",
            "Households eligible, enrolled and in the gap, month by month",
            [
                (label, _month_counts(trend, state), FigureRef(subject=Subject.COVERAGE, state=state))
                for label, state in (
                    ("In the gap of a programme", GAP_ANY),
                    ("Eligible for a programme", ELIGIBLE_ANY),
                    ("Enrolled in a programme", ENROLLED_ANY),
                )
            ],
            note="Stocks: the last refresh of each month stands for it; months before the first refresh are empty. "
            "The households behind a month's figure are listed as they are now.",
            stock=True,
        )

        two_plus = _get(across.get(TOTAL), ENROLLED_TWO_PLUS)
        enrolled_any = _get(across.get(TOTAL), ENROLLED_ANY)
        indicators = [
            IndicatorValue(
                ind.COVERAGE_RATE,
                ind.coverage_rate(eligible=total_eligible, gap=total_gap),
                f"{total_eligible - total_gap:,} of {total_eligible:,} eligible household-programme pairs",
            ),
            IndicatorValue(
                ind.GAP_RATE,
                ind.gap_rate(eligible=total_eligible, gap=total_gap),
                f"{total_gap:,} eligible, not enrolled",
                self.href(FigureRef(subject=Subject.COVERAGE, state=GAP_ANY)),
            ),
            IndicatorValue(
                ind.COMPLEMENTARY_SHARE,
                ind.complementary_share(two_or_more=two_plus, one_or_more=enrolled_any),
                f"{two_plus:,} of {enrolled_any:,} enrolled households",
                self.href(FigureRef(subject=Subject.COVERAGE, state=ENROLLED_TWO_PLUS)),
            ),
        ]
        section = Section(
            key="coverage",
            title="Programmes: who is covered, who falls through the gaps",
            lead="For each programme running here: households eligible, enrolled, and eligible but not enrolled.",
            tables=[table, places, any_table],
            charts=[chart],
        )
        return section, indicators

    def referrals(self) -> tuple[Section, list[IndicatorValue]]:
        q = self.q
        # Each row of the tables is one grouped row of the database, its columns the states added up there.
        rows = tally_pivot(q, Subject.REFERRALS, keys=("programme_id", "agency_id"), measures=REFERRAL_MEASURES)
        by_programme: Pivot = {}
        by_agency: Pivot = {}
        for (programme_id, agency_id), by_part in rows.items():
            for into in (by_programme.setdefault(programme_id, {}), by_agency.setdefault(agency_id, {})):
                for part, sums in by_part.items():
                    add_measures(into.setdefault(part, {}), sums)
        medians_programme, medians_agency, median_all = tally_medians(
            q, Subject.ACCEPTANCES, groupings=(("programme_id",), ("agency_id",), ())
        )
        by_month = tally_pivot(
            q,
            (Subject.REFERRALS, Subject.ACCEPTANCES),
            keys=("month",),
            measures=(
                Measure("sent", where=Q(subject=Subject.REFERRALS, category=SENT)),
                Measure("accepted", where=Q(subject=Subject.ACCEPTANCES)),
            ),
            # Suggestions never sent are not in the trend: a part with only those has no line.
            where=Q(subject=Subject.ACCEPTANCES) | Q(category=SENT),
        )

        table = Table(
            key="referrals",
            title="Referrals sent in the period, by programme, as they stand now",
            columns=self.columns(
                [Column("programme", "Programme", TEXT)],
                [
                    Column("sent", "Sent"),
                    Column("awaiting", "Awaiting the agency"),
                    Column("accepted", "Accepted"),
                    Column("completed", "Completed"),
                    Column("rejected", "Rejected"),
                    Column("closed", "Expired or cancelled"),
                    Column("overdue", "Overdue"),
                    Column("median_days", "Median days to acceptance", DAYS),
                    Column("completion_rate", "Completion rate", PERCENT),
                    Column("suggested", "Suggestions not sent"),
                ],
            ),
            note="Awaiting the agency: sent or received, not yet accepted or rejected. Median days to acceptance: "
            "over referrals accepted in the period. " + _group_note(self.split, counts="referrals"),
        )
        prefixes = {
            0: FigureRef(subject=Subject.REFERRALS, category=SENT),
            1: FigureRef(subject=Subject.REFERRALS, state="sent,received", category=SENT),
            2: FigureRef(subject=Subject.REFERRALS, state=R.ACCEPTED, category=SENT),
            3: FigureRef(subject=Subject.REFERRALS, state=R.COMPLETED, category=SENT),
            4: FigureRef(subject=Subject.REFERRALS, state=R.REJECTED, category=SENT),
            5: FigureRef(subject=Subject.REFERRALS, state="expired,cancelled", category=SENT),
            6: FigureRef(subject=Subject.REFERRALS, overdue=True),
            7: FigureRef(subject=Subject.ACCEPTANCES),
            9: FigureRef(subject=Subject.REFERRALS, state=R.DRAFT, category=NOT_SENT),
        }
        # The programme goes where the figure's own keys would: before its states and category.
        programme_links = {column: self.figure_url(figure) for column, figure in prefixes.items()}
        programme_ids = sorted(
            set(by_programme) | {key[0] for key in medians_programme}, key=lambda pk: self._programme(pk).name
        )
        for programme_id in programme_ids:
            by_part = by_programme.get(programme_id, {})
            medians = medians_programme.get((programme_id,), {})
            for part in self.parts({**by_part, **medians} or {TOTAL: None}):
                sums = by_part.get(part)
                sent, completed = _get(sums, "sent"), _get(sums, "completed")
                values = [
                    sent,
                    _get(sums, "awaiting"),
                    _get(sums, "accepted"),
                    completed,
                    _get(sums, "rejected"),
                    _get(sums, "closed"),
                    _get(sums, "overdue"),
                    medians.get(part),
                    ind.referral_completion_rate(completed=completed, sent=sent),
                    _get(sums, "suggested"),
                ]
                lead = self.leading([self._programme(programme_id).name], part)
                table.add(
                    lead + values,
                    hrefs=self.links(len(lead), part, f"&programme={programme_id}", programme_links),
                    is_part=part != TOTAL,
                )

        agencies = Table(
            key="referrals_by_agency",
            title="Where referrals are stuck: by agency",
            columns=self.columns(
                [Column("agency", "Agency", TEXT)],
                [
                    Column("awaiting", "Awaiting the agency"),
                    Column("accepted", "Accepted, not completed"),
                    Column("overdue", "Overdue"),
                    Column("median_days", "Median days to acceptance", DAYS),
                ],
            ),
            note="Referrals sent in the period that are still open, by the agency that has them.",
        )
        agency_links = {
            0: FigureRef(subject=Subject.REFERRALS, state="sent,received", category=SENT),
            1: FigureRef(subject=Subject.REFERRALS, state=R.ACCEPTED, category=SENT),
            2: FigureRef(subject=Subject.REFERRALS, overdue=True, category=SENT),
        }
        agency_links = {column: self.figure_url(figure) for column, figure in agency_links.items()}
        agency_ids = sorted(
            (a for a, by_part in by_agency.items() if _get(by_part.get(TOTAL), "sent")),
            key=lambda pk: self._agency(pk).name,
        )
        for agency_id in agency_ids:
            by_part = by_agency[agency_id]
            medians = medians_agency.get((agency_id,), {})
            for part in self.parts(by_part):
                sums = by_part.get(part)
                lead = self.leading([self._agency(agency_id).name], part)
                agencies.add(
                    lead + [_get(sums, "awaiting"), _get(sums, "accepted"), _get(sums, "overdue"), medians.get(part)],
                    hrefs=self.links(len(lead), part, f"&agency={agency_id}", agency_links),
                    is_part=part != TOTAL,
                )

        chart = self.trend(
            "referrals_by_month",
            "Referrals sent and accepted, by month",
            [
                ("Sent", _month_counts(by_month, "sent"), FigureRef(subject=Subject.REFERRALS, category=SENT)),
                ("Accepted", _month_counts(by_month, "accepted"), FigureRef(subject=Subject.ACCEPTANCES)),
            ],
        )

        sent_total = sum(_get(by_part.get(TOTAL), "sent") for by_part in by_programme.values())
        completed_total = sum(_get(by_part.get(TOTAL), "completed") for by_part in by_programme.values())
        accepted_total = sum(_get(by_part.get(TOTAL), "accepted") for by_part in by_month.values())
        indicators = [
            IndicatorValue(
                ind.REFERRAL_COMPLETION_RATE,
                ind.referral_completion_rate(completed=completed_total, sent=sent_total),
                f"{completed_total:,} of {sent_total:,} referrals sent",
                self.href(FigureRef(subject=Subject.REFERRALS, state=R.COMPLETED, category=SENT)),
            ),
            IndicatorValue(
                ind.MEDIAN_REFERRAL_TIME,
                median_all.get((), {}).get(TOTAL),
                f"over {accepted_total:,} referrals accepted",
                self.href(FigureRef(subject=Subject.ACCEPTANCES)),
            ),
        ]
        section = Section(
            key="referrals",
            title="Referrals: where delivery is stuck",
            lead="Referrals sent in the period to the programmes, and where they are now.",
            tables=[table, agencies],
            charts=[chart],
        )
        return section, indicators

    def payments(self) -> tuple[Section, list[IndicatorValue]]:
        q = self.q
        # One grouped row per cycle and part, its states added up by the database; the medians likewise.
        rows = tally_pivot(q, Subject.PAYMENTS, keys=("programme_id", "month"), measures=PAYMENT_MEASURES)
        by_programme: dict[int, dict] = {}
        cycles: dict[int, list[datetime.date]] = {}
        by_month: dict[datetime.date, dict] = {}
        for (programme_id, month), by_part in rows.items():
            cycles.setdefault(programme_id, []).append(month)
            into = by_programme.setdefault(programme_id, {})
            month_parts = by_month.setdefault(month, {})
            for part, sums in by_part.items():
                add_measures(into.setdefault(part, {}), sums)
                add_measures(month_parts.setdefault(part, {}), sums)
        programme_ids = sorted(cycles, key=lambda pk: self._programme(pk).name)
        shown = {pk: sorted(months) if q.all_cycles else sorted(months)[-PAGE_CYCLES:] for pk, months in cycles.items()}
        left_out = sum(len(cycles[pk]) - len(months) for pk, months in shown.items())
        medians_cycle, medians_programme = tally_medians(
            q,
            Subject.PAYMENTS,
            groupings=(("programme_id", "month"), ("programme_id",)),
            where=Q(state=P.PAID),
            only=None if q.all_cycles else {0: [(pk, month) for pk, months in shown.items() for month in months]},
        )
        note = "Planned: every payment, reissues of earlier failures included. On time: paid by the last day of the "
        note += "cycle's period; days are counted from its first. " + _group_note(self.split, counts="payments")

        programmes = Table(
            key="payments_by_programme",
            title="Payments over the period, by programme",
            columns=self.columns([Column("programme", "Programme", TEXT)], PAYMENT_COLUMNS),
            note="Every cycle whose period starts in the period, added up. " + note,
        )
        links = {column: self.figure_url(figure) for column, figure in PAYMENT_LINKS.items()}
        for programme_id in programme_ids:
            programme = self._programme(programme_id)
            by_part = by_programme[programme_id]
            medians = medians_programme.get((programme_id,), {})
            for part in self.parts(by_part):
                lead = self.leading([programme.name], part)
                programmes.add(
                    lead + _payment_values(by_part.get(part), medians.get(part)),
                    hrefs=self.links(len(lead), part, f"&programme={programme_id}", links),
                    currency=programme.currency,
                    is_part=part != TOTAL,
                )

        table = Table(
            key="payments",
            title="Payments per cycle",
            columns=self.columns(
                [Column("programme", "Programme", TEXT), Column("cycle", "Cycle", TEXT)], PAYMENT_COLUMNS
            ),
            note="Cycles whose period starts in the period. " + note,
        )
        for programme_id in programme_ids:
            programme = self._programme(programme_id)
            for month in shown[programme_id]:
                by_part = rows[(programme_id, month)]
                medians = medians_cycle.get((programme_id, month), {})
                cycle = f"{month:%b %Y}"
                row_keys = f"&programme={programme_id}&month={month:%Y-%m}"
                for part in self.parts(by_part):
                    lead = self.leading([programme.name, cycle], part)
                    table.add(
                        lead + _payment_values(by_part.get(part), medians.get(part)),
                        hrefs=self.links(len(lead), part, row_keys, links),
                        currency=programme.currency,
                        is_part=part != TOTAL,
                    )
        if left_out:
            # A busy district's year split by ward is hundreds of rows of cycles: the page shows the recent
            # ones, the chart the months, the table above the programmes; the rest is a click or an export away.
            table.note = f"Each programme's last {PAGE_CYCLES} cycles in the period. " + table.note
            table.more_href = (
                f"{reverse('dashboard:dashboard')}?{urlencode([*q.params(), ('cycles', ALL_CYCLES)])}#table-payments"
            )
            table.more_label = (
                f"Show every cycle of the period ({left_out:,} earlier cycles left out here; the export has them all)"
            )

        chart = self.trend(
            "payments_by_month",
            "Payments paid, failed and unclaimed, by month of the cycle",
            [
                ("Paid", _month_counts_of(by_month, "paid"), FigureRef(subject=Subject.PAYMENTS, state=P.PAID)),
                (
                    "Failed or unclaimed",
                    _month_counts_of(by_month, "failed", "unclaimed"),
                    FigureRef(subject=Subject.PAYMENTS, state="failed,unclaimed"),
                ),
            ],
            kind="bar",
            stacked=True,
        )
        paid_all = failed_all = unclaimed_all = 0
        for by_part in by_programme.values():
            sums = by_part.get(TOTAL)
            paid_all += _get(sums, "paid")
            failed_all += _get(sums, "failed")
            unclaimed_all += _get(sums, "unclaimed")
        indicators = [
            IndicatorValue(
                ind.PAYMENT_SUCCESS_RATE,
                ind.payment_success_rate(paid=paid_all, failed=failed_all, unclaimed=unclaimed_all),
                f"{paid_all:,} paid of {paid_all + failed_all + unclaimed_all:,} with an outcome",
                self.href(FigureRef(subject=Subject.PAYMENTS, state="failed,unclaimed")),
            )
        ]
        section = Section(
            key="payments",
            title="Payments: planned, paid, late",
            lead="Every payment cycle of the period: what was planned, what reached the households, and when.",
            tables=[programmes, table],
            charts=[chart],
        )
        return section, indicators

    def grievances(self) -> Section:
        q = self.q
        by_category = tally_pivot(
            q, (Subject.GRIEVANCES, Subject.RESOLUTIONS), keys=("category",), measures=GRIEVANCE_MEASURES
        )
        (medians,) = tally_medians(q, Subject.RESOLUTIONS, groupings=(("category",),))
        by_month = tally_pivot(
            q,
            (Subject.GRIEVANCES, Subject.RESOLUTIONS),
            keys=("month",),
            measures=(
                Measure("received", where=Q(subject=Subject.GRIEVANCES)),
                Measure("resolved", where=Q(subject=Subject.RESOLUTIONS)),
            ),
        )
        labels = dict(GrievanceCategory.choices)
        categories = [c for c in GrievanceCategory.values if (c,) in by_category]
        if (SENSITIVE,) in by_category:
            categories.append(SENSITIVE)
        table = Table(
            key="grievances",
            title="Grievances by category",
            columns=self.columns(
                [Column("category", "Category", TEXT)],
                [
                    Column("received", "Received"),
                    Column("open", "Still open"),
                    Column("overdue", "Overdue"),
                    Column("resolved", "Resolved in the period"),
                    Column("median_days", "Median days to resolve", DAYS),
                    Column("on_time", "Resolved on time", PERCENT),
                ],
            ),
            note="Received and resolved in the period. Sensitive grievances are counted and nothing more: not by "
            "category, ward or group, and never listed. " + _group_note(self.split, counts="grievances"),
        )
        links = {
            0: self.figure_url(FigureRef(subject=Subject.GRIEVANCES)),
            1: self.figure_url(FigureRef(subject=Subject.GRIEVANCES, state=",".join(GRIEVANCE_OPEN))),
            2: self.figure_url(FigureRef(subject=Subject.GRIEVANCES, overdue=True)),
            3: self.figure_url(FigureRef(subject=Subject.RESOLUTIONS)),
        }
        for category in categories:
            by_part = by_category[(category,)]
            days = medians.get((category,), {})
            for part in self.parts(by_part):
                sums = by_part.get(part)
                resolved = _get(sums, "resolved")
                lead = self.leading(
                    ["Sensitive (details withheld)" if category == SENSITIVE else labels.get(category, category)], part
                )
                table.add(
                    lead
                    + [
                        _get(sums, "received"),
                        _get(sums, "open"),
                        _get(sums, "overdue"),
                        resolved,
                        days.get(part),
                        ind.percent(_get(sums, "timely"), resolved),
                    ],
                    hrefs=self.links(len(lead), part, f"&category={category}", links) if category != SENSITIVE else {},
                    is_part=part != TOTAL,
                )
        chart = self.trend(
            "grievances_by_month",
            "Grievances received and resolved, by month",
            [
                ("Received", _month_counts(by_month, "received"), FigureRef(subject=Subject.GRIEVANCES)),
                ("Resolved", _month_counts(by_month, "resolved"), FigureRef(subject=Subject.RESOLUTIONS)),
            ],
        )
        return Section(
            key="grievances",
            title="Grievances",
            lead="Complaints and appeals received in the period, how many are still open or overdue, and how long "
            "they take to resolve.",
            tables=[table],
            charts=[chart],
        )


COVERAGE_STATES = (ELIGIBLE, NEEDS_INFORMATION, ENROLLED, GAP)

# The payments table shows each programme's last cycles of the period: a quarter of a monthly programme,
# what a committee meeting looks back on. A busy district's year split by ward was 840 rows of cycles
# (ten monthly programmes, six wards and the whole) and took most of the page's time; every cycle is a
# click away (`?cycles=all`) and always in the export, the months in the chart, the period by programme
# in the table above it.
PAGE_CYCLES = 3

REFERRAL_MEASURES = (
    Measure("sent", where=Q(category=SENT)),
    Measure("awaiting", where=Q(category=SENT, state__in=(R.SENT, R.RECEIVED))),
    Measure("accepted", where=Q(category=SENT, state=R.ACCEPTED)),
    Measure("completed", where=Q(category=SENT, state=R.COMPLETED)),
    Measure("rejected", where=Q(category=SENT, state=R.REJECTED)),
    Measure("closed", where=Q(category=SENT, state__in=(R.EXPIRED, R.CANCELLED))),
    Measure("overdue", "overdue"),
    Measure("suggested", where=Q(category=NOT_SENT, state=R.DRAFT)),
)

PAYMENT_MEASURES = (
    Measure("planned"),
    Measure("planned_amount", "amount"),
    Measure("paid", where=Q(state=P.PAID)),
    Measure("paid_amount", "paid_amount", Q(state=P.PAID)),
    Measure("timely", "timely", Q(state=P.PAID)),
    Measure("failed", where=Q(state=P.FAILED)),
    Measure("unclaimed", where=Q(state=P.UNCLAIMED)),
    Measure("pending", where=Q(state=P.PENDING)),
    Measure("reissues", where=Q(category=REISSUE)),
)
PAYMENT_COLUMNS = [
    Column("planned", "Planned"),
    Column("planned_amount", "Planned amount", MONEY),
    Column("paid", "Paid"),
    Column("paid_amount", "Paid amount", MONEY),
    Column("failed", "Failed"),
    Column("unclaimed", "Unclaimed"),
    Column("pending", "Pending"),
    Column("reissues", "Reissues"),
    Column("success_rate", "Success rate", PERCENT),
    Column("on_time", "Paid on time", PERCENT),
    Column("median_days", "Median days to payment", DAYS),
]
# The figure behind each counted column of PAYMENT_COLUMNS (by position); a row adds its programme and cycle.
PAYMENT_LINKS = {
    0: FigureRef(subject=Subject.PAYMENTS),
    2: FigureRef(subject=Subject.PAYMENTS, state=P.PAID),
    4: FigureRef(subject=Subject.PAYMENTS, state=P.FAILED),
    5: FigureRef(subject=Subject.PAYMENTS, state=P.UNCLAIMED),
    6: FigureRef(subject=Subject.PAYMENTS, state=P.PENDING),
    7: FigureRef(subject=Subject.PAYMENTS, category=REISSUE),
}

GRIEVANCE_MEASURES = (
    Measure("received", where=Q(subject=Subject.GRIEVANCES)),
    Measure("open", where=Q(subject=Subject.GRIEVANCES, state__in=GRIEVANCE_OPEN)),
    Measure("overdue", "overdue", Q(subject=Subject.GRIEVANCES)),
    Measure("resolved", where=Q(subject=Subject.RESOLUTIONS)),
    Measure("timely", "timely", Q(subject=Subject.RESOLUTIONS)),
)

# What a figure's link carries is codes, numbers and months: written as they are, they need no quoting
# (",", ":" and "-" are allowed in a query string). A busy page has thousands of links.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-,:")


def _query(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{key}={value if _PLAIN.issuperset(value) else quote_plus(value)}" for key, value in params)


def _get(sums: dict | None, measure: str) -> int:
    """A count of a pivoted row (0 when no row had it)."""
    return (sums.get(measure) or 0) if sums else 0


def _payment_values(sums: dict | None, median: float | None) -> list:
    paid, failed, unclaimed = _get(sums, "paid"), _get(sums, "failed"), _get(sums, "unclaimed")
    sums = sums or {}
    return [
        _get(sums, "planned"),
        sums.get("planned_amount"),
        paid,
        sums.get("paid_amount") if paid else None,
        failed,
        unclaimed,
        _get(sums, "pending"),
        _get(sums, "reissues"),
        ind.payment_success_rate(paid=paid, failed=failed, unclaimed=unclaimed),
        ind.percent(_get(sums, "timely"), paid),
        median,
    ]


def _month_counts(pivot: Pivot, measure: str) -> MonthCounts:
    """One measure of a pivot keyed by month, as a trend's line."""
    return {key[0]: {part: _get(sums, measure) for part, sums in by_part.items()} for key, by_part in pivot.items()}


def _month_counts_of(by_month: dict, *measures: str) -> MonthCounts:
    return {
        month: {part: sum(_get(sums, m) for m in measures) for part, sums in by_part.items()}
        for month, by_part in by_month.items()
    }


def _share(part: int, whole_count: int) -> str:
    share = ind.percent(part, whole_count)
    return f"{share:.1f}% of households" if share is not None else ""


def _group_note(split: str, *, counts: str = "households") -> str:
    if split not in Split.GROUPS:
        return ""
    if counts == "households":
        return (
            "By group: the households with at least one member in the group (a household can be in several), "
            "and the people in the group."
        )
    return f"By group: the {counts} of households with at least one member in the group."


def _group_whole(query: DashboardQuery, subject: str, group: str) -> Figure:
    """One group's whole (no split), e.g. the households with a person with a disability."""
    snapshots = query.snapshots()
    if not snapshots:
        return Figure()
    at = Q()
    for district_id, month in snapshots.items():
        at |= Q(district_id=district_id, month=month)
    tallies = Tally.objects.filter(at, subject=subject, group=group, whole_district=not query.ward)
    if query.ward:
        tallies = tallies.filter(ward_id=query.ward.pk)
    sums = tallies.aggregate(count=Sum("count"), people=Sum("people"))
    return Figure(count=sums["count"] or 0, people=sums["people"] or 0)


def _committed(query: DashboardQuery) -> dict[int, Figure]:
    """Places held and their amounts per programme, whole districts (capacity and budget are set per district)."""
    snapshots = query.snapshots()
    if not snapshots:
        return {}
    at = Q()
    for district_id, month in snapshots.items():
        at |= Q(district_id=district_id, month=month)
    rows = (
        Tally.objects.filter(at, subject=Subject.COVERAGE, state=COMMITTED, group="", whole_district=True)
        .order_by()
        .values("programme_id")
        .annotate(count=Sum("count"), amount=Sum("amount"))
    )
    return {row["programme_id"]: Figure(count=row["count"] or 0, amount=row["amount"]) for row in rows}


def dashboard_build(*, query: DashboardQuery) -> Dashboard:
    """The whole dashboard for `query` (already scoped: its districts are the user's)."""
    return _Builder(query).build()


__all__ = ["Chart", "Dashboard", "Headline", "IndicatorValue", "Section", "dashboard_build", "freshness_for"]
