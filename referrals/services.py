"""Every write to a referral: creation, the one state machine, automatic referrals
from eligibility, and the outbox that carries each change to an agency's system.

Each transition is one transaction that records who, when, from what to what
and why (`ReferralEvent`), and queues its delivery in the same transaction.
"""

import datetime
import uuid
from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.db.models.expressions import RawSQL
from django.utils import timezone

from programmes.models import (
    Agency,
    AutoReferral,
    EligibilityChange,
    EligibilityOutcome,
    EligibilityResult,
    Programme,
    ProgrammeStatus,
    ReferralDelivery,
    TargetUnit,
)
from registry.models import Household, HouseholdStatus, Member, MemberStatus
from spf.models import Role
from spf.scope import user_may_see_district

from .models import (
    OPEN_STATUSES,
    Delivery,
    EligibilitySweep,
    Notification,
    Referral,
    ReferralAttachment,
    ReferralEvent,
    ReferralPriority,
    ReferralSource,
    ReferralStatus,
    RejectionReason,
    referral_number,
)

S = ReferralStatus

# The state machine: from each status, where a referral may go next.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.DRAFT: (S.SENT, S.CANCELLED),
    S.SENT: (S.RECEIVED, S.ACCEPTED, S.REJECTED, S.CANCELLED, S.EXPIRED),
    S.RECEIVED: (S.ACCEPTED, S.REJECTED, S.CANCELLED, S.EXPIRED),
    S.ACCEPTED: (S.COMPLETED, S.CANCELLED, S.EXPIRED),
    S.REJECTED: (),
    S.COMPLETED: (),
    S.EXPIRED: (),
    S.CANCELLED: (),
}
# Who moves a referral where: the window sends and cancels; the agency
# receives, decides and completes; time (the beat job) expires.
WINDOW_MOVES = (S.SENT, S.CANCELLED)
AGENCY_MOVES = (S.RECEIVED, S.ACCEPTED, S.REJECTED, S.COMPLETED)
SYSTEM_MOVES = (S.EXPIRED, S.CANCELLED)
# Changes the agency's system is told about (it made the others itself).
DELIVERED_MOVES = (S.SENT, S.CANCELLED, S.EXPIRED)


@dataclass(frozen=True)
class Actor:
    """Who acts: a person (`user`), an agency's system (`agency` with its service user), or the system (neither)."""

    user: object = None
    agency: Agency | None = None

    @property
    def is_system(self) -> bool:
        return self.user is None and self.agency is None


def _actor_agency(user) -> Agency | None:
    return getattr(user, "agency", None) if user is not None and user.role == Role.PROGRAMME_OFFICER else None


def _check_may_move(referral: Referral, to_status: str, user) -> None:
    if user is None:
        if to_status not in SYSTEM_MOVES:
            raise PermissionDenied("Only a person or the agency can make this change.")
        return
    agency = _actor_agency(user)
    if to_status in AGENCY_MOVES:
        if user.is_superuser or user.role == Role.MINISTRY:
            return
        if agency is None or agency.pk != referral.agency_id:
            raise PermissionDenied(f"Only {referral.agency.name} can mark this referral {S(to_status).label.lower()}.")
        return
    if to_status in WINDOW_MOVES:
        if not user.can_edit_registry:
            raise PermissionDenied("Only the window can send or cancel a referral.")
        if not user_may_see_district(user, referral.district_id):
            raise PermissionDenied("This referral is outside your districts.")
        return
    raise PermissionDenied("Only the system expires referrals.")


def _due_date(programme: Programme, sent_on: datetime.date) -> datetime.date:
    return sent_on + datetime.timedelta(days=programme.referral_sla_days)


def _payload(referral: Referral, event: ReferralEvent) -> dict:
    household = referral.household
    member = referral.member
    return {
        "event": f"referral.{event.to_status}",
        "referral": {
            "id": referral.pk,
            "number": referral.number,
            "status": referral.status,
            "programme": referral.programme.code,
            "priority": referral.priority,
            "reason": referral.reason,
            "due_date": referral.due_date.isoformat() if referral.due_date else None,
            "source": referral.source,
        },
        "household": {
            "number": household.number,
            "district": household.district.code,
            "village": household.village.code,
            "head": household.head.full_name if household.head_id else None,
            "phone": household.phone,
        },
        "member": {"id": member.pk, "name": member.full_name, "national_id": member.national_id} if member else None,
        "at": event.at.isoformat(),
        "reason": event.reason,
    }


