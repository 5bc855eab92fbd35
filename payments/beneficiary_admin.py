"""Programmes' beneficiary lists in the Django admin: browse-only.

A list is uploaded, mapped and run on its pages (`payments.beneficiary_views`)
and a waiting row is decided there by an officer; an admin form would bypass
the matching, the scope and the history. Scoped as on those pages: the lists
of the programmes the user works on, the rows of their districts. Ministry
staff see these models by their role; other staff need Django's view permission.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html

from registry.admin import DistrictFilter, ReadOnlyAdminMixin
from spf.admin import MinistryRoleAccess, NotFoundOutsideScope
from spf.scope import district_ids_for

from .beneficiaries import programmes_for_beneficiary_lists
from .models import BeneficiaryList, BeneficiaryRow


class _BeneficiaryAdmin(NotFoundOutsideScope, ReadOnlyAdminMixin, MinistryRoleAccess, admin.ModelAdmin):
    """Browse-only; a list or row outside the user's scope is a 404."""


@admin.register(BeneficiaryList)
class BeneficiaryListAdmin(_BeneficiaryAdmin):
    list_display = (
        "file_name",
        "programme",
        "status",
        "total_rows",
        "enrolments_created",
        "uploaded_by",
        "uploaded_at",
    )
    list_filter = ("status", "programme")
    search_fields = ("file_name", "file_sha256", "programme__code", "programme__name")
    date_hierarchy = "uploaded_at"
    fields = readonly_fields = (
        "programme", "file_name", "file_sha256", "uploaded_by", "uploaded_at", "mapped_by", "mapped_at", "status",
        "total_rows", "counts", "enrolments_created", "households_created", "registry_import", "message",
        "mapping", "payment_defaults", "columns", "started_at", "finished_at", "pages",
    )  # fmt: skip

    def get_queryset(self, request) -> QuerySet[BeneficiaryList]:
        queryset = super().get_queryset(request).select_related("programme", "uploaded_by")
        return queryset.filter(programme__in=programmes_for_beneficiary_lists(request.user).values("pk"))

    @admin.display(description="See")
    def pages(self, obj: BeneficiaryList) -> str:
        return format_html(
            '<a href="{}">the list\'s page</a> · <a href="{}">its rows</a>',
            reverse("beneficiary_lists:detail", args=[obj.pk]),
            reverse("admin:payments_beneficiaryrow_changelist") + f"?beneficiary_list__id__exact={obj.pk}",
        )


@admin.register(BeneficiaryRow)
class BeneficiaryRowAdmin(_BeneficiaryAdmin):
    list_display = ("beneficiary_list", "line", "state", "match_method", "score", "household", "column", "reason")
    list_filter = ("state", "match_method", DistrictFilter, "beneficiary_list__programme")
    search_fields = ("national_id", "first_name", "last_name", "external_reference", "household__number")
    search_help_text = "A national ID, a first or last name, the programme's own number, or a household number."
    list_select_related = ("beneficiary_list", "household")
    readonly_fields = [field.name for field in BeneficiaryRow._meta.fields]

    def get_queryset(self, request) -> QuerySet[BeneficiaryRow]:
        queryset = (
            super()
            .get_queryset(request)
            .filter(beneficiary_list__programme__in=programmes_for_beneficiary_lists(request.user).values("pk"))
        )
        ids = district_ids_for(request.user)
        return queryset if ids is None else queryset.filter(district_id__in=ids)
