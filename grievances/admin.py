"""Grievances in the Django admin: browse-only.

Every change to a grievance is a step of the state machine in
`grievances.services`, which checks who may take it and records it; an admin
form would bypass both. So grievances, their history and their documents are
read here and worked at the window (the worklist) or over the API.

Scoped exactly like `grievances.selectors.grievances_for`: the user's
districts, and a sensitive grievance only for a designated officer (the
permission "Can see and handle sensitive grievances", given to a user or a
group here in the admin) or whoever recorded it. There is no shortcut for
ministry staff: they see every district, but a sensitive grievance only with
the designation. A row outside the user's scope is a 404, not a page
admitting it exists. Ministry staff see these models by their role; other
staff need Django's view permission.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from programmes.models import Agency
from registry.admin import FRONT_DESK_HOUSEHOLD_PATH, DistrictFilter, DistrictScopedAdmin, ReadOnlyAdminMixin
from spf.models import Role, User

from .api.filters import overdue_condition
from .models import Grievance, GrievanceAttachment, GrievanceEvent, grievance_id_from_number, grievance_number
from .selectors import grievances_for

# A grievance's inline history shows its latest steps; one that moved more
# often than this is rare, and its full history is in the event list.
EVENTS_INLINE_LIMIT = 50


def _is_ministry(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.is_superuser or user.role == Role.MINISTRY))


# The history keeps who a grievance was assigned to by id; a person reads names.
_NAMED_BY_ID = {
    "assigned_to": lambda pk: User.objects.filter(pk=pk).values_list("username", flat=True).first(),
    "assigned_agency": lambda pk: Agency.objects.filter(pk=pk).values_list("code", flat=True).first(),
}


def _readable(field: str, value) -> str:
    if value in (None, ""):
        return "—"
    if field in _NAMED_BY_ID and isinstance(value, int):
        return _NAMED_BY_ID[field](value) or f"#{value}"
    return str(value)


def _changes_text(changes: dict) -> str:
    """{"assigned_to": [old, new]} as "assigned to: old → new"; what did not change is left out."""
    parts = []
    for field, pair in (changes or {}).items():
        old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        if old == new:
            continue
        parts.append(f"{field.replace('_', ' ')}: {_readable(field, old)} → {_readable(field, new)}")
    return "; ".join(parts) or "—"


def _download_link(attachment: GrievanceAttachment) -> str:
    # Through the API, which checks scope on every download; the storage's own
    # URL would hand the file to anyone who has the address.
    return format_html(
        '<a href="/api/v1/grievances/{}/attachments/{}/">{}</a>',
        attachment.grievance_id,
        attachment.pk,
        attachment.file.name.rsplit("/", 1)[-1],
    )


class GrievanceScopedAdmin(DistrictScopedAdmin):
    """Browse-only, scoped by `grievances_for` (districts, sensitivity, the agency for its officers)."""

    # The path from the model to its grievance ("" for the grievance itself).
    grievance_path = "grievance"

    def has_module_permission(self, request):
        return _is_ministry(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return _is_ministry(request.user) or super().has_view_permission(request, obj)

    def get_queryset(self, request):
        # Scope comes from `grievances_for`, not from the registry's
        # district-only scoping that DistrictScopedAdmin applies: the district
        # alone would show a sensitive grievance to the whole district.
        queryset = admin.ModelAdmin.get_queryset(self, request)
        lookup = f"{self.grievance_path}__in" if self.grievance_path else "pk__in"
        return queryset.filter(**{lookup: grievances_for(request.user).values("pk")})

    def _search_by_number(self, queryset, search_term: str, *, text_field: str):
        """A grievance number (G00000042, or 42), a household number (or its start), or words of the text."""
        term = search_term.strip()
        if not term:
            return queryset, False
        prefix = f"{self.grievance_path}__" if self.grievance_path else ""
        q = Q(**{f"{prefix}household__number__startswith": term.upper()}) | Q(**{f"{text_field}__icontains": term})
        grievance_id = grievance_id_from_number(term)
        if grievance_id is not None:
            q |= Q(**{f"{prefix}pk": grievance_id})
        return queryset.filter(q), False


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request, queryset):
        # The same test as the worklist and the API: still open and past its deadline.
        overdue = overdue_condition(today=timezone.localdate())
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


class GrievanceEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = GrievanceEvent
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["at", "id"]
    fields = ["at", "from_status", "to_status", "actor", "note", "what_changed"]
    readonly_fields = fields
    verbose_name_plural = f"history (latest {EVENTS_INLINE_LIMIT}; the full list is under grievance events)"

    def has_view_permission(self, request, obj=None):
        return _is_ministry(request.user) or super().has_view_permission(request, obj)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("actor")
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if object_id and str(object_id).isdigit():
            # An inline's queryset cannot be sliced: keep the latest by id.
            latest = list(
                GrievanceEvent.objects.filter(grievance_id=int(object_id))
                .order_by("-at", "-id")
                .values_list("pk", flat=True)[:EVENTS_INLINE_LIMIT]
            )
            queryset = queryset.filter(pk__in=latest)
        return queryset

    @admin.display(description="what changed")
    def what_changed(self, event: GrievanceEvent) -> str:
        return _changes_text(event.changes)


class GrievanceAttachmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = GrievanceAttachment
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["uploaded_at", "id"]
    fields = ["document", "description", "uploaded_by", "uploaded_at"]
    readonly_fields = fields
    verbose_name_plural = "documents"

    def has_view_permission(self, request, obj=None):
        return _is_ministry(request.user) or super().has_view_permission(request, obj)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("uploaded_by")

    @admin.display(description="document")
    def document(self, attachment: GrievanceAttachment) -> str:
        return _download_link(attachment)


@admin.register(Grievance)
class GrievanceAdmin(GrievanceScopedAdmin):
    grievance_path = ""
    list_display = [
        "number",
        "category",
        "status",
        "household_number",
        "programme_code",
        "district_name",
        "priority",
        "sensitive",
        "due_date",
        "overdue",
        "assigned",
    ]
    list_filter = [
        DistrictFilter,
        "status",
        "category",
        OverdueFilter,
        "sensitive",
        "priority",
        "channel",
        "escalated_to",
        "programme",
    ]
    list_select_related = ["household", "programme", "district", "assigned_to", "assigned_agency"]
    search_fields = ["description"]
    search_help_text = "A grievance number (G and eight digits, or the digits alone), a household number (or its start), or words of the description."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = [
        "number",
        "status",
        "category",
        "sensitive",
        "priority",
        "channel",
        "description",
        "complainant",
        "complainant_name",
        "complainant_contact",
        "anonymous",
        "household",
        "front_desk",
        "programme",
        "payment",
        "district",
        "due_date",
        "overdue_since",
        "assigned_to",
        "assigned_agency",
        "escalated_to",
        "appealed_rule_version",
        "appealed_outcome",
        "appeal_outcome",
        "outcome_after",
        "resolution",
        "resolution_accepted",
        "created_by",
        "created_at",
        "acknowledged_at",
        "resolved_at",
        "closed_at",
        "updated_at",
    ]
    readonly_fields = fields
    inlines = [GrievanceEventInline, GrievanceAttachmentInline]
    show_full_result_count = False

    @admin.display(description="number", ordering="pk")
    def number(self, grievance: Grievance) -> str:
        return grievance.number

    @admin.display(description="household", ordering="household__number")
    def household_number(self, grievance: Grievance) -> str:
        # Kept on one line: a number people read out (SAM-000123) in a narrow column.
        if not grievance.household_id:
            return "—"
        return format_html('<span class="spf-nowrap">{}</span>', grievance.household.number)

    @admin.display(description="programme", ordering="programme__code")
    def programme_code(self, grievance: Grievance) -> str:
        return grievance.programme.code if grievance.programme_id else "—"

    @admin.display(description="district", ordering="district__name")
    def district_name(self, grievance: Grievance) -> str:
        return grievance.district.name

    @admin.display(description="overdue", boolean=True)
    def overdue(self, grievance: Grievance) -> bool:
        return grievance.is_open and grievance.due_date < timezone.localdate()

    @admin.display(description="assigned to")
    def assigned(self, grievance: Grievance) -> str:
        if grievance.assigned_to_id:
            return grievance.assigned_to.username
        if grievance.assigned_agency_id:
            return grievance.assigned_agency.code
        return "—"

    @admin.display(description="front desk")
    def front_desk(self, grievance: Grievance) -> str:
        if not grievance.household_id:
            return "—"
        return format_html(
            '<a href="{}">Open the household at the front desk</a>',
            FRONT_DESK_HOUSEHOLD_PATH.format(pk=grievance.household_id),
        )

    def get_search_results(self, request, queryset, search_term):
        return self._search_by_number(queryset, search_term, text_field="description")


@admin.register(GrievanceEvent)
class GrievanceEventAdmin(GrievanceScopedAdmin):
    list_display = ["at", "grievance_number", "from_status", "to_status", "actor", "note"]
    list_filter = ["to_status"]
    list_select_related = ["actor"]
    search_fields = ["note"]
    search_help_text = "A grievance number, a household number, or words of the note."
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    fields = ["grievance", "at", "from_status", "to_status", "actor", "note", "what_changed", "idempotency_key"]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="grievance", ordering="grievance_id")
    def grievance_number(self, event: GrievanceEvent) -> str:
        return grievance_number(event.grievance_id)

    @admin.display(description="what changed")
    def what_changed(self, event: GrievanceEvent) -> str:
        return _changes_text(event.changes)

    def get_search_results(self, request, queryset, search_term):
        return self._search_by_number(queryset, search_term, text_field="note")


@admin.register(GrievanceAttachment)
class GrievanceAttachmentAdmin(GrievanceScopedAdmin):
    list_display = ["uploaded_at", "grievance_number", "document", "description", "uploaded_by"]
    list_select_related = ["uploaded_by"]
    search_fields = ["description"]
    search_help_text = "A grievance number, a household number, or words of the description."
    date_hierarchy = "uploaded_at"
    ordering = ["-uploaded_at", "-id"]
    fields = ["grievance", "document", "description", "uploaded_by", "uploaded_at"]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="grievance", ordering="grievance_id")
    def grievance_number(self, attachment: GrievanceAttachment) -> str:
        return grievance_number(attachment.grievance_id)

    @admin.display(description="document")
    def document(self, attachment: GrievanceAttachment) -> str:
        return _download_link(attachment)

    def get_search_results(self, request, queryset, search_term):
        return self._search_by_number(queryset, search_term, text_field="description")
