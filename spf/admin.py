"""Users in the admin: their role and the districts whose households they may see."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from registry.models import Location, LocationLevel

from .models import User
from .services import user_sync_role_access


class AssignedDistrictFilter(admin.SimpleListFilter):
    title = "district"
    parameter_name = "district"

    def lookups(self, request, model_admin):
        districts = Location.objects.filter(level=LocationLevel.DISTRICT).order_by("name")
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
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "first_name", "last_name", "role", "district_names", "is_staff", "is_active"]
    list_filter = ["role", AssignedDistrictFilter, "is_staff", "is_superuser", "is_active"]
    search_fields = ["username", "first_name", "last_name", "email"]
    filter_horizontal = ["districts", "groups", "user_permissions"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        (
            "Role and districts",
            {
                "fields": ("role", "districts"),
                "description": "Front-desk officers, programme officers and committee members see only the "
                "districts chosen here. Ministry staff see every district.",
            },
        ),
        ("Access to this admin", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "password1", "password2")}),
        ("Role and districts", {"fields": ("role", "districts")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("districts")

    @admin.display(description="districts")
    def district_names(self, obj: User) -> str:
        if obj.sees_every_district:
            return "all"
        return ", ".join(sorted(d.name for d in obj.districts.all())) or "—"

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "districts":
            # The model limits the choices too; ordering by name makes a long list usable.
            kwargs["queryset"] = Location.objects.filter(level=LocationLevel.DISTRICT).order_by("name")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

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
