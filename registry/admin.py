"""The ministry's view of the registry in the Django admin.

Ministry staff manage locations and attribute definitions here, by their
role. Households, members, their history, import jobs and number sequences are
browse-only: every change to a household goes through `registry.services`,
which checks scope and role and writes the history; an admin form would bypass
all three.

Scoped like everywhere else: a staff user who is neither a superuser nor
ministry staff sees only the rows of their districts (their locations too),
and an out-of-scope object's URL is a 404, not a page that admits it exists.
`DistrictScopedAdmin`, `DistrictFilter` and `ReadOnlyAdminMixin` are the
building blocks the other apps' admins use.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from spf.admin import MinistryRoleAccess, NotFoundOutsideScope
from spf.scope import district_ids_for, scope_to_user

from . import names
from .countries import current_country
from .models import (
    LEVEL_PARENT,
    AttributeDefinition,
    AttributeEntity,
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


class DistrictScopedAdmin(NotFoundOutsideScope, ReadOnlyAdminMixin, MinistryRoleAccess, admin.ModelAdmin):
    """Browse-only; rows outside the user's districts do not exist for them, not even by URL.

    Ministry staff read these by their role; other staff need Django's view permission.
    """

    # The path from the model to its district, as `scope_to_user` takes it.
    district_field = "district"

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user, district_field=self.district_field)


def nowrap(text: str) -> str:
    """A number or phone people read out (SAM-000123, 0977 123456) kept on one line in a narrow list column."""
    return format_html('<span class="spf-nowrap">{}</span>', text) if text else "—"


def _front_desk_link(household: Household) -> str:
    return format_html('<a href="{}">Open at the front desk</a>', FRONT_DESK_HOUSEHOLD_PATH.format(pk=household.pk))


def _changes_text(entry: ChangeEntry) -> str:
    parts = []
    for field, pair in (entry.changes or {}).items():
        old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        parts.append(f"{field}: {_readable(old)} → {_readable(new)}")
    return "; ".join(parts)


def _names(row) -> tuple[str, ...]:
    """The field names of one row of a fieldset: a name, or a tuple of names shown on one line."""
    return row if isinstance(row, tuple) else (row,)


def _attributes_html(values: dict, entity: str) -> str:
    """A household's or member's extra fields under the labels the ministry gave them."""
    if not values:
        return "—"
    labels = dict(AttributeDefinition.objects.filter(entity=entity).values_list("key", "label"))
    return format_html_join(
        "", "<div>{}: {}</div>", ((labels.get(key, key), _readable(value)) for key, value in sorted(values.items()))
    )


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
class LocationAdmin(NotFoundOutsideScope, MinistryRoleAccess, admin.ModelAdmin):
    """Ministry staff keep the country's places by their role. Other staff with Django's location permissions
    see and add only the wards and villages of their districts."""

    ministry_may = ("view", "add", "change")
    form = LocationForm
    list_display = ["code", "name", "level", "hierarchy"]
    list_filter = ["level", DistrictFilter]
    search_fields = ["code", "name"]
    search_help_text = "A code (or its start) or a name."
    list_select_related = ["parent__parent__parent"]
    ordering = ["code"]
    list_per_page = 100

    def get_queryset(self, request):
        # Places are not personal data, but a district's staff have no business
        # with another district's wards; provinces sit above every district.
        return scope_to_user(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        # Code, level and parent of an existing location are fixed: household
        # numbers carry the district's code, and moving a ward would silently
        # move every household under it to another district, with no history.
        if obj is not None:
            return ["code", "level", "parent", "district", "hierarchy"]
        return ["district"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "parent":
            parents = Location.objects.exclude(level=LocationLevel.VILLAGE).order_by("level", "name")
            kwargs["queryset"] = scope_to_user(parents, request.user)
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
class AttributeDefinitionAdmin(MinistryRoleAccess, admin.ModelAdmin):
    """The country's extra household and member fields: a catalogue, not personal data, so not scoped."""

    ministry_may = ("view", "add", "change")
    form = AttributeDefinitionForm
    list_display = ["key", "label", "entity", "type", "required", "active", "allowed_values_text"]
    list_filter = ["entity", "type", "active", "required"]
    search_fields = ["key", "label"]
    search_help_text = "A key or a label."

    @admin.display(description="allowed values")
    def allowed_values_text(self, obj: AttributeDefinition) -> str:
        return ", ".join(str(v) for v in obj.allowed_values) if obj.type == AttributeType.CHOICE else ""

    def has_delete_permission(self, request, obj=None):
        # Households keep the values of a retired definition; retire it with
        # 'active' instead, so its values stay readable and its key taken.
        return False


