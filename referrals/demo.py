"""The demo's referral work: suggestions confirmed at the window and followed up by the agencies.

The registry demo assesses every household and the automatic referrals suggest
(drafts) every programme a household qualifies for; nobody has sent one yet. This
part plays the last months of a district's window: for each programme running in
each demo district, a bounded number of suggestions (`SENT_PER_PROGRAMME`, whatever
the population's size) are sent by the district's front desk, and the agency's
demo officer (`officer_<agency code>`) receives, accepts, rejects (with its
reasons) and completes them; a few are cancelled by the window or expire. One
agency (`stuck_agency`) has fallen behind these last two months: most of what it
was sent waits past its due date. Everything goes through `referrals.services`, so every step has its
history row with its actor.

The services stamp each step with the moment it runs; the demo then dates each
referral's steps over the last `MONTHS_BACK` months, as they would have happened:
sent on a day, received a day or two later, accepted after a number of days (some
after the programme's service level), completed weeks later. The referral's own
dates follow its history (due date, closed, overdue since the morning after it fell
due, as the morning job marks it).

Deterministic: which suggestions are sent and what happens to each are functions
of the seed, the household number and the programme (`zlib.crc32`); the dates
count back from the day the demo runs. Idempotent: each step carries an
idempotency key `demo:…`, and a district with any such step is left alone, so
running the demo again (or with more households) adds nothing.
"""

import datetime
import zlib
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from programmes.models import Agency, Programme, ProgrammeDistrict, ProgrammeStatus
from registry.countries import current_country
from registry.models import Location, LocationLevel
from spf.models import Role, User

from .followup import EXPIRY_GRACE_DAYS
from .models import OPEN_STATUSES, Referral, ReferralEvent, ReferralStatus, RejectionReason
from .services import referral_transition

S = ReferralStatus

# Suggestions the window sends per programme and district, between these two (by the seed): enough
# that every status shows in the worklists and on the dashboard, few enough to stay seconds at 3,000
# households (each is a handful of service calls) and to be the same work at a million.
SENT_PER_PROGRAMME = (6, 16)
# Suggestions looked at per programme and district, in household order, before ranking them by the
# seed: a bounded read at any population size.
CANDIDATES = 200
# How far back the window started sending.
MONTHS_BACK = 6
DAYS_BACK = MONTHS_BACK * 30
# The agency that fell behind did so lately: its referrals were sent over these last days, so most of
# what it has not looked at is still open and overdue rather than expired.
STUCK_DAYS_BACK = 60
# The idempotency key of every demo step starts with this; a district with one has had its demo.
KEY_PREFIX = "demo:"

# What the agencies say when they reject, with the words an officer writes (OTHER needs them).
REJECTIONS = (
    (RejectionReason.NOT_ELIGIBLE, "Home visit: the household has a member in regular work."),
    (RejectionReason.CAPACITY_FULL, "No place left in the district this year; on the waiting list."),
    (RejectionReason.NOT_REACHED, "Three visits, nobody at home; neighbours say they moved to the lake."),
    (RejectionReason.DOCUMENTS_MISSING, "No birth records for the children; asked to bring them."),
    (RejectionReason.DECLINED, "The head prefers to keep the support they already receive."),
    (RejectionReason.ALREADY_SERVED, "Already on our list from last year's registration."),
    (RejectionReason.OTHER, "Referred to the wrong ward office; sent again to the right one."),
)


@dataclass
class DemoReferralsReport:
    sent: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    districts_skipped: list[str] = field(default_factory=list)

    def words(self) -> str:
        if not self.sent:
            if self.districts_skipped:
                return "Referrals: the demo's referral work is already there; nothing added."
            return "Referrals: no suggestions to send (no programme or no eligible household)."
        statuses = ", ".join(f"{n:,} {S(status).label.lower()}" for status, n in sorted(self.by_status.items()))
        return f"Referrals: {self.sent:,} suggestions sent and followed up over {MONTHS_BACK} months ({statuses})."


