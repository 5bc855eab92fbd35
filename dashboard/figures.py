"""The dashboard as the committee reads it: headline figures, the monitoring
indicators, and five sections (the registry, programmes' coverage and gaps,
referrals, payments, grievances), each with its tables and monthly trends.

Built from the summaries through `dashboard.selectors.tally_figures`, a
fixed number of queries whatever the number of programmes, wards or months.
Every count links to the households behind it; every table (a trend's too)
exports to CSV and Excel. The rates are the indicators' own functions.
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
    TOTAL,
    DashboardQuery,
    Figure,
    FigureRef,
    Figures,
    Split,
    group_param,
    merged,
    tally_figures,
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

    def href(self, figure: FigureRef, part=TOTAL) -> str:
        if self._households_url is None:
            self._households_url = f"{reverse('dashboard:households')}?{urlencode(self.q.params())}&"
        params = figure.params()
        group = group_param(self.split, part)
        if group:
            params.append(("group", group))
        return self._households_url + _query(params)

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

    def parts(self, by_part: dict) -> list:
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

    # -- trends --

    def trend(
        self,
        key: str,
        title: str,
        lines: list[tuple[str, Figures, FigureRef | None]],
        *,
        kind: str = "line",
        stacked: bool = False,
        note: str = "",
        stock: bool = False,
    ) -> Chart:
        """A monthly trend of counts. `lines` are (label, figures keyed by (month,), the figure each month's
        count links to). With a split, the first line is drawn for the whole and each part of the split."""
        months = self.q.period.months
        labels = [f"{m:%b %Y}" for m in months]
        if self.split:
            label, figures, link = lines[0]
            parts = set()
            for by_part in figures.values():
                parts |= set(by_part)
            series = [(self.part_label(p), figures, link, p) for p in self.parts(dict.fromkeys(parts or {TOTAL}))]
            stacked = False
        else:
            series = [(label, figures, link, TOTAL) for label, figures, link in lines]
        table = Table(
            key=key,
            title=title,
            columns=[Column("month", "Month", TEXT), *(Column(f"series_{i}", s[0]) for i, s in enumerate(series))],
            note=note,
        )
        # A stock has no figure for a month without a snapshot (an empty point, not a zero); a flow has zero.
        data = [
            [
                (figures.get((m,), {}).get(part) or Figure()).count if not stock or (m,) in figures else None
                for m in months
            ]
            for _, figures, _, part in series
        ]
        for index, month in enumerate(months):
            hrefs = {
                column: self.href(_with_month(link, month), part)
                for column, (_, _, link, part) in enumerate(series, start=1)
                if link is not None and data[column - 1][index]
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
        registered = tally_figures(q, Subject.REGISTRATIONS, keys=("month",))
        everyone = whole(stock)
        female_headed = whole(kinds, (True,))
        in_period = merged(registered, key=lambda k: ())
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
            Headline("Registered in the period", whole(in_period).count, self.href(registered_ref), q.period.label),
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
            [("Households registered", registered, registered_ref)],
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
        programme_rows = tally_figures(
            q,
            Subject.COVERAGE,
            keys=("programme_id", "state"),
            months="snapshot",
            where=Q(programme__isnull=False) & ~Q(state=COMMITTED),
        )
        across = tally_figures(q, Subject.COVERAGE, keys=("state",), months="snapshot", where=Q(programme__isnull=True))
        trend = tally_figures(
            q,
            Subject.COVERAGE,
            keys=("month", "state"),
            where=Q(programme__isnull=True, state__in=(ELIGIBLE_ANY, ENROLLED_ANY, GAP_ANY)),
        )
        committed = _committed(q)

        by_programme: dict[int, dict[str, dict]] = {}
        for (programme_id, state), by_part in programme_rows.items():
            by_programme.setdefault(programme_id, {})[state] = by_part
        programme_ids = list(dict.fromkeys([*self.programmes, *by_programme]))
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
        total_eligible = total_gap = 0
        for programme_id in programme_ids:
            programme = self._programme(programme_id)
            states = by_programme.get(programme_id, {})
            parts = set()
            for by_part in states.values():
                parts |= set(by_part)
            for part in self.parts(dict.fromkeys(parts or {TOTAL})):
                figure = {state: (states.get(state, {}).get(part) or Figure()) for state in COVERAGE_STATES}
                eligible, gap = figure[ELIGIBLE].count, figure[GAP].count
                if part == TOTAL:
                    total_eligible += eligible
                    total_gap += gap
                lead = self.leading([programme.name], part)
                at = len(lead)
                refs = {
                    at + i: self.href(FigureRef(subject=Subject.COVERAGE, state=state, programme_id=programme_id), part)
                    for i, state in enumerate(COVERAGE_STATES)
                }
                table.add(
                    lead
                    + [figure[s].count for s in COVERAGE_STATES]
                    + [ind.coverage_rate(eligible=eligible, gap=gap), ind.gap_rate(eligible=eligible, gap=gap)],
                    hrefs=refs,
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
        across_parts = set()
        for by_part in across.values():
            across_parts |= set(by_part)
        any_states = (ELIGIBLE_ANY, GAP_ANY, ENROLLED_ANY, ENROLLED_TWO_PLUS)
        for part in self.parts(dict.fromkeys(across_parts or {TOTAL})):
            counts = [(across.get((state,), {}).get(part) or Figure()).count for state in any_states]
            lead = self.leading([], part)
            any_table.add(
                lead + counts + [ind.complementary_share(two_or_more=counts[3], one_or_more=counts[2])],
                hrefs={
                    len(lead) + i: self.href(FigureRef(subject=Subject.COVERAGE, state=state), part)
                    for i, state in enumerate(any_states)
                },
                is_part=part != TOTAL,
            )

        chart = self.trend(
            "coverage_by_month",
            "Households eligible, enrolled and in the gap, month by month",
            [
                (
                    label,
                    merged(trend, key=lambda k, s=state: (k[0],) if k[1] == s else None),
                    FigureRef(subject=Subject.COVERAGE, state=state),
                )
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

        two_plus = (across.get((ENROLLED_TWO_PLUS,), {}).get(TOTAL) or Figure()).count
        enrolled_any = (across.get((ENROLLED_ANY,), {}).get(TOTAL) or Figure()).count
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
        # The tables and the trends read separately: a month in the tables' keys (or a number of
        # days in the trends') multiplies the rows to add up by twelve (or thirty).
        rows = tally_figures(q, Subject.REFERRALS, keys=("programme_id", "agency_id", "state", "category"))
        accepted = tally_figures(q, Subject.ACCEPTANCES, keys=("programme_id", "agency_id"), with_days=True)
        sent_by_month = tally_figures(q, Subject.REFERRALS, keys=("month",), where=Q(category=SENT))
        accepted_by_month = tally_figures(q, Subject.ACCEPTANCES, keys=("month",))
        by_programme = merged(rows, key=lambda k: (k[0], k[2], k[3]))
        by_agency = merged(rows, key=lambda k: (k[1], k[2], k[3]))
        accepted_programme = merged(accepted, key=lambda k: (k[0],))
        accepted_agency = merged(accepted, key=lambda k: (k[1],))

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
        programme_ids = sorted(
            {k[0] for k in by_programme} | {k[0] for k in accepted_programme}, key=lambda pk: self._programme(pk).name
        )
        for programme_id in programme_ids:
            self._referral_rows(
                table,
                label=self._programme(programme_id).name,
                figures=by_programme,
                key=programme_id,
                accepted=accepted_programme.get((programme_id,), {}),
                ref={"programme_id": programme_id},
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
        agency_ids = sorted({k[0] for k in by_agency if k[2] == SENT}, key=lambda pk: self._agency(pk).name)
        for agency_id in agency_ids:
            parts = _parts_of(by_agency, lambda k, a=agency_id: k[0] == a)
            for part in self.parts(dict.fromkeys(parts or {TOTAL})):
                awaiting = _count(by_agency, part, lambda k, a=agency_id: k[0] == a and k[1] in (R.SENT, R.RECEIVED))
                in_service = _count(by_agency, part, lambda k, a=agency_id: k[0] == a and k[1] == R.ACCEPTED)
                overdue = _count(by_agency, part, lambda k, a=agency_id: k[0] == a, measure="overdue")
                median = (accepted_agency.get((agency_id,), {}).get(part) or Figure()).median_days
                lead = self.leading([self._agency(agency_id).name], part)
                at = len(lead)
                ref = {"agency_id": agency_id, "category": SENT}
                agencies.add(
                    lead + [awaiting, in_service, overdue, median],
                    hrefs={
                        at: self.href(FigureRef(subject=Subject.REFERRALS, state="sent,received", **ref), part),
                        at + 1: self.href(FigureRef(subject=Subject.REFERRALS, state=R.ACCEPTED, **ref), part),
                        at + 2: self.href(FigureRef(subject=Subject.REFERRALS, overdue=True, **ref), part),
                    },
                    is_part=part != TOTAL,
                )

        chart = self.trend(
            "referrals_by_month",
            "Referrals sent and accepted, by month",
            [
                ("Sent", sent_by_month, FigureRef(subject=Subject.REFERRALS, category=SENT)),
                ("Accepted", accepted_by_month, FigureRef(subject=Subject.ACCEPTANCES)),
            ],
        )

        sent_total = _count(by_programme, TOTAL, lambda k: k[2] == SENT)
        completed_total = _count(by_programme, TOTAL, lambda k: k[2] == SENT and k[1] == R.COMPLETED)
        accepted_total = merged(accepted, key=lambda k: ()).get((), {}).get(TOTAL) or Figure()
        indicators = [
            IndicatorValue(
                ind.REFERRAL_COMPLETION_RATE,
                ind.referral_completion_rate(completed=completed_total, sent=sent_total),
                f"{completed_total:,} of {sent_total:,} referrals sent",
                self.href(FigureRef(subject=Subject.REFERRALS, state=R.COMPLETED, category=SENT)),
            ),
            IndicatorValue(
                ind.MEDIAN_REFERRAL_TIME,
                ind.median_referral_time(accepted_total.days or {}),
                f"over {accepted_total.count:,} referrals accepted",
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

    def _referral_rows(self, table: Table, *, label: str, figures: Figures, key, accepted: dict, ref: dict) -> None:
        parts = _parts_of(figures, lambda k: k[0] == key)
        for part in self.parts(dict.fromkeys(parts or {TOTAL})):

            def count(test, measure="count", _part=part):
                return _count(figures, _part, lambda k: k[0] == key and test(k), measure=measure)

            sent = count(lambda k: k[2] == SENT)
            completed = count(lambda k: k[2] == SENT and k[1] == R.COMPLETED)
            values = [
                sent,
                count(lambda k: k[2] == SENT and k[1] in (R.SENT, R.RECEIVED)),
                count(lambda k: k[2] == SENT and k[1] == R.ACCEPTED),
                completed,
                count(lambda k: k[2] == SENT and k[1] == R.REJECTED),
                count(lambda k: k[2] == SENT and k[1] in (R.EXPIRED, R.CANCELLED)),
                count(lambda k: True, measure="overdue"),
                (accepted.get(part) or Figure()).median_days,
                ind.referral_completion_rate(completed=completed, sent=sent),
                count(lambda k: k[2] == NOT_SENT and k[1] == R.DRAFT),
            ]
            lead = self.leading([label], part)
            at = len(lead)
            links = [
                FigureRef(subject=Subject.REFERRALS, category=SENT, **ref),
                FigureRef(subject=Subject.REFERRALS, state="sent,received", category=SENT, **ref),
                FigureRef(subject=Subject.REFERRALS, state=R.ACCEPTED, category=SENT, **ref),
                FigureRef(subject=Subject.REFERRALS, state=R.COMPLETED, category=SENT, **ref),
                FigureRef(subject=Subject.REFERRALS, state=R.REJECTED, category=SENT, **ref),
                FigureRef(subject=Subject.REFERRALS, state="expired,cancelled", category=SENT, **ref),
                FigureRef(subject=Subject.REFERRALS, overdue=True, **ref),
                FigureRef(subject=Subject.ACCEPTANCES, **ref),
            ]
            hrefs = {at + i: self.href(link, part) for i, link in enumerate(links)}
            hrefs[at + 9] = self.href(
                FigureRef(subject=Subject.REFERRALS, state=R.DRAFT, category=NOT_SENT, **ref), part
            )
            table.add(lead + values, hrefs=hrefs, is_part=part != TOTAL)

    def payments(self) -> tuple[Section, list[IndicatorValue]]:
        q = self.q
        rows = tally_figures(q, Subject.PAYMENTS, keys=("programme_id", "month", "state", "category"))
        # Days to payment only for the paid, per cycle: the histogram kept apart from the counts.
        paid_days = tally_figures(
            q, Subject.PAYMENTS, keys=("programme_id", "month"), where=Q(state=P.PAID), with_days=True
        )
        cycles = sorted({(k[0], k[1]) for k in rows}, key=lambda c: (self._programme(c[0]).name, c[1]))
        table = Table(
            key="payments",
            title="Payments per cycle",
            columns=self.columns(
                [Column("programme", "Programme", TEXT), Column("cycle", "Cycle", TEXT)],
                [
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
                ],
            ),
            note="Cycles whose period starts in the period. Planned: every payment of the cycle, reissues of "
            "earlier failures included. On time: paid by the last day of the cycle's period; days are counted "
            "from its first. " + _group_note(self.split, counts="payments"),
        )
        # Each cycle's figures by (state, category), in one pass over the rows.
        by_cycle: dict[tuple, Figures] = {}
        for (programme_id, month, state, category), by_part in rows.items():
            by_cycle.setdefault((programme_id, month), {})[(state, category)] = by_part
        paid_all = failed_all = unclaimed_all = 0
        for programme_id, month in cycles:
            programme = self._programme(programme_id)
            in_cycle = by_cycle[(programme_id, month)]
            parts = _parts_of(in_cycle, lambda k: True)
            for part in self.parts(dict.fromkeys(parts or {TOTAL})):
                planned = _sum(in_cycle, part)
                paid = _sum(in_cycle, part, lambda k: k[0] == P.PAID)
                failed = _sum(in_cycle, part, lambda k: k[0] == P.FAILED).count
                unclaimed = _sum(in_cycle, part, lambda k: k[0] == P.UNCLAIMED).count
                pending = _sum(in_cycle, part, lambda k: k[0] == P.PENDING).count
                reissues = _sum(in_cycle, part, lambda k: k[1] == REISSUE).count
                if part == TOTAL:
                    paid_all, failed_all, unclaimed_all = (
                        paid_all + paid.count,
                        failed_all + failed,
                        unclaimed_all + unclaimed,
                    )
                lead = self.leading([programme.name, f"{month:%b %Y}"], part)
                at = len(lead)
                ref = {"programme_id": programme_id, "month": month}
                table.add(
                    lead
                    + [
                        planned.count,
                        planned.amount,
                        paid.count,
                        paid.paid_amount if paid.count else None,
                        failed,
                        unclaimed,
                        pending,
                        reissues,
                        ind.payment_success_rate(paid=paid.count, failed=failed, unclaimed=unclaimed),
                        ind.percent(paid.timely, paid.count),
                        (paid_days.get((programme_id, month), {}).get(part) or Figure()).median_days,
                    ],
                    hrefs={
                        at: self.href(FigureRef(subject=Subject.PAYMENTS, **ref), part),
                        at + 2: self.href(FigureRef(subject=Subject.PAYMENTS, state=P.PAID, **ref), part),
                        at + 4: self.href(FigureRef(subject=Subject.PAYMENTS, state=P.FAILED, **ref), part),
                        at + 5: self.href(FigureRef(subject=Subject.PAYMENTS, state=P.UNCLAIMED, **ref), part),
                        at + 6: self.href(FigureRef(subject=Subject.PAYMENTS, state=P.PENDING, **ref), part),
                        at + 7: self.href(FigureRef(subject=Subject.PAYMENTS, category=REISSUE, **ref), part),
                    },
                    currency=programme.currency,
                    is_part=part != TOTAL,
                )
        chart = self.trend(
            "payments_by_month",
            "Payments paid, failed and unclaimed, by month of the cycle",
            [
                (
                    "Paid",
                    merged(rows, key=lambda k: (k[1],) if k[2] == P.PAID else None),
                    FigureRef(subject=Subject.PAYMENTS, state=P.PAID),
                ),
                (
                    "Failed or unclaimed",
                    merged(rows, key=lambda k: (k[1],) if k[2] in (P.FAILED, P.UNCLAIMED) else None),
                    FigureRef(subject=Subject.PAYMENTS, state="failed,unclaimed"),
                ),
            ],
            kind="bar",
            stacked=True,
        )
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
            tables=[table],
            charts=[chart],
        )
        return section, indicators

    def grievances(self) -> Section:
        q = self.q
        by_category = tally_figures(q, Subject.GRIEVANCES, keys=("category", "state"))
        resolved_category = tally_figures(q, Subject.RESOLUTIONS, keys=("category",), with_days=True)
        received_by_month = tally_figures(q, Subject.GRIEVANCES, keys=("month",))
        resolved_by_month = tally_figures(q, Subject.RESOLUTIONS, keys=("month",))
        labels = dict(GrievanceCategory.choices)
        categories = [
            c for c in GrievanceCategory.values if any(k[0] == c for k in by_category) or (c,) in resolved_category
        ]
        if any(k[0] == SENSITIVE for k in by_category) or (SENSITIVE,) in resolved_category:
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
        for category in categories:
            parts = _parts_of(by_category, lambda k, c=category: k[0] == c)
            for part in self.parts(dict.fromkeys(parts or {TOTAL})):
                total = _count(by_category, part, lambda k, c=category: k[0] == c)
                still_open = _count(by_category, part, lambda k, c=category: k[0] == c and k[1] in GRIEVANCE_OPEN)
                overdue = _count(by_category, part, lambda k, c=category: k[0] == c, measure="overdue")
                done = resolved_category.get((category,), {}).get(part) or Figure()
                lead = self.leading(
                    ["Sensitive (details withheld)" if category == SENSITIVE else labels.get(category, category)], part
                )
                at = len(lead)
                hrefs = {}
                if category != SENSITIVE:
                    ref = {"category": category}
                    hrefs = {
                        at: self.href(FigureRef(subject=Subject.GRIEVANCES, **ref), part),
                        at + 1: self.href(
                            FigureRef(subject=Subject.GRIEVANCES, state=",".join(GRIEVANCE_OPEN), **ref), part
                        ),
                        at + 2: self.href(FigureRef(subject=Subject.GRIEVANCES, overdue=True, **ref), part),
                        at + 3: self.href(FigureRef(subject=Subject.RESOLUTIONS, **ref), part),
                    }
                table.add(
                    lead
                    + [total, still_open, overdue, done.count, done.median_days, ind.percent(done.timely, done.count)],
                    hrefs=hrefs,
                    is_part=part != TOTAL,
                )
        chart = self.trend(
            "grievances_by_month",
            "Grievances received and resolved, by month",
            [
                ("Received", received_by_month, FigureRef(subject=Subject.GRIEVANCES)),
                ("Resolved", resolved_by_month, FigureRef(subject=Subject.RESOLUTIONS)),
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

# What a figure's link carries is codes, numbers and months: written as they are, they need no quoting
# (",", ":" and "-" are allowed in a query string). A busy page has thousands of links.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-,:")


def _query(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{key}={value if _PLAIN.issuperset(value) else quote_plus(value)}" for key, value in params)


def _with_month(link: FigureRef, month: datetime.date) -> FigureRef:
    return FigureRef(
        subject=link.subject,
        state=",".join(link.states),
        programme_id=link.programme_id,
        agency_id=link.agency_id,
        category=link.category,
        overdue=link.overdue,
        month=month,
    )


def _parts_of(figures: Figures, test) -> set:
    parts = set()
    for key, by_part in figures.items():
        if test(key):
            parts |= set(by_part)
    return parts


def _count(figures: Figures, part, test, *, measure: str = "count") -> int:
    return sum(getattr(by_part.get(part) or Figure(), measure) for key, by_part in figures.items() if test(key))


def _sum(figures: Figures, part, test=lambda k: True) -> Figure:
    total = Figure()
    for key, by_part in figures.items():
        if test(key) and part in by_part:
            total += by_part[part]
    return total


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
