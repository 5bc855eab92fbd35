"""Referrals in the Django admin: browse-only.

Every change to a referral is a move of the state machine
(`referrals.services.referral_transition`), which checks who may make it and
records it; an admin form would bypass both. So referrals, their events,
attachments and the notifications are read here, scoped like `referrals_for`
(a row outside the user's scope is a 404, not a page admitting it exists), and
acted on at the window's worklist or the agency's queue. The automatic
referrals' watermark is shown too, to see whether they keep up.

The deliveries to agencies' systems (and their "Retry delivery") are in
`referrals.delivery_admin`, imported at the end of this module.
"""

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from programmes.models import EligibilityChange
from registry.admin import FRONT_DESK_HOUSEHOLD_PATH, DistrictFilter, DistrictScopedAdmin, ReadOnlyAdminMixin, nowrap
from spf.admin import MinistryRoleAccess
from spf.models import Role

from .models import (
    EligibilitySweep,
    Notification,
    Referral,
    ReferralAttachment,
    ReferralEvent,
    referral_id_from_number,
)
from .selectors import AWAITING_AGENCY, IN_PROGRESS, referral_is_overdue, referrals_for

# A referral's inline timeline shows the latest events; a referral that moved
# more often than this is rare, and its full timeline is in the event list.
EVENTS_INLINE_LIMIT = 50


def _sees_every_referral(user) -> bool:
    return user.is_superuser or user.role == Role.MINISTRY


class ReferralScopedAdmin(DistrictScopedAdmin):
    """Browse-only, scoped like `referrals_for` (districts, and the agency for its officers).

    Ministry staff see referrals by their role (they follow up every
    district); other staff need Django's view permission.
    """

    # The path from the model to its referral ("" for the referral itself).
    referral_path = "referral"

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


class ReferralEventInline(ReadOnlyAdminMixin, MinistryRoleAccess, admin.TabularInline):
    model = ReferralEvent
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "actor", "agency", "reason", "rejection_reason", "idempotency_key"]
    readonly_fields = fields
    ordering = ["at", "id"]
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "agency")


def _attachment_link(attachment: ReferralAttachment) -> str:
    # Through the referral's page, which checks the scope again before it serves the file.
    name = attachment.file.name.rsplit("/", 1)[-1]
    url = reverse("referrals:attachment", args=[attachment.referral.number, attachment.pk])
    return format_html('<a href="{}">{}</a>', url, name)


class ReferralAttachmentInline(ReadOnlyAdminMixin, MinistryRoleAccess, admin.TabularInline):
    model = ReferralAttachment
    extra = 0
    can_delete = False
    fields = ["file_link", "description", "uploaded_by", "uploaded_at"]
    readonly_fields = fields
    verbose_name_plural = "documents attached"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("referral", "uploaded_by")

    @admin.display(description="file")
    def file_link(self, attachment: ReferralAttachment) -> str:
        return _attachment_link(attachment)