def _hash(*parts) -> int:
    return zlib.crc32(":".join(str(p) for p in parts).encode())


def stuck_agency(agencies: list[Agency], seed: int) -> Agency | None:
    """The agency that has fallen behind: one of those with programmes, chosen by the seed."""
    ordered = sorted(agencies, key=lambda a: a.code)
    return ordered[seed % len(ordered)] if ordered else None


@dataclass(frozen=True)
class _Story:
    """What happens to one sent referral: its status now and the days, after sending, of each step."""

    status: str
    received_after: int | None = None
    decided_after: int | None = None  # accepted or rejected
    completed_after: int | None = None
    rejection: tuple | None = None


def _story(bucket: int, age: int, sla: int, *, stuck: bool) -> _Story:
    """The fate of a referral sent `age` days ago, from its bucket (0..99).

    An open referral more than `EXPIRY_GRACE_DAYS` past its due date has been expired by the nightly
    job (`referrals.followup`), so an old story ends closed: served, refused, cancelled or expired."""
    received = 1 + bucket % 3
    expires = age > sla + EXPIRY_GRACE_DAYS
    if age <= received:
        return _Story(S.SENT)
    if stuck:
        # The agency that fell behind: most were never decided, and wait (or expired) past their due date.
        if bucket < 80:
            seen = received if bucket >= 40 else None
            if expires:
                return _Story(S.EXPIRED, received_after=seen)
            return _Story(S.RECEIVED if seen else S.SENT, received_after=seen)
        decided = min(age, sla + 5 + bucket % 20)
        completed = min(decided + 10 + bucket % 15, sla + EXPIRY_GRACE_DAYS)
        if age > completed:
            return _Story(S.COMPLETED, received_after=received, decided_after=decided, completed_after=completed)
        return _Story(S.ACCEPTED, received_after=received, decided_after=decided)
    # Acceptance takes a few days to a few weeks: most within the service level, some after it.
    decided = received + (bucket * 7) % (sla + 12)
    if age <= decided:
        return _Story(S.RECEIVED if bucket % 2 else S.SENT, received_after=received if bucket % 2 else None)
    if bucket < 14:
        return _Story(
            S.REJECTED, received_after=received, decided_after=decided, rejection=REJECTIONS[bucket % len(REJECTIONS)]
        )
    if bucket < 18:
        return _Story(S.CANCELLED, received_after=received)
    if bucket < 29:
        # Not looked at: waiting past the due date, or expired.
        seen = received if bucket % 2 else None
        return _Story(S.EXPIRED if expires else (S.RECEIVED if seen else S.SENT), received_after=seen)
    completed = min(decided + 7 + bucket % 30, sla + EXPIRY_GRACE_DAYS)
    if bucket >= 45 and age > completed:
        return _Story(S.COMPLETED, received_after=received, decided_after=decided, completed_after=completed)
    # Accepted, and the agency has not said the household was served (yet, or ever: expired).
    return _Story(S.EXPIRED if expires else S.ACCEPTED, received_after=received, decided_after=decided)


