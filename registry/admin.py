"""The ministry's view of the registry in the Django admin.

Ministry staff manage locations and attribute definitions here. Households,
members, their history and import jobs are browse-only: every change to a
household goes through `registry.services`, which checks scope and role and
writes the history; an admin form would bypass all three.

Personal data is scoped like everywhere else: a staff user who is neither a
superuser nor ministry staff sees only the rows of their districts, and an
out-of-scope object's URL is a 404, not a page that admits it exists.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from spf.scope import district_ids_for, scope_to_user

from . import names
from .countries import current_country
from .models import (
    LEVEL_PARENT,
    AttributeDefinition,
    AttributeType,
    ChangeEntry,
    Household,
    HouseholdNumberSequence,
    ImportJob,
    Location,
    LocationLevel,
    Member,
)
from .selectors import districts_for
from .services import locations_load

# The front-desk page of a household; a plain path so the admin does not
# depend on the front desk's URL names.
FRONT_DESK_HOUSEHOLD_PATH = "/households/{pk}/"
# A household's inline history shows the latest entries; the full history is
# one click away in the change-entry list, filtered to the household.
HISTORY_INLINE_LIMIT = 50

admin.site.site_header = "Single-window social protection: ministry administration"
admin.site.site_title = "SPF administration"
admin.site.index_title = "Registry, programmes and users"


# --- scoping ---------------------------------------------------------------------


class DistrictFilter(admin.SimpleListFilter):
    """Filter by district, offering only the districts the user may see."""

    title = "district"
    parameter_name = "district"
    district_field = "district"

    def lookups(self, request, model_admin):
        return [(str(d.pk), d.name) for d in districts_for(request.user).order_by("name")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.district_field: int(value)})


class HouseholdDistrictFilter(DistrictFilter):
    district_field = "household__district"


class ReadOnlyAdminMixin:
    """Browse only: the services are the one way to change these rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DistrictScopedAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Rows outside the user's districts do not exist for them, not even by URL."""

    # The path from the model to its district, as `scope_to_user` takes it.
    district_field = "district"

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user, district_field=self.district_field)

    def get_object(self, request, object_id, from_field=None):
        # The admin's default for a missing object is a redirect with a message
        # naming the model and id; for another district's household that would
        # confirm the id exists. A 404 says nothing.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such record in your districts.")
        return obj


def _front_desk_link(household: Household) -> str:
    return format_html('<a href="{}">Open at the front desk</a>', FRONT_DESK_HOUSEHOLD_PATH.format(pk=household.pk))


def _changes_text(entry: ChangeEntry) -> str:
    parts = []
    for field, pair in (entry.changes or {}).items():
        old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        parts.append(f"{field}: {_readable(old)} → {_readable(new)}")
    return "; ".join(parts)


def _readable(value) -> str:
    if value in (None, ""):
        return "—"
    if isinstance(value, dict) and "label" in value:
        return str(value["label"])
    return str(value)


# --- locations -------------------------------------------------------------------