# --- households and members ----------------------------------------------------------


class MemberInline(ReadOnlyAdminMixin, MinistryRoleAccess, admin.TabularInline):
    model = Member
    fields = ["full_name_link", "sex", "date_of_birth", "relationship", "national_id", "phone", "status"]
    readonly_fields = fields
    extra = 0
    show_change_link = False

    @admin.display(description="name")
    def full_name_link(self, obj: Member) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:registry_member_change", args=[obj.pk]), obj.full_name)


class ChangeEntryInline(ReadOnlyAdminMixin, MinistryRoleAccess, admin.TabularInline):
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
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if object_id and str(object_id).isdigit():
            latest = list(
                ChangeEntry.objects.filter(**{f"{self.fk_name}_id": int(object_id)})
                .order_by("-at", "-id")
                .values_list("pk", flat=True)[:HISTORY_INLINE_LIMIT]
            )
            queryset = queryset.filter(pk__in=latest)
        return queryset

    @admin.display(description="what changed")
    def changes_text(self, obj: ChangeEntry) -> str:
        return _changes_text(obj)


class MemberChangeEntryInline(ChangeEntryInline):
    fk_name = "member"
    fields = ["at", "action", "actor", "changes_text", "note"]
    readonly_fields = fields
    verbose_name_plural = f"this person's history (latest {HISTORY_INLINE_LIMIT})"


# Where else a household appears, each list searched by its number.
HOUSEHOLD_ELSEWHERE = (
    ("programmes", "eligibilityresult", "eligibility"),
    ("referrals", "referral", "referrals"),
    ("payments", "enrolment", "enrolments"),
    ("payments", "payment", "payments"),
    ("registry", "changeentry", "full history"),
)


