"""Referrals in the Django admin: browse-only.

Every change to a referral is a move of the state machine
(`referrals.services.referral_transition`), which checks who may make it and
records it; an admin form would bypass both. So referrals, their events and
the notifications are read here, scoped like the registry's households (a row
outside the user's scope is a 404, not a page admitting it exists), and acted
on at the window's worklist or the agency's queue.

The deliveries to agencies' systems (and their "Retry delivery") are in
`referrals.delivery_admin`, imported at the end of this module.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from registry.admin import FRONT_DESK_HOUSEHOLD_PATH, DistrictFilter, DistrictScopedAdmin, ReadOnlyAdminMixin
from spf.models import Role

from .models import Notification, Referral, ReferralEvent, referral_id_from_number
from .selectors import AWAITING_AGENCY, IN_PROGRESS, referral_is_overdue, referrals_for

# A referral's inline timeline shows the latest events; a referral that moved
# more often than this is rare, and its full timeline is in the event list.
EVENTS_INLINE_LIMIT = 50


def _sees_every_referral(user) -> bool:
    return user.is_superuser or user.role == Role.MINISTRY


def _is_ministry(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.is_superuser or user.role == Role.MINISTRY))


class ReferralScopedAdmin(DistrictScopedAdmin):
    """Browse-only, scoped like `referrals_for` (districts, and the agency for its officers).

    Ministry staff see referrals by their role (they follow up every
    district); other staff need Django's view permission.
    """

    # The path from the model to its referral ("" for the referral itself).
    referral_path = "referral"

    def has_module_permission(self, request):
        return _is_ministry(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return _is_ministry(request.user) or super().has_view_permission(request, obj)

    def get_queryset(self, request):
        # Scope comes from `referrals_for` (districts and agency), not from the
        # registry's district-only scoping that DistrictScopedAdmin applies.
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if _sees_every_referral(request.user):
            return queryset
        lookup = f"{self.referral_path}__in" if self.referral_path else "pk__in"
        return queryset.filter(**{lookup: referrals_for(request.user).values("pk")})


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request, queryset):
        # The same test as the worklist's overdue tab (`referral_is_overdue`).
        overdue = Q(status__in=IN_PROGRESS, overdue_since__isnull=False) | Q(
            status__in=AWAITING_AGENCY, due_date__lt=timezone.localdate()
        )
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


class ReferralEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ReferralEvent
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "actor", "agency", "reason", "rejection_reason", "idempotency_key"]
    readonly_fields = fields
    ordering = ["at", "id"]
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "agency")


@admin.register(Referral)
class ReferralAdmin(ReferralScopedAdmin):
    referral_path = ""
    list_display = [
        "number",
        "household_number",
        "programme",
        "agency",
        "status",
        "due_date",
        "overdue",
        "created_at",
    ]
    list_filter = [DistrictFilter, "status", OverdueFilter, "agency", "programme", "source", "priority"]
    list_select_related = ["household", "programme", "agency"]
    search_fields = ["household__number"]
    search_help_text = "A referral number (R00000123, or 123) or a household number (or its start)."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = [
        "number",
        "status",
        "household",
        "front_desk",
        "member",
        "programme",
        "agency",
        "district",
        "source",
        "source_detail",
        "reason",
        "priority",
        "notes",
        "rejection_reason",
        "status_note",
        "due_date",
        "overdue_since",
        "eligibility_change",
        "created_by",
        "created_at",
        "sent_at",
        "closed_at",
        "updated_at",
    ]
    readonly_fields = fields
    inlines = [ReferralEventInline]
    show_full_result_count = False

    @admin.display(description="number", ordering="pk")
    def number(self, referral: Referral) -> str:
        return referral.number

    @admin.display(description="household", ordering="household__number")
    def household_number(self, referral: Referral) -> str:
        return referral.household.number

    @admin.display(description="overdue", boolean=True)
    def overdue(self, referral: Referral) -> bool:
        return referral_is_overdue(referral)

    @admin.display(description="front desk")
    def front_desk(self, referral: Referral) -> str:
        return format_html(
            '<a href="{}">Open the household at the front desk</a>',
            FRONT_DESK_HOUSEHOLD_PATH.format(pk=referral.household_id),
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        q = Q(household__number__startswith=term)
        referral_id = referral_id_from_number(term)
        if referral_id is not None:
            q |= Q(pk=referral_id)
        return queryset.filter(q), False


@admin.register(ReferralEvent)
class ReferralEventAdmin(ReferralScopedAdmin):
    list_display = ["at", "referral_number", "from_status", "to_status", "actor", "agency", "reason"]
    list_filter = ["to_status", "agency"]
    list_select_related = ["referral", "actor", "agency"]
    search_fields = ["referral__household__number"]
    search_help_text = "A referral number or a household number."
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    fields = [
        "referral",
        "at",
        "from_status",
        "to_status",
        "actor",
        "agency",
        "reason",
        "rejection_reason",
        "idempotency_key",
        "changes",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="referral", ordering="referral_id")
    def referral_number(self, event: ReferralEvent) -> str:
        return event.referral.number

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        q = Q(referral__household__number__startswith=term)
        referral_id = referral_id_from_number(term)
        if referral_id is not None:
            q |= Q(referral_id=referral_id)
        return queryset.filter(q), False


@admin.register(Notification)
class NotificationAdmin(ReferralScopedAdmin):
    """Who was told what. A person sees their own notices and those about referrals in their scope."""

    list_display = ["created_at", "recipient", "kind", "message", "read_at"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter)]
    list_select_related = ["recipient"]
    search_fields = ["recipient__username", "message"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = ["recipient", "referral", "kind", "message", "created_at", "read_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if _sees_every_referral(request.user):
            return queryset
        return queryset.filter(Q(recipient=request.user) | Q(referral__in=referrals_for(request.user).values("pk")))


# The delivery admin is written beside this one; until its file exists the
# rest of the referral admin works without it.
try:
    from . import delivery_admin  # noqa: F401
except ModuleNotFoundError as missing:
    if missing.name != f"{__package__}.delivery_admin":
        raise
