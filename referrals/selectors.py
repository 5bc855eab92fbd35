"""Reads of referrals for pages and the API: who may see which referral, the
window's worklist and the agency's queue, one household's referrals, and the
notifications a person has to act on.

Scope is decided once, in `referrals_for`: every other read starts from it.
"""

import datetime
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from registry.models import Household
from spf.models import Role
from spf.scope import scope_to_user

from .models import (
    OPEN_STATUSES,
    Delivery,
    DeliveryStatus,
    Notification,
    Referral,
    ReferralEvent,
    ReferralStatus,
    referral_id_from_number,
)

S = ReferralStatus

# Statuses in which the household is waiting on the agency: the ones a due
# date applies to (a draft has none yet, an accepted one is being served).
AWAITING_AGENCY = (S.SENT, S.RECEIVED)
# Sent, on its way or being served: what "open" means on the worklist, apart
# from the suggestions an officer has not confirmed yet.
IN_PROGRESS = (S.SENT, S.RECEIVED, S.ACCEPTED)


def referrals_for(user) -> QuerySet[Referral]:
    """Every referral `user` may see.

    Window users (front desk, committee) see their districts' referrals;
    programme officers see their own agency's referrals in their districts
    (none without an agency); ministry staff and superusers see all.
    """
    referrals = Referral.objects.all()
    if user is None or not user.is_authenticated:
        return referrals.none()
    if user.role == Role.PROGRAMME_OFFICER and not user.is_superuser:
        if user.agency_id is None:
            return referrals.none()
        referrals = referrals.filter(agency_id=user.agency_id)
    return scope_to_user(referrals, user)


def referral_for_number(*, user, number: str) -> Referral:
    """The referral a typed or scanned number ('R00000123', '123') names, within scope.

    Raises Referral.DoesNotExist when the number is malformed, unknown or
    outside what `user` may see: the caller cannot tell which, on purpose.
    """
    referral_id = referral_id_from_number(number)
    if referral_id is None:
        raise Referral.DoesNotExist(f"'{number}' is not a referral number.")
    return (
        referrals_for(user)
        .select_related(
            "household",
            "household__head",
            "household__village",
            "household__village__parent",
            "household__district",
            "programme",
            "agency",
            "member",
            "created_by",
        )
        .get(pk=referral_id)
    )


def referral_detail(*, user, number: str) -> Referral:
    """One referral with its timeline, attachments and deliveries, for its page; see `referral_for_number`."""
    referral = referral_for_number(user=user, number=number)
    referral.timeline = list(
        ReferralEvent.objects.filter(referral=referral).select_related("actor", "agency").order_by("at", "id")
    )
    referral.attachment_list = list(referral.attachments.select_related("uploaded_by").order_by("uploaded_at", "id"))
    referral.delivery_list = list(referral.deliveries.select_related("event").order_by("created_at", "id"))
    return referral


# --- the worklist and the queue ----------------------------------------------------------


class WorklistTab:
    OPEN = "open"
    OVERDUE = "overdue"
    FAILED = "failed"
    SUGGESTIONS = "suggestions"
    CLOSED = "closed"
    ALL = "all"

    # In the order the page shows them, with the words on each tab.
    CHOICES = (
        (OPEN, "Open"),
        (OVERDUE, "Overdue"),
        (FAILED, "Delivery failed"),
        (SUGGESTIONS, "Suggestions to confirm"),
        (CLOSED, "Closed"),
        (ALL, "All"),
    )


def _overdue(today: datetime.date) -> Q:
    # The beat job sets overdue_since once a day; a referral that fell due
    # since is overdue already, so the page does not wait for the job.
    return Q(status__in=IN_PROGRESS, overdue_since__isnull=False) | Q(status__in=AWAITING_AGENCY, due_date__lt=today)


def _tab_filter(tab: str, today: datetime.date) -> Q:
    return {
        WorklistTab.OPEN: Q(status__in=IN_PROGRESS),
        WorklistTab.OVERDUE: _overdue(today),
        WorklistTab.FAILED: Q(has_failed_delivery=True),
        WorklistTab.SUGGESTIONS: Q(status=S.DRAFT),
        WorklistTab.CLOSED: ~Q(status__in=OPEN_STATUSES),
        WorklistTab.ALL: Q(),
    }[tab]