def _queue_delivery(referral: Referral, event: ReferralEvent) -> Delivery | None:
    """The outbox row, in the caller's transaction; the send is queued after commit."""
    agency = referral.agency
    if agency.referral_delivery != ReferralDelivery.WEBHOOK or event.to_status not in DELIVERED_MOVES:
        return None
    delivery = Delivery.objects.create(
        referral=referral,
        event=event,
        agency=agency,
        idempotency_key=f"{referral.number}-{event.pk}-{uuid.uuid4().hex[:8]}",
        payload=_payload(referral, event),
    )
    transaction.on_commit(lambda: _send_later(delivery.pk))
    return delivery


def _send_later(delivery_id: int) -> None:
    """After commit: send now if the broker answers; if it is down the row waits for the deliveries sweep."""
    from spf.outbox import send_if_broker_answers

    from .tasks import delivery_send

    send_if_broker_answers(task=delivery_send, args=[delivery_id])


def _record(
    referral: Referral,
    *,
    from_status: str,
    to_status: str,
    actor: Actor,
    reason: str = "",
    rejection_reason: str = "",
    idempotency_key: str = "",
    changes: dict | None = None,
) -> ReferralEvent:
    event = ReferralEvent.objects.create(
        referral=referral,
        from_status=from_status,
        to_status=to_status,
        actor=actor.user,
        agency=actor.agency or _actor_agency(actor.user),
        reason=reason,
        rejection_reason=rejection_reason,
        idempotency_key=idempotency_key,
        changes=changes or {},
    )
    _queue_delivery(referral, event)
    return event


# --- creating ---------------------------------------------------------------------


@transaction.atomic
def referral_create(
    *,
    acting_user,
    household: Household,
    programme: Programme,
    member: Member | None = None,
    source: str = ReferralSource.WINDOW,
    source_detail: str = "",
    reason: str = "",
    priority: str = ReferralPriority.NORMAL,
    notes: str = "",
    send: bool = True,
) -> Referral:
    """Refer a household (or one of its members) to a programme; sent at once unless `send` is False.

    Raises ValidationError naming the field (the programme does not run in the
    household's district, an open referral exists, ...) and PermissionDenied
    outside the officer's districts or role.
    """
    household = Household.objects.select_related("district", "village").get(pk=household.pk)
    if acting_user is not None:
        if not acting_user.can_edit_registry:
            raise PermissionDenied("Your role cannot refer households.")
        if not user_may_see_district(acting_user, household.district_id):
            raise PermissionDenied("This household is outside your districts.")
    errors: dict[str, list[str]] = {}
    if household.status != HouseholdStatus.ACTIVE:
        errors["household"] = [f"Household {household.number} is {household.get_status_display().lower()}."]
    if programme.status != ProgrammeStatus.ACTIVE:
        errors["programme"] = [f"{programme.name} is {programme.get_status_display().lower()}, not taking referrals."]
    elif not programme.coverage.filter(district_id=household.district_id).exists():
        errors["programme"] = [f"{programme.name} does not run in {household.district.name}."]
    if programme.target_unit == TargetUnit.INDIVIDUAL:
        if member is None:
            errors["member"] = [f"{programme.name} serves individuals: choose the member referred."]
    if member is not None:
        if member.household_id != household.pk:
            errors["member"] = ["The member must belong to this household."]
        elif member.status != MemberStatus.PRESENT:
            errors["member"] = [f"{member.full_name} is {member.get_status_display().lower()}."]
    if priority not in ReferralPriority.values:
        errors["priority"] = [f"Priority must be one of {', '.join(ReferralPriority.values)}."]
    if source not in ReferralSource.values:
        errors["source"] = [f"Source must be one of {', '.join(ReferralSource.values)}."]
    if "programme" not in errors and _currently_enrolled(household=household, programme=programme, member=member):
        who = member.full_name if member is not None else f"Household {household.number}"
        errors["programme"] = [f"{who} is already enrolled in {programme.name}."]
    if Referral.objects.filter(household=household, programme=programme, status__in=OPEN_STATUSES).exists():
        errors["programme"] = [f"Household {household.number} already has an open referral to {programme.name}."]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            referral = Referral.objects.create(
                household=household,
                member=member,
                programme=programme,
                agency=programme.agency,
                district=household.district,
                source=source,
                source_detail=source_detail.strip(),
                reason=reason.strip(),
                priority=priority,
                notes=notes.strip(),
                created_by=acting_user,
            )
    except IntegrityError as problem:
        # Two desks referring the same household at the same moment: the index decides.
        raise ValidationError(
            {"programme": [f"Household {household.number} already has an open referral to {programme.name}."]}
        ) from problem
    _record(referral, from_status="", to_status=S.DRAFT, actor=Actor(user=acting_user), reason=reason)
    if send:
        referral = referral_transition(referral=referral, to_status=S.SENT, acting_user=acting_user)
    return referral


