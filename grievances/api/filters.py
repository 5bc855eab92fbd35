"""Query-string filters of the grievance list.

The queryset they narrow is already `grievances_for(user)`: districts,
sensitivity, and the agency for its officers. A filter can only narrow further.
"""

import django_filters
from django.db.models import Q
from django.utils import timezone

from ..models import (
    OPEN_STATUSES,
    Grievance,
    GrievanceCategory,
    GrievanceChannel,
    GrievancePriority,
    GrievanceStatus,
    grievance_id_from_number,
)


def _values(choices) -> str:
    return ", ".join(f"`{value}`" for value, _ in choices)


def overdue_condition(*, today) -> Q:
    """The worklist's test (`grievances.selectors.grievance_worklist`): still open and past its deadline."""
    return Q(status__in=OPEN_STATUSES, due_date__lt=today)


class GrievanceFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=GrievanceStatus.choices,
        help_text=f"One or more of {_values(GrievanceStatus.choices)} (repeat the parameter).",
    )
    open = django_filters.BooleanFilter(
        method="_open", help_text="true: received, acknowledged, assigned, investigated or escalated."
    )
    category = django_filters.MultipleChoiceFilter(
        choices=GrievanceCategory.choices,
        help_text=f"One or more of {_values(GrievanceCategory.choices)} (repeat the parameter).",
    )
    priority = django_filters.ChoiceFilter(
        choices=GrievancePriority.choices, help_text=_values(GrievancePriority.choices)
    )
    channel = django_filters.ChoiceFilter(choices=GrievanceChannel.choices, help_text=_values(GrievanceChannel.choices))
    overdue = django_filters.BooleanFilter(
        method="_overdue", help_text="true: still open and past its resolution deadline; false: the others."
    )
    mine = django_filters.BooleanFilter(
        method="_mine", help_text="true: assigned to you, or to your agency (for a programme's officers)."
    )
    sensitive = django_filters.BooleanFilter(
        help_text="true: sensitive ones only (you see them only as a designated officer, or as whoever recorded one)."
    )
    number = django_filters.CharFilter(method="_number", help_text="The reference on the slip, e.g. G00000042.")
    household = django_filters.CharFilter(method="_household", help_text="Household number, e.g. SAM-000123.")
    programme = django_filters.CharFilter(
        field_name="programme__code", lookup_expr="iexact", help_text="Programme code, e.g. SCT."
    )
    district = django_filters.CharFilter(field_name="district__code", lookup_expr="iexact", help_text="District code.")
    created_from = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", help_text="Received on or after this date."
    )
    created_to = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", help_text="Received on or before this date."
    )

    class Meta:
        model = Grievance
        fields: list[str] = []

    def _open(self, queryset, name, value):
        return queryset.filter(status__in=OPEN_STATUSES) if value else queryset.exclude(status__in=OPEN_STATUSES)

    def _overdue(self, queryset, name, value):
        condition = overdue_condition(today=timezone.localdate())
        return queryset.filter(condition) if value else queryset.exclude(condition)

    def _mine(self, queryset, name, value):
        user = self.request.user
        condition = Q(assigned_to=user)
        if getattr(user, "agency_id", None):
            condition |= Q(assigned_agency_id=user.agency_id)
        return queryset.filter(condition) if value else queryset.exclude(condition)

    def _number(self, queryset, name, value):
        grievance_id = grievance_id_from_number(value)
        return queryset.filter(pk=grievance_id) if grievance_id else queryset.none()

    def _household(self, queryset, name, value):
        return queryset.filter(household__number=value.strip().upper())