@dataclass
class WorklistFilters:
    """What the officer narrowed the list to; empty means no narrowing."""

    programme: str = ""  # programme code
    agency: str = ""  # agency code
    ward: int | None = None  # ward (location) id
    status: str = ""
    sent_more_than_days: int | None = None
    sent_at_most_days: int | None = None

    def apply(self, referrals: QuerySet[Referral], *, today: datetime.date) -> QuerySet[Referral]:
        if self.programme:
            referrals = referrals.filter(programme__code=self.programme)
        if self.agency:
            referrals = referrals.filter(agency__code=self.agency)
        if self.ward:
            referrals = referrals.filter(household__village__parent_id=self.ward)
        if self.status:
            referrals = referrals.filter(status=self.status)
        # Age is counted in whole days since the referral was sent, as the
        # officer says it ("sent more than two weeks ago").
        if self.sent_more_than_days is not None:
            referrals = referrals.filter(sent_at__date__lt=today - datetime.timedelta(days=self.sent_more_than_days))
        if self.sent_at_most_days is not None:
            referrals = referrals.filter(sent_at__date__gte=today - datetime.timedelta(days=self.sent_at_most_days))
        return referrals


@dataclass
class Worklist:
    referrals: QuerySet[Referral]
    counts: dict[str, int] = field(default_factory=dict)


def referral_worklist(
    *, user, tab: str = WorklistTab.OPEN, filters: WorklistFilters | None = None, today: datetime.date | None = None
) -> Worklist:
    """The window's worklist or the agency's queue (the same list, scoped by `referrals_for`).

    `referrals` is the chosen tab's rows, filtered, oldest due date first,
    ready to paginate (everything a row shows is joined: one query a page).
    `counts` holds every tab's count under the same filters, in one query.
    """
    today = today or timezone.localdate()
    filters = filters or WorklistFilters()
    failed = Delivery.objects.filter(referral=OuterRef("pk"), status=DeliveryStatus.FAILED)
    scoped = filters.apply(referrals_for(user), today=today).annotate(has_failed_delivery=Exists(failed))
    counts = scoped.order_by().aggregate(
        **{key: Count("pk", filter=_tab_filter(key, today)) for key, _ in WorklistTab.CHOICES}
    )
    ordering = ["-closed_at", "-id"] if tab == WorklistTab.CLOSED else ["due_date", "created_at", "id"]
    rows = (
        scoped.filter(_tab_filter(tab, today))
        .select_related(
            "household",
            "household__head",
            "household__village",
            "household__village__parent",
            "programme",
            "agency",
            "member",
        )
        .order_by(*ordering)
    )
    return Worklist(referrals=rows, counts=counts)


def referral_is_overdue(referral: Referral, *, today: datetime.date | None = None) -> bool:
    """The same test as the worklist's overdue tab, for one referral already loaded."""
    today = today or timezone.localdate()
    if referral.status in IN_PROGRESS and referral.overdue_since is not None:
        return True
    return referral.status in AWAITING_AGENCY and referral.due_date is not None and referral.due_date < today


# --- a household's referrals ---------------------------------------------------------------


@dataclass
class HouseholdReferrals:
    """What the household page shows: every referral the user may see, newest first, and the open one per programme."""

    household: Household
    referrals: list[Referral]
    open_by_programme: dict[int, Referral]

    @property
    def open(self) -> list[Referral]:
        return [r for r in self.referrals if r.status in OPEN_STATUSES]

    @property
    def sent_open(self) -> list[Referral]:
        """The open referrals that were sent: what a slip lists."""
        return [r for r in self.referrals if r.status in IN_PROGRESS]


def household_referrals(*, user, household: Household) -> HouseholdReferrals:
    """One query: the household's referrals within the user's scope, with what the page and the slip show."""
    referrals = list(
        referrals_for(user)
        .filter(household=household)
        .select_related("programme", "agency", "member")
        .order_by("-created_at", "-id")
    )
    return HouseholdReferrals(
        household=household,
        referrals=referrals,
        open_by_programme={r.programme_id: r for r in referrals if r.status in OPEN_STATUSES},
    )


# --- notifications ----------------------------------------------------------------------------


def notifications_for(*, user, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's notifications, newest first, with the referral each is about."""
    notifications = Notification.objects.filter(recipient=user).select_related(
        "referral", "referral__household", "referral__programme"
    )
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications.order_by("-created_at", "-id")


def unread_notification_count(*, user) -> int:
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


__all__ = [
    "HouseholdReferrals",
    "Worklist",
    "WorklistFilters",
    "WorklistTab",
    "household_referrals",
    "notifications_for",
    "referral_detail",
    "referral_for_number",
    "referral_is_overdue",
    "referral_worklist",
    "referrals_for",
    "unread_notification_count",
]