# --- the state machine ------------------------------------------------------------------


@transaction.atomic
def referral_transition(
    *,
    referral: Referral,
    to_status: str,
    acting_user=None,
    agency: Agency | None = None,
    reason: str = "",
    rejection_reason: str = "",
    idempotency_key: str = "",
) -> Referral:
    """Move a referral to `to_status`, if the state machine and the actor allow it.

    `acting_user` is a person or an agency's service user; None is the system
    (beat jobs). The same `idempotency_key` twice returns the referral as the
    first call left it and records nothing more. So does a move to the status
    the referral already has (a second click, a retry, two officers at once),
    for someone who may make that move: it is done, once. The returned
    referral's `repeated` says whether this call recorded nothing.
    """
    referral = (
        Referral.objects.select_for_update(of=("self",))
        .select_related(
            "programme", "agency", "household", "household__district", "household__village", "household__head", "member"
        )
        .get(pk=referral.pk)
    )
    referral.repeated = True
    idempotency_key = (idempotency_key or "").strip()[:100]
    if idempotency_key and referral.events.filter(idempotency_key=idempotency_key).exists():
        return referral
    if to_status not in S.values:
        raise ValidationError(
            {"status": [f"'{to_status}' is not a referral status; use one of {', '.join(S.values)}."]}
        )
    if to_status == referral.status:
        _check_may_move(referral, to_status, acting_user)
        if agency is not None and agency.pk != referral.agency_id:
            raise PermissionDenied(f"Referral {referral.number} belongs to another agency.")
        return referral
    referral.repeated = False
    allowed = TRANSITIONS[referral.status]
    if to_status not in allowed:
        where = ", ".join(S(s).label.lower() for s in allowed) or "nowhere: it is closed"
        raise ValidationError(
            {
                "status": [
                    f"Referral {referral.number} is {referral.get_status_display().lower()}; it can go to {where}, "
                    f"not {S(to_status).label.lower()}."
                ]
            }
        )
    _check_may_move(referral, to_status, acting_user)
    if agency is not None and agency.pk != referral.agency_id:
        raise PermissionDenied(f"Referral {referral.number} belongs to another agency.")
    reason = (reason or "").strip()
    if to_status == S.REJECTED:
        if rejection_reason not in RejectionReason.values:
            raise ValidationError(
                {
                    "rejection_reason": [
                        "Choose why the referral is rejected: "
                        + ", ".join(f"{v} ({label})" for v, label in RejectionReason.choices)
                    ]
                }
            )
        if rejection_reason == RejectionReason.OTHER and not reason:
            raise ValidationError({"reason": ["Explain the rejection in words when the reason is 'other'."]})
    if to_status == S.CANCELLED and not reason:
        raise ValidationError({"reason": ["Say why the referral is cancelled."]})

    now = timezone.now()
    from_status = referral.status
    changes: dict = {}
    referral.status, referral.status_note = to_status, reason
    if to_status == S.SENT:
        referral.sent_at = now
        referral.due_date = _due_date(referral.programme, timezone.localdate())
        changes["due_date"] = [None, referral.due_date.isoformat()]
    if to_status == S.REJECTED:
        referral.rejection_reason = rejection_reason
    if to_status not in OPEN_STATUSES:
        referral.closed_at = now
        referral.overdue_since = None
    referral.save()
    _record(
        referral,
        from_status=from_status,
        to_status=to_status,
        actor=Actor(user=acting_user, agency=agency),
        reason=reason,
        rejection_reason=rejection_reason if to_status == S.REJECTED else "",
        idempotency_key=idempotency_key,
        changes=changes,
    )
    return referral


# --- automatic referrals -----------------------------------------------------------------


@dataclass
class AutoReferralReport:
    created: int = 0
    sent: int = 0
    withdrawn: int = 0
    changes_consumed: int = 0


# The one watermark row of the eligibility sweep.
SWEEP_NAME = "automatic_referrals"

