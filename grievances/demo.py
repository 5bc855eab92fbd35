"""The demo's grievances: complaints and appeals raised at each demo district's window over the last
months, and how far each has gone.

A fixed number per district (`SCHEDULE`, whatever the population's size), of every category:
eligibility appeals about a programme the household was found not eligible for, payments that did
not arrive (a failed or unclaimed payment of the payments demo), records to correct, staff conduct
(one marked sensitive), fraud (always sensitive, raised anonymously) and others. Each is recorded by
the district's front desk and worked through `grievances.services`: acknowledged, assigned to the
programme's agency or an officer, investigated, escalated to the district committee, resolved (an
appeal not upheld, with its reasons), closed when the person accepted the resolution. Most are
resolved, a few late; a couple are still open past their deadline. The sensitive ones are handled
by ministry staff (`ministry_admin`), the demo's officer designated for them.

As for the referrals demo, the services stamp each step with the moment it runs and the demo then
dates the steps over the last `MONTHS_BACK` months (with the deadline from the category's days and
the overdue mark the morning job would have set). Deterministic for a seed (`zlib.crc32` of the
seed, the district and the grievance's place in the schedule; dates count back from the day the demo
runs); idempotent: every step carries an idempotency key `demo:…`, and a district that has one is
left alone.
"""

import datetime
import zlib
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from payments.models import Payment, PaymentStatus
from programmes.models import EligibilityOutcome, EligibilityResult, Programme, ProgrammeStatus
from registry.countries import current_country
from registry.models import Household, HouseholdStatus, Location, LocationLevel
from spf.models import Role, User

from .models import (
    OPEN_STATUSES,
    AppealOutcome,
    EscalationLevel,
    Grievance,
    GrievanceCategory,
    GrievanceChannel,
    GrievanceEvent,
    GrievanceStatus,
)
from .services import (
    RESOLUTION_DAYS,
    grievance_acknowledge,
    grievance_assign,
    grievance_close,
    grievance_escalate,
    grievance_investigated,
    grievance_register,
    grievance_resolve,
)

S = GrievanceStatus
C = GrievanceCategory

# Grievances per district, by category: about one a week over the months shown, appeals and payment
# complaints the most common (as at a real window), every category present.
SCHEDULE = (
    (C.ELIGIBILITY, 7),
    (C.PAYMENT, 6),
    (C.DATA_CORRECTION, 5),
    (C.STAFF_CONDUCT, 3),
    (C.FRAUD, 1),
    (C.OTHER, 3),
)
# Of the staff-conduct complaints, the first is sensitive (an officer asking for money).
SENSITIVE_STAFF_CONDUCT = 1
MONTHS_BACK = 6
DAYS_BACK = MONTHS_BACK * 30
# Households looked at per district, in household order, before ranking them by the seed: a bounded
# read at any population size.
CANDIDATES = 400
# In percent: grievances left open whatever their age (the couple overdue); the others are resolved
# once their time has come.
STILL_OPEN_PERCENT = 8
KEY_PREFIX = "demo:"