@admin.register(Referral)
class ReferralAdmin(ReferralScopedAdmin):
    referral_path = ""
    list_display = [
        "number",
        "household_number",
        "programme",
        "agency_code",
        "district_name",
        "status",
        "due_date",
        "overdue",
        "created_at",
    ]
    list_filter = [DistrictFilter, "status", OverdueFilter, "agency", "programme", "source", "priority"]
    list_select_related = ["household", "programme", "agency", "district"]
    search_fields = ["household__number"]
    # No example number in the help: an example is some referral's real number.
    search_help_text = (
        "A referral number as on the slip (R and eight digits; the R and the leading zeros may be left out), "
        "or a household number (or its start)."
    )
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [
        "number",
        "status",
        "household",
        "front_desk",
        "elsewhere",
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
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("number", "status"),
                    "household",
                    "front_desk",
                    "elsewhere",
                    "member",
                    "programme",
                    "agency",
                    "district",
                )
            },
        ),
        (
            "Why it was made",
            {"fields": ("source", "source_detail", "reason", "priority", "notes", "eligibility_change")},
        ),
        ("The last decision", {"fields": ("rejection_reason", "status_note")}),
        (
            "Dates",
            {
                "fields": (
                    ("created_at", "created_by"),
                    ("sent_at", "due_date", "overdue_since"),
                    ("closed_at", "updated_at"),
                )
            },
        ),
    )
    inlines = [ReferralEventInline, ReferralAttachmentInline]
    show_full_result_count = False

    @admin.display(description="number", ordering="pk")
    def number(self, referral: Referral) -> str:
        return referral.number

    @admin.display(description="household", ordering="household__number")
    def household_number(self, referral: Referral) -> str:
        return nowrap(referral.household.number)

    @admin.display(description="agency", ordering="agency__code")
    def agency_code(self, referral: Referral) -> str:
        # The code: the full names of ministries would take half the list's width.
        return format_html('<span title="{}">{}</span>', referral.agency.name, referral.agency.code)

    @admin.display(description="district", ordering="district__name")
    def district_name(self, referral: Referral) -> str:
        return referral.district.name

    @admin.display(description="in other lists")
    def elsewhere(self, referral: Referral) -> str:
        # A display method gets no request: `get_object` notes the links the user may follow.
        links = getattr(referral, "elsewhere_links", [])
        return format_html_join(" · ", '<a href="{1}">{0}</a>', links) or "—"

    def get_object(self, request, object_id, from_field=None):
        referral = super().get_object(request, object_id, from_field)
        links = []
        # Each delivery's idempotency key starts with the referral's number; an
        # enrolment is found by its household's number.
        for app_label, model_name, label, term in (
            ("referrals", "delivery", "deliveries to the agency's system", referral.number),
            ("payments", "enrolment", "the household's enrolments", referral.household.number),
        ):
            model_admin = next(
                (
                    candidate
                    for candidate in self.admin_site._registry.values()
                    if (candidate.model._meta.app_label, candidate.model._meta.model_name) == (app_label, model_name)
                ),
                None,
            )
            if model_admin is not None and model_admin.has_view_permission(request):
                links.append((label, f"{reverse(f'admin:{app_label}_{model_name}_changelist')}?q={term}"))
        referral.elsewhere_links = links
        return referral

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
    list_filter = ["to_status", "from_status", "agency"]
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

    list_display = ["created_at", "recipient", "kind", "message", "referral", "read_at"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter)]
    list_select_related = ["recipient", "referral__programme", "referral__household"]
    search_fields = ["recipient__username", "message"]
    search_help_text = "Who was told (a user name), or words of the message."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = ["recipient", "referral", "kind", "message", "created_at", "read_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if _sees_every_referral(request.user):
            return queryset
        return queryset.filter(Q(recipient=request.user) | Q(referral__in=referrals_for(request.user).values("pk")))


@admin.register(ReferralAttachment)
class ReferralAttachmentAdmin(ReferralScopedAdmin):
    """The documents attached to referrals (a letter, a scan of an ID), scoped like the referrals.
    Attached at the referral's page through `referral_attachment_add`; read here."""

    list_display = ["uploaded_at", "referral_link", "file_link", "description", "uploaded_by"]
    list_select_related = ["referral", "uploaded_by"]
    search_fields = ["description"]
    search_help_text = "A referral number as on the slip, or words of the description."
    date_hierarchy = "uploaded_at"
    ordering = ["-uploaded_at", "-id"]
    fields = ["referral", "file_link", "description", "uploaded_by", "uploaded_at"]
    readonly_fields = fields

    @admin.display(description="referral", ordering="referral_id")
    def referral_link(self, attachment: ReferralAttachment) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:referrals_referral_change", args=[attachment.referral_id]),
            attachment.referral.number,
        )

    @admin.display(description="file")
    def file_link(self, attachment: ReferralAttachment) -> str:
        return _attachment_link(attachment)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        q = Q(description__icontains=term)
        referral_id = referral_id_from_number(term)
        if referral_id is not None:
            q |= Q(referral_id=referral_id)
        return queryset.filter(q), False


@admin.register(EligibilitySweep)
class EligibilitySweepAdmin(ReadOnlyAdminMixin, MinistryRoleAccess, admin.ModelAdmin):
    """How far automatic referrals have read the eligibility changes: the first place to look when
    households become eligible and no referral follows. Written only by the beat job; no district."""

    list_display = ["name", "last_change_id", "swept_at", "changes_waiting"]
    fields = ["name", "last_change_id", "swept_at", "changes_waiting"]
    readonly_fields = fields

    @admin.display(description="eligibility changes not yet read")
    def changes_waiting(self, sweep: EligibilitySweep) -> str:
        # Counted on the page of one sweep or a list of a handful: by the
        # primary key, an index range scan from the watermark.
        return f"{EligibilityChange.objects.filter(pk__gt=sweep.last_change_id).count():,}"


# The delivery admin is written beside this one; until its file exists the
# rest of the referral admin works without it.
try:
    from . import delivery_admin  # noqa: F401
except ModuleNotFoundError as missing:
    if missing.name != f"{__package__}.delivery_admin":
        raise