# Above this many change events to read, the sweep refreshes the planner's statistics
# first (about a second at a million households, against minutes of a bad plan).
ANALYZE_AFTER_CHANGES = 100_000

# Webhook deliveries for automatic referrals are written in batches of this
# size: a handful of agencies push, and each batch is one bulk insert.
DELIVERY_BATCH = 2000


def referrals_from_eligibility(*, now: datetime.datetime | None = None) -> AutoReferralReport:
    """Turn the eligibility changes not yet acted on into referrals, set-based.

    A household that became eligible for a programme configured for it, with no
    open referral there and no current enrolment in it, gets one: suggested (draft) or sent at once, per the
    programme. An automatic suggestion whose household is no longer eligible is
    withdrawn. The watermark then moves past the changes read. Safe to run twice or at
    once: the open-referral index and the programme row locks decide.
    """
    now = now or timezone.now()
    today = timezone.localdate()
    report = AutoReferralReport()
    with transaction.atomic():
        # The watermark row is the lock: two sweeps at once take turns.
        EligibilitySweep.objects.get_or_create(name=SWEEP_NAME)
        sweep = EligibilitySweep.objects.select_for_update().get(name=SWEEP_NAME)
        # Every writer of eligibility changes holds its programme's row until it
        # commits. Taking every programme row (in the writers' order, by pk)
        # waits out those in flight, so no change with an id below the
        # watermark can still appear after it has moved on.
        list(Programme.objects.select_for_update().order_by("pk").values_list("pk"))
        after = sweep.last_change_id
        upto = EligibilityChange.objects.filter(pk__gt=after).order_by("-pk").values_list("pk", flat=True).first()
        if upto is None:
            return report
        programmes = list(
            Programme.objects.filter(
                pk__in=EligibilityChange.objects.filter(pk__gt=after, pk__lte=upto).values("programme_id")
            )
            .select_related("agency")
            .order_by("pk")
        )
        table = Referral._meta.db_table
        enrolment_table = _enrolment_model()._meta.db_table
        open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
        window = f"sweep_window_{uuid.uuid4().hex[:12]}"
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and upto - after >= ANALYZE_AFTER_CHANGES:
                # A window this big follows a first recompute or a broad rule change, and the
                # planner's statistics of the results may predate it (autovacuum lags behind a
                # bulk write); a plan made for a small table is ruinous at this size.
                cursor.execute(f"ANALYZE {EligibilityResult._meta.db_table}")
            # The changes between the two ids, read once (a range of the primary key)
            # and folded to one row per programme and household: the last change to
            # eligible, and whether eligibility was lost: one pass over the changes
            # instead of two lookups per eligible household and programme.
            cursor.execute(
                f"CREATE TEMPORARY TABLE {window} AS "
                f"SELECT programme_id, household_id, "
                f"MAX(CASE WHEN outcome = %s THEN id END) AS eligible_change_id, "
                f"MAX(CASE WHEN previous_outcome = %s AND outcome <> %s THEN 1 ELSE 0 END) AS lost, "
                f"0 AS blocked "
                f"FROM {EligibilityChange._meta.db_table} WHERE id > %s AND id <= %s "
                f"AND (outcome = %s OR previous_outcome = %s) GROUP BY programme_id, household_id",
                [EligibilityOutcome.ELIGIBLE] * 3 + [after, upto] + [EligibilityOutcome.ELIGIBLE] * 2,
            )
            cursor.execute(f"CREATE INDEX {window}_p ON {window} (programme_id, household_id)")
            # Households already on their way (an open referral) or served (a current
            # enrolment) are marked before the inserts: a NOT EXISTS over the referrals table
            # inside the INSERT into that same table read every row inserted so far for each
            # new one (the planner, told the table was empty, chose a loop), and did not
            # finish at a million households.
            cursor.execute(
                f"UPDATE {window} SET blocked = 1 WHERE EXISTS (SELECT 1 FROM {table} x "
                f"WHERE x.household_id = {window}.household_id AND x.programme_id = {window}.programme_id "
                f"AND x.status IN ({open_list})) OR EXISTS (SELECT 1 FROM {enrolment_table} en "
                f"WHERE en.household_id = {window}.household_id AND en.programme_id = {window}.programme_id "
                f"AND en.status <> 'exited')"
            )
            if connection.vendor == "postgresql":
                cursor.execute(f"ANALYZE {window}")
            for programme in programmes:
                if programme.status == ProgrammeStatus.ACTIVE and programme.auto_referral != AutoReferral.OFF:
                    send = programme.auto_referral == AutoReferral.CREATE
                    status = S.SENT if send else S.DRAFT
                    cursor.execute(
                        f"INSERT INTO {table} (household_id, member_id, programme_id, agency_id, district_id, source, "
                        f"source_detail, reason, priority, notes, status, rejection_reason, status_note, due_date, "
                        f"overdue_since, eligibility_change_id, created_by_id, created_at, updated_at, sent_at, closed_at) "
                        f"SELECT r.household_id, NULL, %s, %s, h.district_id, %s, '', %s, %s, '', %s, '', '', %s, NULL, "
                        f"w.eligible_change_id, NULL, %s, %s, %s, NULL "
                        f"FROM {window} w "
                        f"JOIN {EligibilityResult._meta.db_table} r ON r.household_id = w.household_id AND r.programme_id = %s "
                        f"JOIN {Household._meta.db_table} h ON h.id = r.household_id "
                        f"WHERE w.programme_id = %s AND w.eligible_change_id IS NOT NULL AND w.blocked = 0 "
                        f"AND r.outcome = %s AND h.status = %s "
                        f"ON CONFLICT (household_id, programme_id) WHERE status IN ({open_list}) DO NOTHING",
                        [
                            programme.pk,
                            programme.agency_id,
                            ReferralSource.AUTOMATIC,
                            f"Became eligible for {programme.name}.",
                            ReferralPriority.NORMAL,
                            status,
                            _due_date(programme, today) if send else None,
                            now,
                            now,
                            now if send else None,
                            programme.pk,
                            programme.pk,
                            EligibilityOutcome.ELIGIBLE,
                            HouseholdStatus.ACTIVE,
                        ],
                    )
                    created = cursor.rowcount
                    report.created += created
                    report.sent += created if send else 0
                    if created:
                        _events_for_new(programme, status=status, now=now)
                # Suggestions the household no longer qualifies for are withdrawn.
                report.withdrawn += _withdraw_lost(programme, window=window, now=now)
            cursor.execute(f"DROP TABLE {window}")
        report.changes_consumed = EligibilityChange.objects.filter(pk__gt=after, pk__lte=upto).count()
        sweep.last_change_id, sweep.swept_at = upto, now
        sweep.save(update_fields=["last_change_id", "swept_at"])
    return report