# What people say, by category (a few ways each); `{programme}` is the programme concerned.
DESCRIPTIONS = {
    C.ELIGIBILITY: (
        "Appeals the decision on {programme}: says the household has no one fit to work since the head's accident.",
        "Asks why the household does not qualify for {programme}; the grandmother cares for four orphans.",
        "Appeals {programme}: the record shows a member who moved to Lusaka last year.",
    ),
    C.PAYMENT: (
        "The payment of {programme} did not reach the household; the agent said the list had no name.",
        "Went to the pay point twice for {programme}; told to come back next month.",
    ),
    C.DATA_CORRECTION: (
        "The head's date of birth is wrong on the slip; the NRC shows another year.",
        "A baby born in the household is not on the record.",
        "The village is wrong: the household lives in the next village since the floods.",
    ),
    C.STAFF_CONDUCT: (
        "Says an officer asked for money to put the household on the list.",
        "Kept waiting all day at the office and sent away without being seen.",
    ),
    C.FRAUD: (
        "Reports that a household on the list does not live in the village.",
        "Reports that a pay point agent keeps part of each payment.",
    ),
    C.OTHER: (
        "Asks for the office to open on market day, when people come to the boma.",
        "The phone number on the referral slip does not answer.",
    ),
}
RESOLUTIONS = {
    C.ELIGIBILITY: "Home visit made; the information on the record is right and the rule was applied as written.",
    C.PAYMENT: "The provider confirmed the failure; the payment is reissued in the next cycle.",
    C.DATA_CORRECTION: "The record is corrected and a new slip printed.",
    C.STAFF_CONDUCT: "Investigated and raised with the officer's supervisor; the person is informed.",
    C.FRAUD: "Investigated with the programme; the matter is passed on to the ministry's audit unit.",
    C.OTHER: "Answered and passed on to the district office.",
}
CHANNELS = (
    GrievanceChannel.WALK_IN,
    GrievanceChannel.WALK_IN,
    GrievanceChannel.PHONE,
    GrievanceChannel.SMS,
    GrievanceChannel.COMMUNITY_WORKER,
    GrievanceChannel.LETTER,
)


@dataclass
class DemoGrievancesReport:
    recorded: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    districts_skipped: list[str] = field(default_factory=list)

    def words(self) -> str:
        if not self.recorded:
            if self.districts_skipped:
                return "Grievances: the demo's grievances are already there; nothing added."
            return "Grievances: none recorded (no demo household to raise them)."
        statuses = ", ".join(f"{n:,} {S(status).label.lower()}" for status, n in sorted(self.by_status.items()))
        return f"Grievances: {self.recorded:,} recorded over {MONTHS_BACK} months ({statuses})."


def _hash(*parts) -> int:
    return zlib.crc32(":".join(str(p) for p in parts).encode())


@dataclass(frozen=True)
class _Story:
    """How far a grievance received `age` days ago has gone, and on which day after receiving each step was."""

    status: str
    acknowledged: int | None = None
    assigned: int | None = None
    investigated: int | None = None
    escalated: int | None = None
    resolved: int | None = None
    closed: int | None = None