def _moment(day: datetime.date, bucket: int, step: int) -> datetime.datetime:
    """Office hours: a time of day on `day` for a step, spread by the referral's bucket; a later step of the
    same day is later in it."""
    minutes = 8 * 60 + (bucket * 37) % (4 * 60) + step * 45
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(minutes // 60, minutes % 60)))


def _candidates(*, district: Location, programme: Programme, seed: int) -> list[Referral]:
    """Suggestions to send: a bounded slice in household order, ranked by the seed."""
    drafts = list(
        Referral.objects.filter(district=district, programme=programme, status=S.DRAFT, member__isnull=True)
        .order_by("household_id")
        .values_list("pk", "household__number")[:CANDIDATES]
    )
    drafts.sort(key=lambda row: (_hash(seed, "send", programme.code, row[1]), row[0]))
    fewest, most = SENT_PER_PROGRAMME
    chosen = [
        pk
        for pk, _number in drafts[
            : fewest + _hash(seed, "how many", district.code, programme.code) % (most - fewest + 1)
        ]
    ]
    found = {r.pk: r for r in Referral.objects.filter(pk__in=chosen).select_related("household")}
    return [found[pk] for pk in chosen]


def _officers(agencies: list[Agency]) -> dict[int, User]:
    names = {f"officer_{agency.code.lower()}": agency.pk for agency in agencies}
    return {names[u.username]: u for u in User.objects.filter(username__in=names, role=Role.PROGRAMME_OFFICER)}


def _play(
    referral: Referral,
    story: _Story,
    *,
    desk: User,
    officer: User,
    sent_on: datetime.date,
    today: datetime.date,
    bucket: int,
) -> list[tuple[str, datetime.datetime]]:
    """Move one suggestion through its story with the services; returns (status, when) of each step."""
    age = (today - sent_on).days
    now = timezone.now()

    def on(days: int, step: int) -> datetime.datetime:
        # Never after today, and never in today's future: the story has happened by now.
        return min(_moment(sent_on + datetime.timedelta(days=min(days, age)), bucket, step), now)

    steps = [(S.SENT, on(0, 1))]
    referral = referral_transition(
        referral=referral, to_status=S.SENT, acting_user=desk, idempotency_key=f"{KEY_PREFIX}sent"
    )
    if story.received_after is not None:
        referral = referral_transition(
            referral=referral, to_status=S.RECEIVED, acting_user=officer, idempotency_key=f"{KEY_PREFIX}received"
        )
        steps.append((S.RECEIVED, on(story.received_after, 2)))
    if story.status == S.CANCELLED:
        referral_transition(
            referral=referral,
            to_status=S.CANCELLED,
            acting_user=desk,
            reason="The household moved out of the district before the agency's visit.",
            idempotency_key=f"{KEY_PREFIX}cancelled",
        )
        return steps + [(S.CANCELLED, on((story.received_after or 0) + 6, 3))]
    if story.status == S.REJECTED:
        reason, words = story.rejection
        referral_transition(
            referral=referral,
            to_status=S.REJECTED,
            acting_user=officer,
            rejection_reason=reason,
            reason=words,
            idempotency_key=f"{KEY_PREFIX}rejected",
        )
        return steps + [(S.REJECTED, on(story.decided_after, 3))]
    if story.decided_after is not None:
        referral = referral_transition(
            referral=referral,
            to_status=S.ACCEPTED,
            acting_user=officer,
            reason="Visited; the household qualifies.",
            idempotency_key=f"{KEY_PREFIX}accepted",
        )
        steps.append((S.ACCEPTED, on(story.decided_after, 3)))
    if story.completed_after is not None:
        referral_transition(
            referral=referral,
            to_status=S.COMPLETED,
            acting_user=officer,
            reason="Served: the household received the programme's support.",
            idempotency_key=f"{KEY_PREFIX}completed",
        )
        steps.append((S.COMPLETED, on(story.completed_after, 4)))
    if story.status == S.EXPIRED:
        # The nightly job, the night after the grace period ended.
        referral_transition(
            referral=referral,
            to_status=S.EXPIRED,
            reason=f"Expired: no outcome {EXPIRY_GRACE_DAYS} days after the due date.",
            idempotency_key=f"{KEY_PREFIX}expired",
        )
        steps.append((S.EXPIRED, on(referral.programme.referral_sla_days + EXPIRY_GRACE_DAYS + 1, 0)))
    return steps


def _date_steps(stories: dict[int, tuple[list[tuple[str, datetime.datetime]], int, int]], *, today) -> None:
    """Put each referral's history, and the dates it keeps, on the days its story says (one district's
    referrals at once: `stories` maps a referral's id to its steps, its programme's service level and the
    days the suggestion waited before the window sent it)."""
    events = list(ReferralEvent.objects.filter(referral_id__in=stories).only("pk", "referral_id", "to_status", "at"))
    referrals = []
    suggested = {}
    for referral_id, (steps, sla_days, waited) in stories.items():
        sent_at = steps[0][1]
        # The suggestion was made by the eligibility sweep a few days before the window sent it.
        suggested[referral_id] = sent_at - datetime.timedelta(days=waited, hours=3)
        due_date = timezone.localtime(sent_at).date() + datetime.timedelta(days=sla_days)
        last_status, last_at = steps[-1]
        referrals.append(
            Referral(
                pk=referral_id,
                created_at=suggested[referral_id],
                sent_at=sent_at,
                due_date=due_date,
                closed_at=None if last_status in OPEN_STATUSES else last_at,
                # The morning after it fell due, the follow-up job marked it overdue.
                overdue_since=due_date + datetime.timedelta(days=1)
                if last_status in (S.SENT, S.RECEIVED, S.ACCEPTED) and due_date < today
                else None,
            )
        )
    for event in events:
        steps = stories[event.referral_id][0]
        event.at = (
            suggested[event.referral_id] if event.to_status == S.DRAFT else dict(steps).get(event.to_status, event.at)
        )
    ReferralEvent.objects.bulk_update(events, ["at"], batch_size=500)
    Referral.objects.bulk_update(
        referrals, ["created_at", "sent_at", "due_date", "closed_at", "overdue_since"], batch_size=500
    )


def demo_district_done(district: Location) -> bool:
    return ReferralEvent.objects.filter(referral__district=district, idempotency_key__startswith=KEY_PREFIX).exists()


def demo_referrals_ensure(
    *, seed: int, front_desks: dict[str, int], today: datetime.date | None = None
) -> DemoReferralsReport:
    """Send and follow up the demo's referrals in every demo district not done yet (see the module).

    `front_desks` maps a district code to its demo front-desk officer's id (`spf.demo.front_desk_by_district`)."""
    today = today or timezone.localdate()
    report = DemoReferralsReport()
    districts = Location.objects.filter(level=LocationLevel.DISTRICT, code__in=current_country().demo_districts)
    programmes = list(Programme.objects.filter(status=ProgrammeStatus.ACTIVE).select_related("agency").order_by("code"))
    agencies = list({p.agency_id: p.agency for p in programmes}.values())
    officers = _officers(agencies)
    behind = stuck_agency([a for a in agencies if a.pk in officers], seed)
    desks = {u.pk: u for u in User.objects.filter(pk__in=front_desks.values())}
    for district in districts.order_by("code"):
        desk = desks.get(front_desks.get(district.code))
        if desk is None:
            continue
        if demo_district_done(district):
            report.districts_skipped.append(district.name)
            continue
        running = set(ProgrammeDistrict.objects.filter(district=district).values_list("programme_id", flat=True))
        with transaction.atomic():
            stories: dict[int, tuple] = {}
            for programme in programmes:
                officer = officers.get(programme.agency_id)
                if programme.pk not in running or officer is None:
                    continue
                for referral in _candidates(district=district, programme=programme, seed=seed):
                    number = referral.household.number
                    stuck = behind is not None and programme.agency_id == behind.pk
                    bucket = _hash(seed, "story", programme.code, number) % 100
                    age = 1 + _hash(seed, "sent", programme.code, number) % (STUCK_DAYS_BACK if stuck else DAYS_BACK)
                    story = _story(bucket, age, programme.referral_sla_days, stuck=stuck)
                    sent_on = today - datetime.timedelta(days=age)
                    steps = _play(
                        referral, story, desk=desk, officer=officer, sent_on=sent_on, today=today, bucket=bucket
                    )
                    waited = 2 + _hash(seed, "suggested", programme.code, number) % 5
                    stories[referral.pk] = (steps, programme.referral_sla_days, waited)
                    report.sent += 1
                    report.by_status[story.status] = report.by_status.get(story.status, 0) + 1
            _date_steps(stories, today=today)
    return report


__all__ = ["DemoReferralsReport", "demo_district_done", "demo_referrals_ensure", "stuck_agency"]