def _enrolment_model():
    """Enrolments belong to the later `payments` app; referrals only read them (a household
    already enrolled is not referred again), so the model is looked up, not imported."""
    return apps.get_model("payments", "Enrolment")


def _currently_enrolled(*, household: Household, programme: Programme, member: Member | None) -> bool:
    enrolments = _enrolment_model().objects.filter(programme=programme).exclude(status="exited")
    if member is not None:
        return enrolments.filter(member=member).exists()
    return enrolments.filter(household=household).exists()


def _events_for_new(programme: Programme, *, status: str, now: datetime.datetime) -> None:
    new = Referral.objects.filter(programme=programme, source=ReferralSource.AUTOMATIC, created_at=now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ReferralEvent._meta.db_table} (referral_id, from_status, to_status, actor_id, agency_id, "
            f"reason, rejection_reason, idempotency_key, changes, at) "
            f"SELECT id, '', status, NULL, NULL, %s, '', '', {_empty_json()}, %s "
            f"FROM {Referral._meta.db_table} WHERE programme_id = %s AND source = %s AND created_at = %s",
            ["Automatic: the household became eligible.", now, programme.pk, ReferralSource.AUTOMATIC, now],
        )
    if status == S.SENT and programme.agency.referral_delivery == ReferralDelivery.WEBHOOK:
        events = (
            ReferralEvent.objects.filter(referral__in=new, to_status=S.SENT, at=now)
            .select_related(
                "referral__programme",
                "referral__agency",
                "referral__household__district",
                "referral__household__village",
                "referral__household__head",
                "referral__member",
            )
            .order_by("pk")
        )
        batch = []
        for event in events.iterator(chunk_size=DELIVERY_BATCH):
            referral = event.referral
            batch.append(
                Delivery(
                    referral=referral,
                    event=event,
                    agency_id=referral.agency_id,
                    idempotency_key=f"{referral.number}-{event.pk}-{uuid.uuid4().hex[:8]}",
                    payload=_payload(referral, event),
                )
            )
            if len(batch) >= DELIVERY_BATCH:
                Delivery.objects.bulk_create(batch)
                batch = []
        Delivery.objects.bulk_create(batch)
        # The beat sweep sends them (after this transaction commits).