class LocationForm(forms.ModelForm):
    class Meta:
        model = Location
        fields = ["code", "name", "level", "parent"]

    def clean(self):
        cleaned = super().clean()
        level, parent = cleaned.get("level"), cleaned.get("parent")
        if self.instance.pk:
            level, parent = self.instance.level, self.instance.parent
        if not level:
            return cleaned
        expected = LEVEL_PARENT[LocationLevel(level)]
        if expected is None and parent is not None:
            self.add_error("parent", "A province has no parent.")
        elif expected is not None and (parent is None or parent.level != expected):
            self.add_error("parent", f"A {level} must sit under a {expected}.")
        return cleaned


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    form = LocationForm
    list_display = ["code", "name", "level", "parent", "district", "hierarchy"]
    list_filter = ["level"]
    search_fields = ["code", "name"]
    list_select_related = ["parent__parent__parent", "district"]
    ordering = ["code"]
    list_per_page = 100

    def get_readonly_fields(self, request, obj=None):
        # Code, level and parent of an existing location are fixed: household
        # numbers carry the district's code, and moving a ward would silently
        # move every household under it to another district, with no history.
        if obj is not None:
            return ["code", "level", "parent", "district", "hierarchy"]
        return ["district"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "parent":
            kwargs["queryset"] = Location.objects.exclude(level=LocationLevel.VILLAGE).order_by("level", "name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="place in the country")
    def hierarchy(self, obj: Location) -> str:
        chain, node = [], obj
        while node is not None:
            chain.append(node.name)
            node = node.parent
        return " › ".join(reversed(chain))

    def save_model(self, request, obj, form, change):
        # The service decides each location's district (itself for a district,
        # its parent's for a ward or village), so the admin loads the row the
        # same way the country's locations file is loaded.
        row = {
            "level": obj.level,
            "code": obj.code,
            "name": obj.name,
            "parent_code": obj.parent.code if obj.parent_id else "",
        }
        try:
            locations_load(rows=[row])
        except ValidationError as problem:
            # The form has already checked level and parent; a failure here is a
            # race with another edit, shown rather than swallowed.
            raise ValidationError(problem.messages) from problem
        saved = Location.objects.get(code=obj.code)
        obj.pk, obj.district_id = saved.pk, saved.district_id


# --- attribute definitions ---------------------------------------------------------


class AttributeDefinitionForm(forms.ModelForm):
    allowed_values = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="For 'one of a list': one allowed value per line. Leave empty for every other type.",
    )

    class Meta:
        model = AttributeDefinition
        fields = ["entity", "key", "label", "type", "allowed_values", "required", "help_text", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.instance.allowed_values, list):
            self.initial["allowed_values"] = "\n".join(str(v) for v in self.instance.allowed_values)

    def clean_allowed_values(self):
        text = self.cleaned_data.get("allowed_values") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(admin.ModelAdmin):
    form = AttributeDefinitionForm
    list_display = ["key", "label", "entity", "type", "required", "active", "allowed_values_text"]
    list_filter = ["entity", "type", "active", "required"]
    search_fields = ["key", "label"]

    @admin.display(description="allowed values")
    def allowed_values_text(self, obj: AttributeDefinition) -> str:
        return ", ".join(str(v) for v in obj.allowed_values) if obj.type == AttributeType.CHOICE else ""

    def has_delete_permission(self, request, obj=None):
        # Households keep the values of a retired definition; retire it with
        # 'active' instead, so its values stay readable and its key taken.
        return False


# --- households and members ----------------------------------------------------------


class MemberInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Member
    fields = ["full_name_link", "sex", "date_of_birth", "relationship", "national_id", "phone", "status"]
    readonly_fields = fields
    extra = 0
    show_change_link = False

    @admin.display(description="name")
    def full_name_link(self, obj: Member) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:registry_member_change", args=[obj.pk]), obj.full_name)


class ChangeEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ChangeEntry
    fk_name = "household"
    fields = ["at", "action", "entity", "member", "actor", "changes_text", "note"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = f"change history (latest {HISTORY_INLINE_LIMIT}; the full list is under change entries)"

    def get_queryset(self, request):
        # An inline's queryset cannot be sliced, so the latest entries are
        # chosen by id first.
        queryset = super().get_queryset(request).select_related("actor", "member")
        household_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if household_id and str(household_id).isdigit():
            latest = list(
                ChangeEntry.objects.filter(household_id=int(household_id))
                .order_by("-at", "-id")
                .values_list("pk", flat=True)[:HISTORY_INLINE_LIMIT]
            )
            queryset = queryset.filter(pk__in=latest)
        return queryset

    @admin.display(description="what changed")
    def changes_text(self, obj: ChangeEntry) -> str:
        return _changes_text(obj)


def _name_q(term: str, *, field: str = "search_name") -> Q | None:
    """Every word of `term`, in plain letters, somewhere in the member's names."""
    words = names.plain(term).split()
    if not words:
        return None
    q = Q()
    for word in words:
        q &= Q(**{f"{field}__contains": word})
    return q


@admin.register(Household)
class HouseholdAdmin(DistrictScopedAdmin):
    list_display = ["number", "head", "village", "district", "phone", "status", "registration_date", "front_desk"]
    list_filter = [DistrictFilter, "status"]
    list_select_related = ["head", "village", "district"]
    search_fields = ["number"]
    search_help_text = "Household number, phone, or a member's name."
    date_hierarchy = "registration_date"
    readonly_fields = [
        "number",
        "front_desk",
        "district",
        "village",
        "address",
        "gps_latitude",
        "gps_longitude",
        "phone",
        "registration_date",
        "status",
        "head",
        "attributes",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields
    inlines = [MemberInline, ChangeEntryInline]
    show_full_result_count = False

    @admin.display(description="front desk")
    def front_desk(self, obj: Household) -> str:
        return _front_desk_link(obj)

    def view_on_site(self, obj: Household) -> str:
        return FRONT_DESK_HOUSEHOLD_PATH.format(pk=obj.pk)

    def get_search_results(self, request, queryset, search_term):
        term = " ".join(search_term.split())
        if not term:
            return queryset, False
        q = Q(number__startswith=term.upper())
        key = current_country().phone_key(term)
        # A phone key is only worth matching once it is long enough to name one line.
        if len(key) >= 6:
            q |= Q(phone_key=key) | Q(pk__in=Member.objects.filter(phone_key=key).values("household_id"))
        by_name = _name_q(term)
        if by_name is not None:
            q |= Q(pk__in=Member.objects.filter(by_name).values("household_id"))
        return queryset.filter(q), False


@admin.register(Member)
class MemberAdmin(DistrictScopedAdmin):
    district_field = "household__district"
    list_display = ["full_name", "sex", "date_of_birth", "relationship", "national_id", "household_link", "status"]
    list_filter = [HouseholdDistrictFilter, "status", "sex", "relationship"]
    list_select_related = ["household"]
    search_fields = ["national_id"]
    search_help_text = "Words of a name (in any order) or a national ID."
    show_full_result_count = False

    def get_fields(self, request, obj=None):
        return [f.name for f in Member._meta.concrete_fields if f.name not in ("id",)]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="household", ordering="household__number")
    def household_link(self, obj: Member) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:registry_household_change", args=[obj.household_id]), obj.household
        )

    def get_search_results(self, request, queryset, search_term):
        term = " ".join(search_term.split())
        if not term:
            return queryset, False
        q = Q(national_id__startswith=term.upper())
        by_name = _name_q(term)
        if by_name is not None:
            q |= by_name
        return queryset.filter(q), False


@admin.register(ChangeEntry)
class ChangeEntryAdmin(DistrictScopedAdmin):
    district_field = "household__district"
    list_display = ["at", "action", "entity", "household_link", "member", "actor", "changes_text"]
    list_filter = ["action", "entity", HouseholdDistrictFilter]
    list_select_related = ["household", "member", "actor"]
    search_fields = ["household__number"]
    search_help_text = "A household number (or its start)."
    date_hierarchy = "at"
    fields = [
        "at",
        "action",
        "entity",
        "entity_id",
        "household",
        "member",
        "actor",
        "changes_text",
        "note",
        "import_job",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="household", ordering="household__number")
    def household_link(self, obj: ChangeEntry) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:registry_household_change", args=[obj.household_id]), obj.household
        )

    @admin.display(description="what changed")
    def changes_text(self, obj: ChangeEntry) -> str:
        return _changes_text(obj)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        return queryset.filter(household__number__startswith=term), False


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "pk",
        "original_name",
        "status",
        "mode",
        "created_by",
        "created_at",
        "households_created",
        "members_created",
        "error_count",
        "duplicate_count",
    ]
    list_filter = ["status", "mode"]
    list_select_related = ["created_by"]
    search_fields = ["original_name", "created_by__username"]
    fields = [
        "original_name",
        "uploaded_file",
        "mode",
        "status",
        "created_by",
        "created_at",
        "finished_at",
        "total_rows",
        "processed_rows",
        "households_created",
        "members_created",
        "error_count",
        "duplicate_count",
        "message",
        "error_report",
        "duplicate_report",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = district_ids_for(request.user)
        if ids is None:
            return queryset
        # A job belongs to the districts whose households it wrote. A job that
        # wrote anywhere else is hidden whole: its error and duplicate reports
        # quote rows of those districts. A user also sees the jobs they started.
        wrote_here = ChangeEntry.objects.filter(import_job__isnull=False, household__district__in=ids)
        wrote_elsewhere = ChangeEntry.objects.filter(import_job__isnull=False).exclude(household__district__in=ids)
        return queryset.filter(Q(created_by=request.user) | Q(pk__in=wrote_here.values("import_job_id"))).exclude(
            pk__in=wrote_elsewhere.values("import_job_id")
        )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such import job in your districts.")
        return obj

    @admin.display(description="rows with problems")
    def error_report(self, obj: ImportJob) -> str:
        rows = obj.errors[:200] if isinstance(obj.errors, list) else []
        return (
            format_html_join(
                "\n",
                "<div>row {}: {}: {}</div>",
                ((e.get("row", ""), e.get("field", ""), e.get("problem", "")) for e in rows if isinstance(e, dict)),
            )
            or "—"
        )

    @admin.display(description="possible duplicates")
    def duplicate_report(self, obj: ImportJob) -> str:
        rows = obj.duplicates[:200] if isinstance(obj.duplicates, list) else []
        return (
            format_html_join(
                "\n",
                "<div>row {}: {} ({})</div>",
                ((d.get("row", ""), d.get("member", ""), d.get("score", "")) for d in rows if isinstance(d, dict)),
            )
            or "—"
        )


@admin.register(HouseholdNumberSequence)
class HouseholdNumberSequenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Shown so staff can see the last number given in each district; only the services move it."""

    list_display = ["district", "last_number"]
    list_select_related = ["district"]
