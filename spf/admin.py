"""The admin site's shape and who may use it; users, their role and their districts.

Who sees what in the admin, the same rule as everywhere else:

- superusers see and may do everything;
- ministry staff (role "ministry", with staff status) use every page of the
  project's apps by their role, and see every district (`is_ministry_staff`,
  `MinistryRoleAccess`);
- any other staff user needs Django's model permissions, and even with them
  sees only the rows of their districts (and of their agency, for programme
  officers): each app's admin scopes its querysets like its pages and API.
"""

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from registry.models import Location, LocationLevel

from .models import Role, User
from .scope import district_ids_for
from .services import user_sync_role_access

admin.site.site_header = "Single-window social protection: ministry administration"
admin.site.site_title = "SPF administration"
admin.site.index_title = "Registry, programmes, referrals, payments and users"
# The sidebar repeats the index on every page and took a fifth of a laptop's
# width from lists that need it (households, referrals, payments); the
# breadcrumbs and the index are one click away.
admin.site.enable_nav_sidebar = False

# The index lists the apps in the order a household goes through them, not
# alphabetically; apps not named here (Django's, partners') follow.
APP_ORDER = ("registry", "programmes", "referrals", "payments", "grievances", "interop", "spf", "admin")


def _apps_in_chain_order(get_app_list):
    def get_app_list_in_order(request, app_label=None):
        apps = get_app_list(request, app_label)
        rank = {label: position for position, label in enumerate(APP_ORDER)}
        return sorted(apps, key=lambda app: (rank.get(app["app_label"], len(APP_ORDER)), app["name"]))

    return get_app_list_in_order


# The default site is Django's instance; replacing its class would mean a
# custom AdminConfig in INSTALLED_APPS for one ordering.
admin.site.get_app_list = _apps_in_chain_order(admin.site.get_app_list)


def is_ministry_staff(user) -> bool:
    """Ministry staff (or a superuser) let into the admin: every district, every page of the project's apps."""
    return bool(user and user.is_active and user.is_staff and user.sees_every_district)


class MinistryRoleAccess:
    """Ministry staff may do what `ministry_may` names by their role; other staff need Django's model permissions.

    Put after any mixin that forbids writes (`ReadOnlyAdminMixin`) and before
    ModelAdmin or an inline, so a forbidden write stays forbidden.
    """

    ministry_may: tuple[str, ...] = ("view",)

    def _ministry_may(self, request, action: str) -> bool:
        return action in self.ministry_may and is_ministry_staff(request.user)

    def has_module_permission(self, request):
        return self._ministry_may(request, "view") or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._ministry_may(request, "view") or super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        # ModelAdmin takes (request), an inline (request, obj).
        return self._ministry_may(request, "add") or super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._ministry_may(request, "change") or super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._ministry_may(request, "delete") or super().has_delete_permission(request, obj)


class NotFoundOutsideScope:
    """An object outside the user's scope is a 404, as on the pages and in the API.

    The admin's default for a missing object is a redirect with a message
    naming the model and the id; for another district's row that would confirm
    the id exists.
    """

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such record in what you may see.")
        return obj


# --- users -------------------------------------------------------------------------------------