def _withdraw_lost(programme: Programme, *, window: str, now: datetime.datetime) -> int:
    lost = RawSQL(f"SELECT household_id FROM {window} WHERE programme_id = %s AND lost = 1", [programme.pk])
    suggestions = Referral.objects.filter(
        programme=programme,
        source=ReferralSource.AUTOMATIC,
        status=S.DRAFT,
        household_id__in=lost,
    ).filter(
        # Eligible again since: keep the suggestion. NOT EXISTS, not NOT IN: a million eligible
        # households do not fit a hashed NOT IN in work_mem, and PostgreSQL then scanned them
        # again for every suggestion (the first sweep at a million households did not finish).
        ~Exists(
            EligibilityResult.objects.filter(
                programme=programme, household_id=OuterRef("household_id"), outcome=EligibilityOutcome.ELIGIBLE
            )
        )
    )
    ids = list(suggestions.values_list("pk", flat=True)[:1])
    if not ids:
        return 0
    reason = "Withdrawn: the household is no longer eligible."
    with connection.cursor() as cursor:
        select_sql, select_params = suggestions.values("pk").query.sql_with_params()
        cursor.execute(
            f"INSERT INTO {ReferralEvent._meta.db_table} (referral_id, from_status, to_status, actor_id, agency_id, "
            f"reason, rejection_reason, idempotency_key, changes, at) "
            f"SELECT id, %s, %s, NULL, NULL, %s, '', '', {_empty_json()}, %s FROM {Referral._meta.db_table} "
            f"WHERE id IN ({select_sql})",
            [S.DRAFT, S.CANCELLED, reason, now, *select_params],
        )
    return suggestions.update(status=S.CANCELLED, status_note=reason, closed_at=now, updated_at=now)


def _empty_json() -> str:
    return "CAST('{}' AS jsonb)" if connection.vendor == "postgresql" else "'{}'"


# --- for the pages: the moves a person may make, attachments, notifications read ----------


def referral_moves_for(*, referral: Referral, user) -> list[str]:
    """The statuses `user` may move `referral` to now, by the state machine and the same guards as
    `referral_transition`: what a page offers as buttons. `referral.agency` should be loaded."""
    moves = []
    for to_status in TRANSITIONS[referral.status]:
        try:
            _check_may_move(referral, to_status, user)
        except PermissionDenied:
            continue
        moves.append(to_status)
    return moves


# A scan or photo of a document; larger files are better kept where they were made.
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENT_EXTENSIONS = (".pdf", ".jpg", ".jpeg", ".png")


@transaction.atomic
def referral_attachment_add(*, acting_user, referral: Referral, file, description: str = "") -> ReferralAttachment:
    """Attach a document (a letter, a scan of an ID) to a referral: the window, or the referral's agency."""
    agency = _actor_agency(acting_user)
    from_agency = agency is not None and agency.pk == referral.agency_id
    from_window = acting_user.can_edit_registry and user_may_see_district(acting_user, referral.district_id)
    if not (from_agency or from_window):
        raise PermissionDenied("Only the window or the referral's agency can attach documents.")
    name = (getattr(file, "name", "") or "").lower()
    if not name.endswith(ATTACHMENT_EXTENSIONS):
        kinds = ", ".join(extension.lstrip(".").upper() for extension in ATTACHMENT_EXTENSIONS)
        raise ValidationError({"attachment": [f"Attach a {kinds} file."]})
    if file.size > ATTACHMENT_MAX_BYTES:
        raise ValidationError({"attachment": [f"The file is larger than {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB."]})
    return ReferralAttachment.objects.create(
        referral=referral, file=file, description=description.strip()[:200], uploaded_by=acting_user
    )


def notifications_mark_read(*, user, notification_ids: list[int] | None = None) -> int:
    """Mark the user's notifications read (all unread ones when no ids are given); returns how many changed."""
    notifications = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_ids is not None:
        notifications = notifications.filter(pk__in=notification_ids)
    return notifications.update(read_at=timezone.now())


__all__ = [
    "Actor",
    "AutoReferralReport",
    "TRANSITIONS",
    "notifications_mark_read",
    "referral_attachment_add",
    "referral_create",
    "referral_moves_for",
    "referral_number",
    "referral_transition",
    "referrals_from_eligibility",
]