def _household_elsewhere(admin_site, request, household: Household) -> list[tuple[str, str]]:
    """Links to the lists the user may read that show this household."""
    links = []
    for model_admin in admin_site._registry.values():
        opts = model_admin.model._meta
        for app_label, model_name, label in HOUSEHOLD_ELSEWHERE:
            if (opts.app_label, opts.model_name) == (app_label, model_name) and model_admin.has_view_permission(
                request
            ):
                url = reverse(f"admin:{app_label}_{model_name}_changelist")
                links.append((label, f"{url}?q={household.number}"))
    order = [label for _, _, label in HOUSEHOLD_ELSEWHERE]
    return sorted(links, key=lambda link: order.index(link[0]))


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
    list_display = [
        "number",
        "head",
        "village_name",
        "district_name",
        "phone_text",
        "status",
        "registration_date",
        "front_desk",
    ]
    list_filter = [DistrictFilter, "status"]
    list_select_related = ["head", "village", "district"]
    search_fields = ["number"]
    search_help_text = "Household number, phone, or a member's name."
    date_hierarchy = "registration_date"
    fieldsets = (
        (None, {"fields": ("number", "status", "head", "phone", "registration_date", "front_desk", "elsewhere")}),
        ("Where", {"fields": ("district", "village", "address", ("gps_latitude", "gps_longitude"))}),
        ("Extra fields defined by the ministry", {"fields": ("attributes_text",)}),
        ("Record", {"fields": (("created_at", "updated_at"),)}),
    )
    readonly_fields = [
        "number",
        "status",
        "head",
        "phone",
        "registration_date",
        "front_desk",
        "elsewhere",
        "district",
        "village",
        "address",
        "gps_latitude",
        "gps_longitude",
        "attributes_text",
        "created_at",
        "updated_at",
    ]
    inlines = [MemberInline, ChangeEntryInline]
    show_full_result_count = False

    @admin.display(description="front desk")
    def front_desk(self, obj: Household) -> str:
        return _front_desk_link(obj)

    @admin.display(description="values")
    def attributes_text(self, obj: Household) -> str:
        return _attributes_html(obj.attributes, AttributeEntity.HOUSEHOLD)

    @admin.display(description="village", ordering="village__name")
    def village_name(self, obj: Household) -> str:
        return obj.village.name

    @admin.display(description="district", ordering="district__name")
    def district_name(self, obj: Household) -> str:
        return obj.district.name

    @admin.display(description="phone", ordering="phone")
    def phone_text(self, obj: Household) -> str:
        return nowrap(obj.phone)

    @admin.display(description="in other lists")
    def elsewhere(self, obj: Household) -> str:
        # A display method gets no request: `get_object` notes the links the user may follow.
        links = getattr(obj, "elsewhere_links", [])
        return format_html_join(" · ", '<a href="{1}">{0}</a>', links) or "—"

    def get_object(self, request, object_id, from_field=None):
        household = super().get_object(request, object_id, from_field)
        household.elsewhere_links = _household_elsewhere(self.admin_site, request, household)
        return household

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
    inlines = [MemberChangeEntryInline]
    show_full_result_count = False

    # The search keys (search_name, name_keys, phone_key) are the service's, rebuilt on every write: not shown.
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "household",
                    ("first_name", "middle_name", "last_name"),
                    "other_names",
                    ("sex", "relationship"),
                    ("date_of_birth", "date_of_birth_estimated"),
                    "national_id",
                    "phone",
                    ("status", "status_date"),
                )
            },
        ),
        (
            "Difficulties (Washington Group short set)",
            {
                "fields": (
                    ("disability_seeing", "disability_hearing"),
                    ("disability_walking", "disability_cognition"),
                    ("disability_self_care", "disability_communication"),
                    "chronic_illness",
                )
            },
        ),
        ("School and work", {"fields": ("school_attendance", "work_status")}),
        ("Extra fields defined by the ministry", {"fields": ("attributes_text",)}),
        ("Record", {"fields": (("created_at", "updated_at"),)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for fieldset in self.fieldsets for row in fieldset[1]["fields"] for name in _names(row)]

    @admin.display(description="extra fields")
    def attributes_text(self, obj: Member) -> str:
        return _attributes_html(obj.attributes, AttributeEntity.MEMBER)

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
class ImportJobAdmin(NotFoundOutsideScope, ReadOnlyAdminMixin, MinistryRoleAccess, admin.ModelAdmin):
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
    search_help_text = "The file's name or who uploaded it."
    date_hierarchy = "created_at"
    fields = [
        "original_name",
        "pages",
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

    @admin.display(description="see")
    def pages(self, obj: ImportJob) -> str:
        # The uploaded file itself is not served (media is private); its page and reports are, scoped.
        return format_html(
            '<a href="{}">the import\'s page</a> · <a href="{}">error report (CSV)</a>',
            reverse("imports:detail", args=[obj.pk]),
            reverse("imports:report", args=[obj.pk, "errors"]),
        )

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
class HouseholdNumberSequenceAdmin(DistrictScopedAdmin):
    """Shown so staff can see the last number given in each district; only the services move it."""

    list_display = ["district", "last_number"]
    list_filter = [DistrictFilter]
    list_select_related = ["district"]
    ordering = ["district__code"]
    fields = ["district", "last_number"]
    readonly_fields = fields