class AssignedDistrictFilter(admin.SimpleListFilter):
    title = "district"
    parameter_name = "district"

    def lookups(self, request, model_admin):
        districts = Location.objects.filter(level=LocationLevel.DISTRICT).order_by("name")
        ids = district_ids_for(request.user)
        if ids is not None:
            districts = districts.filter(pk__in=ids)
        return [("none", "No district"), *((str(d.pk), d.name) for d in districts)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(districts__isnull=True)
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(districts=int(value))


@admin.register(User)
class UserAdmin(NotFoundOutsideScope, MinistryRoleAccess, DjangoUserAdmin):
    """Ministry staff manage users by their role. Other staff who hold Django's user permissions see and
    manage only the users of their districts, and can give nobody more than they have themselves."""

    ministry_may = ("view", "add", "change")
    list_display = [
        "username",
        "full_name",
        "role",
        "district_names",
        "agency_code",
        "is_staff",
        "is_active",
        "last_login",
    ]
    list_filter = ["role", AssignedDistrictFilter, "agency", "is_staff", "is_superuser", "is_active"]
    list_select_related = ["agency"]
    search_fields = ["username", "first_name", "last_name", "email"]
    search_help_text = "A user name, a first or last name, or an e-mail address."
    filter_horizontal = ["districts", "groups", "user_permissions"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        (
            "Role and districts",
            {
                "fields": ("role", "districts", "agency"),
                "description": "Front-desk officers, programme officers and committee members see only the "
                "districts chosen here. Ministry staff see every district. A programme officer works on the "
                "referrals, enrolments and payrolls of their agency.",
            },
        ),
        ("Access to this admin", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "password1", "password2")}),
        ("Role and districts", {"fields": ("role", "districts", "agency")}),
    )

    def get_queryset(self, request):
        queryset = super().get_queryset(request).prefetch_related("districts")
        ids = district_ids_for(request.user)
        if ids is None:
            return queryset
        # A district's staff see the users who work in one of their districts, and themselves.
        sharing = User.objects.filter(districts__in=ids).values("pk")
        return queryset.filter(Q(pk__in=sharing) | Q(pk=request.user.pk))

    def has_change_permission(self, request, obj=None):
        # A password or an e-mail is a way into an account: nobody but a
        # superuser changes a superuser's.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        # Nor does someone who sees some districts change someone who sees them all.
        if obj is not None and obj.sees_every_district and not request.user.sees_every_district:
            return False
        return super().has_change_permission(request, obj)

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name() or "—"

    @admin.display(description="agency", ordering="agency__code")
    def agency_code(self, obj: User) -> str:
        if obj.agency_id is None:
            return "—"
        return format_html('<span title="{}">{}</span>', obj.agency.name, obj.agency.code)

    @admin.display(description="districts")
    def district_names(self, obj: User) -> str:
        if obj.sees_every_district:
            return "all"
        return ", ".join(sorted(d.name for d in obj.districts.all())) or "—"

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "districts":
            # The model limits the choices too; ordering by name makes a long list usable,
            # and a district's staff can only hand out their own districts.
            districts = Location.objects.filter(level=LocationLevel.DISTRICT).order_by("name")
            ids = district_ids_for(request.user)
            kwargs["queryset"] = districts if ids is None else districts.filter(pk__in=ids)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role" and not request.user.sees_every_district:
            # The ministry role sees every district: only those who already do may give it.
            kwargs["choices"] = [(value, label) for value, label in Role.choices if value != Role.MINISTRY]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the groups field is saved, or it would undo the role's group.
        user_sync_role_access(user=form.instance)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Staff who may manage users must not be able to hand out more power
            # than they hold, themselves included.
            readonly += ["is_superuser", "groups", "user_permissions"]
        return readonly


# --- the admin's own audit trail -------------------------------------------------------------------


class LoggedModelFilter(admin.SimpleListFilter):
    """The kinds of record the log has entries about, not every table of the database."""

    title = "kind of record"
    parameter_name = "content_type"

    def lookups(self, request, model_admin):
        logged = LogEntry.objects.values("content_type").distinct()
        kinds = ContentType.objects.filter(pk__in=logged)
        return sorted(((str(kind.pk), kind.name) for kind in kinds), key=lambda choice: choice[1])

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(content_type_id=int(value)) if value.isdigit() else queryset.none()


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action_flag"

    def lookups(self, request, model_admin):
        return [(str(ADDITION), "added"), (str(CHANGE), "changed"), (str(DELETION), "deleted")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(action_flag=int(value)) if value.isdigit() else queryset.none()


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    """What was done in the admin (users changed, deliveries retried, catalogue edits), by whom and when.

    The services keep each domain's history (a household's changes, a
    referral's timeline, an enrolment's events); this is the admin's. Its
    object names cross districts, so only ministry staff and superusers read it.
    """

    list_display = ["action_time", "user", "action", "content_type", "object_link", "change_message_text"]
    list_filter = [ActionFilter, LoggedModelFilter]
    list_select_related = ["user", "content_type"]
    search_fields = ["object_repr", "user__username", "change_message"]
    search_help_text = "What was changed (its name or number), who changed it, or words of the message."
    date_hierarchy = "action_time"
    ordering = ["-action_time", "-id"]
    fields = ["action_time", "user", "action", "content_type", "object_id", "object_link", "change_message_text"]
    readonly_fields = fields
    show_full_result_count = False

    def has_module_permission(self, request):
        return is_ministry_staff(request.user)

    def has_view_permission(self, request, obj=None):
        return is_ministry_staff(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="action", ordering="action_flag")
    def action(self, entry: LogEntry) -> str:
        return {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}.get(
            entry.action_flag, str(entry.action_flag)
        )

    @admin.display(description="object")
    def object_link(self, entry: LogEntry) -> str:
        if entry.is_deletion() or not entry.content_type_id or not entry.object_id:
            return entry.object_repr
        try:
            url = reverse(
                f"admin:{entry.content_type.app_label}_{entry.content_type.model}_change", args=[entry.object_id]
            )
        except NoReverseMatch:
            return entry.object_repr
        return format_html('<a href="{}">{}</a>', url, entry.object_repr)

    @admin.display(description="what was done")
    def change_message_text(self, entry: LogEntry) -> str:
        return entry.get_change_message() or "—"


# Log-in lockouts (django-axes), and the task outbox (queued background jobs): their own modules,
# registered with the rest of the spf admin.
from . import export_admin, lockout_admin, outbox_admin  # noqa: E402, F401