def _story(bucket: int, age: int, allowed: int, *, handled_by_agency: bool) -> _Story:
    """The fate of a grievance from its bucket (0..99): most resolved in time, some late, a few open."""
    acknowledged = 1 + bucket % 2
    if age <= acknowledged:
        return _Story(S.RECEIVED)
    # Days to resolve: spread up to a third past the deadline, so some are resolved late.
    resolve = acknowledged + 1 + (bucket * 13) % (allowed + allowed // 3)
    assigned = acknowledged + 1 if handled_by_agency or bucket % 3 == 0 else None
    investigated = (assigned + resolve) // 2 if assigned is not None and resolve - assigned >= 2 else None
    if bucket >= 100 - STILL_OPEN_PERCENT or age <= resolve:
        # Still open: wherever it had got to by now.
        if bucket % 5 == 4 and age > acknowledged + 3:
            return _Story(S.ESCALATED, acknowledged=acknowledged, escalated=min(age, acknowledged + 3))
        if investigated is not None and age > investigated:
            return _Story(S.INVESTIGATED, acknowledged=acknowledged, assigned=assigned, investigated=investigated)
        if assigned is not None and age > assigned:
            return _Story(S.ASSIGNED, acknowledged=acknowledged, assigned=assigned)
        return _Story(S.ACKNOWLEDGED, acknowledged=acknowledged)
    closed = resolve + 3 + bucket % 4
    return _Story(
        S.CLOSED if bucket % 3 and age > closed else S.RESOLVED,
        acknowledged=acknowledged,
        assigned=assigned,
        investigated=investigated,
        resolved=resolve,
        closed=closed if bucket % 3 and age > closed else None,
    )


def _moment(day: datetime.date, bucket: int, step: int) -> datetime.datetime:
    """Office hours: a time of day for a step, spread by the grievance's bucket; later steps later in the day."""
    minutes = 8 * 60 + (bucket * 41) % (4 * 60) + step * 40
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(minutes // 60, minutes % 60)))


@dataclass
class _Cast:
    """Who acts in a district's grievances."""

    desk: User
    sensitive_officer: User | None
    officers: dict[int, User]  # agency id -> its demo officer


class _Households:
    """The households a district's grievances are about, picked by the seed from bounded reads."""

    def __init__(self, district: Location, seed: int):
        self.district, self.seed = district, seed
        households = list(
            Household.objects.filter(district=district, status=HouseholdStatus.ACTIVE, head__isnull=False)
            .select_related("head")
            .order_by("pk")[:CANDIDATES]
        )
        households.sort(key=lambda h: (_hash(seed, "grievance", h.number), h.pk))
        self.households = households
        self.taken: set[int] = set()

    def any(self) -> Household | None:
        for household in self.households:
            if household.pk not in self.taken:
                self.taken.add(household.pk)
                return household
        return None

    def not_eligible(self, programmes: list[Programme], index: int) -> tuple[Household | None, Programme | None]:
        """A household found not eligible for one of `programmes` (an appeal's subject)."""
        for offset in range(len(programmes)):
            programme = programmes[(index + offset) % len(programmes)]
            results = (
                EligibilityResult.objects.filter(
                    programme=programme,
                    outcome=EligibilityOutcome.NOT_ELIGIBLE,
                    household__district=self.district,
                    household__status=HouseholdStatus.ACTIVE,
                    household__head__isnull=False,
                )
                .exclude(household_id__in=self.taken)
                .select_related("household", "household__head")
                .order_by("household_id")[:CANDIDATES]
            )
            ranked = sorted(results, key=lambda r: (_hash(self.seed, "appeal", r.household.number), r.pk))
            if ranked:
                self.taken.add(ranked[0].household_id)
                return ranked[0].household, programme
        return self.any(), None

    def unpaid(self) -> tuple[Household | None, Payment | None]:
        """A household with a failed or unclaimed payment (the payments demo's), and that payment."""
        payments = (
            Payment.objects.filter(
                district=self.district,
                status__in=(PaymentStatus.FAILED, PaymentStatus.UNCLAIMED),
                household__status=HouseholdStatus.ACTIVE,
                household__head__isnull=False,
            )
            .exclude(household_id__in=self.taken)
            .select_related("household", "household__head", "programme", "cycle")
            .order_by("pk")[:CANDIDATES]
        )
        # Ranked by what the payment is (whose, which programme and period), not by its number: numbers
        # come from sequences, and the same seed must pick the same payment on another database.
        ranked = sorted(
            payments,
            key=lambda p: (
                _hash(self.seed, "unpaid", p.household.number, p.programme.code, p.cycle.period_start),
                p.pk,
            ),
        )
        if ranked:
            self.taken.add(ranked[0].household_id)
            return ranked[0].household, ranked[0]
        return self.any(), None


def _play(
    grievance: Grievance, story: _Story, cast: _Cast, *, received_on, today, bucket
) -> dict[str, datetime.datetime]:
    """Move one grievance through its story with the services; returns when each status was reached."""
    age = (today - received_on).days
    now = timezone.now()

    def on(days: int, step: int) -> datetime.datetime:
        return min(_moment(received_on + datetime.timedelta(days=min(days, age)), bucket, step), now)

    when = {S.RECEIVED: on(0, 0)}
    sensitive = grievance.sensitive
    desk = cast.sensitive_officer if sensitive else cast.desk
    handler = desk
    if story.acknowledged is None:
        return when
    grievance = grievance_acknowledge(
        acting_user=desk,
        grievance=grievance,
        note="Reference number given to the person.",
        idempotency_key=f"{KEY_PREFIX}acknowledged",
    )
    when[S.ACKNOWLEDGED] = on(story.acknowledged, 1)
    if story.escalated is not None:
        grievance_escalate(
            acting_user=desk,
            grievance=grievance,
            to=EscalationLevel.COMMITTEE,
            reason="The person asks for the district committee to hear it.",
            idempotency_key=f"{KEY_PREFIX}escalated",
        )
        when[S.ESCALATED] = on(story.escalated, 2)
        return when
    if story.assigned is not None:
        agency_officer = cast.officers.get(grievance.programme.agency_id) if grievance.programme_id else None
        if agency_officer is not None and not sensitive:
            grievance = grievance_assign(
                acting_user=desk,
                grievance=grievance,
                to_agency=grievance.programme.agency,
                note="For the programme to look into.",
                idempotency_key=f"{KEY_PREFIX}assigned",
            )
            handler = agency_officer
        else:
            grievance = grievance_assign(
                acting_user=desk,
                grievance=grievance,
                to_user=desk,
                note="Taken by the officer on duty.",
                idempotency_key=f"{KEY_PREFIX}assigned",
            )
        when[S.ASSIGNED] = on(story.assigned, 2)
    if story.investigated is not None:
        grievance = grievance_investigated(
            acting_user=handler,
            grievance=grievance,
            findings="Visited the household and checked the records.",
            idempotency_key=f"{KEY_PREFIX}investigated",
        )
        when[S.INVESTIGATED] = on(story.investigated, 3)
    if story.resolved is not None:
        appeal = grievance.category == C.ELIGIBILITY and grievance.programme_id is not None
        grievance = grievance_resolve(
            acting_user=handler,
            grievance=grievance,
            resolution=RESOLUTIONS[grievance.category],
            appeal_outcome=AppealOutcome.NOT_UPHELD if appeal else "",
            idempotency_key=f"{KEY_PREFIX}resolved",
        )
        when[S.RESOLVED] = on(story.resolved, 4)
    if story.closed is not None:
        grievance_close(
            acting_user=desk,
            grievance=grievance,
            accepted=True,
            note="The person accepted the resolution.",
            idempotency_key=f"{KEY_PREFIX}closed",
        )
        when[S.CLOSED] = on(story.closed, 5)
    return when


def _date_steps(stories: dict[int, dict[str, datetime.datetime]], *, today: datetime.date) -> None:
    """Put each grievance's history, and the dates it keeps, on the days its story says (one district's
    grievances at once: `stories` maps a grievance's id to when it reached each status)."""
    events = list(GrievanceEvent.objects.filter(grievance_id__in=stories).only("pk", "grievance_id", "to_status", "at"))
    for event in events:
        event.at = stories[event.grievance_id].get(event.to_status, event.at)
    GrievanceEvent.objects.bulk_update(events, ["at"], batch_size=500)
    grievances = list(Grievance.objects.filter(pk__in=stories).only("pk", "category", "status"))
    for grievance in grievances:
        when = stories[grievance.pk]
        grievance.created_at = when[S.RECEIVED]
        grievance.acknowledged_at = when.get(S.ACKNOWLEDGED)
        grievance.resolved_at = when.get(S.RESOLVED)
        grievance.closed_at = when.get(S.CLOSED)
        grievance.due_date = timezone.localtime(grievance.created_at).date() + datetime.timedelta(
            days=RESOLUTION_DAYS[grievance.category]
        )
        # The morning after the deadline passed, the overdue job marked it.
        overdue = grievance.status in OPEN_STATUSES and grievance.due_date < today
        grievance.overdue_since = grievance.due_date + datetime.timedelta(days=1) if overdue else None
    Grievance.objects.bulk_update(
        grievances,
        ["created_at", "acknowledged_at", "resolved_at", "closed_at", "due_date", "overdue_since"],
        batch_size=500,
    )


def demo_district_done(district: Location) -> bool:
    return GrievanceEvent.objects.filter(grievance__district=district, idempotency_key__startswith=KEY_PREFIX).exists()


def demo_grievances_ensure(
    *, seed: int, front_desks: dict[str, int], today: datetime.date | None = None
) -> DemoGrievancesReport:
    """Record and work the demo's grievances in every demo district not done yet (see the module).

    `front_desks` maps a district code to its demo front-desk officer's id (`spf.demo.front_desk_by_district`)."""
    today = today or timezone.localdate()
    report = DemoGrievancesReport()
    programmes = list(Programme.objects.filter(status=ProgrammeStatus.ACTIVE).select_related("agency").order_by("code"))
    officer_names = {f"officer_{p.agency.code.lower()}": p.agency_id for p in programmes}
    officers = {
        officer_names[u.username]: u
        for u in User.objects.filter(username__in=officer_names, role=Role.PROGRAMME_OFFICER, is_active=True)
    }
    # Ministry staff handle the sensitive ones: the demo has no other officer designated for them.
    sensitive_officer = User.objects.filter(username="ministry_admin", is_active=True).first()
    desks = {u.pk: u for u in User.objects.filter(pk__in=front_desks.values())}
    districts = Location.objects.filter(level=LocationLevel.DISTRICT, code__in=current_country().demo_districts)
    for district in districts.order_by("code"):
        desk = desks.get(front_desks.get(district.code))
        if desk is None:
            continue
        if demo_district_done(district):
            report.districts_skipped.append(district.name)
            continue
        cast = _Cast(desk=desk, sensitive_officer=sensitive_officer, officers=officers)
        households = _Households(district, seed)
        with transaction.atomic():
            stories: dict[int, dict] = {}
            index = 0
            for category, count in SCHEDULE:
                for number in range(count):
                    index += 1
                    made = _record(
                        category,
                        number,
                        index,
                        district=district,
                        households=households,
                        cast=cast,
                        programmes=programmes,
                        seed=seed,
                        today=today,
                        stories=stories,
                    )
                    if made is not None:
                        report.recorded += 1
                        report.by_status[made] = report.by_status.get(made, 0) + 1
            _date_steps(stories, today=today)
    return report


def _record(category, number, index, *, district, households, cast, programmes, seed, today, stories) -> str | None:
    """Record and work one grievance of the schedule; returns the status it ends in (None: nobody to raise it)."""
    bucket = _hash(seed, "grievance", district.code, index) % 100
    age = 1 + _hash(seed, "received", district.code, index) % DAYS_BACK
    sensitive = category == C.FRAUD or (category == C.STAFF_CONDUCT and number < SENSITIVE_STAFF_CONDUCT)
    if sensitive and cast.sensitive_officer is None:
        return None
    household = programme = payment = None
    if category == C.ELIGIBILITY:
        household, programme = households.not_eligible(programmes, index)
    elif category == C.PAYMENT:
        household, payment = households.unpaid()
        programme = payment.programme if payment else None
    elif category != C.FRAUD:
        household = households.any()
    if household is None and category != C.FRAUD:
        return None
    texts = DESCRIPTIONS[category]
    description = texts[bucket % len(texts)].format(programme=programme.name if programme else "the programme")
    grievance = grievance_register(
        acting_user=cast.desk,
        category=category,
        description=description,
        channel=GrievanceChannel.PHONE if category == C.FRAUD else CHANNELS[bucket % len(CHANNELS)],
        district=district,
        household=household,
        complainant=household.head if household else None,
        anonymous=household is None,
        programme=programme,
        payment=payment,
        payment_not_received=payment is not None,
        sensitive=sensitive,
        idempotency_key=f"{KEY_PREFIX}{district.code}:{index}",
    )
    story = _story(bucket, age, RESOLUTION_DAYS[category], handled_by_agency=programme is not None and not sensitive)
    received_on = today - datetime.timedelta(days=age)
    when = _play(grievance, story, cast, received_on=received_on, today=today, bucket=bucket)
    stories[grievance.pk] = when
    return story.status


__all__ = ["DemoGrievancesReport", "demo_district_done", "demo_grievances_ensure"]
